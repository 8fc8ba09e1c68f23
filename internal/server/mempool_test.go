package server

import (
	"fmt"
	"testing"
	"time"
)

// acquireAsync runs acquire on a goroutine; its result arrives on the
// channel.
func acquireAsync(p *memPool, n, held int64, cancel <-chan struct{}) <-chan bool {
	done := make(chan bool, 1)
	go func() {
		ok, _ := p.acquire(n, held, cancel, nil)
		done <- ok
	}()
	return done
}

func waitWaiters(t *testing.T, p *memPool, n int32) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d waiters", n), func() bool { return p.waiters.Load() == n })
}

func TestMemPoolUnbounded(t *testing.T) {
	p := newMemPool(-1)
	for range 3 {
		if ok, waited := p.acquire(1<<30, 0, nil, nil); !ok || waited {
			t.Fatalf("unbounded acquire: ok %v waited %v", ok, waited)
		}
	}
	if p.Used() != 3<<30 {
		t.Errorf("used %d", p.Used())
	}
}

// TestMemPoolNonStrict: while any budget is left a reservation succeeds, so
// the pool overshoots by one reservation; then callers wait for a release.
func TestMemPoolNonStrict(t *testing.T) {
	p := newMemPool(10)
	for _, n := range []int64{8, 8} {
		if ok, waited := p.acquire(n, 0, nil, nil); !ok || waited {
			t.Fatalf("acquire(%d) with room: ok %v waited %v", n, ok, waited)
		}
	}
	got := acquireAsync(p, 1, 0, nil)
	waitWaiters(t, p, 1)
	p.release(8)
	if !<-got {
		t.Fatal("acquire failed after a release")
	}
	if p.Used() != 9 {
		t.Errorf("used %d, want 9", p.Used())
	}
}

// TestMemPoolDeadlockBreaker: when every charged byte belongs to readers
// that wait for more, one of them proceeds; the others keep waiting until
// it releases.
func TestMemPoolDeadlockBreaker(t *testing.T) {
	p := newMemPool(10)
	p.acquire(6, 0, nil, nil) // reader A's first chunk
	p.acquire(6, 0, nil, nil) // reader B's first chunk: the pool is spent
	a := acquireAsync(p, 6, 6, nil)
	waitWaiters(t, p, 1)
	b := acquireAsync(p, 6, 6, nil)
	// B's arrival makes every charged byte a waiter's: one goes on.
	var second <-chan bool
	select {
	case ok := <-a:
		second = b
		if !ok {
			t.Fatal("A failed")
		}
	case ok := <-b:
		second = a
		if !ok {
			t.Fatal("B failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock: neither reader went on")
	}
	waitWaiters(t, p, 1)
	if p.Used() != 18 {
		t.Fatalf("used %d, want 18 (one overshoot)", p.Used())
	}
	select {
	case <-second:
		t.Fatal("both readers went past the limit")
	default:
	}
	p.release(12) // the one that went on is answered
	if !<-second {
		t.Fatal("the other reader failed after the release")
	}
}

// TestMemPoolCancel: a waiter whose connection fails gives up without
// charging, and stops counting as waiting.
func TestMemPoolCancel(t *testing.T) {
	p := newMemPool(10)
	p.acquire(10, 0, nil, nil)
	cancel := make(chan struct{})
	got := acquireAsync(p, 5, 3, cancel)
	waitWaiters(t, p, 1)
	close(cancel)
	if <-got {
		t.Fatal("acquire succeeded after cancel")
	}
	p.mu.Lock()
	held := p.mu.waitingHeld
	p.mu.Unlock()
	if held != 0 || p.Used() != 10 {
		t.Errorf("after cancel: waitingHeld %d, used %d; want 0, 10", held, p.Used())
	}
}
