package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/strata-io/strata/internal/record"
)

func TestAppendAssignsOffsetsAndReads(t *testing.T) {
	l := openLog(t, testConfig())
	var want []string
	for i := 0; i < 50; i++ {
		info := mustAppend(t, l, batchOf(t, "b", 3, 1000+int64(i)))
		if info.FirstOffset != int64(i*3) || info.LastOffset != int64(i*3+2) {
			t.Fatalf("batch %d: offsets [%d,%d], want [%d,%d]", i, info.FirstOffset, info.LastOffset, i*3, i*3+2)
		}
		want = append(want, "b-0", "b-1", "b-2")
	}
	if got := l.LogEndOffset(); got != 150 {
		t.Fatalf("LogEndOffset = %d, want 150", got)
	}
	if l.NumSegments() < 2 {
		t.Fatalf("expected rolls with 4 KiB segments, have %d segment(s)", l.NumSegments())
	}
	// Read everything back, following offsets across segments.
	var got []string
	for off := int64(0); off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		bs := regionBatches(t, r)
		if len(bs) == 0 {
			t.Fatalf("Read(%d) returned nothing", off)
		}
		if bs[0].BaseOffset() > off || bs[0].LastOffset() < off {
			t.Fatalf("Read(%d) starts with batch [%d,%d]", off, bs[0].BaseOffset(), bs[0].LastOffset())
		}
		got = append(got, values(t, bs...)...)
		off = bs[len(bs)-1].NextOffset()
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
}

func TestReadSemantics(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	l := openLog(t, cfg)
	var sizes []int
	for i := 0; i < 10; i++ { // batches of 4 records: offsets 4i..4i+3
		info := mustAppend(t, l, batchOf(t, "r", 4, 100))
		sizes = append(sizes, info.Bytes)
	}
	size := sizes[0]
	for _, tc := range []struct {
		name             string
		offset           int64
		maxBytes         int
		maxOffset        int64
		wantFirst, wantN int64 // first batch base offset, batch count
	}{
		{"start", 0, 1 << 20, 40, 0, 10},
		{"mid-batch returns whole batch", 5, 1 << 20, 40, 4, 9},
		{"last offset of batch", 7, 1 << 20, 40, 4, 9},
		{"maxBytes smaller than first batch (KIP-74)", 0, 1, 40, 0, 1},
		{"maxBytes zero still returns one batch", 12, 0, 40, 12, 1},
		{"maxBytes ends on batch boundary", 0, 3*size + size/2, 40, 0, 3},
		{"maxBytes exactly three batches", 0, 3 * size, 40, 0, 3},
		{"maxOffset stops at high watermark", 0, 1 << 20, 20, 0, 5},
		{"maxOffset mid-batch keeps batch out", 0, 1 << 20, 22, 0, 5},
		{"at maxOffset is empty", 20, 1 << 20, 20, -1, 0},
		{"at log end is empty", 40, 1 << 20, 40, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.Read(tc.offset, tc.maxBytes, tc.maxOffset)
			if err != nil {
				t.Fatal(err)
			}
			bs := regionBatches(t, r)
			if int64(len(bs)) != tc.wantN {
				t.Fatalf("got %d batches, want %d", len(bs), tc.wantN)
			}
			if tc.wantN > 0 && bs[0].BaseOffset() != tc.wantFirst {
				t.Fatalf("first batch at %d, want %d", bs[0].BaseOffset(), tc.wantFirst)
			}
			for i := 1; i < len(bs); i++ {
				if bs[i].BaseOffset() != bs[i-1].NextOffset() {
					t.Fatalf("batch %d at %d, not contiguous after %d", i, bs[i].BaseOffset(), bs[i-1].NextOffset())
				}
			}
		})
	}
	for _, off := range []int64{-1, 41, 1000} {
		if _, err := l.Read(off, 100, 40); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("Read(%d) error = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
}

func TestAppendRejectsBadBatchesAndWritesNothing(t *testing.T) {
	l := openLog(t, testConfig())
	mustAppend(t, l, batchOf(t, "ok", 2, 1))
	good := batchOf(t, "x", 3, 1)
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"bad CRC", corrupt(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), record.ErrBadCRC},
		{"magic 1", corrupt(func(b []byte) []byte { b[16] = 1; return b }), record.ErrUnsupportedMagic},
		{"magic 0", corrupt(func(b []byte) []byte { b[16] = 0; return b }), record.ErrUnsupportedMagic},
		{"length past end", corrupt(func(b []byte) []byte { return b[:len(b)-3] }), record.ErrCorrupt},
		{"length field too small", corrupt(func(b []byte) []byte { b[11] = 10; b[10], b[9], b[8] = 0, 0, 0; return b }), record.ErrCorrupt},
		{"trailing garbage", append(append([]byte(nil), good...), 1, 2, 3), record.ErrCorrupt},
		{"good then bad", append(append([]byte(nil), good...), corrupt(func(b []byte) []byte { b[30] ^= 1; return b })...), record.ErrBadCRC},
		{"empty", nil, record.ErrInvalidRecord},
		{"spans more offsets than a segment indexes", append(wideBatch(good), wideBatch(good)...), record.ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := l.Size()
			_, err := l.Append(tc.data, 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Append error = %v, want %v", err, tc.want)
			}
			after, _ := l.Size()
			if l.LogEndOffset() != 2 || after != before {
				t.Fatalf("log changed: end %d size %d -> %d", l.LogEndOffset(), before, after)
			}
		})
	}
	cfg := testConfig()
	cfg.SegmentBytes = int64(len(good) - 1)
	small := openLog(t, cfg)
	if _, err := small.Append(append([]byte(nil), good...), 0); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("batch over segment.bytes: error = %v, want ErrBatchTooLarge", err)
	}
}

func TestAppendPatchesOffsetsAndEpochInPlace(t *testing.T) {
	l := openLog(t, testConfig())
	mustAppend(t, l, batchOf(t, "a", 5, 1))
	data := append(append([]byte(nil), batchOf(t, "b", 2, 1)...), batchOf(t, "c", 3, 1)...)
	info, err := l.Append(data, 7)
	if err != nil {
		t.Fatal(err)
	}
	if info.FirstOffset != 5 || info.LastOffset != 9 || info.Batches != 2 {
		t.Fatalf("info = %+v", info)
	}
	first := record.Batch(data)
	second := record.Batch(data[first.Size():])
	if first.BaseOffset() != 5 || second.BaseOffset() != 7 || first.PartitionLeaderEpoch() != 7 || second.PartitionLeaderEpoch() != 7 {
		t.Fatalf("patched: offsets %d %d epochs %d %d", first.BaseOffset(), second.BaseOffset(), first.PartitionLeaderEpoch(), second.PartitionLeaderEpoch())
	}
	r, err := l.Read(5, 1<<20, l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if got := readRegion(t, r); !bytes.Equal(got, data) {
		t.Fatal("stored bytes differ from the patched input")
	}
}

// TestConcurrentReadersSeeWholeBatches runs readers against a busy appender:
// every region must be whole valid batches with contiguous offsets.
func TestConcurrentReadersSeeWholeBatches(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 16 << 10
	l := openLog(t, cfg)
	const batches = 2000
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				select {
				case <-done:
					return
				default:
				}
				end := l.LogEndOffset()
				if end == 0 {
					continue
				}
				off := rand.Int64N(end)
				reg, err := l.Read(off, 8<<10, end)
				if err != nil {
					t.Errorf("Read(%d): %v", off, err)
					return
				}
				buf = buf[:0]
				buf = append(buf, make([]byte, reg.Len)...)
				if _, err := reg.File.ReadAt(buf, reg.Pos); err != nil {
					t.Errorf("ReadAt: %v", err)
					return
				}
				first := true
				if err := record.Split(buf, func(b record.Batch) bool {
					if first && (b.BaseOffset() > off || b.LastOffset() < off) {
						t.Errorf("Read(%d) starts at batch [%d,%d]", off, b.BaseOffset(), b.LastOffset())
					}
					first = false
					return true
				}); err != nil {
					t.Errorf("Read(%d) region not whole batches: %v", off, err)
					return
				}
			}
		}()
	}
	b := batchOf(t, "c", 8, 1)
	for i := 0; i < batches; i++ {
		mustAppend(t, l, b)
	}
	close(done)
	wg.Wait()
	if l.LogEndOffset() != batches*8 {
		t.Fatalf("end %d", l.LogEndOffset())
	}
}

func TestCloseReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	l, err := Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		mustAppend(t, l, batchOf(t, fmt.Sprint(i), 2, int64(i)))
	}
	end, segs := l.LogEndOffset(), l.NumSegments()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, clean := range []bool{true, false} {
		l2, err := Open(dir, cfg, Options{CleanShutdown: clean, RecoveryPoint: end})
		if err != nil {
			t.Fatal(err)
		}
		if l2.LogEndOffset() != end || l2.NumSegments() != segs {
			t.Fatalf("clean=%v: reopened end %d segs %d, want %d %d", clean, l2.LogEndOffset(), l2.NumSegments(), end, segs)
		}
		for i := int64(0); i < 100; i++ {
			r, err := l2.Read(2*i, 1, end)
			if err != nil {
				t.Fatal(err)
			}
			if got := values(t, regionBatches(t, r)...); got[0] != fmt.Sprintf("%d-0", i) {
				t.Fatalf("clean=%v: offset %d has %v", clean, 2*i, got)
			}
		}
		mustAppend(t, l2, batchOf(t, "more", 1, 1000))
		if err := l2.Close(); err != nil {
			t.Fatal(err)
		}
		end++
	}
}

// wideBatch returns a copy of b claiming 2^31 offsets with no records, as
// compaction could leave one; two of them in one append would pass the
// 32-bit relative offsets of a segment.
func wideBatch(b record.Batch) []byte {
	w := record.Batch(append([]byte(nil), b...))
	binary.BigEndian.PutUint32(w[57:], 0)       // record count
	binary.BigEndian.PutUint32(w[23:], 1<<31-1) // last offset delta
	w.UpdateCRC()
	return w
}

// TestAppendValidatedChecksFraming: the produce path's append skips only
// the CRC; framing errors are still refused and nothing is written.
func TestAppendValidatedChecksFraming(t *testing.T) {
	l := openLog(t, testConfig())
	good := batchOf(t, "v", 3, 1)
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", append([]byte(nil), good[:len(good)-1]...), record.ErrCorrupt},
		{"magic 1", func() []byte { b := append([]byte(nil), good...); b[16] = 1; return b }(), record.ErrUnsupportedMagic},
		{"too wide", append(wideBatch(good), wideBatch(good)...), record.ErrInvalidRecord},
	} {
		if _, err := l.AppendValidated(tc.data, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if l.LogEndOffset() != 0 {
		t.Fatalf("something was written: end %d", l.LogEndOffset())
	}
	info, err := l.AppendValidated(append([]byte(nil), good...), 0)
	if err != nil || info.LastOffset != 2 {
		t.Fatalf("valid batch: %+v %v", info, err)
	}
}
