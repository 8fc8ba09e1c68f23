package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/record"
)

// File name suffixes, as Kafka's LogFileUtils.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	// txnIndexSuffix: the aborted-transaction index package broker
	// writes beside a segment that has aborts (Kafka's TransactionIndex);
	// it goes with its segment when the segment is deleted.
	txnIndexSuffix = ".txnindex"
	deletedSuffix  = ".deleted"
	cleanedSuffix  = ".cleaned"
	swapSuffix     = ".swap"
)

// segmentName is Kafka's file name stem: the base offset in 20 digits.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of a "<20 digits><suffix>" name.
func parseSegmentName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

// segment is one .log file with its .index and .timeindex. Offsets from
// baseOffset up to the next segment's base offset live in it.
//
// Concurrency: the owning Log's appender writes to the active segment while
// holding the append lock and publishes the new size with an atomic store;
// readers see only bytes below size. A closed segment's files are opened
// lazily on first use (many partitions open fast), guarded by openMu.
type segment struct {
	fsys       fs.FS
	dir        string
	baseOffset int64
	cfg        *Config

	openMu  sync.Mutex
	opened  atomic.Bool
	openErr error
	file    fs.File
	offsets offsetIndex
	times   timeIndex

	// size is the committed length of the .log file: every byte below it
	// belongs to a complete, validated batch.
	size atomic.Int64
	// maxTimestamp is the largest batch max timestamp in the segment, -1
	// when empty or unknown; offsetOfMaxTimestamp is the last offset of the
	// batch that first reached it (Kafka's maxTimestampAndOffsetSoFar).
	maxTimestamp         atomic.Int64
	offsetOfMaxTimestamp atomic.Int64

	// Appender state, guarded by Log.appendMu.
	bytesSinceIndexEntry int
	// rollingTimestamp is the max timestamp of the first batch appended, the
	// clock segment.ms runs against (-1: no batch yet); created (unix ms) is
	// the fallback when batches carry no timestamps.
	rollingTimestamp int64
	created          int64
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.baseOffset)+suffix)
}

// newSegment returns an unopened segment for existing files.
func newSegment(fsys fs.FS, dir string, base int64, cfg *Config) *segment {
	s := &segment{fsys: fsys, dir: dir, baseOffset: base, cfg: cfg, rollingTimestamp: -1}
	s.maxTimestamp.Store(-1)
	return s
}

// createSegment creates empty files for a new active segment. Files left at
// that name (by a truncation or an earlier crash) hold no offsets the log
// still has, so they are truncated.
func createSegment(fsys fs.FS, dir string, base int64, cfg *Config) (*segment, error) {
	s := newSegment(fsys, dir, base, cfg)
	f, err := fsys.OpenFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", s.path(logSuffix), err)
	}
	s.file = f
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		if err := fsys.Truncate(s.path(suffix), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Close()
			return nil, fmt.Errorf("reset index %s: %w", s.path(suffix), err)
		}
	}
	if err := s.openIndexes(true); err != nil {
		f.Close()
		return nil, err
	}
	s.opened.Store(true)
	return s, nil
}

// open opens the segment's files if not yet open. active segments map their
// indexes writable at full size; closed ones read-only.
func (s *segment) open(active bool) error {
	if s.opened.Load() {
		return nil
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.opened.Load() {
		return nil
	}
	if s.openErr != nil {
		return s.openErr
	}
	if err := s.openLocked(active); err != nil {
		s.openErr = err
		return err
	}
	s.opened.Store(true)
	return nil
}

func (s *segment) openLocked(active bool) error {
	indexMissing, err := s.openFiles(active)
	if err != nil {
		return err
	}
	if indexMissing || !s.indexesSane() {
		// Kafka rebuilds an index that is missing or fails its sanity
		// check; the data is what counts.
		if err := s.rebuildIndexes(active); err != nil {
			s.closeIndexes()
			s.file.Close()
			return err
		}
	}
	if ts, off, ok := s.times.lastEntry(); ok {
		s.maxTimestamp.Store(ts)
		s.offsetOfMaxTimestamp.Store(off)
	}
	return nil
}

// openForRecovery opens the files with writable indexes (created empty if
// missing) and no checks: the caller recovers the segment, which rebuilds the
// indexes from the data.
func (s *segment) openForRecovery() error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.opened.Load() {
		return nil
	}
	if _, err := s.openFiles(true); err != nil {
		return err
	}
	s.opened.Store(true)
	return nil
}

// createIndexes replaces both index files with empty writable ones.
func (s *segment) createIndexes() error {
	s.closeIndexes()
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		if err := s.fsys.Remove(s.path(suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove index %s: %w", s.path(suffix), err)
		}
	}
	return s.openIndexes(true)
}

// openFiles opens the .log file and both indexes. Writable indexes are
// created when missing; a missing read-only index is reported as
// indexMissing with the .log open and no index open.
func (s *segment) openFiles(active bool) (indexMissing bool, err error) {
	f, err := s.fsys.OpenFile(s.path(logSuffix), os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("open segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("stat segment: %w", err)
	}
	s.file = f
	s.size.Store(st.Size())
	if err := s.openIndexes(active); err != nil {
		if !active && errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		f.Close()
		return false, err
	}
	return false, nil
}

// openIndexes opens both indexes; on failure neither is left open.
func (s *segment) openIndexes(writable bool) error {
	var err error
	if s.offsets, err = openOffsetIndex(s.fsys, s.path(indexSuffix), s.baseOffset, s.cfg.SegmentIndexBytes, writable); err != nil {
		return err
	}
	if s.times, err = openTimeIndex(s.fsys, s.path(timeIndexSuffix), s.baseOffset, s.cfg.SegmentIndexBytes, writable); err != nil {
		s.offsets.close()
		s.offsets = offsetIndex{}
		return err
	}
	return nil
}

// closeIndexes closes whichever indexes are open.
func (s *segment) closeIndexes() error {
	var err error
	if s.offsets.index != nil {
		err = s.offsets.close()
		s.offsets = offsetIndex{}
	}
	if s.times.index != nil {
		if terr := s.times.close(); err == nil {
			err = terr
		}
		s.times = timeIndex{}
	}
	return err
}

// readHeader reads the batch header at pos into buf (len >= HeaderSize) and
// checks it. io.ErrUnexpectedEOF means fewer than HeaderSize bytes remain.
func (s *segment) readHeader(pos int64, buf []byte) (record.Batch, error) {
	buf = buf[:record.HeaderSize]
	// Read through the *os.File, not the fs.File interface: buf is often
	// a caller's stack array, and passing it to an interface method would
	// move it to the heap on every fetch. Reads need no seam.
	if _, err := s.file.OS().ReadAt(buf, pos); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if err := record.CheckHeader(buf); err != nil {
		return nil, err
	}
	return record.Batch(buf), nil
}

// findBatch returns the position and header of the first batch below limit
// whose last offset is >= offset, starting the scan at the index entry for
// offset. pos is -1 when no such batch exists below limit.
func (s *segment) findBatch(offset, limit int64, buf []byte) (int64, record.Batch, error) {
	pos := s.offsets.lookup(offset)
	for pos < limit {
		b, err := s.readHeader(pos, buf)
		if err != nil {
			return -1, nil, fmt.Errorf("segment %s at %d: %w", s.path(logSuffix), pos, err)
		}
		if b.LastOffset() >= offset {
			return pos, b, nil
		}
		pos += int64(b.Size())
	}
	return -1, nil, nil
}

// batchEnd returns the end of the last whole batch that starts at or after
// from and ends at or before limit (from itself if none does). It jumps to
// the last indexed batch before limit and scans the few batches after it.
func (s *segment) batchEnd(from, limit int64, buf []byte) (int64, error) {
	pos := max(s.offsets.lookupPosition(limit), from)
	for pos < limit {
		b, err := s.readHeader(pos, buf)
		if err != nil {
			return 0, fmt.Errorf("segment %s at %d: %w", s.path(logSuffix), pos, err)
		}
		if pos+int64(b.Size()) > limit {
			break
		}
		pos += int64(b.Size())
	}
	return pos, nil
}

// appendBatches writes data (whole batches, offsets assigned) at the end of
// the file in one write, then updates indexes and publishes the new size.
// Caller holds Log.appendMu.
func (s *segment) appendBatches(data []byte) error {
	pos := s.size.Load()
	if err := s.reserveIndexes(countBatches(data)); err != nil {
		if noSpace(err) {
			return fmt.Errorf("%w: %w", errNoSpace, err) // nothing written yet
		}
		return err
	}
	if _, err := s.file.WriteAt(data, pos); err != nil {
		if noSpace(err) {
			// The disk is full: cut what part of the batches was
			// written, and the segment is as it was. Nothing was
			// acknowledged or fsynced, so the log stays usable and
			// takes writes again once space is freed.
			if terr := s.file.Truncate(pos); terr == nil {
				return fmt.Errorf("%w: write segment %s: %w", errNoSpace, s.path(logSuffix), err)
			}
		}
		return fmt.Errorf("write segment %s: %w", s.path(logSuffix), err)
	}
	s.indexBatches(data, pos)
	s.size.Store(pos + int64(len(data)))
	return nil
}

// countBatches counts the whole batches in data.
func countBatches(data []byte) int {
	n := 0
	for len(data) > 0 {
		data = data[record.Batch(data).Size():]
		n++
	}
	return n
}

// reserveIndexes allocates disk blocks behind both indexes for n more
// batches (at most one entry each), plus the time index's final entry
// (seal, close), before anything is written: on a full disk this fails
// with ENOSPC instead of the index store faulting (index.reserve).
func (s *segment) reserveIndexes(n int) error {
	return errors.Join(s.offsets.reserve(n), s.times.reserve(n+1))
}

// indexBatches adds index entries for the batches in data, which start at
// file position pos. Kafka's LogSegment.append: an entry once more than
// index.interval.bytes were written since the last, pointing at the batch.
func (s *segment) indexBatches(data []byte, pos int64) {
	for len(data) > 0 {
		b := record.Batch(data)
		size := b.Size()
		s.indexBatch(b, pos)
		data = data[size:]
		pos += int64(size)
	}
}

func (s *segment) indexBatch(b record.Batch, pos int64) {
	if s.rollingTimestamp < 0 {
		s.rollingTimestamp = b.MaxTimestamp()
	}
	if ts := b.MaxTimestamp(); ts > s.maxTimestamp.Load() {
		s.offsetOfMaxTimestamp.Store(b.LastOffset())
		s.maxTimestamp.Store(ts)
	}
	if s.bytesSinceIndexEntry > s.cfg.IndexIntervalBytes {
		s.offsets.append(b.LastOffset(), pos)
		s.times.maybeAppend(s.maxTimestamp.Load(), s.offsetOfMaxTimestamp.Load(), false)
		s.bytesSinceIndexEntry = 0
	}
	s.bytesSinceIndexEntry += b.Size()
}

// indexFull reports whether either index has no room for another entry.
func (s *segment) indexFull() bool { return s.offsets.isFull() || s.times.isFull() }

// seal finishes a segment that stops being active: the time index gets its
// final entry (so its last entry is the segment's largest timestamp) and both
// indexes are trimmed. Caller holds the structure lock for writing.
func (s *segment) seal() error {
	if ts := s.maxTimestamp.Load(); ts >= 0 {
		s.times.maybeAppend(ts, s.offsetOfMaxTimestamp.Load(), true)
	}
	if err := s.offsets.trim(); err != nil {
		return err
	}
	return s.times.trim()
}

// flush writes the segment's data and indexes to disk.
func (s *segment) flush() error {
	if !s.opened.Load() {
		return nil
	}
	if err := s.syncData(); err != nil {
		return err
	}
	if err := s.offsets.flush(); err != nil {
		return err
	}
	return s.times.flush()
}

// syncData fdatasyncs the .log file only; indexes are rebuilt by recovery.
func (s *segment) syncData() error {
	if err := s.file.Datasync(); err != nil {
		return fmt.Errorf("fsync segment %s: %w", s.path(logSuffix), err)
	}
	return nil
}

// close trims indexes (if active) and closes the files.
func (s *segment) close() error {
	if !s.opened.Load() {
		return nil
	}
	if ts := s.maxTimestamp.Load(); ts >= 0 && s.times.writable {
		s.times.maybeAppend(ts, s.offsetOfMaxTimestamp.Load(), true)
	}
	err := s.closeIndexes()
	if ferr := s.file.Close(); err == nil {
		err = ferr
	}
	s.opened.Store(false)
	return err
}

// renameDeleted renames the segment's files to *.deleted; they are removed
// later (file.delete.delay.ms), so readers holding them can finish.
func (s *segment) renameDeleted() error {
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		p := s.path(suffix)
		if err := s.fsys.Rename(p, p+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rename %s for deletion: %w", p, err)
		}
	}
	return nil
}

// removeDeleted closes the segment and removes its *.deleted files.
func (s *segment) removeDeleted() error {
	err := s.close()
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if rerr := s.fsys.Remove(s.path(suffix) + deletedSuffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}

// noSpace reports whether err is the file system being full (or the
// user's quota spent): a write that may be undone and retried later, not
// a failed device.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
