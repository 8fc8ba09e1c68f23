package log

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestTruncateTo(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	for _, tc := range []struct {
		name    string
		offset  int64
		wantEnd int64
	}{
		{"at batch boundary in active segment", 96, 96},
		{"inside a batch drops the batch", 97, 96},
		{"into an older segment", 10, 10},
		{"inside batch of older segment", 11, 10},
		{"to zero", 0, 0},
		{"beyond end is a no-op", 500, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openAt(t, dir, cfg, Options{CleanShutdown: true})
			for i := 0; i < 50; i++ { // batches of 2: [0,1] [2,3] ...
				mustAppend(t, l, batchOf(t, "t", 2, int64(i)))
			}
			l.SetHighWatermark(100)
			if err := l.TruncateTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			if l.LogEndOffset() != tc.wantEnd || l.HighWatermark() > tc.wantEnd {
				t.Fatalf("end %d hw %d, want end %d", l.LogEndOffset(), l.HighWatermark(), tc.wantEnd)
			}
			// Appends continue at the new end, reads see them.
			info := mustAppend(t, l, batchOf(t, "new", 2, 1000))
			if info.FirstOffset != tc.wantEnd {
				t.Fatalf("append at %d, want %d", info.FirstOffset, tc.wantEnd)
			}
			r, err := l.Read(tc.wantEnd, 1<<20, l.LogEndOffset())
			if err != nil {
				t.Fatal(err)
			}
			if got := values(t, regionBatches(t, r)...); len(got) != 2 || got[0] != "new-0" {
				t.Fatalf("read after truncate: %v", got)
			}
			if tc.wantEnd > 0 {
				if got, ok, _ := l.OffsetForTimestamp(0, nil); !ok || got.Offset != 0 {
					t.Fatalf("timestamp lookup after truncate: %+v %v", got, ok)
				}
			}
			// The truncated log survives clean and unclean reopen.
			end := l.LogEndOffset()
			l.Close()
			for _, clean := range []bool{true, false} {
				l2 := openAt(t, dir, cfg, Options{CleanShutdown: clean})
				if l2.LogEndOffset() != end {
					t.Fatalf("clean=%v reopen: end %d, want %d", clean, l2.LogEndOffset(), end)
				}
				l2.Close()
			}
		})
	}
}

func TestTruncateBelowStartRestartsLog(t *testing.T) {
	l := openAt(t, t.TempDir(), testConfig(), Options{CleanShutdown: true, LogStartOffset: 1000})
	mustAppend(t, l, batchOf(t, "a", 2, 1))
	if l.LogStartOffset() != 1000 || l.LogEndOffset() != 1002 {
		t.Fatalf("start %d end %d", l.LogStartOffset(), l.LogEndOffset())
	}
	if err := l.TruncateTo(500); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 500 || l.LogEndOffset() != 500 || l.NumSegments() != 1 {
		t.Fatalf("start %d end %d segs %d", l.LogStartOffset(), l.LogEndOffset(), l.NumSegments())
	}
	if info := mustAppend(t, l, batchOf(t, "b", 1, 1)); info.FirstOffset != 500 {
		t.Fatalf("append at %d", info.FirstOffset)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	dir := t.TempDir()
	l := openAt(t, dir, cfg, Options{CleanShutdown: true})
	for i := 0; i < 50; i++ {
		mustAppend(t, l, batchOf(t, "d", 2, int64(i)))
	}
	// Only segments below the recovery point are deleted; the flush
	// after each roll moves it in the background, so flush here rather
	// than race it (this failed under -race on a loaded machine).
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	segs := l.NumSegments()
	l.SetHighWatermark(60)
	if _, err := l.DeleteRecordsBefore(61); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past high watermark: %v", err)
	}
	start, err := l.DeleteRecordsBefore(41)
	if err != nil || start != 41 {
		t.Fatalf("DeleteRecordsBefore(41) = %d, %v", start, err)
	}
	if l.NumSegments() >= segs {
		t.Fatalf("no segment deleted: %d -> %d", segs, l.NumSegments())
	}
	if _, err := l.Read(40, 100, 60); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	r, err := l.Read(41, 1, 60)
	if err != nil {
		t.Fatal(err)
	}
	if bs := regionBatches(t, r); bs[0].BaseOffset() != 40 {
		t.Fatalf("read at 41 starts at batch %d, want the whole batch at 40", bs[0].BaseOffset())
	}
	// Smaller offsets do not move the start back.
	if start, _ := l.DeleteRecordsBefore(10); start != 41 {
		t.Fatalf("start moved back to %d", start)
	}
	waitNoDeletedFiles(t, dir)
}

func TestRetention(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.FileDeleteDelayMs = 50
	l := openAt(t, t.TempDir(), cfg, Options{CleanShutdown: true, Now: clock.Now})
	for i := 0; i < 60; i++ { // timestamps 1000..60000 ms
		mustAppend(t, l, batchOf(t, "r", 2, int64(1000*(i+1))))
	}
	segs := l.NumSegments()

	// Nothing above the high watermark goes.
	cfg.RetentionMs = 1
	l.SetConfig(cfg)
	if n, _ := l.DeleteOldSegments(clock.Now()); n != 0 {
		t.Fatalf("deleted %d segments above the high watermark", n)
	}
	l.SetHighWatermark(l.LogEndOffset())
	// Retention deletes only flushed segments; let the flushes that the
	// rolls started finish.
	l.bg.Wait()

	// retention.ms: segments whose newest record is older than 30 s before
	// "now" (61 s) go; the rest stay.
	clock.Set(time.UnixMilli(61_000))
	cfg.RetentionMs = 30_000
	l.SetConfig(cfg)
	n, err := l.DeleteOldSegments(clock.Now())
	if err != nil || n == 0 {
		t.Fatalf("retention.ms deleted %d, %v", n, err)
	}
	r, err := l.Read(l.LogStartOffset(), 1, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	first := regionBatches(t, r)[0]
	if first.MaxTimestamp() < 31_000-10_000 { // only whole segments go
		t.Fatalf("kept segment starts with timestamp %d", first.MaxTimestamp())
	}

	// retention.bytes: shrink to about two segments; never the active one.
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 1500
	l.SetConfig(cfg)
	if _, err := l.DeleteOldSegments(clock.Now()); err != nil {
		t.Fatal(err)
	}
	if size, _ := l.Size(); size > 1500+1024 {
		t.Fatalf("size %d after retention.bytes 1500", size)
	}
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	l.DeleteOldSegments(clock.Now())
	if l.NumSegments() != 1 || l.LogEndOffset() != 120 {
		t.Fatalf("segments %d end %d: the active segment must stay", l.NumSegments(), l.LogEndOffset())
	}
	if l.LogStartOffset() != l.activeSegment().baseOffset {
		t.Fatalf("log start %d, active base %d", l.LogStartOffset(), l.activeSegment().baseOffset)
	}
	if segs < 5 {
		t.Fatalf("test needs more segments, had %d", segs)
	}
	// Deleted files linger for file.delete.delay.ms, then go.
	left, _ := filepath.Glob(filepath.Join(l.Dir(), "*.deleted"))
	if len(left) == 0 {
		t.Fatal("no .deleted files right after deletion")
	}
	waitNoDeletedFiles(t, l.Dir())
}

// waitNoDeletedFiles waits (up to 5 s) for *.deleted files in dir to be
// removed by the background deleter.
func waitNoDeletedFiles(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(dir, "*.deleted"))
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf(".deleted files remain: %v", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRollOnSegmentMs(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.SegmentMs = 10_000
	l := openAt(t, t.TempDir(), cfg, Options{CleanShutdown: true, Now: clock.Now})
	mustAppend(t, l, batchOf(t, "a", 1, 1_000_000))
	mustAppend(t, l, batchOf(t, "b", 1, 1_009_000))
	if l.NumSegments() != 1 {
		t.Fatalf("rolled too early")
	}
	// Kafka measures segment age by record timestamps.
	mustAppend(t, l, batchOf(t, "c", 1, 1_010_001))
	if l.NumSegments() != 2 {
		t.Fatalf("segment.ms did not roll: %d segments", l.NumSegments())
	}
}

// TestLateFlushAfterTruncate: a flush scheduled before a truncation (the
// background flush after a roll) must not mark truncated offsets as
// flushed, nor make later sync appends skip their fsync.
func TestLateFlushAfterTruncate(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := openLog(t, cfg)
	for i := 0; i < 30; i++ {
		mustAppend(t, l, batchOf(t, "x", 2, 1))
	}
	l.bg.Wait()
	oldEnd := l.LogEndOffset()
	if err := l.TruncateTo(6); err != nil {
		t.Fatal(err)
	}
	if err := l.flushTo(oldEnd); err != nil { // the late flush
		t.Fatal(err)
	}
	if rp, end := l.RecoveryPoint(), l.LogEndOffset(); rp > end || l.flusher.durableOffset() > end {
		t.Fatalf("recovery point %d, durable %d past the log end %d", rp, l.flusher.durableOffset(), end)
	}
}

func TestReadsAfterCloseFailCleanly(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := openLog(t, cfg)
	for i := 0; i < 30; i++ {
		mustAppend(t, l, batchOf(t, "x", 2, int64(i)))
	}
	l.Close()
	if _, err := l.Read(0, 100, 60); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, _, err := l.OffsetForTimestamp(3, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("OffsetForTimestamp after Close: %v", err)
	}
	if _, _, err := l.OffsetForMaxTimestamp(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("OffsetForMaxTimestamp after Close: %v", err)
	}
	if _, err := l.Size(); !errors.Is(err, ErrClosed) {
		t.Errorf("Size after Close: %v", err)
	}
}
