package log

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/strata-io/strata/internal/record"
)

// Region is a byte range of a segment file holding whole batches, for the
// zero-copy writer to send with sendfile(2) at Pos. A deleted segment's file
// stays open for file.delete.delay.ms, so a Region outlives the call that
// returned it by that long.
type Region struct {
	File *os.File
	Pos  int64
	Len  int64
}

// Read returns the batches holding offset and the ones after it, up to
// maxBytes and below maxOffset (the high watermark for consumers, the log end
// offset for followers), ending on a batch boundary. The first batch is
// returned whole even when it is larger than maxBytes (KIP-74), and may start
// before offset: clients skip the records they did not ask for. A read never
// spans two segments, as in Kafka. An empty Region means nothing is there yet.
//
// ErrOffsetOutOfRange: offset is below the log start offset or beyond the log
// end offset.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64) (Region, error) {
	leo := l.logEndOffset.Load()
	if offset < l.logStartOffset.Load() || offset > leo {
		return Region{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, l.logStartOffset.Load(), leo)
	}
	maxOffset = min(maxOffset, leo)
	if offset >= maxOffset {
		return Region{}, nil
	}
	var buf [record.HeaderSize]byte
	l.structMu.RLock()
	defer l.structMu.RUnlock()
	if l.closed.Load() {
		return Region{}, ErrClosed
	}
	// Retention may have moved the start while this call waited for the
	// lock: reading from the new first segment would skip ahead silently.
	if start := l.logStartOffset.Load(); offset < start {
		return Region{}, fmt.Errorf("%w: %d is below the log start offset %d", ErrOffsetOutOfRange, offset, start)
	}
	segs := *l.segs.Load()
	for i := segmentFor(segs, offset); i < len(segs) && segs[i].baseOffset < maxOffset; i++ {
		s := segs[i]
		if err := s.open(false); err != nil {
			return Region{}, err
		}
		limit := s.size.Load()
		if i+1 == len(segs) || segs[i+1].baseOffset > maxOffset {
			// maxOffset falls in this segment: stop at its batch. This
			// also keeps out batches appended after leo was loaded.
			mpos, _, err := s.findBatch(maxOffset, limit, buf[:])
			if err != nil {
				return Region{}, err
			}
			if mpos >= 0 {
				limit = mpos
			}
		}
		pos, b, err := s.findBatch(offset, limit, buf[:])
		if err != nil {
			return Region{}, err
		}
		if pos < 0 {
			continue // offset is in a gap at this segment's end
		}
		end := pos + int64(b.Size())
		if want := pos + int64(maxBytes); want > end && end < limit {
			if end, err = s.batchEnd(end, min(want, limit), buf[:]); err != nil {
				return Region{}, err
			}
		}
		return Region{File: s.file.OS(), Pos: pos, Len: end - pos}, nil
	}
	return Region{}, nil
}

// segmentFor returns the index of the segment holding offset: the last one
// whose base offset is <= offset (0 if offset precedes them all).
func segmentFor(segs []*segment, offset int64) int {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].baseOffset > offset })
	return max(i-1, 0)
}

// TimestampOffset is a record found by a timestamp lookup.
type TimestampOffset struct {
	Offset    int64
	Timestamp int64
}

// OffsetForTimestamp finds the first record, at or after the log start
// offset, whose timestamp is >= ts: the first segment whose largest timestamp
// reaches ts, then its time index, its offset index, a scan of batch headers
// for the first batch whose max timestamp reaches ts, and the records of that
// batch (Kafka's UnifiedLog.fetchOffsetByTimestamp). Timestamps need not grow
// with offsets. ok is false when no record qualifies.
//
// The records are streamed, keys and values skipped, never decompressed
// whole. budget, if not nil, is how many bytes the lookup may decompress; it
// is decremented by what was. A batch that would take more (a compression
// bomb, or a request that has spent its budget) is answered with its first
// offset at or after the log start and its max timestamp: at or before the
// exact answer, so a consumer that starts there misses nothing. Kafka
// decompresses the whole batch (FileRecords.searchForTimestamp); a stored
// batch may decompress to record.MaxDecompressedSize, which no lookup should
// cost.
func (l *Log) OffsetForTimestamp(ts int64, budget *int64) (TimestampOffset, bool, error) {
	l.structMu.RLock()
	defer l.structMu.RUnlock()
	if l.closed.Load() {
		return TimestampOffset{}, false, ErrClosed
	}
	start := l.logStartOffset.Load()
	segs := *l.segs.Load()
	for i := segmentFor(segs, start); i < len(segs); i++ {
		s := segs[i]
		if err := s.open(false); err != nil {
			return TimestampOffset{}, false, err
		}
		if s.maxTimestamp.Load() < ts {
			continue
		}
		found, ok, err := s.findTimestamp(ts, start, budget)
		if err != nil || ok {
			return found, ok, err
		}
	}
	return TimestampOffset{}, false, nil
}

func (s *segment) findTimestamp(ts, startOffset int64, budget *int64) (TimestampOffset, bool, error) {
	var hdr [record.HeaderSize]byte
	limit := s.size.Load()
	pos := s.offsets.lookup(max(s.times.lookup(ts), startOffset))
	for pos < limit {
		b, err := s.readHeader(pos, hdr[:])
		if err != nil {
			return TimestampOffset{}, false, err
		}
		size := b.Size()
		if b.MaxTimestamp() >= ts && b.LastOffset() >= startOffset {
			found, ok, err := s.firstRecordAtOrAfter(pos, size, ts, startOffset, budget)
			if err != nil || ok {
				return found, ok, err
			}
		}
		pos += int64(size)
	}
	return TimestampOffset{}, false, nil
}

// firstRecordAtOrAfter reads the batch at pos and returns its first record
// whose timestamp is >= ts and offset >= minOffset, decompressing no more
// than budget allows (see OffsetForTimestamp); past that it answers with
// the batch's first offset >= minOffset and its max timestamp.
func (s *segment) firstRecordAtOrAfter(pos int64, size int, ts, minOffset int64, budget *int64) (TimestampOffset, bool, error) {
	buf := make([]byte, size)
	if _, err := s.file.OS().ReadAt(buf, pos); err != nil {
		return TimestampOffset{}, false, fmt.Errorf("read batch at %d of %s: %w", pos, s.path(logSuffix), err)
	}
	b := record.Batch(buf)
	limit := record.MaxDecompressedSize
	if budget != nil {
		limit = int(min(int64(limit), max(*budget, 0)))
	}
	off, t, ok, inflated, err := b.FindTimestamp(ts, minOffset, limit)
	if budget != nil {
		*budget -= inflated
	}
	switch {
	case errors.Is(err, record.ErrDecompressLimit):
		return TimestampOffset{Offset: max(b.BaseOffset(), minOffset), Timestamp: b.MaxTimestamp()}, true, nil
	case err != nil && !errors.Is(err, record.ErrCorrupt):
		// Records that contradict their batch: on disk, that is
		// corruption, whatever the produce path would call it.
		return TimestampOffset{}, false, fmt.Errorf("%w: records of batch at %d of %s: %v", record.ErrCorrupt, pos, s.path(logSuffix), err)
	case err != nil:
		return TimestampOffset{}, false, fmt.Errorf("records of batch at %d of %s: %w", pos, s.path(logSuffix), err)
	}
	return TimestampOffset{Offset: off, Timestamp: t}, ok, nil
}

// OffsetForMaxTimestamp returns the first record with the largest timestamp
// in the log (ListOffsets timestamp -3, KIP-734). ok is false for an empty
// log. budget bounds decompression as for OffsetForTimestamp.
func (l *Log) OffsetForMaxTimestamp(budget *int64) (TimestampOffset, bool, error) {
	l.structMu.RLock()
	defer l.structMu.RUnlock()
	if l.closed.Load() {
		return TimestampOffset{}, false, ErrClosed
	}
	var best *segment
	segs := *l.segs.Load()
	for i := segmentFor(segs, l.logStartOffset.Load()); i < len(segs); i++ {
		s := segs[i]
		if err := s.open(false); err != nil {
			return TimestampOffset{}, false, err
		}
		if ts := s.maxTimestamp.Load(); ts >= 0 && (best == nil || ts > best.maxTimestamp.Load()) {
			best = s
		}
	}
	if best == nil {
		return TimestampOffset{}, false, nil
	}
	// The batch whose last offset is offsetOfMaxTimestamp holds the record.
	var hdr [record.HeaderSize]byte
	ts := best.maxTimestamp.Load()
	pos, b, err := best.findBatch(best.offsetOfMaxTimestamp.Load(), best.size.Load(), hdr[:])
	if err != nil || pos < 0 {
		return TimestampOffset{}, false, err
	}
	found, ok, err := best.firstRecordAtOrAfter(pos, b.Size(), ts, 0, budget)
	if err == nil && !ok {
		// LogAppendTime batches, or a batch whose records disagree with
		// its header: report the batch, as Kafka did before KAFKA-16310.
		found, ok = TimestampOffset{Offset: best.offsetOfMaxTimestamp.Load(), Timestamp: ts}, true
	}
	return found, ok, err
}

// Scan calls fn with every batch from offset from to the log end offset, in
// order, reading the segment files in chunks of about 1 MiB. It is how the
// broker replays its internal logs (metadata, consumer offsets) at start; fn
// must not keep the batch, whose buffer is reused.
func (l *Log) Scan(from int64, fn func(record.Batch) error) error {
	var buf []byte
	for off := max(from, l.LogStartOffset()); off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			return fmt.Errorf("scan at %d: %w", off, err)
		}
		if r.Len == 0 {
			return nil
		}
		if int64(cap(buf)) < r.Len {
			buf = make([]byte, r.Len)
		}
		buf = buf[:r.Len]
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			return fmt.Errorf("scan at %d: %w", off, err)
		}
		var ferr error
		err = record.Split(buf, func(b record.Batch) bool {
			off = b.NextOffset()
			ferr = fn(b)
			return ferr == nil
		})
		if err != nil {
			return fmt.Errorf("scan at %d: %w", off, err)
		}
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
