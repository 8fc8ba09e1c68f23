package log

import (
	"fmt"
	"slices"
	"time"
)

// TruncateTo removes every offset >= offset, for a follower whose log
// diverged from its leader's. Truncation happens on batch boundaries: if
// offset falls inside a batch, that whole batch goes and the log end offset
// becomes its base offset (Kafka's LogSegment.truncateTo). An offset below
// the first segment empties the log and restarts it at offset.
func (l *Log) TruncateTo(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.flusher.failed(); err != nil {
		return err
	}
	if offset >= l.logEndOffset.Load() {
		return nil
	}
	// No fsync may run across the truncation (see flusher.syncMu).
	l.flusher.syncMu.Lock()
	defer l.flusher.syncMu.Unlock()
	segs := *l.segs.Load()
	if offset < segs[0].baseOffset || offset < l.logStartOffset.Load() {
		return l.truncateFullyLocked(offset)
	}
	l.structMu.Lock()
	keep := segs[:segmentFor(segs, offset)+1]
	drop := segs[len(keep):]
	s := keep[len(keep)-1]
	newEnd, err := l.truncateSegment(s, offset)
	if err != nil {
		l.structMu.Unlock()
		return l.flusher.fail(err)
	}
	kept := slices.Clone(keep)
	l.segs.Store(&kept)
	l.logEndOffset.Store(newEnd)
	l.highWatermark.Store(min(l.highWatermark.Load(), newEnd))
	l.flusher.clamp(newEnd)
	l.structMu.Unlock()
	for _, d := range drop {
		l.scheduleDelete(d)
	}
	l.logger.Info("truncated log", "offset", offset, "log_end_offset", newEnd, "segments_deleted", len(drop))
	return nil
}

// TruncateFullyAndStartAt empties the log and restarts it at offset
// (Kafka's UnifiedLog.truncateFullyAndStartAt), for a follower whose log
// ends below its leader's log start: what it has is gone from the leader.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.flusher.failed(); err != nil {
		return err
	}
	l.flusher.syncMu.Lock()
	defer l.flusher.syncMu.Unlock()
	return l.truncateFullyLocked(offset)
}

// truncateSegment cuts s before the batch holding offset and makes it the
// active segment. Returns the new log end offset. Caller holds structMu.
func (l *Log) truncateSegment(s *segment, offset int64) (int64, error) {
	if err := s.open(true); err != nil {
		return 0, err
	}
	if !s.offsets.writable {
		// A sealed segment becomes active again: map its indexes
		// writable at full size, as Kafka's resizeIndexes.
		if err := s.closeIndexes(); err != nil {
			return 0, err
		}
		if err := s.openIndexes(true); err != nil {
			return 0, err
		}
	}
	var buf [64]byte
	size := s.size.Load()
	pos, b, err := s.findBatch(offset, size, buf[:])
	if err != nil {
		return 0, err
	}
	newEnd := offset
	if pos >= 0 {
		newEnd = min(offset, b.BaseOffset())
	} else {
		pos = size
	}
	if err := s.file.Truncate(pos); err != nil {
		return 0, fmt.Errorf("truncate segment %s: %w", s.path(logSuffix), err)
	}
	// Make the new size durable: a power loss must not bring back the
	// truncated batches, whose CRCs are valid, for recovery to keep (a
	// follower's diverged records, resurrected above the epoch cache).
	if err := s.syncData(); err != nil {
		return 0, err
	}
	s.size.Store(pos)
	s.offsets.truncateTo(newEnd)
	s.times.truncateTo(newEnd)
	if err := s.recomputeMaxTimestamp(pos, buf[:]); err != nil {
		return 0, err
	}
	_, lastPos, _ := s.offsets.lastEntry()
	s.bytesSinceIndexEntry = int(pos - lastPos)
	if pos == 0 {
		s.rollingTimestamp = -1
	}
	return newEnd, nil
}

// recomputeMaxTimestamp sets the segment's max timestamp and its offset
// from the batches below end, after a truncation. The time index is sparse:
// its last entry is only a lower bound, and a segment whose max timestamp
// was left too low is skipped by timestamp lookups (ListOffsets) and
// retention. So the headers after the batch of that entry are scanned.
func (s *segment) recomputeMaxTimestamp(end int64, buf []byte) error {
	maxTs, maxOff := int64(-1), s.baseOffset
	var pos int64
	if ts, off, ok := s.times.lastEntry(); ok {
		maxTs, maxOff = ts, off
		pos = s.offsets.lookup(off)
	}
	for pos < end {
		b, err := s.readHeader(pos, buf)
		if err != nil {
			return fmt.Errorf("segment %s at %d: %w", s.path(logSuffix), pos, err)
		}
		if ts := b.MaxTimestamp(); ts > maxTs {
			maxTs, maxOff = ts, b.LastOffset()
		}
		pos += int64(b.Size())
	}
	s.maxTimestamp.Store(maxTs)
	s.offsetOfMaxTimestamp.Store(maxOff)
	return nil
}

// truncateFullyLocked deletes every segment and restarts the log empty at
// offset (Kafka's truncateFullyAndStartAt). Caller holds appendMu and
// syncMu.
func (l *Log) truncateFullyLocked(offset int64) error {
	old := *l.segs.Load()
	// Rename first: the new segment may have the same base offset as an
	// old one, and must not be renamed away with it.
	for _, s := range old {
		if err := s.renameDeleted(); err != nil {
			return l.flusher.fail(err)
		}
	}
	ns, err := l.newActiveSegment(offset)
	if err != nil {
		return err
	}
	l.structMu.Lock()
	segs := []*segment{ns}
	l.segs.Store(&segs)
	l.logEndOffset.Store(offset)
	l.logStartOffset.Store(offset)
	l.highWatermark.Store(offset)
	l.flusher.clamp(offset)
	l.flusher.recoveryPoint.Store(offset)
	l.flusher.mu.Lock()
	l.flusher.durable = offset
	l.flusher.mu.Unlock()
	l.structMu.Unlock()
	for _, s := range old {
		l.scheduleRemoval(s)
	}
	l.logger.Info("truncated log fully", "offset", offset)
	return nil
}

// DeleteRecordsBefore makes offset the new log start offset (DeleteRecords)
// and deletes the segments wholly below it. offset may not pass the high
// watermark. Returns the log start offset after the call.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	if hw := l.highWatermark.Load(); offset > hw {
		return 0, fmt.Errorf("%w: cannot move the log start offset to %d past the high watermark %d", ErrOffsetOutOfRange, offset, hw)
	}
	if offset > l.logStartOffset.Load() {
		l.logStartOffset.Store(offset)
	}
	l.deletePrefix(func(_ *segment, next int64) bool { return next <= l.logStartOffset.Load() })
	return l.logStartOffset.Load(), nil
}

// DeleteOldSegments applies retention.ms, retention.bytes and the log start
// offset, deleting whole closed segments from the oldest (Kafka's
// UnifiedLog.deleteOldSegments). The active segment is never deleted, nor a
// segment holding offsets at or above the high watermark. Returns how many
// segments it deleted.
func (l *Log) DeleteOldSegments(now time.Time) (int, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	cfg := l.cfg.Load()
	n := 0
	if cfg.RetentionMs >= 0 {
		nowMs := now.UnixMilli()
		n += l.deletePrefix(func(s *segment, _ int64) bool {
			return nowMs-s.largestTimestamp() > cfg.RetentionMs
		})
	}
	if cfg.RetentionBytes >= 0 {
		total, err := l.Size()
		if err != nil {
			return n, err
		}
		excess := total - cfg.RetentionBytes
		n += l.deletePrefix(func(s *segment, _ int64) bool {
			if excess-s.size.Load() < 0 {
				return false
			}
			excess -= s.size.Load()
			return true
		})
	}
	n += l.deletePrefix(func(_ *segment, next int64) bool { return next <= l.logStartOffset.Load() })
	return n, nil
}

// largestTimestamp is the segment's max timestamp, or its file's
// modification time when no batch carries a timestamp (Kafka's
// LogSegment.largestTimestamp).
func (s *segment) largestTimestamp() int64 {
	if ts := s.maxTimestamp.Load(); ts >= 0 {
		return ts
	}
	st, err := s.fsys.Stat(s.path(logSuffix))
	if err != nil {
		return -1
	}
	return st.ModTime().UnixMilli()
}

// deletePrefix deletes the oldest closed segments for which deletable
// (given the segment and the next segment's base offset) holds, stopping at
// the first that does not, at the active segment, at the high watermark, or
// at the recovery point. Caller holds appendMu.
//
// A segment is deleted only once flushed: its removal is not durable until
// the directory is synced, and a power loss before that brings it back. Back
// whole, it is harmless (below the log start offset); back with its tail
// unwritten, recovery would see a hole and cut the log there.
func (l *Log) deletePrefix(deletable func(s *segment, next int64) bool) int {
	segs := *l.segs.Load()
	limit := min(l.highWatermark.Load(), l.flusher.recoveryPoint.Load())
	n := 0
	for ; n < len(segs)-1; n++ {
		next := segs[n+1].baseOffset
		if next > limit {
			break
		}
		if err := segs[n].open(false); err != nil {
			l.logger.Error("cannot open segment for retention", "segment", segs[n].baseOffset, "err", err)
			break
		}
		if !deletable(segs[n], next) {
			break
		}
	}
	if n == 0 {
		return 0
	}
	l.structMu.Lock()
	rest := slices.Clone(segs[n:])
	l.segs.Store(&rest)
	if first := rest[0].baseOffset; first > l.logStartOffset.Load() {
		l.logStartOffset.Store(first)
	}
	l.structMu.Unlock()
	for _, s := range segs[:n] {
		l.scheduleDelete(s)
	}
	l.logger.Info("deleted segments", "count", n, "log_start_offset", l.logStartOffset.Load())
	return n
}

// scheduleDelete renames the segment's files to *.deleted now and removes
// them after file.delete.delay.ms, so fetches holding their files finish.
func (l *Log) scheduleDelete(s *segment) {
	if err := s.renameDeleted(); err != nil {
		l.logger.Error("rename segment for deletion", "segment", s.baseOffset, "err", err)
	}
	l.scheduleRemoval(s)
}

// scheduleRemoval closes and removes a segment's *.deleted files after
// file.delete.delay.ms (at once if the log is closed).
func (l *Log) scheduleRemoval(s *segment) {
	l.deletesMu.Lock()
	defer l.deletesMu.Unlock()
	if l.deletes == nil { // closed
		s.removeDeleted()
		return
	}
	l.deletes[s] = time.AfterFunc(l.cfg.Load().fileDeleteDelay(), func() {
		l.deletesMu.Lock()
		_, ok := l.deletes[s]
		delete(l.deletes, s)
		l.deletesMu.Unlock()
		if ok {
			// A flush that listed this segment before it was deleted
			// may still be syncing it.
			l.flusher.syncMu.Lock()
			defer l.flusher.syncMu.Unlock()
			if err := s.removeDeleted(); err != nil {
				l.logger.Error("remove deleted segment", "segment", s.baseOffset, "err", err)
			}
		}
	})
}
