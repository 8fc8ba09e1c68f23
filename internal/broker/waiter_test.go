package broker

import (
	"testing"
)

func signalled(w *Waiter) bool {
	select {
	case <-w.C:
		return true
	default:
		return false
	}
}

// TestWaiterWakesAtMinBytes: a waiter is signalled once the appends to its
// partitions reach the mark its fetch set, not at each append; a high
// watermark moving over offsets already written wakes it at once.
func TestWaiterWakesAtMinBytes(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	w := NewWaiter()
	p.AddWaiter(w)
	defer func() { p.RemoveWaiter(w); w.Release() }()

	// Before a mark is set, any append wakes (the first read is not
	// done yet, so nothing can be assumed about what it will find).
	batch := producerBatch(t, 0, 0, 0, 1)
	appendBatch(t, p, batch)
	if !signalled(w) {
		t.Fatal("append before the mark did not wake")
	}
	seen := w.Appended()
	if seen != int64(len(batch)) {
		t.Fatalf("appended %d, want %d", seen, len(batch))
	}
	if w.WakeAt(seen + 3*int64(len(batch))) {
		t.Fatal("mark reported reached with no new bytes")
	}
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	if signalled(w) {
		t.Fatal("woken with two of the three batches it waits for")
	}
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	if !signalled(w) {
		t.Fatal("not woken when the bytes it waits for arrived")
	}
	if !w.WakeAt(w.Appended()) {
		t.Fatal("a mark already passed is not reported reached")
	}

	w.WakeAt(w.Appended() + 1<<40)
	p.notify(unknownBytes)
	if !signalled(w) {
		t.Fatal("a notification of unknown size did not wake")
	}
}
