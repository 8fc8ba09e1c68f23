package log

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/strata-io/strata/internal/record"
)

// recoverResult says what a segment scan found.
type recoverResult struct {
	nextOffset     int64 // offset after the last valid batch (base if none)
	validBytes     int64
	truncatedBytes int64
	batches        int
	reason         error // why the scan stopped early, nil at a clean end
}

// recover scans the whole segment batch by batch (header, length, CRC,
// offsets increasing), rebuilds both indexes from what it reads, and
// truncates the file after the last valid batch: Kafka's LogSegment.recover.
// The segment must be open with writable indexes. Caller holds the Log's
// locks (or owns the Log, during Open).
func (s *segment) recover() (recoverResult, error) {
	res := recoverResult{nextOffset: s.baseOffset}
	st, err := s.file.Stat()
	if err != nil {
		return res, fmt.Errorf("stat segment %s: %w", s.path(logSuffix), err)
	}
	fileSize := st.Size()
	s.resetIndexState()

	r := bufio.NewReaderSize(io.NewSectionReader(s.file, 0, fileSize), 1<<20)
	var buf []byte
	pos := int64(0)
	for pos < fileSize {
		b, err := readBatch(r, fileSize-pos, &buf)
		if err == nil {
			err = s.checkOffsets(b, res.nextOffset)
		}
		if err != nil {
			res.reason = err
			break
		}
		// A full disk fails the start with ENOSPC rather than SIGBUS.
		if err := s.reserveIndexes(1); err != nil {
			return res, fmt.Errorf("recover segment %s: %w", s.path(logSuffix), err)
		}
		s.indexBatch(b, pos)
		res.nextOffset = b.NextOffset()
		res.batches++
		pos += int64(b.Size())
	}
	res.validBytes = pos
	res.truncatedBytes = fileSize - pos
	if res.truncatedBytes > 0 {
		if err := s.file.Truncate(pos); err != nil {
			return res, fmt.Errorf("truncate segment %s: %w", s.path(logSuffix), err)
		}
	}
	s.size.Store(pos)
	return res, nil
}

// readBatch reads and validates the next batch from r, which has remaining
// bytes left in the file. buf is reused across calls.
func readBatch(r *bufio.Reader, remaining int64, buf *[]byte) (record.Batch, error) {
	if remaining < record.HeaderSize {
		return nil, fmt.Errorf("%w: %d trailing bytes", record.ErrTruncated, remaining)
	}
	hdr, err := r.Peek(record.HeaderSize)
	if err != nil {
		return nil, err
	}
	if err := record.CheckHeader(hdr); err != nil {
		return nil, err
	}
	size := record.Batch(hdr).Size()
	if int64(size) > remaining {
		return nil, fmt.Errorf("%w: batch of %d bytes, %d left in file", record.ErrTruncated, size, remaining)
	}
	if cap(*buf) < size {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if err := record.Batch(b).Validate(); err != nil {
		return nil, err
	}
	return record.Batch(b), nil
}

var errOffsetOrder = errors.New("log: batch offsets out of order")

// checkOffsets verifies that a scanned batch belongs at this point of the
// segment: at or after the previous batch's end, and within the 32-bit
// relative-offset range the indexes can hold.
func (s *segment) checkOffsets(b record.Batch, next int64) error {
	if b.BaseOffset() < next {
		return fmt.Errorf("%w: base offset %d, expected at least %d", errOffsetOrder, b.BaseOffset(), next)
	}
	if b.LastOffset()-s.baseOffset > math.MaxInt32 || b.LastOffset() < b.BaseOffset() {
		return fmt.Errorf("%w: last offset %d does not fit segment %d", errOffsetOrder, b.LastOffset(), s.baseOffset)
	}
	return nil
}

// resetIndexState empties both indexes and the appender's derived state
// before a rebuild.
func (s *segment) resetIndexState() {
	s.offsets.truncateEntries(0)
	s.times.truncateEntries(0)
	s.maxTimestamp.Store(-1)
	s.offsetOfMaxTimestamp.Store(s.baseOffset)
	s.bytesSinceIndexEntry = 0
	s.rollingTimestamp = -1
}

// scanTail walks batch headers from the last offset-index entry to the end of
// the file, to find the next offset of a segment trusted after a clean
// shutdown, and restores the appender state. It fails if the headers do not
// end exactly at the end of the file; the caller then recovers the segment.
func (s *segment) scanTail() (nextOffset int64, err error) {
	var buf [record.HeaderSize]byte
	size := s.size.Load()
	lastOff, pos, ok := s.offsets.lastEntry()
	nextOffset = s.baseOffset
	if ok {
		nextOffset = lastOff // corrected by the header read below
	}
	s.bytesSinceIndexEntry = 0
	for pos < size {
		b, err := s.readHeader(pos, buf[:])
		if err != nil {
			return 0, err
		}
		if pos+int64(b.Size()) > size {
			return 0, fmt.Errorf("%w: batch at %d passes the end of the file", record.ErrTruncated, pos)
		}
		if ts := b.MaxTimestamp(); ts > s.maxTimestamp.Load() {
			s.maxTimestamp.Store(ts)
			s.offsetOfMaxTimestamp.Store(b.LastOffset())
		}
		s.bytesSinceIndexEntry += b.Size()
		nextOffset = b.NextOffset()
		pos += int64(b.Size())
	}
	if size > 0 {
		first, err := s.readHeader(0, buf[:])
		if err != nil {
			return 0, err
		}
		s.rollingTimestamp = first.MaxTimestamp()
	}
	return nextOffset, nil
}

// indexesSane is Kafka's index sanity check plus one more: both files hold a
// whole number of entries, entries stay inside the segment, and the last
// offset entry points at a batch whose last offset it names.
func (s *segment) indexesSane() bool {
	size := s.size.Load()
	if n := s.offsets.entries.Load(); n > 0 {
		off, pos, _ := s.offsets.lastEntry()
		if off < s.baseOffset || pos >= size {
			return false
		}
		if n > 1 {
			prevOff, prevPos := s.offsets.at(n - 2)
			if prevOff >= off || prevPos >= pos {
				return false
			}
		}
		var buf [record.HeaderSize]byte
		b, err := s.readHeader(pos, buf[:])
		if err != nil || b.LastOffset() != off {
			return false
		}
	}
	if n := s.times.entries.Load(); n > 1 {
		ts, off := s.times.at(n - 1)
		prevTS, prevOff := s.times.at(n - 2)
		if ts <= prevTS || off < prevOff || off < s.baseOffset {
			return false
		}
	}
	return true
}

// rebuildIndexes recreates both index files from the segment's data, for a
// closed segment whose indexes are missing or fail the sanity check. It
// leaves the segment's data alone: a corrupt batch in a segment older than
// the recovery point is reported, not truncated.
func (s *segment) rebuildIndexes(active bool) error {
	if err := s.createIndexes(); err != nil {
		return err
	}
	var buf [record.HeaderSize]byte
	s.resetIndexState()
	size := s.size.Load()
	for pos := int64(0); pos < size; {
		b, err := s.readHeader(pos, buf[:])
		if err != nil || pos+int64(b.Size()) > size {
			return fmt.Errorf("rebuild indexes of %s: bad batch at %d: %v", s.path(logSuffix), pos, err)
		}
		if err := s.reserveIndexes(1); err != nil {
			return fmt.Errorf("rebuild indexes of %s: %w", s.path(logSuffix), err)
		}
		s.indexBatch(b, pos)
		pos += int64(b.Size())
	}
	if !active {
		if err := s.seal(); err != nil {
			return err
		}
	}
	// The rebuilt files replace removed ones: until they are synced, a
	// power loss may leave them empty, and an empty index passes the
	// sanity check.
	if err := s.offsets.flush(); err != nil {
		return err
	}
	return s.times.flush()
}
