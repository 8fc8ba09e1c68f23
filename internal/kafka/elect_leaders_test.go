package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// electHandler is a local-mode handler (node 1) whose image has a fenced
// broker 2 and a topic "e" of five partitions, changed by
// PartitionChangeRecords proposed directly:
//
//	p0: replicas [1 2], ISR [1 2], leader 2   (off its preferred replica)
//	p1: replicas [1],   ISR [1],   leader 1   (on it)
//	p2: replicas [2 1], ISR [1],   leader 1   (preferred replica out of the ISR)
//	p3: replicas [2 1], ISR [2],   leader -1  (only 1 is usable, outside the ISR)
//	p4: replicas [2],   ISR [2],   leader -1  (no usable replica)
func electHandler(t *testing.T) *Handler {
	t.Helper()
	h := registeredHandler(t, "e", 5)
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		id := records.UUID(im.Topic("e").ID)
		change := func(p int32, replicas, isr []int32, leader int32) records.Record {
			rec := records.NewPartitionChange(id, p)
			rec.Replicas, rec.Isr, rec.Leader = replicas, isr, leader
			return rec
		}
		return []records.Record{
			&records.RegisterBroker{BrokerID: 2, IncarnationID: records.UUID{2}, BrokerEpoch: im.EndOffset, Fenced: true,
				EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "two", Port: 9093}}},
			change(0, []int32{1, 2}, []int32{1, 2}, 2),
			change(2, []int32{2, 1}, []int32{1}, 1),
			change(3, []int32{2, 1}, []int32{2}, -1),
			change(4, []int32{2}, []int32{2}, -1),
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func electLeaders(t *testing.T, h *Handler, version int16, typ int8, topics map[string][]int32) *kmsg.ElectLeadersResponse {
	t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = version, typ
	if topics != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
	}
	for name, ps := range topics {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = name, ps
		req.Topics = append(req.Topics, rt)
	}
	return roundTrip[*kmsg.ElectLeadersResponse](t, h, req)
}

// codes flattens a response as "topic/partition" -> code.
func codes(resp *kmsg.ElectLeadersResponse) map[string]int16 {
	out := map[string]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)] = rp.ErrorCode
		}
	}
	return out
}

func checkCodes(t *testing.T, what string, got, want map[string]int16) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: answered %v, want %v", what, got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Fatalf("%s: %s is %v (answered %v), want %v", what, k, kerr.ErrorForCode(g), ok, kerr.ErrorForCode(w))
		}
	}
}

func partitionState(t *testing.T, h *Handler, p int32) *cluster.Partition {
	t.Helper()
	return h.meta.Image().Topic("e").PartitionStates[p]
}

func TestElectLeadersPreferred(t *testing.T) {
	for _, version := range []int16{0, 1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			h := electHandler(t)
			epoch := partitionState(t, h, 0).LeaderEpoch
			resp := electLeaders(t, h, version, electPreferred, map[string][]int32{"e": {0, 1, 2, 3, 4, 9}, "nope": {0}})
			mustCode(t, "top level", resp.ErrorCode, 0)
			checkCodes(t, "listed", codes(resp), map[string]int16{
				"e/0":    0,
				"e/1":    kerr.ElectionNotNeeded.Code,
				"e/2":    kerr.PreferredLeaderNotAvailable.Code,
				"e/3":    kerr.PreferredLeaderNotAvailable.Code, // broker 2 is fenced
				"e/4":    kerr.PreferredLeaderNotAvailable.Code,
				"e/9":    kerr.UnknownTopicOrPartition.Code,
				"nope/0": kerr.UnknownTopicOrPartition.Code,
			})
			if p := partitionState(t, h, 0); p.Leader != 1 || p.LeaderEpoch != epoch+1 {
				t.Fatalf("e/0 after the election: leader %d epoch %d, want 1 and %d", p.Leader, p.LeaderEpoch, epoch+1)
			}
			// The partition is this node's again: it serves it.
			if _, code := h.lookup("e", 0); code != 0 {
				t.Fatalf("e/0 after the election: %v", kerr.ErrorForCode(code))
			}
			// All partitions: only those that needed an election are
			// answered (Kafka leaves ELECTION_NOT_NEEDED out).
			if version >= 1 {
				resp = electLeaders(t, h, version, electPreferred, nil)
				checkCodes(t, "all", codes(resp), map[string]int16{
					"e/2": kerr.PreferredLeaderNotAvailable.Code,
					"e/3": kerr.PreferredLeaderNotAvailable.Code,
					"e/4": kerr.PreferredLeaderNotAvailable.Code,
				})
			}
		})
	}
}

func TestElectLeadersUnclean(t *testing.T) {
	h := electHandler(t)
	resp := electLeaders(t, h, 2, electUnclean, map[string][]int32{"e": {0, 1, 3, 4}})
	checkCodes(t, "listed", codes(resp), map[string]int16{
		"e/0": kerr.ElectionNotNeeded.Code, // has a leader, even off its preferred replica
		"e/1": kerr.ElectionNotNeeded.Code,
		"e/3": 0,
		"e/4": kerr.EligibleLeadersNotAvailable.Code,
	})
	p := partitionState(t, h, 3)
	if p.Leader != 1 || len(p.ISR) != 1 || p.ISR[0] != 1 || p.LeaderRecoveryState != 1 {
		t.Fatalf("e/3 after an unclean election: %+v, want leader 1, ISR [1], recovering", p)
	}
	if p := partitionState(t, h, 4); p.Leader != -1 {
		t.Fatalf("e/4 got leader %d", p.Leader)
	}
	// All partitions: e/4 is the only one left without a leader.
	checkCodes(t, "all", codes(electLeaders(t, h, 2, electUnclean, nil)), map[string]int16{
		"e/4": kerr.EligibleLeadersNotAvailable.Code,
	})
	// An unknown election type is refused as a whole.
	resp = electLeaders(t, h, 2, 7, map[string][]int32{"e": {0}})
	mustCode(t, "election type 7", resp.ErrorCode, kerr.InvalidRequest.Code)
	mustCode(t, "election type 7, e/0", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest.Code)
}
