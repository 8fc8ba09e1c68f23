package broker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/strata-io/strata/internal/log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const leaderEpochCheckpointFile = "leader-epoch-checkpoint"

// errBadEpochCheckpoint marks a leader-epoch-checkpoint that does not parse.
var errBadEpochCheckpoint = errors.New("broker: malformed leader-epoch-checkpoint")

// epochEntry is one line of leader-epoch-checkpoint: the leader epoch and
// the first offset written in it (Kafka's EpochEntry).
type epochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is Kafka's LeaderEpochFileCache: which offsets each leader
// epoch wrote, epochs and start offsets both increasing. Safe for concurrent
// use; the owner serializes writes of the file.
type epochCache struct {
	mu      sync.RWMutex
	entries []epochEntry
}

// EndOffsetFor answers OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor does, returning the epoch found and its
// end offset:
//   - epoch -1 (undefined), a newer epoch than any known, or an empty cache:
//     (-1, -1);
//   - the latest epoch: (epoch, logEndOffset);
//   - an older epoch: the largest known epoch <= it, with the start offset of
//     the next higher epoch as its end;
//   - an epoch older than the earliest known: (epoch, start offset of the
//     earliest), since its data is gone from the log.
func (c *epochCache) EndOffsetFor(epoch int32, logEndOffset int64) (int32, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := len(c.entries)
	switch {
	case epoch == -1 || n == 0:
		return -1, -1
	case c.entries[n-1].Epoch == epoch:
		return epoch, logEndOffset
	case epoch > c.entries[n-1].Epoch:
		return -1, -1
	}
	// higher is the first entry with a larger epoch; it exists.
	higher := 0
	for higher < n && c.entries[higher].Epoch <= epoch {
		higher++
	}
	if higher == 0 {
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// startOf is the start offset of epoch, 0 when the cache does not have it.
func (c *epochCache) startOf(epoch int32) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.entries {
		if e.Epoch == epoch {
			return e.StartOffset
		}
	}
	return 0
}

// assign records that epoch starts at startOffset, dropping entries it
// contradicts (an epoch or start offset not below the new one), as Kafka's
// assign does. It reports whether the cache changed.
func (c *epochCache) assign(epoch int32, startOffset int64) bool {
	if epoch < 0 || startOffset < 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if last.Epoch == epoch && last.StartOffset <= startOffset {
			return false
		}
	}
	keep := len(c.entries)
	for keep > 0 && (c.entries[keep-1].Epoch >= epoch || c.entries[keep-1].StartOffset >= startOffset) {
		keep--
	}
	c.entries = append(c.entries[:keep], epochEntry{epoch, startOffset})
	return true
}

// truncateFromStart follows the log start offset moving up (Kafka's
// truncateFromStart): entries that start at or below offset collapse into
// the latest of them, which now starts at offset. It reports whether the
// cache changed.
func (c *epochCache) truncateFromStart(offset int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.entries) && c.entries[i].StartOffset <= offset {
		i++
	}
	if i == 0 || (i == 1 && c.entries[0].StartOffset == offset) {
		return false
	}
	last := epochEntry{c.entries[i-1].Epoch, offset}
	c.entries = append([]epochEntry{last}, c.entries[i:]...)
	return true
}

// truncateFromEnd removes the entries that start at or after offset, for a
// log truncated to offset (Kafka's truncateFromEnd). It reports whether the
// cache changed.
func (c *epochCache) truncateFromEnd(offset int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := len(c.entries)
	for keep > 0 && c.entries[keep-1].StartOffset >= offset {
		keep--
	}
	if keep == len(c.entries) {
		return false
	}
	c.entries = c.entries[:keep]
	return true
}

// clear removes every entry (Kafka's clearAndFlush, for a log emptied by a
// truncation below its start). It reports whether the cache changed.
func (c *epochCache) clear() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.entries)
	c.entries = nil
	return n > 0
}

// restore replaces the entries with a snapshot taken earlier.
func (c *epochCache) restore(entries []epochEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = entries
}

func (c *epochCache) snapshot() []epochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]epochEntry(nil), c.entries...)
}

// encodeEpochCheckpoint writes Kafka's checkpoint text format, version 0.
func encodeEpochCheckpoint(entries []epochEntry) []byte {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&buf, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return buf.Bytes()
}

// readEpochCheckpoint reads dir's leader-epoch-checkpoint; a missing file is
// os.ErrNotExist.
func readEpochCheckpoint(dir string) ([]epochEntry, error) {
	path := filepath.Join(dir, leaderEpochCheckpointFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(what string) error { return fmt.Errorf("%w %s: %s", errBadEpochCheckpoint, path, what) }
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	if v, ok := line(); !ok || v != "0" {
		return nil, bad("unsupported version")
	}
	cs, _ := line()
	count, err := strconv.Atoi(cs)
	if err != nil || count < 0 {
		return nil, bad("bad entry count")
	}
	entries := make([]epochEntry, 0, min(count, 1024))
	for i := 0; i < count; i++ {
		l, ok := line()
		if !ok {
			return nil, bad(fmt.Sprintf("expected %d entries, found %d", count, i))
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, bad(fmt.Sprintf("entry %q", l))
		}
		epoch, eerr := strconv.ParseInt(f[0], 10, 32)
		off, oerr := strconv.ParseInt(f[1], 10, 64)
		if eerr != nil || oerr != nil || epoch < 0 || off < 0 {
			return nil, bad(fmt.Sprintf("entry %q", l))
		}
		if n := len(entries); n > 0 && (int32(epoch) <= entries[n-1].Epoch || off < entries[n-1].StartOffset) {
			return nil, bad(fmt.Sprintf("entry %q out of order", l))
		}
		entries = append(entries, epochEntry{int32(epoch), off})
	}
	if rest, ok := line(); ok && rest != "" {
		return nil, bad("trailing data")
	}
	return entries, nil
}

// loadEpochsLocked reads leader-epoch-checkpoint, or, when it is missing or
// unreadable, starts the cache at epoch 0 from the log start offset: a single
// node has led the partition in epoch 0 since it was created and stamps that
// epoch on every batch. Then it follows the log start offset.
func (p *Partition) loadEpochsLocked() error {
	dir := p.Log.Dir()
	entries, err := readEpochCheckpoint(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		p.logger.Warn("rewriting unreadable leader-epoch-checkpoint", "err", err)
	default:
		p.epochs.mu.Lock()
		p.epochs.entries = entries
		p.epochs.mu.Unlock()
	}
	changed := err != nil
	// A crash after a follower wrote the checkpoint and before its
	// batches reached the disk, or after a truncation of the log and
	// before the checkpoint's, leaves entries above the log end (Kafka's
	// LogLoader truncates the cache from the end the same way).
	changed = p.epochs.truncateFromEnd(p.Log.LogEndOffset()) || changed
	if len(p.epochs.entries) == 0 {
		changed = p.epochs.assign(0, p.Log.LogStartOffset()) || changed
	}
	changed = p.epochs.truncateFromStart(p.Log.LogStartOffset()) || changed
	if n := len(p.epochs.entries); n > 0 {
		p.leaderEpoch.Store(p.epochs.entries[n-1].Epoch)
	}
	if !changed {
		return nil
	}
	return writeFileAtomic(p.Log.FS(), dir, leaderEpochCheckpointFile, encodeEpochCheckpoint(p.epochs.snapshot()))
}

// syncEpochsLocked moves the epoch cache's start to the log start offset
// (retention and DeleteRecords move it) and rewrites the checkpoint if that
// changed anything. Kafka does this as segments are deleted; strata does it
// lazily at rolls and on close.
func (p *Partition) syncEpochsLocked() error {
	if !p.epochs.truncateFromStart(p.Log.LogStartOffset()) {
		return nil
	}
	return writeFileAtomic(p.Log.FS(), p.Log.Dir(), leaderEpochCheckpointFile, encodeEpochCheckpoint(p.epochs.snapshot()))
}

// EndOffsetForEpoch is the end offset of leader epoch epoch in this
// partition's log and the epoch it belongs to, for OffsetForLeaderEpoch
// (Kafka's UnifiedLog.endOffsetForEpoch over LeaderEpochFileCache.endOffsetFor).
// (-1, -1) means undefined: the handler answers UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET with no error. On a single node the only epoch is 0:
// epoch 0 gives (0, log end offset), a later epoch (-1, -1).
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return p.epochs.EndOffsetFor(epoch, p.Log.LogEndOffset())
}

// LeaderEpoch is the leader epoch this node leads the partition in: the
// epoch stamped on every batch it appends (0 until BecomeLeader).
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// BecomeLeader starts leader epoch epoch at the log end offset, as Kafka's
// Partition.makeLeader assigns the new epoch's start offset in the epoch
// cache, and stamps it on every batch appended from now on. An epoch not
// above the current one changes nothing. The checkpoint is written before
// the first batch of the epoch can be appended.
func (p *Partition) BecomeLeader(epoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if epoch <= p.leaderEpoch.Load() {
		return nil
	}
	if p.closed {
		return log.ErrClosed
	}
	return p.becomeLeaderLocked(epoch)
}

// becomeLeaderLocked is BecomeLeader for a newer epoch. Requires mu.
func (p *Partition) becomeLeaderLocked(epoch int32) error {
	if p.epochs.assign(epoch, p.Log.LogEndOffset()) {
		if err := writeFileAtomic(p.Log.FS(), p.Log.Dir(), leaderEpochCheckpointFile, encodeEpochCheckpoint(p.epochs.snapshot())); err != nil {
			return err
		}
	}
	p.leaderEpoch.Store(epoch)
	p.follow.active = false
	p.wakeLocked()
	return nil
}

// LatestEpoch is the newest leader epoch in the epoch cache, the epoch of
// the log's last batch as a follower sends it (LastFetchedEpoch); -1 when
// the cache is empty.
func (p *Partition) LatestEpoch() int32 {
	p.epochs.mu.RLock()
	defer p.epochs.mu.RUnlock()
	if n := len(p.epochs.entries); n > 0 {
		return p.epochs.entries[n-1].Epoch
	}
	return -1
}
