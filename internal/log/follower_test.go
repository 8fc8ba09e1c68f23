package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestAppendAsFollowerKeepsOffsets: batches keep their base offsets and
// partition leader epochs; a gap, an overlap or a bad CRC is refused with
// nothing written.
func TestAppendAsFollowerKeepsOffsets(t *testing.T) {
	leader, follower := openLog(t, testConfig()), openLog(t, testConfig())
	for i := range 6 {
		if _, err := leader.Append(append([]byte(nil), batchOf(t, "x", 3, int64(i))...), int32(i/2)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := leader.Read(0, 1<<20, leader.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	all := readRegion(t, r)
	bs := regionBatches(t, r)
	size := len(bs[0]) // every batch is the same size
	for name, data := range map[string][]byte{
		"gap":     bs[1],
		"corrupt": func() []byte { d := bytes.Clone(all[:2*size]); d[2*size-1] ^= 1; return d }(),
	} {
		if _, err := follower.AppendAsFollowerNoWait(bytes.Clone(data)); err == nil {
			t.Fatalf("%s: appended", name)
		}
		if follower.LogEndOffset() != 0 {
			t.Fatalf("%s: log end offset %d", name, follower.LogEndOffset())
		}
	}
	if _, err := follower.AppendAsFollowerNoWait(bytes.Clone(all[:2*size])); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.AppendAsFollowerNoWait(bytes.Clone(all[size : 3*size])); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("overlap: %v", err)
	}
	info, err := follower.AppendAsFollowerNoWait(bytes.Clone(all[2*size:]))
	if err != nil || info.FirstOffset != 6 || info.LastOffset != 17 {
		t.Fatalf("append: %+v, %v", info, err)
	}
	fr, err := follower.Read(0, 1<<20, follower.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if got := readRegion(t, fr); !bytes.Equal(got, all) {
		t.Fatal("follower's log differs from the leader's")
	}
	if e := regionBatches(t, fr)[5].PartitionLeaderEpoch(); e != 2 {
		t.Fatalf("epoch of the last batch %d, want the leader's 2", e)
	}
}

// TestWaitDurableAcrossTruncation: in fsync mode, a producer that appended
// and waits for its fsync (or waits only later, as the produce path does on
// the connection's writer) gets an error if its offsets were truncated in
// the meantime, even once other batches took those offsets and became
// durable; offsets below the truncation point still succeed.
func TestWaitDurableAcrossTruncation(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 1
	l := openLog(t, cfg)
	// No fsync runs until the test lets it: the waiter below is still
	// waiting when the truncation comes.
	setRunning := func(v bool) {
		l.flusher.mu.Lock()
		l.flusher.running = v
		l.flusher.mu.Unlock()
	}
	setRunning(true)
	appendNoWait := func(tag string) AppendInfo {
		t.Helper()
		info, err := l.AppendValidatedNoWait(append([]byte(nil), batchOf(t, tag, 2, 1)...), 0)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	a, b := appendNoWait("a"), appendNoWait("b") // [0,1] [2,3]
	waited := make(chan error, 1)
	go func() { waited <- l.WaitDurableSince(b.SyncTo, b.SyncGen) }()
	time.Sleep(10 * time.Millisecond) // let it wait (it fails either way)
	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	c, d := appendNoWait("c"), appendNoWait("d") // [2,3] [4,5] in b's place
	if err := <-waited; !errors.Is(err, ErrTruncatedUnacked) {
		t.Fatalf("waiter for truncated offsets: %v, want ErrTruncatedUnacked", err)
	}
	setRunning(false)
	if err := l.WaitDurableSince(d.SyncTo, d.SyncGen); err != nil {
		t.Fatalf("an append after the truncation: %v", err)
	}
	// Waiting only now, after its replacement is durable.
	if err := l.WaitDurableSince(b.SyncTo, b.SyncGen); !errors.Is(err, ErrTruncatedUnacked) {
		t.Fatalf("late waiter for truncated offsets: %v, want ErrTruncatedUnacked", err)
	}
	for _, info := range []AppendInfo{a, c} {
		if err := l.WaitDurableSince(info.SyncTo, info.SyncGen); err != nil {
			t.Fatalf("offsets below %d, not truncated: %v", info.SyncTo, err)
		}
	}
	// A waiter older than the remembered truncations fails, to be safe.
	for range keptTruncations + 1 {
		appendNoWait("e")
		if err := l.TruncateTo(l.LogEndOffset() - 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitDurableSince(c.SyncTo, c.SyncGen); !errors.Is(err, ErrTruncatedUnacked) {
		t.Fatalf("waiter older than the truncation history: %v", err)
	}
}

// TestRandomTruncateAppend runs random appends, truncations (at batch
// boundaries, inside batches, into sealed segments, to the start) and
// reopens (clean and unclean), and checks after each step that every
// batch is found by offset (offset index) and by timestamp (time index),
// as a follower's log must be after TruncateTo.
func TestRandomTruncateAppend(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	intoSealed := 0
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		dir := t.TempDir()
		l := openAt(t, dir, cfg, Options{CleanShutdown: true})
		type batch struct {
			base, next, ts int64
			tag            string
		}
		var model []batch
		leo := func() int64 {
			if len(model) == 0 {
				return 0
			}
			return model[len(model)-1].next
		}
		for step := range 300 {
			op := rng.IntN(20)
			if os.Getenv("TRACE") != "" {
				t.Logf("step %d op %d leo %d segs %v", step, op, leo(), l.SegmentBaseOffsets())
			}
			switch {
			case op < 14:
				n := 1 + rng.IntN(4)
				b := batch{base: leo(), next: leo() + int64(n), ts: 1000 + leo()*10, tag: fmt.Sprint("s", step)}
				info := mustAppend(t, l, batchOf(t, b.tag, n, b.ts))
				if info.FirstOffset != b.base {
					t.Fatalf("seed %d step %d: append at %d, want %d", seed, step, info.FirstOffset, b.base)
				}
				model = append(model, b)
			case op < 19:
				off := leo() - rng.Int64N(min(leo(), 40)+1) // mostly near the end
				if rng.IntN(8) == 0 {
					off = rng.Int64N(leo() + 1)
				}
				if len(l.SegmentBaseOffsets()) > 1 && off < l.SegmentBaseOffsets()[len(l.SegmentBaseOffsets())-1] {
					intoSealed++
				}
				if err := l.TruncateTo(off); err != nil {
					t.Fatal(err)
				}
				for len(model) > 0 && model[len(model)-1].next > off {
					model = model[:len(model)-1]
				}
			default:
				clean := rng.IntN(2) == 0
				if clean {
					l.Close()
				} else {
					l.abandon()
				}
				l = openAt(t, dir, cfg, Options{CleanShutdown: clean})
			}
			if l.LogEndOffset() != leo() {
				t.Fatalf("seed %d step %d: log end %d, model %d", seed, step, l.LogEndOffset(), leo())
			}
			for _, b := range model {
				for _, off := range []int64{b.base, b.next - 1} {
					r, err := l.Read(off, 1, leo())
					if err != nil {
						t.Fatal(err)
					}
					bs := regionBatches(t, r)
					if len(bs) == 0 || bs[0].BaseOffset() != b.base || values(t, bs[0])[0] != b.tag+"-0" {
						t.Fatalf("seed %d step %d: read %d: not the batch at %d (%s)", seed, step, off, b.base, b.tag)
					}
				}
				got, ok, err := l.OffsetForTimestamp(b.ts, nil)
				if err != nil || !ok || got.Offset != b.base {
					t.Fatalf("seed %d step %d: offset for timestamp %d: %+v %v %v, want %d", seed, step, b.ts, got, ok, err, b.base)
				}
			}
			if _, ok, _ := l.OffsetForTimestamp(1000+leo()*10, nil); ok {
				t.Fatalf("seed %d step %d: a timestamp past every batch found a record", seed, step)
			}
		}
		l.Close()
	}
	if intoSealed == 0 {
		t.Fatal("no truncation into a sealed segment")
	}
	t.Logf("%d truncations into sealed segments", intoSealed)
}
