package broker

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// leading makes p (node 1) the leader in epoch 1 of replicas 1, 2, 3 with
// the given ISR and min.insync.replicas.
func leading(t *testing.T, p *Partition, isr []int32, minISR int) {
	t.Helper()
	if err := p.MakeLeader(LeaderState{Self: 1, LeaderEpoch: 1, PartitionEpoch: 0, Replicas: []int32{1, 2, 3}, ISR: isr, MinISR: minISR}); err != nil {
		t.Fatal(err)
	}
}

func TestHighWatermarkIsLowestISRLogEnd(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2, 3}, 1)
	res := appendBatch(t, p, producerBatch(t, 0, 0, 0, 5)) // offsets 0-4
	if res.NextOffset != 5 {
		t.Fatalf("next offset %d, want 5", res.NextOffset)
	}
	if hw := p.Log.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before any follower fetched, want 0", hw)
	}
	now := time.Now()
	p.FollowerFetch(2, 7, 5, now)
	if hw := p.Log.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with follower 3 unknown, want 0", hw)
	}
	p.FollowerFetch(3, 7, 3, now)
	if hw := p.Log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3 (follower 3's log end)", hw)
	}
	p.FollowerFetch(3, 7, 5, now)
	if hw := p.Log.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d, want 5", hw)
	}
	// A replica out of the ISR does not hold it back.
	leading(t, p, []int32{1, 2}, 1)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
	p.FollowerFetch(2, 7, 7, now)
	if hw := p.Log.HighWatermark(); hw != 7 {
		t.Fatalf("high watermark %d with the ISR [1 2] caught up, want 7", hw)
	}
}

func TestHighWatermarkWaitsForMinISR(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1}, 2)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 3))
	if hw := p.Log.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d with the ISR below min.insync.replicas, want 0", hw)
	}
	if n := p.InSyncReplicas(); n != 1 {
		t.Fatalf("InSyncReplicas %d, want 1", n)
	}
	leading(t, p, []int32{1}, 1)
	if hw := p.Log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d once min.insync.replicas is 1, want 3", hw)
	}
}

func TestWaitReplicated(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2}, 1)
	res := appendBatch(t, p, producerBatch(t, 0, 0, 0, 4))
	w, ok := p.WaitFor(res.NextOffset)
	if !ok {
		t.Fatal("WaitFor: nothing to wait for with a follower in the ISR")
	}
	if err := p.WaitReplicated(w, time.Now().Add(20*time.Millisecond)); !errors.Is(err, ErrReplicationTimeout) {
		t.Fatalf("wait with no follower fetch: %v, want ErrReplicationTimeout", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(w, time.Now().Add(time.Minute)) }()
	time.Sleep(10 * time.Millisecond)
	p.FollowerFetch(2, 1, 4, time.Now())
	if err := <-done; err != nil {
		t.Fatalf("wait after the follower caught up: %v", err)
	}

	// The leadership ends while a write waits: NOT_LEADER_OR_FOLLOWER.
	res = appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	w, _ = p.WaitFor(res.NextOffset)
	go func() { done <- p.WaitReplicated(w, time.Now().Add(time.Minute)) }()
	time.Sleep(10 * time.Millisecond)
	p.MakeFollower(2)
	if err := <-done; !errors.Is(err, ErrNotLeader) {
		t.Fatalf("wait across MakeFollower: %v, want ErrNotLeader", err)
	}
	if _, err := p.Append(producerBatch(t, 0, 0, 0, 1), 1<<20, false); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on a follower: %v, want ErrNotLeader", err)
	}
	// An image older than the one that made it follow does not make it
	// lead again.
	if err := p.MakeLeader(LeaderState{Self: 1, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("MakeLeader in an epoch older than followed: %v, want ErrNotLeader", err)
	}
}

func TestWaitReplicatedISRBelowMin(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2}, 2)
	res := appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	w, _ := p.WaitFor(res.NextOffset)
	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(w, time.Now().Add(time.Minute)) }()
	time.Sleep(10 * time.Millisecond)
	p.ISRChanged(1, []int32{1}, 1) // the controller shrank it
	if err := <-done; !errors.Is(err, ErrNotEnoughReplicasAfterAppend) {
		t.Fatalf("wait across an ISR shrink below min: %v, want ErrNotEnoughReplicasAfterAppend", err)
	}
}

func TestISRExpandAndShrink(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2}, 1)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 4))
	t0 := time.Now()
	p.FollowerFetch(2, 1, 4, t0)
	// Follower 3, out of the ISR, behind the high watermark: not yet.
	if isr := p.FollowerFetch(3, 9, 2, t0); isr != nil {
		t.Fatalf("proposed %v for a follower behind the high watermark", isr)
	}
	isr := p.FollowerFetch(3, 9, 4, t0)
	if !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("expansion proposed %v, want [1 2 3]", isr)
	}
	if pr := p.Proposal(isr); pr.BrokerEpochs[3] != 9 || pr.LeaderEpoch != 1 {
		t.Fatalf("proposal %+v: want follower 3's broker epoch 9, leader epoch 1", pr)
	}
	// One change in flight: nothing else is proposed meanwhile, and the
	// maximal ISR (with 3) holds the high watermark back.
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	p.FollowerFetch(2, 1, 5, t0)
	if hw := p.Log.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d while 3 is being added and has 4, want 4", hw)
	}
	if s := p.MaybeShrinkISR(t0.Add(time.Hour), time.Second); s != nil {
		t.Fatalf("shrink proposed %v with a change in flight", s)
	}
	p.ISRChanged(1, isr, 1)
	// Follower 2 keeps up, 3 stops fetching: after the lag time only 3
	// goes.
	p.FollowerFetch(2, 1, 5, t0.Add(10*time.Second))
	s := p.MaybeShrinkISR(t0.Add(10*time.Second), 5*time.Second)
	if !slices.Equal(s, []int32{1, 2}) {
		t.Fatalf("shrink proposed %v, want [1 2]", s)
	}
	p.ISRChangeFailed()
	if s := p.MaybeShrinkISR(t0.Add(10*time.Second), 5*time.Second); !slices.Equal(s, []int32{1, 2}) {
		t.Fatalf("shrink proposed again %v after a failure, want [1 2]", s)
	}
}

// TestReadReplicas: the followers a consumer may be sent to (KIP-392) are
// the ISR members that have fetched the offset, with their log end and
// caught-up time; a follower outside the ISR, one not yet heard from and
// a partition not led here give none.
func TestReadReplicas(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	if rs := p.ReadReplicas(0); rs != nil {
		t.Fatalf("not led: %v, want none", rs)
	}
	leading(t, p, []int32{1, 2}, 1)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 5))
	if rs := p.ReadReplicas(0); len(rs) != 0 {
		t.Fatalf("before any fetch: %v, want none", rs)
	}
	now := time.Now()
	p.FollowerFetch(2, 7, 3, now)
	p.FollowerFetch(3, 7, 5, now) // outside the ISR
	rs := p.ReadReplicas(3)
	if len(rs) != 1 || rs[0].ID != 2 || rs[0].LogEndOffset != 3 {
		t.Fatalf("at offset 3: %+v, want follower 2 at log end 3", rs)
	}
	if rs := p.ReadReplicas(4); len(rs) != 0 {
		t.Fatalf("at offset 4, past follower 2's log end: %+v, want none", rs)
	}
	if _, _, ok := p.FollowerView(); ok {
		t.Fatal("a led partition has a follower view")
	}
	p.MakeFollower(2)
	if rs := p.ReadReplicas(0); rs != nil {
		t.Fatalf("after MakeFollower: %v, want none", rs)
	}
	if epoch, _, ok := p.FollowerView(); !ok || epoch != 2 {
		t.Fatalf("follower view: epoch %d, ok %v; want 2, true", epoch, ok)
	}
}

// A partition being deleted ends its acks=all waits at once, rather than
// leaving them to the request timeout.
func TestWaitReplicatedEndsOnDelete(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2}, 1)
	res := appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	w, _ := p.WaitFor(res.NextOffset)
	done := make(chan error, 1)
	go func() { done <- p.WaitReplicated(w, time.Now().Add(time.Minute)) }()
	time.Sleep(10 * time.Millisecond)
	p.Fence() // as a topic deletion does first
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("wait across a delete: %v, want ErrNotLeader", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait outlived the partition's fencing")
	}
}
