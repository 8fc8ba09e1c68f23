package log

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// testConfig is DefaultConfig with small segments and dense indexes so tests
// exercise rolls and index lookups with little data.
func testConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 128
	c.SegmentIndexBytes = 4096
	c.FileDeleteDelayMs = 0
	return c
}

// openLog opens a log in a fresh temp dir and closes it at cleanup.
func openLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	return openAt(t, t.TempDir(), cfg, Options{CleanShutdown: true})
}

func openAt(t testing.TB, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// batchOf builds a batch of n records valued "<tag>-<i>" at timestamp ts.
func batchOf(t testing.TB, tag string, n int, ts int64) record.Batch {
	t.Helper()
	recs := make([]recordtest.Record, n)
	for i := range recs {
		recs[i] = recordtest.Record{Value: fmt.Appendf(nil, "%s-%d", tag, i), Timestamp: ts}
	}
	return recordtest.Build(t, recordtest.Options{}, recs...)
}

// mustAppend appends a copy of b (Append patches its input).
func mustAppend(t testing.TB, l *Log, b record.Batch) AppendInfo {
	t.Helper()
	info, err := l.Append(append([]byte(nil), b...), 0)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return info
}

// readRegion returns the bytes of a region.
func readRegion(t testing.TB, r Region) []byte {
	t.Helper()
	if r.Len == 0 {
		return nil
	}
	buf := make([]byte, r.Len)
	if _, err := r.File.ReadAt(buf, r.Pos); err != nil && err != io.EOF {
		t.Fatalf("read region: %v", err)
	}
	return buf
}

// regionBatches parses a region into batches, failing on anything that is
// not a whole number of valid batches.
func regionBatches(t testing.TB, r Region) []record.Batch {
	t.Helper()
	var out []record.Batch
	if err := record.Split(readRegion(t, r), func(b record.Batch) bool { out = append(out, b); return true }); err != nil {
		t.Fatalf("region is not whole valid batches: %v", err)
	}
	return out
}

// values returns the record values of batches.
func values(t testing.TB, bs ...record.Batch) []string {
	t.Helper()
	var out []string
	for _, b := range bs {
		if err := b.ForEachRecord(func(r *record.Record) bool { out = append(out, string(r.Value)); return true }); err != nil {
			t.Fatalf("records: %v", err)
		}
	}
	return out
}

// fakeClock is a settable clock for roll and retention tests; background
// flushes read it too, hence the lock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
