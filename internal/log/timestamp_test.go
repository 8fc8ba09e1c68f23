package log

import (
	"runtime"
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

func TestOffsetForTimestamp(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 300 // several segments
	l := openLog(t, cfg)
	// Each batch has 3 records with timestamps base, base+1, base+2.
	// Batch timestamps are not monotonic: 100, 200, 150, 300, 50, 400, ...
	bases := []int64{100, 200, 150, 300, 50, 400, 390, 500, 450, 600, 10, 700}
	for i, base := range bases {
		recs := []recordtest.Record{{Value: []byte("a"), Timestamp: base}, {Value: []byte("b"), Timestamp: base + 1}, {Value: []byte("c"), Timestamp: base + 2}}
		info := mustAppend(t, l, recordtest.Build(t, recordtest.Options{}, recs...))
		if info.FirstOffset != int64(3*i) {
			t.Fatal("offsets")
		}
	}
	if l.NumSegments() < 3 {
		t.Fatalf("want several segments, have %d", l.NumSegments())
	}
	for _, tc := range []struct {
		ts         int64
		wantOffset int64
		wantTS     int64
		ok         bool
	}{
		{0, 0, 100, true},    // before everything: first record
		{100, 0, 100, true},  // exact first
		{101, 1, 101, true},  // mid batch: the record, not the batch
		{102, 2, 102, true},  // last record of first batch
		{103, 3, 200, true},  // next batch whose max reaches it
		{160, 3, 200, true},  // batch 1 (max 202) comes before batch 2 (150..152)
		{203, 9, 300, true},  // batch 3
		{391, 15, 400, true}, // batch 5 (400) precedes batch 6 (390..392)
		{451, 21, 500, true}, // batch 7 (500..502)
		{502, 23, 502, true}, // last record of batch 7
		{503, 27, 600, true}, // batch 9
		{701, 34, 701, true}, // last batch, middle record
		{702, 35, 702, true}, // very last record
		{703, 0, 0, false},   // nothing reaches it
	} {
		got, ok, err := l.OffsetForTimestamp(tc.ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || (ok && (got.Offset != tc.wantOffset || got.Timestamp != tc.wantTS)) {
			t.Errorf("OffsetForTimestamp(%d) = %+v %v, want offset %d ts %d %v", tc.ts, got, ok, tc.wantOffset, tc.wantTS, tc.ok)
		}
	}
	got, ok, err := l.OffsetForMaxTimestamp(nil)
	if err != nil || !ok || got.Offset != 35 || got.Timestamp != 702 {
		t.Fatalf("OffsetForMaxTimestamp = %+v %v %v, want offset 35 ts 702", got, ok, err)
	}

	// After DeleteRecordsBefore, lookups ignore records below the start.
	l.SetHighWatermark(l.LogEndOffset())
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := l.OffsetForTimestamp(0, nil); !ok || got.Offset != 4 || got.Timestamp != 201 {
		t.Errorf("after delete records: OffsetForTimestamp(0) = %+v %v, want offset 4 ts 201", got, ok)
	}

	// Same answers after a clean reopen (timestamps from the time index)
	// and after recovery (rebuilt from data).
	dir := l.Dir()
	l.Close()
	for _, clean := range []bool{true, false} {
		l2 := openAt(t, dir, cfg, Options{CleanShutdown: clean, LogStartOffset: 4})
		if got, ok, _ := l2.OffsetForTimestamp(391, nil); !ok || got.Offset != 15 {
			t.Errorf("clean=%v: OffsetForTimestamp(391) = %+v %v", clean, got, ok)
		}
		if got, ok, _ := l2.OffsetForMaxTimestamp(nil); !ok || got.Offset != 35 {
			t.Errorf("clean=%v: OffsetForMaxTimestamp = %+v %v", clean, got, ok)
		}
		l2.Close()
	}
}

func TestOffsetForTimestampEmptyLog(t *testing.T) {
	l := openLog(t, testConfig())
	if _, ok, err := l.OffsetForTimestamp(0, nil); ok || err != nil {
		t.Fatalf("empty log: ok=%v err=%v", ok, err)
	}
	if _, ok, err := l.OffsetForMaxTimestamp(nil); ok || err != nil {
		t.Fatalf("empty log max: ok=%v err=%v", ok, err)
	}
}

// TestOffsetForTimestampBoundedDecompression: a timestamp lookup streams
// the records of a compressed batch instead of decompressing it whole,
// decompresses no more than its budget, and past the budget answers with
// the batch's first offset (never after the exact answer).
func TestOffsetForTimestampBoundedDecompression(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	l := openLog(t, cfg)
	mustAppend(t, l, recordtest.Values(t, 500, "before"))
	// 16 records of 1 MiB of zeros, at timestamps 1000..1015: a few KiB
	// compressed, 16 MiB decompressed.
	const n, size = 16, 1 << 20
	recs := make([]recordtest.Record, n)
	zeros := make([]byte, size)
	for i := range recs {
		recs[i] = recordtest.Record{Value: zeros, Timestamp: 1000 + int64(i)}
	}
	bomb := recordtest.Build(t, recordtest.Options{Codec: record.CodecZstd}, recs...)
	mustAppend(t, l, bomb)

	for _, tc := range []struct {
		name         string
		ts, budget   int64 // budget -1: none
		wantOffset   int64
		wantTS       int64
		spentAtLeast int64
	}{
		{"exact within budget", 1002, 4 << 20, 3, 1002, 2 * size},
		{"past the budget: the batch's first offset", 1010, 4 << 20, 1, 1015, 4 << 20},
		{"spent budget", 1001, 0, 1, 1015, 0},
		{"no budget", 1010, -1, 11, 1010, 0},
	} {
		budget := tc.budget
		bp := &budget
		if tc.budget < 0 {
			bp = nil
		}
		got, ok, err := l.OffsetForTimestamp(tc.ts, bp)
		if err != nil || !ok || got.Offset != tc.wantOffset || got.Timestamp != tc.wantTS {
			t.Errorf("%s: OffsetForTimestamp(%d) = %+v %v %v, want offset %d ts %d", tc.name, tc.ts, got, ok, err, tc.wantOffset, tc.wantTS)
		}
		if bp != nil && tc.budget-budget < tc.spentAtLeast {
			t.Errorf("%s: spent %d of the budget, want at least %d", tc.name, tc.budget-budget, tc.spentAtLeast)
		}
		if bp != nil && budget < -(64<<10) {
			t.Errorf("%s: overspent the budget: %d left", tc.name, budget)
		}
	}
	budget := int64(2 << 20)
	if got, ok, err := l.OffsetForMaxTimestamp(&budget); err != nil || !ok || got.Offset != 1 || got.Timestamp != 1015 {
		t.Errorf("OffsetForMaxTimestamp past the budget = %+v %v %v, want the batch's first offset 1", got, ok, err)
	}
	if got, ok, err := l.OffsetForMaxTimestamp(nil); err != nil || !ok || got.Offset != 16 || got.Timestamp != 1015 {
		t.Errorf("OffsetForMaxTimestamp = %+v %v %v, want offset 16", got, ok, err)
	}

	// Walking all 16 MiB allocates a small fraction of it: the stream's
	// buffer and decoder, and the compressed batch read from the file.
	l.OffsetForTimestamp(1015, nil) // warm the pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if got, _, err := l.OffsetForTimestamp(1015, nil); err != nil || got.Offset != 16 {
		t.Fatalf("OffsetForTimestamp(1015) = %+v %v", got, err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("a lookup through 16 MiB of records allocated %d bytes", alloc)
	}
}
