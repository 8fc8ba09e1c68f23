package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster/records"
)

// alterReq is an AlterPartition request of broker 1 (epoch 0, as
// testImage registers it) for partition 0 of topic "a" at v3, by id.
func alterReq(leaderEpoch, partitionEpoch int32, recovery int8, isr ...int32) *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = 3, 1, 0
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch, rp.LeaderRecoveryState = leaderEpoch, partitionEpoch, recovery
	for _, id := range isr {
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		m.BrokerID = id
		rp.NewEpochISR = append(rp.NewEpochISR, m)
	}
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = [16]byte{1}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestAlterPartitionChanges(t *testing.T) {
	// Brokers 1-4, 4 fenced; a/0: replicas [1 2 3 4], ISR [1 2], leader
	// 1, leader epoch 5, partition epoch 9.
	p := []part{{replicas: []int32{1, 2, 3, 4}, isr: []int32{1, 2}, leader: 1}}
	for _, tc := range []struct {
		name   string
		req    *kmsg.AlterPartitionRequest
		edit   func(*kmsg.AlterPartitionRequest)
		top    int16
		code   int16
		isr    []int32 // the change's ISR; nil: no record
		recov  int8
		noRecs bool
	}{
		{name: "expand", req: alterReq(5, 9, 0, 1, 2, 3), isr: []int32{1, 2, 3}},
		{name: "shrink", req: alterReq(5, 9, 0, 1), isr: []int32{1}},
		{name: "same ISR: no record", req: alterReq(5, 9, 0, 1, 2), noRecs: true},
		{name: "stale broker epoch", req: alterReq(5, 9, 0, 1), edit: func(r *kmsg.AlterPartitionRequest) { r.BrokerEpoch = 7 }, top: kerr.StaleBrokerEpoch.Code, noRecs: true},
		{name: "unregistered sender", req: alterReq(5, 9, 0, 1), edit: func(r *kmsg.AlterPartitionRequest) { r.BrokerID = 9 }, top: kerr.StaleBrokerEpoch.Code, noRecs: true},
		{name: "not the leader", req: alterReq(5, 9, 0, 2), edit: func(r *kmsg.AlterPartitionRequest) { r.BrokerID = 2 }, code: kerr.NotLeaderForPartition.Code, noRecs: true},
		{name: "old leader epoch", req: alterReq(4, 9, 0, 1), code: kerr.FencedLeaderEpoch.Code, noRecs: true},
		{name: "old partition epoch", req: alterReq(5, 8, 0, 1), code: kerr.InvalidUpdateVersion.Code, noRecs: true},
		{name: "newer leader epoch: this controller is behind", req: alterReq(6, 9, 0, 1), code: kerr.NotController.Code, noRecs: true},
		{name: "newer partition epoch", req: alterReq(5, 10, 0, 1), code: kerr.NotController.Code, noRecs: true},
		{name: "ISR without the leader", req: alterReq(5, 9, 0, 2), code: kerr.InvalidRequest.Code, noRecs: true},
		{name: "empty ISR", req: alterReq(5, 9, 0), code: kerr.InvalidRequest.Code, noRecs: true},
		{name: "not a replica", req: alterReq(5, 9, 0, 1, 5), code: kerr.InvalidRequest.Code, noRecs: true},
		{name: "duplicate member", req: alterReq(5, 9, 0, 1, 2, 2), code: kerr.InvalidRequest.Code, noRecs: true},
		{name: "fenced addition", req: alterReq(5, 9, 0, 1, 2, 4), code: kerr.IneligibleReplica.Code, noRecs: true},
		{name: "stale epoch of an addition", req: alterReq(5, 9, 0, 1, 2, 3), edit: func(r *kmsg.AlterPartitionRequest) { r.Topics[0].Partitions[0].NewEpochISR[2].BrokerEpoch = 3 }, code: kerr.IneligibleReplica.Code, noRecs: true},
		{name: "matching epoch of an addition", req: alterReq(5, 9, 0, 1, 2, 3), edit: func(r *kmsg.AlterPartitionRequest) { r.Topics[0].Partitions[0].NewEpochISR[2].BrokerEpoch = 0 }, isr: []int32{1, 2, 3}},
		{name: "fenced addition before v2", req: alterReq(5, 9, 0, 1, 2, 4), edit: func(r *kmsg.AlterPartitionRequest) {
			r.Version = 1
			r.Topics[0].Topic = "a"
			r.Topics[0].Partitions[0].NewISR = []int32{1, 2, 4}
		}, code: kerr.OperationNotAttempted.Code, noRecs: true},
		{name: "v0 by name", req: alterReq(5, 9, 0), edit: func(r *kmsg.AlterPartitionRequest) {
			r.Version = 0
			r.Topics[0].Topic = "a"
			r.Topics[0].Partitions[0].NewISR = []int32{1, 2, 3}
		}, isr: []int32{1, 2, 3}},
		{name: "unknown topic id", req: alterReq(5, 9, 0, 1), edit: func(r *kmsg.AlterPartitionRequest) { r.Topics[0].TopicID = [16]byte{9} }, code: kerr.UnknownTopicID.Code, noRecs: true},
		{name: "unknown topic name", req: alterReq(5, 9, 0, 1), edit: func(r *kmsg.AlterPartitionRequest) { r.Version = 1; r.Topics[0].Topic = "zz" }, code: kerr.UnknownTopicOrPartition.Code, noRecs: true},
		{name: "unknown partition", req: alterReq(5, 9, 0, 1), edit: func(r *kmsg.AlterPartitionRequest) { r.Topics[0].Partitions[0].Partition = 3 }, code: kerr.UnknownTopicOrPartition.Code, noRecs: true},
		{name: "RECOVERED cannot go back to RECOVERING", req: alterReq(5, 9, 1, 1), code: kerr.InvalidRequest.Code, noRecs: true},
		{name: "unknown recovery state", req: alterReq(5, 9, 2, 1), code: kerr.InvalidRequest.Code, noRecs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := testImage(4, []int32{4}, p)
			if tc.edit != nil {
				tc.edit(tc.req)
			}
			resp, recs := AlterPartitionChanges(im, tc.req)
			if resp.ErrorCode != tc.top {
				t.Fatalf("top-level %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(tc.top))
			}
			if tc.top == 0 {
				if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.code {
					t.Fatalf("partition %v, want %v", kerr.ErrorForCode(got), kerr.ErrorForCode(tc.code))
				}
			}
			if tc.noRecs {
				if len(recs) != 0 {
					t.Fatalf("records %v, want none", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("records %v, want one", recs)
			}
			pc := recs[0].(*records.PartitionChange)
			if !slices.Equal(pc.Isr, tc.isr) || pc.Leader != records.LeaderUnchanged || pc.LeaderRecoveryState != -1 || pc.PartitionID != 0 || pc.TopicID != (records.UUID{1}) {
				t.Fatalf("change %+v, want ISR %v only", pc, tc.isr)
			}
		})
	}
}

// TestAlterPartitionRecovered: the leader of an unclean election
// (RECOVERING, KIP-704) reports itself recovered, then grows the ISR.
func TestAlterPartitionRecovered(t *testing.T) {
	im := testImage(3, nil, []part{{replicas: []int32{1, 2, 3}, isr: []int32{1}, leader: 1}})
	im.Topics["a"].PartitionStates[0].LeaderRecoveryState = 1
	if _, recs := AlterPartitionChanges(im, alterReq(5, 9, 1, 1, 2)); len(recs) != 0 {
		t.Fatalf("RECOVERING with two members: %v", recs)
	}
	resp, recs := AlterPartitionChanges(im, alterReq(5, 9, 0, 1))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 || len(recs) != 1 {
		t.Fatalf("recovered: %v %v", kerr.ErrorForCode(code), recs)
	}
	if pc := recs[0].(*records.PartitionChange); pc.Isr != nil || pc.LeaderRecoveryState != 0 {
		t.Fatalf("change %+v, want recovery state 0 and the ISR unchanged", pc)
	}
}
