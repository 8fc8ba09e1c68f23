package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// reassignHandler is a local-mode handler (node 1) with a registered,
// fenced broker 2 and a topic "r" of two partitions on broker 1.
func reassignHandler(t *testing.T) *Handler {
	t.Helper()
	h := registeredHandler(t, "r", 2)
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		return []records.Record{&records.RegisterBroker{BrokerID: 2, IncarnationID: records.UUID{2}, BrokerEpoch: im.EndOffset, Fenced: true,
			EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "two", Port: 9093}}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// reassign sends AlterPartitionReassignments for topic/partition with
// replicas (nil cancels) and returns the partition's code.
func reassign(t *testing.T, h *Handler, version int16, allowRF bool, topic string, partition int32, replicas []int32) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version, req.AllowReplicationFactorChange = version, allowRF
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = partition, replicas
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := roundTrip[*kmsg.AlterPartitionAssignmentsResponse](t, h, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("top-level code %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("answer %+v", resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func listReassignments(t *testing.T, h *Handler, topics []kmsg.ListPartitionReassignmentsRequestTopic) []kmsg.ListPartitionReassignmentsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.Topics = topics
	resp := roundTrip[*kmsg.ListPartitionReassignmentsResponse](t, h, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("list: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Topics
}

func TestAlterPartitionReassignmentsErrors(t *testing.T) {
	h := reassignHandler(t)
	for _, tc := range []struct {
		name      string
		version   int16
		noRF      bool
		topic     string
		partition int32
		replicas  []int32
		want      *kerr.Error
	}{
		{name: "unknown topic", topic: "nope", replicas: []int32{1}, want: kerr.UnknownTopicOrPartition},
		{name: "unknown partition", topic: "r", partition: 2, replicas: []int32{1}, want: kerr.UnknownTopicOrPartition},
		{name: "negative partition", topic: "r", partition: -1, replicas: []int32{1}, want: kerr.UnknownTopicOrPartition},
		{name: "empty", topic: "r", replicas: []int32{}, want: kerr.InvalidReplicaAssignment},
		{name: "duplicate", topic: "r", replicas: []int32{1, 1}, want: kerr.InvalidReplicaAssignment},
		{name: "unregistered broker", topic: "r", replicas: []int32{1, 9}, want: kerr.InvalidReplicaAssignment},
		{name: "cancel none", topic: "r", want: kerr.NoReassignmentInProgress},
		{name: "RF change refused (v1)", version: 1, noRF: true, topic: "r", replicas: []int32{1, 2}, want: kerr.InvalidReplicationFactor},
		{name: "same RF allowed (v1)", version: 1, noRF: true, topic: "r", replicas: []int32{1}},
		{name: "v0 allows an RF change", topic: "r", partition: 1, noRF: true, replicas: []int32{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := reassign(t, h, tc.version, !tc.noRF, tc.topic, tc.partition, tc.replicas)
			var want int16
			if tc.want != nil {
				want = tc.want.Code
			}
			if code != want {
				t.Errorf("code %v, want %v", kerr.ErrorForCode(code), tc.want)
			}
		})
	}
}

// TestReassignmentListAndCancel: a reassignment to a broker that cannot
// join the ISR (fenced) stays in progress, listed with its adding and
// removing replicas, until it is cancelled.
func TestReassignmentListAndCancel(t *testing.T) {
	h := reassignHandler(t)
	if got := listReassignments(t, h, nil); len(got) != 0 {
		t.Fatalf("listed before any: %+v", got)
	}
	if code := reassign(t, h, 1, true, "r", 0, []int32{2}); code != 0 {
		t.Fatalf("reassign: %v", kerr.ErrorForCode(code))
	}
	p := h.meta.Image().Topic("r").PartitionStates[0]
	if !slices.Equal(p.Replicas, []int32{2, 1}) || !slices.Equal(p.ISR, []int32{1}) || p.Leader != 1 {
		t.Fatalf("partition during the reassignment: %+v", p)
	}
	check := func(topics []kmsg.ListPartitionReassignmentsResponseTopic) {
		t.Helper()
		if len(topics) != 1 || topics[0].Topic != "r" || len(topics[0].Partitions) != 1 {
			t.Fatalf("listed %+v", topics)
		}
		lp := topics[0].Partitions[0]
		if lp.Partition != 0 || !slices.Equal(lp.Replicas, []int32{2, 1}) || !slices.Equal(lp.AddingReplicas, []int32{2}) || !slices.Equal(lp.RemovingReplicas, []int32{1}) {
			t.Fatalf("listed %+v", lp)
		}
	}
	check(listReassignments(t, h, nil))
	check(listReassignments(t, h, []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: "r", Partitions: []int32{0, 1, 7}}, {Topic: "nope", Partitions: []int32{0}}}))
	if got := listReassignments(t, h, []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: "r", Partitions: []int32{1}}}); len(got) != 0 {
		t.Fatalf("listed a partition not being reassigned: %+v", got)
	}

	if code := reassign(t, h, 0, true, "r", 0, nil); code != 0 {
		t.Fatalf("cancel: %v", kerr.ErrorForCode(code))
	}
	p = h.meta.Image().Topic("r").PartitionStates[0]
	if !slices.Equal(p.Replicas, []int32{1}) || len(p.AddingReplicas) != 0 || len(p.RemovingReplicas) != 0 {
		t.Fatalf("partition after cancelling: %+v", p)
	}
	if got := listReassignments(t, h, nil); len(got) != 0 {
		t.Fatalf("listed after cancelling: %+v", got)
	}
	if code := reassign(t, h, 0, true, "r", 0, nil); code != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("second cancel: %v", kerr.ErrorForCode(code))
	}
}
