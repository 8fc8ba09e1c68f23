package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The next index entry falls on a page of the (sparse, mapped) index file
// with no block behind it, the disk is full, and the batch itself fits in
// the slack of the segment's last page. Storing the entry through the
// mapping used to raise SIGBUS and kill the process; now the append fails
// with KAFKA_STORAGE_ERROR before writing anything, and once space is
// freed the same append succeeds at the same offset and its index entry
// is found.
func TestAppendIndexPageOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs takes root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 0 // an entry per batch
	l, err := Open(filepath.Join(dir, "t-0"), cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := batchOf(t, "x", 1, 1000)
	// Reserve ahead allocates index blocks in chunks: fill up to the end
	// of one, so that the next entry needs a new block.
	for l.activeSegment().offsets.entries.Load() < reserveChunk/offsetIndexEntrySize {
		mustAppend(t, l, b)
	}
	if size := l.activeSegment().size.Load(); size%int64(os.Getpagesize()) == 0 {
		t.Fatalf("segment size %d leaves no slack in its last page", size)
	}
	ballast, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(4 << 20); n >= 1; n /= 2 {
		for {
			st, _ := ballast.Stat()
			if unix.Fallocate(int(ballast.Fd()), 0, st.Size(), n) != nil {
				break
			}
		}
	}
	ballast.Close()
	next := l.LogEndOffset()
	_, err = l.Append(append([]byte(nil), b...), 0)
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a full disk: %v, want ErrStorage", err)
	}
	if l.LogEndOffset() != next {
		t.Fatalf("log end offset %d after a refused append, want %d", l.LogEndOffset(), next)
	}
	if err := os.Remove(filepath.Join(dir, "ballast")); err != nil {
		t.Fatal(err)
	}
	if info := mustAppend(t, l, b); info.FirstOffset != next {
		t.Fatalf("append after freeing space at %d, want %d", info.FirstOffset, next)
	}
	if off, _, ok := l.activeSegment().offsets.lastEntry(); !ok || off != next {
		t.Fatalf("last index entry at offset %d (%v), want %d", off, ok, next)
	}
}
