package server

import (
	"sync"
	"sync/atomic"
)

// memPool bounds the bytes of request buffers held across the server:
// queued.max.request.bytes. It is Kafka's SimpleMemoryPool as the broker
// uses it, in non-strict mode: a reservation succeeds while any budget is
// left, even if it takes the pool past its limit, so a request larger than
// the whole budget still gets through once the pool has room, and the pool
// overshoots by at most one reservation. A reader whose reservation does not
// fit waits, as Kafka mutes a channel whose receive cannot allocate, until
// bytes are released; it does not poll.
//
// Unlike Kafka, which reserves a frame's announced size before reading its
// body, a frame above maxPooledFrame is charged chunk by chunk as its bytes
// arrive (see conn.readBody), so a lying size prefix does not spend the
// budget of other clients. Charging part of a frame and waiting for the rest
// is hold-and-wait: if every charged byte belongs to readers that are
// waiting, none could ever be released, so one of them is let through
// (deadlockedLocked). That keeps the overshoot at one request, as in Kafka.
//
// Safe for concurrent use. The fast path is one compare-and-swap.
type memPool struct {
	limit int64 // <= 0: unbounded; used is still counted for the metric
	used  atomic.Int64
	// waiters counts readers inside the slow path, so that release takes
	// the lock only when someone may be waiting.
	waiters atomic.Int32

	mu struct {
		sync.Mutex
		// waitingHeld is the bytes charged to the partly read frames of
		// the readers now waiting.
		waitingHeld int64
		// freed is closed, and replaced, when bytes are released.
		freed chan struct{}
	}
}

func newMemPool(limit int64) *memPool {
	p := &memPool{limit: limit}
	p.mu.freed = make(chan struct{})
	return p
}

// tryAcquire charges n bytes if the pool has any room left.
func (p *memPool) tryAcquire(n int64) bool {
	if p.limit <= 0 {
		p.used.Add(n)
		return true
	}
	for {
		u := p.used.Load()
		if u >= p.limit {
			return false
		}
		if p.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// acquire charges n bytes for a reader that already holds held bytes of
// the frame it is reading, waiting while the budget is spent. It returns
// false, charging nothing, if a or b is closed first (the connection
// failed, the server is shutting down). waited says whether it blocked.
func (p *memPool) acquire(n, held int64, a, b <-chan struct{}) (ok, waited bool) {
	if p.tryAcquire(n) {
		return true, false
	}
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	p.mu.Lock()
	p.mu.waitingHeld += held
	for {
		// The waiters count was raised before this check, so a release
		// after it takes the lock and closes the channel read here.
		ok := p.tryAcquire(n)
		if !ok && p.deadlockedLocked() {
			p.used.Add(n) // the deadlock breaker's overshoot
			ok = true
		}
		if ok {
			p.mu.waitingHeld -= held
			p.mu.Unlock()
			return true, true
		}
		freed := p.mu.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-a:
			p.unwait(held)
			return false, true
		case <-b:
			p.unwait(held)
			return false, true
		}
		p.mu.Lock()
	}
}

// deadlockedLocked says whether every charged byte belongs to a reader that
// is waiting: no release can come, so the caller must proceed.
func (p *memPool) deadlockedLocked() bool {
	return p.used.Load() <= p.mu.waitingHeld
}

func (p *memPool) unwait(held int64) {
	p.mu.Lock()
	p.mu.waitingHeld -= held
	p.mu.Unlock()
}

// release returns n bytes to the pool and wakes the readers waiting.
func (p *memPool) release(n int64) {
	if n == 0 {
		return
	}
	p.used.Add(-n)
	if p.waiters.Load() == 0 {
		return
	}
	p.mu.Lock()
	close(p.mu.freed)
	p.mu.freed = make(chan struct{})
	p.mu.Unlock()
}

// Used is the bytes now charged.
func (p *memPool) Used() int64 { return p.used.Load() }
