package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/log"
)

// storageHealth tracks whether this node's log dirs take writes.
//
// Kafka takes a log dir whose write failed offline, and a broker with no
// dir left stops, so that its replicas leave every ISR within the session
// timeout and acks=all writes go on without it. strata keeps running and
// serves again once space is freed, but until then it must not stay an
// ISR member whose appends fail: that stalls every acks=all write to the
// partitions it follows for replica.lag.time.max.ms. So a failed write
// marks the node's storage failed, and the broker asks its controller to
// be fenced (BrokerHeartbeat WantFence), which moves its leaderships away
// and takes it out of every ISR at once. A full disk heals by itself: a
// probe writes a little in each log dir every second, and once they all
// take it the broker asks to be unfenced again and its replicas catch up
// and rejoin the ISR as any lagging follower does. Any other write
// failure (a failed fsync leaves the log offline, as in Kafka) keeps the
// node fenced until it restarts.
type storageHealth struct {
	dirs     []string
	logger   *slog.Logger
	interval time.Duration

	mu       sync.Mutex
	failed   bool
	sticky   bool // not a full disk: only a restart clears it
	err      error
	onChange func(failed bool)
	probing  bool
	stop     chan struct{}
}

// probeBytes is what the probe writes in each log dir: more than a
// segment append needs to fit, so that the broker does not come back to
// fail again on its first fetch.
const probeBytes = 1 << 20

// StorageFailed reports whether a write to this node's log dirs failed
// and has not healed, with the error.
func (b *Broker) StorageFailed() (bool, error) {
	h := b.storage
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed, h.err
}

// OnStorageChange sets the function called (from a goroutine of its own
// each time) when the storage fails or heals.
func (b *Broker) OnStorageChange(fn func(failed bool)) {
	b.storage.mu.Lock()
	b.storage.onChange = fn
	b.storage.mu.Unlock()
}

// isStorageError reports whether err is a failed write to a log dir,
// rather than a refusal of the request.
func isStorageError(err error) bool {
	return errors.Is(err, log.ErrStorage) || errors.Is(err, syscall.ENOSPC) ||
		errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS)
}

// isNoSpace reports whether err is a write a full disk refused and that
// left nothing behind: freeing space heals it.
func isNoSpace(err error) bool {
	return log.IsNoSpace(err) || (!errors.Is(err, log.ErrStorage) &&
		(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)))
}

// report records the outcome of a write to a partition's log.
func (h *storageHealth) report(err error) {
	if err == nil || !isStorageError(err) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sticky := !isNoSpace(err)
	if h.failed && (h.sticky || !sticky) {
		return
	}
	h.sticky = h.sticky || sticky
	h.err = err
	if !h.failed {
		h.failed = true
		if sticky {
			h.logger.Error("a write to the log dirs failed: this broker asks to be fenced until it restarts", "err", err)
		} else {
			h.logger.Error("the disk is full: this broker asks to be fenced until its log dirs take writes again", "err", err)
		}
		h.notifyLocked()
	}
	if !h.sticky && !h.probing {
		h.probing = true
		go h.probe()
	}
}

func (h *storageHealth) notifyLocked() {
	if fn, failed := h.onChange, h.failed; fn != nil {
		go fn(failed)
	}
}

// probe waits until every log dir takes a write, then clears the failure
// (unless a sticky one came meanwhile).
func (h *storageHealth) probe() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		err := h.writable()
		h.mu.Lock()
		if h.sticky {
			h.probing = false
			h.mu.Unlock()
			return
		}
		if err == nil {
			h.failed, h.err, h.probing = false, nil, false
			h.logger.Info("the log dirs take writes again: this broker asks to be unfenced")
			h.notifyLocked()
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// writable allocates probeBytes in a file in each log dir and removes it.
func (h *storageHealth) writable() error {
	for _, dir := range h.dirs {
		path := filepath.Join(dir, ".strata-storage-probe")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = unix.Fallocate(int(f.Fd()), 0, 0, probeBytes)
		if errors.Is(err, unix.EOPNOTSUPP) {
			_, err = f.WriteAt(make([]byte, probeBytes), 0)
		}
		if err == nil {
			err = f.Sync()
		}
		cerr := f.Close()
		rerr := os.Remove(path)
		if err = errors.Join(err, cerr, rerr); err != nil {
			return fmt.Errorf("probe %s: %w", dir, err)
		}
	}
	return nil
}
