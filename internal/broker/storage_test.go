package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
)

func newTestHealth(t *testing.T) (*storageHealth, chan bool) {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	changes := make(chan bool, 10)
	h := &storageHealth{dirs: []string{t.TempDir()}, logger: slog.New(slog.DiscardHandler), interval: 10 * time.Millisecond, stop: stop}
	h.onChange = func(failed bool) { changes <- failed }
	return h, changes
}

func nextChange(t *testing.T, changes chan bool) bool {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported")
		return false
	}
}

// A full disk fails the storage until the probe can write again; other
// errors are not storage failures at all.
func TestStorageHealthHealsAfterFullDisk(t *testing.T) {
	h, changes := newTestHealth(t)
	h.report(fmt.Errorf("%w: batch at 3, log end 4", log.ErrNotContiguous))
	h.report(errors.New("invalid record"))
	if h.failed {
		t.Fatal("a refused append failed the storage")
	}
	h.report(fmt.Errorf("write segment: %w", syscall.ENOSPC))
	if !nextChange(t, changes) {
		t.Fatal("first change: healed, want failed")
	}
	// The temp dir takes the probe's write: healed.
	if nextChange(t, changes) {
		t.Fatal("second change: failed, want healed")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed || h.err != nil {
		t.Fatalf("still failed: %v", h.err)
	}
}

// Any other write failure (a failed fsync takes the log offline) keeps the
// storage failed, even when the probe could write.
func TestStorageHealthStickyFailure(t *testing.T) {
	h, changes := newTestHealth(t)
	dir := h.dirs[0]
	h.dirs = []string{filepath.Join(dir, "gone")} // the probe fails until it exists
	h.report(fmt.Errorf("write segment: %w", syscall.ENOSPC))
	if !nextChange(t, changes) {
		t.Fatal("want failed")
	}
	h.report(fmt.Errorf("%w: fsync: %w", log.ErrStorage, syscall.EIO))
	if err := os.Mkdir(h.dirs[0], 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changes:
		if !c {
			t.Fatal("healed after a sticky failure")
		}
	case <-time.After(200 * time.Millisecond): // 20 probe intervals
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failed || !h.sticky {
		t.Fatalf("failed %v sticky %v, want both", h.failed, h.sticky)
	}
}
