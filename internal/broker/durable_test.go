package broker

import (
	"testing"
	"time"
)

// TestFsyncModeVisibleWhenDurable: with flush.messages=1 an append that
// has not been fsynced is not visible (the high watermark stays), the wait
// makes it durable and visible, and an idempotent retry of it is
// acknowledged only once it is durable too.
func TestFsyncModeVisibleWhenDurable(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	cfg := smallSegments()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 1
	p, err := b.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.AppendNoWait(producerBatch(t, 7, 0, 0, 3), 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.SyncTo != 3 {
		t.Fatalf("SyncTo %d, want 3", res.SyncTo)
	}
	if hw := p.Log.HighWatermark(); hw > p.Log.DurableOffset() {
		t.Fatalf("high watermark %d ahead of the durable offset %d", hw, p.Log.DurableOffset())
	}
	// A retry before the wait is acknowledged no sooner than the original.
	dup, err := p.AppendNoWait(producerBatch(t, 7, 0, 0, 3), 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.BaseOffset != 0 {
		t.Fatalf("retry: %+v", dup)
	}
	if dup.SyncTo == 0 && p.Log.HighWatermark() < 3 {
		t.Fatal("retry of a batch not yet durable is acknowledged at once")
	}
	if err := p.WaitDurable(res.SyncTo, res.SyncGen); err != nil {
		t.Fatal(err)
	}
	if hw := p.Log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d after WaitDurable, want 3", hw)
	}

	// Nobody waits (acks=0): the record becomes visible anyway.
	res, err = p.AppendNoWait(producerBatch(t, 0, 0, 0, 2), 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Log.HighWatermark() < res.SyncTo {
		if time.Now().After(deadline) {
			t.Fatalf("high watermark %d, want %d: a record nobody waited for never became visible", p.Log.HighWatermark(), res.SyncTo)
		}
		time.Sleep(time.Millisecond)
	}
}
