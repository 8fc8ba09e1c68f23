package log

import (
	"sync"
	"testing"
	"time"
)

// TestGroupCommit: with flush.messages=1 every Append returns only once its
// batch is fsynced, and appends that arrive while an fsync runs share the
// next one instead of each paying for its own.
func TestGroupCommit(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 1
	l := openLog(t, cfg)
	l.flusher.syncHook = func() { time.Sleep(2 * time.Millisecond) } // a slow disk
	const writers, perWriter = 8, 25
	b := batchOf(t, "g", 2, 1)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				info, err := l.Append(append([]byte(nil), b...), 0)
				if err != nil {
					t.Error(err)
					return
				}
				if d := l.flusher.durableOffset(); d <= info.LastOffset {
					t.Errorf("Append of %d returned with durable offset %d", info.LastOffset, d)
				}
			}
		}()
	}
	wg.Wait()
	appends, rounds := int64(writers*perWriter), l.flusher.syncs.Load()
	t.Logf("%d appends, %d fsync rounds", appends, rounds)
	if rounds == 0 || rounds > appends/2 {
		t.Fatalf("%d fsync rounds for %d concurrent appends: group commit is not sharing fsyncs", rounds, appends)
	}
}

func TestPageCacheModeDoesNotSyncPerAppend(t *testing.T) {
	l := openLog(t, testConfig())
	for i := 0; i < 20; i++ {
		mustAppend(t, l, batchOf(t, "p", 1, 1))
	}
	if n := l.flusher.syncs.Load(); n != 0 {
		t.Fatalf("%d fsync rounds with default flush.messages", n)
	}
	if l.RecoveryPoint() >= l.LogEndOffset() {
		t.Fatal("recovery point advanced without a flush")
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if l.RecoveryPoint() != l.LogEndOffset() {
		t.Fatalf("after Flush: recovery point %d, end %d", l.RecoveryPoint(), l.LogEndOffset())
	}
}

func TestFlushMessagesAndFlushMs(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 10
	clock := &fakeClock{now: time.UnixMilli(0)}
	l := openAt(t, t.TempDir(), cfg, Options{CleanShutdown: true, Now: clock.Now})
	for i := 0; i < 4; i++ { // 8 messages: under flush.messages
		mustAppend(t, l, batchOf(t, "f", 2, 1))
	}
	if n := l.flusher.syncs.Load(); n != 0 {
		t.Fatalf("synced after 8 of 10 messages")
	}
	mustAppend(t, l, batchOf(t, "f", 2, 1)) // 10
	if d := l.flusher.durableOffset(); d != 10 {
		t.Fatalf("durable %d after reaching flush.messages", d)
	}
	cfg.FlushMessages = DefaultConfig().FlushMessages
	cfg.FlushMs = 1000
	l.SetConfig(cfg)
	mustAppend(t, l, batchOf(t, "f", 2, 1))
	if err := l.FlushIfDue(clock.Now()); err != nil || l.RecoveryPoint() == l.LogEndOffset() {
		t.Fatalf("flushed before flush.ms: %v", err)
	}
	clock.Set(time.UnixMilli(5000))
	if err := l.FlushIfDue(clock.Now()); err != nil || l.RecoveryPoint() != l.LogEndOffset() {
		t.Fatalf("not flushed after flush.ms: rp %d end %d err %v", l.RecoveryPoint(), l.LogEndOffset(), err)
	}
}

// TestNoWaitAppendsShareFsync: one appender that does not wait for each
// fsync before writing the next batch (a pipelined producer connection)
// gets its batches fsynced in shared rounds, and every batch becomes
// durable even when nobody waits for it (acks=0).
func TestNoWaitAppendsShareFsync(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 1
	l := openLog(t, cfg)
	l.flusher.syncHook = func() { time.Sleep(2 * time.Millisecond) } // a slow disk
	b := batchOf(t, "n", 2, 1)
	const appends = 100
	var last AppendInfo
	for range appends {
		info, err := l.AppendValidatedNoWait(append([]byte(nil), b...), 0)
		if err != nil {
			t.Fatal(err)
		}
		if info.SyncTo != info.LastOffset+1 {
			t.Fatalf("SyncTo %d for an append ending at %d", info.SyncTo, info.LastOffset)
		}
		last = info
	}
	if err := l.WaitDurable(last.SyncTo); err != nil {
		t.Fatal(err)
	}
	if d := l.DurableOffset(); d < last.SyncTo {
		t.Fatalf("WaitDurable(%d) returned with durable %d", last.SyncTo, d)
	}
	rounds := l.flusher.syncs.Load()
	t.Logf("%d appends, %d fsync rounds", appends, rounds)
	if rounds == 0 || rounds > appends/2 {
		t.Fatalf("%d fsync rounds for %d pipelined appends: they do not share fsyncs", rounds, appends)
	}

	// Nobody waits: the rounds still run until the log is durable.
	info, err := l.AppendValidatedNoWait(append([]byte(nil), b...), 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.DurableOffset() < info.SyncTo {
		if time.Now().After(deadline) {
			t.Fatalf("an append nobody waits for was not fsynced: durable %d, want %d", l.DurableOffset(), info.SyncTo)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNoWaitPageCacheMode: without flush.messages nothing waits.
func TestNoWaitPageCacheMode(t *testing.T) {
	l := openLog(t, testConfig())
	info, err := l.AppendValidatedNoWait(batchOf(t, "p", 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.SyncTo != 0 || l.flusher.syncs.Load() != 0 {
		t.Fatalf("page-cache append: SyncTo %d, %d fsync rounds", info.SyncTo, l.flusher.syncs.Load())
	}
}

// TestNoWaitFlushMessagesAboveOne: with flush.messages=3, an append that
// crosses the threshold while a round for an earlier one is running still
// gets fsynced though nobody waits for it (acks=0).
func TestNoWaitFlushMessagesAboveOne(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 3
	l := openLog(t, cfg)
	started := make(chan struct{}, 100)
	release := make(chan struct{})
	l.flusher.syncHook = func() { started <- struct{}{}; <-release }
	a, err := l.AppendValidatedNoWait(batchOf(t, "a", 3, 1), 0)
	if err != nil || a.SyncTo != 3 {
		t.Fatalf("first append: SyncTo %d, %v", a.SyncTo, err)
	}
	<-started // the round for offsets < 3 is running
	b, err := l.AppendValidatedNoWait(batchOf(t, "b", 1, 1), 0)
	if err != nil || b.SyncTo != 4 {
		t.Fatalf("second append: SyncTo %d, %v", b.SyncTo, err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for l.DurableOffset() < b.SyncTo {
		if time.Now().After(deadline) {
			t.Fatalf("durable %d, want %d: an append that crossed flush.messages during a round was never fsynced", l.DurableOffset(), b.SyncTo)
		}
		time.Sleep(time.Millisecond)
	}
}
