package log

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/record"
)

// TestIndexFilesAreKafkaFormat decodes the index files byte by byte as
// Kafka's OffsetIndex and TimeIndex would, and checks every entry against the
// .log file it indexes.
func TestIndexFilesAreKafkaFormat(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	l := openAt(t, dir, cfg, Options{CleanShutdown: true})
	for i := 0; i < 200; i++ {
		// Timestamps go up and down: the time index keeps a running max.
		ts := int64(1000 + i*10)
		if i%7 == 3 {
			ts -= 500
		}
		mustAppend(t, l, batchOf(t, "i", 1+i%3, ts))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(names) < 3 {
		t.Fatalf("want several segments, have %d", len(names))
	}
	for _, name := range names {
		base, ok := parseSegmentName(filepath.Base(name), logSuffix)
		if !ok {
			t.Fatalf("bad segment name %s", name)
		}
		logData, _ := os.ReadFile(name)
		// Batch start position -> batch.
		batches := map[uint32]record.Batch{}
		var maxTS int64 = -1
		for pos := 0; pos < len(logData); {
			b := record.Batch(logData[pos:])
			batches[uint32(pos)] = b
			maxTS = max(maxTS, b.MaxTimestamp())
			pos += b.Size()
		}
		idx, _ := os.ReadFile(filepath.Join(dir, segmentName(base)+indexSuffix))
		if len(idx)%8 != 0 || len(idx) == 0 {
			t.Fatalf("%s: index of %d bytes", name, len(idx))
		}
		var prevPos uint32
		for i := 0; i < len(idx); i += 8 {
			rel, pos := binary.BigEndian.Uint32(idx[i:]), binary.BigEndian.Uint32(idx[i+4:])
			b, ok := batches[pos]
			if !ok {
				t.Fatalf("%s: index entry %d points at %d, not a batch start", name, i/8, pos)
			}
			if b.LastOffset() != base+int64(rel) {
				t.Fatalf("%s: entry (%d,%d) but batch there ends at %d", name, rel, pos, b.LastOffset())
			}
			if i > 0 && pos-prevPos <= uint32(cfg.IndexIntervalBytes) {
				t.Fatalf("%s: entries %d bytes apart, interval %d", name, pos-prevPos, cfg.IndexIntervalBytes)
			}
			prevPos = pos
		}
		tix, _ := os.ReadFile(filepath.Join(dir, segmentName(base)+timeIndexSuffix))
		if len(tix)%12 != 0 || len(tix) == 0 {
			t.Fatalf("%s: time index of %d bytes", name, len(tix))
		}
		var prevTS int64 = -1
		for i := 0; i < len(tix); i += 12 {
			ts, rel := int64(binary.BigEndian.Uint64(tix[i:])), binary.BigEndian.Uint32(tix[i+8:])
			if ts <= prevTS {
				t.Fatalf("%s: time index not increasing: %d after %d", name, ts, prevTS)
			}
			prevTS = ts
			// The entry's offset is the last offset of a batch whose max
			// timestamp is ts.
			found := false
			for _, b := range batches {
				if b.LastOffset() == base+int64(rel) && b.MaxTimestamp() == ts {
					found = true
				}
			}
			if !found {
				t.Fatalf("%s: time entry (%d,%d) matches no batch", name, ts, rel)
			}
		}
		if prevTS != maxTS {
			t.Fatalf("%s: last time entry %d, segment max timestamp %d", name, prevTS, maxTS)
		}
	}
}

func TestIndexSearch(t *testing.T) {
	dir := t.TempDir()
	x, err := openOffsetIndex(fs.OS, filepath.Join(dir, "x.index"), 100, 1<<16, true)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	if got := x.lookup(150); got != 0 {
		t.Fatalf("empty index lookup = %d", got)
	}
	// Enough entries to make the warm tail a strict suffix.
	for i := int64(0); i < 3000; i++ {
		x.append(100+10*i+9, 1000*i)
	}
	for _, tc := range []struct{ offset, pos int64 }{
		{50, 0}, {100, 0}, {108, 0}, {109, 0}, {110, 0}, {119, 1000}, {125, 1000},
		{100 + 10*1500 + 9, 1000 * 1500}, {100 + 10*2999 + 9, 1000 * 2999}, {1 << 40, 1000 * 2999},
	} {
		if got := x.lookup(tc.offset); got != tc.pos {
			t.Errorf("lookup(%d) = %d, want %d", tc.offset, got, tc.pos)
		}
	}
	for _, tc := range []struct{ pos, want int64 }{{0, 0}, {999, 0}, {1000, 1000}, {2999500, 2999000}, {5e9, 2999000}} {
		if got := x.lookupPosition(tc.pos); got != tc.want {
			t.Errorf("lookupPosition(%d) = %d, want %d", tc.pos, got, tc.want)
		}
	}
	x.truncateTo(120)
	if off, _, _ := x.lastEntry(); off != 119 || x.entries.Load() != 2 {
		t.Fatalf("after truncateTo(120): last %d, entries %d", off, x.entries.Load())
	}
}
