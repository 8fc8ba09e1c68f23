package log

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// allocated is the disk space the file at path holds, in bytes.
func allocated(t *testing.T, path string) (size, blocks int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestPreallocationGivenBack: large appends reserve the active segment's
// blocks ahead of its end, and a roll or a close gives back what lies past
// the end, so sealed segments hold no more disk than their bytes.
func TestPreallocationGivenBack(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4 << 20
	cfg.SegmentIndexBytes = 10 << 20
	dir := t.TempDir()
	l, err := Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	big := recordtest.Build(t, recordtest.Options{}, recordtest.Record{Value: bytes.Repeat([]byte("v"), 256<<10), Timestamp: 1})
	if len(big) < preallocateMinWrite {
		t.Fatalf("batch of %d bytes is under preallocateMinWrite", len(big))
	}
	first := filepath.Join(dir, segmentName(0)+logSuffix)
	mustAppend(t, l, big)
	size, blocks := allocated(t, first)
	if blocks < size+int64(len(big)) {
		l.Close()
		t.Skipf("this file system did not preallocate: %d bytes hold %d blocks' worth", size, blocks)
	}
	for l.ActiveSegmentBaseOffset() == 0 {
		mustAppend(t, l, big)
	}
	mustAppend(t, l, big) // the new active segment reserves ahead too
	checkTrimmed := func(path string) {
		t.Helper()
		size, blocks := allocated(t, path)
		// Block rounding, and slack for any extent blocks.
		if blocks > size+64<<10 {
			t.Errorf("%s: %d bytes hold %d bytes of disk: reserved blocks not given back", filepath.Base(path), size, blocks)
		}
	}
	checkTrimmed(first) // sealed by the roll
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	sort.Strings(logs)
	if len(logs) != 2 {
		t.Fatalf("segments %v, want 2", logs)
	}
	checkTrimmed(logs[1]) // the active one, by the close

	// The data is all there after reopening.
	l = openAt(t, dir, cfg, Options{CleanShutdown: true})
	n := 0
	for off := int64(0); off < l.LogEndOffset(); n++ {
		r, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs := regionBatches(t, r)
		if len(bs) == 0 {
			t.Fatalf("no batch at %d", off)
		}
		off = record.Batch(bs[0]).NextOffset()
	}
	if want := l.LogEndOffset(); int64(n) != want {
		t.Fatalf("read %d batches, log end offset %d", n, want)
	}
}
