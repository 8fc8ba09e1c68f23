package strata_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describedMember is what ConsumerGroupDescribe says of one member.
type describedMember struct {
	epoch    int32
	assigned []int32
}

// describeConsumerGroup returns the members of a KIP-848 group by member
// id, and the group epoch.
func describeConsumerGroup(t *testing.T, cl *kgo.Client, group, topic string) (map[string]describedMember, int32, int16) {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	d := resp.Groups[0]
	out := map[string]describedMember{}
	for _, m := range d.Members {
		dm := describedMember{epoch: m.MemberEpoch, assigned: []int32{}}
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.Topic == topic {
				dm.assigned = append(dm.assigned, tp.Partitions...)
			}
		}
		slices.Sort(dm.assigned)
		out[m.MemberID] = dm
	}
	return out, d.Epoch, d.ErrorCode
}

// TestConsumerGroupSurvivesRestart restarts the broker under two KIP-848
// members: the group's records in __consumer_offsets bring back its
// members with their ids, epochs and assignments, so the members carry on
// where they were (as after a coordinator failover in Kafka) instead of
// rejoining with epoch 0, and no record is consumed twice.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	props := consumerGroupProps()
	b := startBroker(t, dir, props)
	addr := b.Addr()
	const topic, group, partitions = "cg-restart", "cg-restart-group", 4
	createPartitioned(t, addr, topic, partitions)
	l := newLedger()
	opts := []kgo.Opt{kgo.ServerSideBalancer()}
	startMember(t, addr, group, topic, "m1", l, opts...)
	startMember(t, addr, group, topic, "m2", l, opts...)
	admin := newClient(t, addr)
	consumerGroupStable(t, admin, group, topic, partitions, "m1", "m2")
	produceSpread(t, addr, topic, "a", 200)
	waitFor(t, 30*time.Second, "records before the restart", func() bool { return l.total() >= 200 })
	before, groupEpoch, code := describeConsumerGroup(t, admin, group, topic)
	if code != 0 || len(before) != 2 {
		t.Fatalf("describe before the restart: code %d members %v", code, before)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2, err := restartOn(t, dir, addr, props)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { b2.Close() })
	after, epochAfter, code := describeConsumerGroup(t, admin, group, topic)
	if code != 0 || epochAfter != groupEpoch || len(after) != len(before) {
		t.Fatalf("group after the restart: code %d epoch %d members %v; before: epoch %d members %v", code, epochAfter, after, groupEpoch, before)
	}
	for id, m := range before {
		if a, ok := after[id]; !ok || a.epoch != m.epoch || !slices.Equal(a.assigned, m.assigned) {
			t.Fatalf("member %s after the restart: %+v (present %v), before: %+v", id, a, ok, m)
		}
	}

	produceSpread(t, addr, topic, "b", 200)
	waitFor(t, 30*time.Second, "records after the restart", func() bool { return l.total() >= 400 })
	consumerGroupStable(t, admin, group, topic, partitions, "m1", "m2")
	again, epochAgain, _ := describeConsumerGroup(t, admin, group, topic)
	if epochAgain != groupEpoch {
		t.Fatalf("group epoch went from %d to %d: the members rejoined", groupEpoch, epochAgain)
	}
	for id, m := range before {
		if a, ok := again[id]; !ok || a.epoch != m.epoch {
			t.Fatalf("member %s went from %+v to %+v (present %v) while consuming after the restart", id, m, a, ok)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != 400 {
		t.Fatalf("consumed %d distinct records, produced 400", len(l.seen))
	}
	for k, n := range l.seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", k, n)
		}
	}
}
