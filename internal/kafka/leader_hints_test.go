package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// TestLeaderHints: KIP-951's current leader and node endpoints on a
// partition another node leads (NOT_LEADER_OR_FOLLOWER) and on a stale
// leader epoch (FENCED_LEADER_EPOCH), in Produce v10+ and Fetch v16+ only.
func TestLeaderHints(t *testing.T) {
	h := electHandler(t) // e/0 is led by broker 2
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		bump := records.NewPartitionChange(records.UUID(im.Topic("e").ID), 1)
		bump.Leader = 1 // same leader, next epoch
		return []records.Record{&records.UnfenceBroker{ID: 2, Epoch: im.Broker(2).Epoch}, bump}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	im := h.meta.Image()
	e := im.Topic("e")
	epoch0, epoch1 := e.PartitionStates[0].LeaderEpoch, e.PartitionStates[1].LeaderEpoch
	if epoch1 == 0 {
		t.Fatal("e/1's leader epoch did not move")
	}

	for _, version := range []int16{9, 10, 12} {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "e", Partitions: []kmsg.ProduceRequestTopicPartition{
			{Partition: 0, Records: oneRecord(t, "x")},
			{Partition: 0, Records: oneRecord(t, "y")}, // the same leader is listed once
		}}}
		resp := roundTrip[*kmsg.ProduceResponse](t, h, req)
		for _, sp := range resp.Topics[0].Partitions {
			mustCode(t, "produce to e/0", sp.ErrorCode, kerr.NotLeaderForPartition.Code)
			want := kmsg.NewProduceResponseTopicPartitionCurrentLeader()
			if version >= 10 {
				want.LeaderID, want.LeaderEpoch = 2, epoch0
			}
			if sp.CurrentLeader.LeaderID != want.LeaderID || sp.CurrentLeader.LeaderEpoch != want.LeaderEpoch {
				t.Fatalf("produce v%d: current leader %+v, want %+v", version, sp.CurrentLeader, want)
			}
		}
		wantBrokers := 0
		if version >= 10 {
			wantBrokers = 1
		}
		if len(resp.Brokers) != wantBrokers {
			t.Fatalf("produce v%d: brokers %+v", version, resp.Brokers)
		}
		if wantBrokers == 1 {
			if b := resp.Brokers[0]; b.NodeID != 2 || b.Host != "two" || b.Port != 9093 || b.Rack != nil {
				t.Fatalf("produce v%d: broker %+v", version, b)
			}
		}
	}

	for _, version := range []int16{15, 16, 17} {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxBytes = version, -1, 1<<20
		req.Topics = []kmsg.FetchRequestTopic{{Topic: "e", TopicID: e.ID, Partitions: []kmsg.FetchRequestTopicPartition{
			{Partition: 0, CurrentLeaderEpoch: -1, PartitionMaxBytes: 1 << 20},
			{Partition: 1, CurrentLeaderEpoch: epoch1 - 1, PartitionMaxBytes: 1 << 20},
			{Partition: 1, CurrentLeaderEpoch: epoch1, PartitionMaxBytes: 1 << 20},
		}}}
		resp := roundTrip[*kmsg.FetchResponse](t, h, req)
		ps := resp.Topics[0].Partitions
		mustCode(t, "fetch e/0", ps[0].ErrorCode, kerr.NotLeaderForPartition.Code)
		mustCode(t, "fetch e/1 at an old epoch", ps[1].ErrorCode, kerr.FencedLeaderEpoch.Code)
		mustCode(t, "fetch e/1", ps[2].ErrorCode, 0)
		type leader struct{ id, epoch int32 }
		want := []leader{{-1, -1}, {-1, -1}, {-1, -1}}
		if version >= 16 {
			want[0], want[1] = leader{2, epoch0}, leader{1, epoch1}
		}
		for i, sp := range ps {
			if got := (leader{sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch}); got != want[i] {
				t.Fatalf("fetch v%d partition %d: current leader %+v, want %+v", version, i, got, want[i])
			}
		}
		if version < 16 {
			if len(resp.Brokers) != 0 {
				t.Fatalf("fetch v%d: brokers %+v", version, resp.Brokers)
			}
			continue
		}
		if len(resp.Brokers) != 2 || resp.Brokers[0].NodeID != 2 || resp.Brokers[0].Host != "two" || resp.Brokers[0].Port != 9093 ||
			resp.Brokers[1].NodeID != 1 || resp.Brokers[1].Host != "self" || resp.Brokers[1].Port != 9092 {
			t.Fatalf("fetch v%d: brokers %+v", version, resp.Brokers)
		}
	}
}
