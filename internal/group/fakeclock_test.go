package group

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
)

// fakeClock is a Clock that only moves when the test advances it. Due
// timers fire in time order (ties in creation order), each with Now set to
// its due time, from the goroutine that calls Advance and with no lock of
// the clock held: a timer callback takes the group's mutex and may arm or
// stop timers.
//
// Timers are tagged with the view (see view) that armed them, so that a
// test can check a closed coordinator left no timer behind.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers []*fakeTimer // pending, unordered
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  uint64
	tag  int
	f    func()
}

// clockView is a Clock whose timers carry a tag.
type clockView struct {
	c   *fakeClock
	tag int
}

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

// view returns a Clock on c whose timers are tagged.
func (c *fakeClock) view(tag int) Clock { return clockView{c, tag} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer { return c.afterFunc(d, f, 0) }

func (v clockView) Now() time.Time                            { return v.c.Now() }
func (v clockView) AfterFunc(d time.Duration, f func()) Timer { return v.c.afterFunc(d, f, v.tag) }

func (c *fakeClock) afterFunc(d time.Duration, f func(), tag int) Timer {
	if f == nil {
		panic("fakeClock: AfterFunc with a nil func")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(max(d, 0)), seq: c.seq, tag: tag, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop reports whether the timer was pending, as time.Timer.Stop does.
func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	return true
}

// next removes and returns the earliest timer due at or before limit.
func (c *fakeClock) next(limit time.Time) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for i, t := range c.timers {
		if t.when.After(limit) {
			continue
		}
		if best < 0 || t.when.Before(c.timers[best].when) || t.when.Equal(c.timers[best].when) && t.seq < c.timers[best].seq {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	t := c.timers[best]
	c.timers = slices.Delete(c.timers, best, best+1)
	c.now = t.when
	return t
}

// Advance moves the clock forward by d, firing every timer that falls
// due on the way (including those armed by the callbacks themselves). It
// returns how many fired. Advance(0) fires the timers already due.
func (c *fakeClock) Advance(d time.Duration) int {
	if d < 0 {
		panic("fakeClock: negative advance")
	}
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	n := 0
	for {
		t := c.next(target)
		if t == nil {
			break
		}
		n++
		if n > 1_000_000 {
			panic("fakeClock: timers keep re-arming without time passing")
		}
		t.f()
	}
	c.mu.Lock()
	c.now = target
	c.mu.Unlock()
	return n
}

// pending counts the timers of one tag not yet fired or stopped.
func (c *fakeClock) pending(tag int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.tag == tag {
			n++
		}
	}
	return n
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock(time.Unix(1000, 0))
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, fmt.Sprintf("%s@%d", name, c.Now().Unix()-1000)) }
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	b := c.AfterFunc(2*time.Second, at("b"))
	c.AfterFunc(time.Second, at("a2")) // same time: creation order
	stopped := c.AfterFunc(2*time.Second, at("never"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	// A callback arming a timer that is due within the same advance.
	c.AfterFunc(1500*time.Millisecond, func() {
		got = append(got, "chain")
		c.AfterFunc(0, at("zero"))
		c.AfterFunc(time.Second, at("later"))
	})
	if n := c.Advance(2 * time.Second); n != 5 {
		t.Fatalf("fired %d, want 5: %v", n, got)
	}
	if b.Stop() {
		t.Fatal("a fired timer cannot be stopped")
	}
	want := []string{"a@1", "a2@1", "chain", "zero@1", "b@2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c.Now() != time.Unix(1002, 0) {
		t.Fatalf("now %v", c.Now())
	}
	got = nil
	c.Advance(10 * time.Second)
	if want := []string{"later@2", "c@3"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if c.pending(0) != 0 {
		t.Fatal("timers left")
	}
}

// memStorage is an in-memory Storage: it keeps every batch appended to
// each partition, in order, and fails appends on demand.
type memStorage struct {
	mu      sync.Mutex
	batches map[int32][][]byte
	failing bool // every Append fails while set
	failN   int  // the next failN appends fail
	failed  int  // appends that failed
}

var errInjected = errors.New("memStorage: injected failure")

func newMemStorage() *memStorage { return &memStorage{batches: map[int32][][]byte{}} }

func (s *memStorage) Append(p int32, batch []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing || s.failN > 0 {
		if s.failN > 0 {
			s.failN--
		}
		s.failed++
		return errInjected
	}
	s.batches[p] = append(s.batches[p], slices.Clone(batch))
	return nil
}

func (s *memStorage) setFailing(on bool) {
	s.mu.Lock()
	s.failing = on
	s.mu.Unlock()
}

func (s *memStorage) failNext(n int) {
	s.mu.Lock()
	s.failN = n
	s.mu.Unlock()
}

func (s *memStorage) partitions() map[int32][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32][][]byte{}
	for p, bs := range s.batches {
		out[p] = slices.Clone(bs)
	}
	return out
}

// testLogConfig keeps the logs built for Load small.
func testLogConfig() log.Config {
	c := log.DefaultConfig()
	c.SegmentBytes = 1 << 20
	c.SegmentIndexBytes = 64 << 10
	c.FileDeleteDelayMs = 0
	return c
}

// replayLogs keeps a real log per partition of __consumer_offsets under
// dir, holding what a memStorage took, to Load coordinators from.
type replayLogs struct {
	tb      testing.TB
	dir     string
	logs    map[int32]*log.Log
	written map[int32]int // batches of the storage already in the log
}

func newReplayLogs(tb testing.TB) *replayLogs {
	r := &replayLogs{tb: tb, dir: tb.TempDir(), logs: map[int32]*log.Log{}, written: map[int32]int{}}
	tb.Cleanup(r.close)
	return r
}

func (r *replayLogs) close() {
	for p, l := range r.logs {
		l.Close()
		delete(r.logs, p)
	}
}

// load brings the logs up to date with s and replays them into a new
// coordinator with cfg.
func (r *replayLogs) load(s *memStorage, cfg Config) *Coordinator {
	r.tb.Helper()
	c := New(cfg)
	r.loadInto(c, s)
	return c
}

// loadInto brings the logs up to date with s and loads every partition
// into c.
func (r *replayLogs) loadInto(c *Coordinator, s *memStorage) {
	r.tb.Helper()
	all := s.partitions()
	for p := range c.Partitions() {
		batches, ok := all[p]
		if !ok {
			// No record: a partition without a log yet.
			if err := c.Load(p, nil); err != nil {
				r.tb.Fatalf("Load partition %d: %v", p, err)
			}
			continue
		}
		l := r.logs[p]
		if l == nil {
			var err error
			l, err = log.Open(filepath.Join(r.dir, fmt.Sprintf("%s-%d", Topic, p)), testLogConfig(), log.Options{CleanShutdown: true})
			if err != nil {
				r.tb.Fatalf("open log: %v", err)
			}
			r.logs[p] = l
		}
		for _, b := range batches[r.written[p]:] {
			if _, err := l.Append(slices.Clone(b), 0); err != nil {
				r.tb.Fatalf("append to log: %v", err)
			}
		}
		r.written[p] = len(batches)
		if err := c.Load(p, l); err != nil {
			r.tb.Fatalf("Load partition %d: %v", p, err)
		}
	}
}

// newOwning returns a coordinator that owns every partition of
// __consumer_offsets, all empty, as a single broker that just created the
// topic.
func newOwning(cfg Config) *Coordinator {
	c := New(cfg)
	for p := range c.Partitions() {
		if err := c.Load(p, nil); err != nil {
			panic(err)
		}
	}
	return c
}

// loadCoordinator replays the storage's batches, through real logs, into
// a new coordinator with cfg.
func loadCoordinator(tb testing.TB, s *memStorage, cfg Config) *Coordinator {
	tb.Helper()
	r := newReplayLogs(tb)
	defer r.close()
	return r.load(s, cfg)
}
