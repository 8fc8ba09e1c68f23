package broker

import (
	"math"
	"sync"
	"sync/atomic"
)

// Waiter is a long-polling fetch waiting for data on the partitions it is
// registered with. Each append to one of them adds its size to the
// waiter's count of appended bytes, and C is signalled only once that count
// reaches the mark the fetch set with WakeAt: a fetch that needs MinBytes
// sleeps through appends that cannot satisfy it, instead of waking and
// re-reading every partition it asked for after each one (Kafka's
// DelayedFetch is likewise checked against its own fetch.min.bytes). Safe
// for concurrent use.
type Waiter struct {
	// C receives a signal (it has room for one, which is enough to make
	// the fetch look again) when the appended bytes reach the mark.
	C chan struct{}

	appended atomic.Int64
	wakeAt   atomic.Int64
}

// unknownBytes is what a notification counts when it cannot say how many
// bytes became visible (the high watermark moved over offsets already
// written): it wakes every waiter.
const unknownBytes = math.MaxInt64

var waiterPool = sync.Pool{New: func() any { return &Waiter{C: make(chan struct{}, 1)} }}

// NewWaiter returns a waiter that any append wakes until WakeAt sets a
// mark. Give it back with Release once it is unregistered everywhere.
func NewWaiter() *Waiter {
	w := waiterPool.Get().(*Waiter)
	w.appended.Store(0)
	w.wakeAt.Store(0)
	select { // a signal left from its last use
	case <-w.C:
	default:
	}
	return w
}

// Release returns w to the pool. It must no longer be registered with any
// partition.
func (w *Waiter) Release() { waiterPool.Put(w) }

// Appended is how many bytes were appended to the waiter's partitions
// since it was made. A fetch reads it before reading the partitions, so
// that bytes appended during the read are counted again rather than missed.
func (w *Waiter) Appended() int64 { return w.appended.Load() }

// WakeAt sets the mark: C is signalled once Appended reaches mark. It
// reports whether the mark is already reached, in which case the caller
// should read again rather than wait (bytes arrived while it set the mark).
func (w *Waiter) WakeAt(mark int64) (reached bool) {
	w.wakeAt.Store(mark)
	return w.appended.Load() >= mark
}

func (w *Waiter) add(n int64) {
	if n == unknownBytes {
		w.signal()
		return
	}
	if w.appended.Add(n) >= w.wakeAt.Load() {
		w.signal()
	}
}

func (w *Waiter) signal() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

// AddWaiter registers w for the partition's appends until RemoveWaiter. (A
// pair of calls rather than a returned cancel func: a fetch registers with
// every partition it reads, and a closure per partition would be an
// allocation each.)
func (p *Partition) AddWaiter(w *Waiter) {
	p.waitMu.Lock()
	p.waiters[w] = struct{}{}
	p.waitMu.Unlock()
}

// RemoveWaiter unregisters a waiter from AddWaiter.
func (p *Partition) RemoveWaiter(w *Waiter) {
	p.waitMu.Lock()
	delete(p.waiters, w)
	p.waitMu.Unlock()
}

// notify counts n newly visible bytes for every waiter; those whose mark is
// reached are signalled, without blocking.
func (p *Partition) notify(n int64) {
	p.waitMu.Lock()
	for w := range p.waiters {
		w.add(n)
	}
	p.waitMu.Unlock()
}
