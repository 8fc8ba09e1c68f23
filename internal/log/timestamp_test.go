package log

import (
	"testing"

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
		got, ok, err := l.OffsetForTimestamp(tc.ts)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.ok || (ok && (got.Offset != tc.wantOffset || got.Timestamp != tc.wantTS)) {
			t.Errorf("OffsetForTimestamp(%d) = %+v %v, want offset %d ts %d %v", tc.ts, got, ok, tc.wantOffset, tc.wantTS, tc.ok)
		}
	}
	got, ok, err := l.OffsetForMaxTimestamp()
	if err != nil || !ok || got.Offset != 35 || got.Timestamp != 702 {
		t.Fatalf("OffsetForMaxTimestamp = %+v %v %v, want offset 35 ts 702", got, ok, err)
	}

	// After DeleteRecordsBefore, lookups ignore records below the start.
	l.SetHighWatermark(l.LogEndOffset())
	if _, err := l.DeleteRecordsBefore(4); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := l.OffsetForTimestamp(0); !ok || got.Offset != 4 || got.Timestamp != 201 {
		t.Errorf("after delete records: OffsetForTimestamp(0) = %+v %v, want offset 4 ts 201", got, ok)
	}

	// Same answers after a clean reopen (timestamps from the time index)
	// and after recovery (rebuilt from data).
	dir := l.Dir()
	l.Close()
	for _, clean := range []bool{true, false} {
		l2 := openAt(t, dir, cfg, Options{CleanShutdown: clean, LogStartOffset: 4})
		if got, ok, _ := l2.OffsetForTimestamp(391); !ok || got.Offset != 15 {
			t.Errorf("clean=%v: OffsetForTimestamp(391) = %+v %v", clean, got, ok)
		}
		if got, ok, _ := l2.OffsetForMaxTimestamp(); !ok || got.Offset != 35 {
			t.Errorf("clean=%v: OffsetForMaxTimestamp = %+v %v", clean, got, ok)
		}
		l2.Close()
	}
}

func TestOffsetForTimestampEmptyLog(t *testing.T) {
	l := openLog(t, testConfig())
	if _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
		t.Fatalf("empty log: ok=%v err=%v", ok, err)
	}
	if _, ok, err := l.OffsetForMaxTimestamp(); ok || err != nil {
		t.Fatalf("empty log max: ok=%v err=%v", ok, err)
	}
}
