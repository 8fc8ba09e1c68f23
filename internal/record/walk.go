package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrInvalidTimestamp is a CreateTime record whose timestamp lies outside
// the topic's message.timestamp.before.max.ms / after.max.ms bounds
// (KIP-937); the broker answers INVALID_TIMESTAMP.
var ErrInvalidTimestamp = errors.New("record: timestamp out of range")

// NoTimestamp is Kafka's RecordBatch.NO_TIMESTAMP: a record without a
// timestamp, which no bound applies to.
const NoTimestamp = -1

// Checks are what ValidateRecords checks beyond the records' framing.
type Checks struct {
	// Timestamps turns on KIP-937's bounds: every record's timestamp t
	// (other than NoTimestamp) must satisfy Now-BeforeMaxMs <= t <=
	// Now+AfterMaxMs, as Kafka's LogValidator.validateTimestamp requires
	// of CreateTime topics. Both bounds are >= 0.
	Timestamps              bool
	Now                     int64
	BeforeMaxMs, AfterMaxMs int64
	// MaxDecompressed bounds what a compressed batch may decompress to;
	// 0 means MaxDecompressedSize.
	MaxDecompressed int
}

// ValidateRecords walks every record of b as Kafka's LogValidator does for
// a produced batch (through DefaultRecordBatch's iterators and
// DefaultRecord.readFrom), without keeping any of them: each record's length
// must hold exactly its fields; key, value and header lengths must lie
// inside the record; header keys must not be null; the i-th record's offset
// delta must be i; the section must hold exactly RecordCount records and
// nothing after them. A compressed batch is decompressed as a stream into a
// small pooled buffer (see stream.go), keys and values skipped. b is not
// modified or copied, and a walk allocates nothing in the steady state.
//
// b must have passed Validate (length, magic, CRC). Errors: a record that
// contradicts the batch wraps ErrInvalidRecord (Kafka's
// InvalidRecordException, INVALID_RECORD); a compressed stream that does not
// decode, or decodes past the limit, wraps ErrCorrupt (CORRUPT_MESSAGE); a
// timestamp out of bounds wraps ErrInvalidTimestamp (INVALID_TIMESTAMP),
// reported only if the framing is sound, since Kafka throws on framing but
// collects timestamp errors until the batch is read.
//
// Offset deltas: Kafka 4 rewrites a compressed batch whose deltas are not
// 0..n-1 (LogValidator's inPlaceAssignment) and does not look at them in
// an uncompressed one, renumbering by the header. strata stores the bytes
// as produced, so a batch whose deltas disagree with its header would give
// consumers offsets outside it: it is refused instead, as Kafka before 2.5
// refused it ("does not have incremental offsets", KAFKA-8106).
func (b Batch) ValidateRecords(c Checks) error {
	limit := c.MaxDecompressed
	if limit <= 0 {
		limit = MaxDecompressedSize
	}
	var (
		appendTime = b.TimestampType() == LogAppendTime
		baseTS     = b.BaseTimestamp()
		maxTS      = b.MaxTimestamp()
		lo, hi     = timestampBounds(c)
		tsErr      error
	)
	_, err := b.walk(limit, func(i, offsetDelta int32, tsDelta int64) error {
		if offsetDelta != i {
			return fmt.Errorf("%w: record %d has offset delta %d, want %d", ErrInvalidRecord, i, offsetDelta, i)
		}
		if !c.Timestamps || tsErr != nil {
			return nil
		}
		// The timestamp a reader sees: in a LogAppendTime batch every
		// record reports the batch's max timestamp (Kafka's
		// DefaultRecord.readFrom with logAppendTime set).
		ts := baseTS + tsDelta
		if appendTime {
			ts = maxTS
		}
		if ts != NoTimestamp && (ts < lo || ts > hi) {
			tsErr = fmt.Errorf("%w: timestamp %d of record %d is out of range [%d, %d]", ErrInvalidTimestamp, ts, i, lo, hi)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tsErr
}

// timestampBounds turns Checks' bounds into [lo, hi], saturating instead of
// overflowing (Now >= 0 and both bounds >= 0, so only hi can overflow).
func timestampBounds(c Checks) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if c.BeforeMaxMs >= 0 && c.Now >= 0 {
		lo = c.Now - c.BeforeMaxMs
	}
	if c.AfterMaxMs >= 0 && c.AfterMaxMs <= math.MaxInt64-c.Now {
		hi = c.Now + c.AfterMaxMs
	}
	return lo, hi
}

// FindTimestamp returns the first record of b whose timestamp is >= ts and
// whose offset is >= minOffset, streaming through the records without
// keeping them (ListOffsets by timestamp). It decompresses at most limit
// bytes: past that it fails with an error wrapping ErrDecompressLimit.
// inflated is how many bytes it decompressed (0 for an uncompressed batch),
// for callers that budget decompression across lookups.
func (b Batch) FindTimestamp(ts, minOffset int64, limit int) (offset, timestamp int64, found bool, inflated int64, err error) {
	var (
		appendTime = b.TimestampType() == LogAppendTime
		baseOffset = b.BaseOffset()
		baseTS     = b.BaseTimestamp()
		maxTS      = b.MaxTimestamp()
	)
	inflated, err = b.walk(limit, func(_, offsetDelta int32, tsDelta int64) error {
		t := baseTS + tsDelta
		if appendTime {
			t = maxTS
		}
		if o := baseOffset + int64(offsetDelta); t >= ts && o >= minOffset {
			offset, timestamp, found = o, t, true
			return errStopWalk
		}
		return nil
	})
	return offset, timestamp, found, inflated, err
}

// errStopWalk ends a walk early without error.
var errStopWalk = errors.New("stop walk")

// walk reads the records of b in order, skipping keys, values and headers,
// and calls fn with each record's index, offset delta and timestamp delta
// until fn returns an error (errStopWalk ends the walk cleanly). It checks
// the framing as ValidateRecords describes and returns how many bytes it
// decompressed.
func (b Batch) walk(limit int, fn func(i, offsetDelta int32, tsDelta int64) error) (inflated int64, err error) {
	if err := CheckHeader(b); err != nil {
		return 0, err
	}
	if b.Size() != len(b) {
		return 0, fmt.Errorf("%w: header says %d bytes, have %d", ErrBadLength, b.Size(), len(b))
	}
	count := b.RecordCount()
	if count < 0 {
		return 0, fmt.Errorf("%w: negative record count %d", ErrInvalidRecord, count)
	}
	if count == 0 && len(b) == HeaderSize {
		// Compaction can empty a batch, compressed or not; there is no
		// stream to read.
		return 0, nil
	}
	if b.Codec() == CodecNone {
		return 0, walkMem(b[HeaderSize:], count, fn)
	}
	s, err := newRecordStream(b, limit)
	if err != nil {
		return 0, err
	}
	defer s.close()
	defer func() { inflated = s.total }()
	for i := int32(0); i < count; i++ {
		length := s.varint()
		if s.ferr != nil {
			return 0, recordErr(i, count, "length", s.ferr)
		}
		start := s.offset()
		end := start + int64(length)
		if length < 0 || (s.src == nil && end > s.total) {
			return 0, fmt.Errorf("%w: record %d: length %d, %d bytes left", ErrInvalidRecord, i, length, s.total-start)
		}
		s.skip(1) // attributes: unused in v2
		tsDelta := s.varlong()
		offsetDelta := s.varint()
		s.skipField(end, false) // key
		s.skipField(end, false) // value
		if s.ferr != nil {
			return 0, recordErr(i, count, "key or value", s.ferr)
		}
		nh := s.varint()
		if left := end - s.offset(); s.ferr == nil && (nh < 0 || int64(nh) > left) {
			// Kafka: "Found invalid number of record headers". Each
			// header takes at least two bytes, so this also bounds
			// the loop below by the record's length.
			s.fail(fmt.Errorf("header count %d with %d bytes left", nh, left))
		}
		for j := int32(0); j < nh && s.ferr == nil; j++ {
			s.skipField(end, true)
			s.skipField(end, false)
		}
		if s.ferr != nil {
			return 0, recordErr(i, count, "headers", s.ferr)
		}
		if at := s.offset(); at != end {
			return 0, fmt.Errorf("%w: record %d: length %d but its fields take %d bytes", ErrInvalidRecord, i, length, at-start)
		}
		if err := fn(i, offsetDelta, tsDelta); err != nil {
			if err == errStopWalk {
				return 0, nil
			}
			return 0, err
		}
	}
	eof, err := s.atEOF()
	switch {
	case err != nil:
		return 0, err
	case !eof:
		// Kafka: "Incorrect declared batch size, records still
		// remaining in file".
		return 0, fmt.Errorf("%w: bytes after the declared %d records", ErrInvalidRecord, count)
	}
	return 0, nil
}

// skipField reads a varint length and skips that many bytes, which must lie
// before end (the end of the record). Length -1 (null) is allowed unless
// notNull, as for header keys (Kafka: "Invalid negative header key size").
func (s *recordStream) skipField(end int64, notNull bool) {
	n := s.varint()
	if n > 0 && int64(n) <= end-s.offset() {
		s.skip(int64(n))
		return
	}
	left := end - s.offset()
	switch {
	case s.ferr != nil:
	case left < 0:
		s.fail(fmt.Errorf("%w: field runs %d bytes past the record", errShortRead, -left))
	case n == -1 && notNull:
		s.fail(errors.New("null header key"))
	case n < -1 || int64(n) > left:
		s.fail(fmt.Errorf("%w: length %d, %d bytes left in the record", errShortRead, n, left))
	}
}

// recordErr classifies an error reading field of record i: decompression
// failures keep their ErrCorrupt class; anything else is the record
// contradicting its batch (Kafka's InvalidRecordException).
func recordErr(i, count int32, field string, err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("record %d: %w", i, err)
	case err == errStreamEOF:
		// Kafka: "Incorrect declared batch size, premature EOF reached".
		return fmt.Errorf("%w: record %d of %d: %s: premature end of records", ErrInvalidRecord, i, count, field)
	}
	return fmt.Errorf("%w: record %d: %s: %w", ErrInvalidRecord, i, field, err)
}

// walkMem is walk over an uncompressed records section, the produce path's
// commonest case: the same checks as the streaming walk (FuzzValidateRecords
// holds them to the same verdicts), with the position in a local and every
// read bounded by the current record, which makes it about twice as fast.
func walkMem(data []byte, count int32, fn func(i, offsetDelta int32, tsDelta int64) error) error {
	p := 0
	for i := int32(0); i < count; i++ {
		if p == len(data) {
			// Kafka: "Incorrect declared batch size, premature EOF reached".
			return fmt.Errorf("%w: record %d of %d: premature end of records", ErrInvalidRecord, i, count)
		}
		var length int32
		q := -1
		if p+8 <= len(data) {
			if v, n := zigzag3(binary.LittleEndian.Uint64(data[p:])); n <= 3 {
				length, q = int32(v), p+n
			}
		}
		if q < 0 {
			length, q = varintAt(data, p)
		}
		if q < 0 {
			return fmt.Errorf("%w: record %d: length: %w", ErrInvalidRecord, i, errVarint)
		}
		if length < 0 || int(length) > len(data)-q {
			return fmt.Errorf("%w: record %d: length %d, %d bytes left", ErrInvalidRecord, i, length, len(data)-q)
		}
		rec := data[q : q+int(length)]
		p = q + int(length)

		tsDelta, offsetDelta, ok := plainRecord(rec)
		if !ok {
			var err error
			if tsDelta, offsetDelta, err = anyRecord(rec, i); err != nil {
				return err
			}
		}
		if err := fn(i, offsetDelta, tsDelta); err != nil {
			if err == errStopWalk {
				return nil
			}
			return err
		}
	}
	if p != len(data) {
		// Kafka: "Incorrect declared batch size, records still
		// remaining in file".
		return fmt.Errorf("%w: bytes after the declared %d records", ErrInvalidRecord, count)
	}
	return nil
}

// anyRecord reads record i (rec holds exactly the record, after its
// length) field by field, with every check of the streaming walk: the
// general case behind plainRecord, and the one that names what is wrong.
func anyRecord(rec []byte, i int32) (tsDelta int64, offsetDelta int32, err error) {
	r := 1 // attributes: unused in v2
	if len(rec) < 1 {
		r = -1
	}
	tsDelta, r = varlongAt(rec, r)
	offsetDelta, r = varintAt(rec, r)
	r = skipAt(rec, r, false) // key
	r = skipAt(rec, r, false) // value
	nh, r := varintAt(rec, r)
	if r >= 0 && (nh < 0 || int(nh) > len(rec)-r) {
		// Kafka: "Found invalid number of record headers".
		return 0, 0, fmt.Errorf("%w: record %d: header count %d with %d bytes left", ErrInvalidRecord, i, nh, len(rec)-r)
	}
	for j := int32(0); j < nh && r >= 0; j++ {
		r = skipAt(rec, r, true)
		r = skipAt(rec, r, false)
	}
	if r != len(rec) {
		// r < 0: a field past the record, a malformed varint, a bad
		// length or a null header key.
		return 0, 0, fmt.Errorf("%w: record %d: its fields do not fill its length %d", ErrInvalidRecord, i, len(rec))
	}
	return tsDelta, offsetDelta, nil
}

// plainRecord reads a record without headers whose value has at least a
// few bytes (rec holds exactly the record, after its length): nearly every
// produced record, for which the general walk's seven calls cost more than
// the reading. Each field before the value is read from one 8-byte load,
// with no loop and no call. ok is false for anything else (headers, a null
// or tiny value, a field of more than three bytes, a malformed record), and
// the general walk then reads it and names what is wrong.
func plainRecord(rec []byte) (tsDelta int64, offsetDelta int32, ok bool) {
	r := 1 // attributes: unused in v2
	if r+8 > len(rec) {
		return 0, 0, false
	}
	tsDelta, n := zigzag3(binary.LittleEndian.Uint64(rec[r:]))
	if r += n; n > 3 || r+8 > len(rec) {
		return 0, 0, false
	}
	od, n := zigzag3(binary.LittleEndian.Uint64(rec[r:]))
	if r += n; n > 3 || r+8 > len(rec) {
		return 0, 0, false
	}
	keyLen, n := zigzag3(binary.LittleEndian.Uint64(rec[r:]))
	if r += n; n > 3 || keyLen < -1 || keyLen > int64(len(rec)-r) {
		return 0, 0, false
	}
	if r += int(max(keyLen, 0)); r+8 > len(rec) {
		return 0, 0, false
	}
	valueLen, n := zigzag3(binary.LittleEndian.Uint64(rec[r:]))
	// The value ends one byte before the record, which is a header
	// count of zero.
	if r += n; n > 3 || valueLen != int64(len(rec)-1-r) || rec[len(rec)-1] != 0 {
		return 0, 0, false
	}
	return tsDelta, int32(od), true
}

// zigzag3 decodes the zigzag varint that starts x, eight bytes loaded
// little-endian, and returns it with its length n, if it takes at most
// three bytes (every varint of a record of less than 512 KiB); n > 3
// otherwise. It branches on the length on purpose: the lengths repeat from
// one record to the next, so the branches are predicted and the CPU reads
// ahead into the next fields and records instead of waiting on each
// decode for the next field's position (a branch-free decode was slower).
func zigzag3(x uint64) (v int64, n int) {
	var u uint64
	switch {
	case x&0x80 == 0:
		u, n = x&0x7f, 1
	case x&0x8000 == 0:
		u, n = x&0x7f|x>>1&0x3f80, 2
	case x&0x800000 == 0:
		u, n = x&0x7f|x>>1&0x3f80|x>>2&0x1fc000, 3
	default:
		return 0, 4
	}
	return int64(u>>1) ^ -int64(u&1), n
}

// varlongAt reads a zigzag varint at b[q:] and returns it with the position
// after it; q < 0 (an earlier failure) or a malformed varint gives q = -1.
// One and two bytes, nearly every field of a record, are read inline.
func varlongAt(b []byte, q int) (int64, int) {
	if q >= 0 && q+1 < len(b) {
		if c := b[q]; c < 0x80 {
			return int64(c>>1) ^ -int64(c&1), q + 1
		} else if d := b[q+1]; d < 0x80 {
			u := int64(c&0x7f) | int64(d)<<7
			return u>>1 ^ -(u & 1), q + 2
		}
	}
	return varlongAtSlow(b, q)
}

func varlongAtSlow(b []byte, q int) (int64, int) {
	if q < 0 || q >= len(b) {
		return 0, -1
	}
	v, n := binary.Varint(b[q:])
	if n <= 0 {
		return 0, -1
	}
	return v, q + n
}

// varintAt is varlongAt for a varint that must fit an int32.
func varintAt(b []byte, q int) (int32, int) {
	if q >= 0 && q+1 < len(b) {
		if c := b[q]; c < 0x80 {
			return int32(c>>1) ^ -int32(c&1), q + 1
		} else if d := b[q+1]; d < 0x80 {
			u := int32(c&0x7f) | int32(d)<<7
			return u>>1 ^ -(u & 1), q + 2
		}
	}
	return varintAtSlow(b, q)
}

func varintAtSlow(b []byte, q int) (int32, int) {
	v, q := varlongAtSlow(b, q)
	if v != int64(int32(v)) {
		return 0, -1
	}
	return int32(v), q
}

// skipAt skips a length-prefixed field at b[q:], which must fit in b; -1
// (null) is allowed unless notNull. It returns the position after the
// field, or -1.
func skipAt(b []byte, q int, notNull bool) int {
	n, q := varintAt(b, q)
	switch {
	case q < 0, n < -1, n == -1 && notNull, int(n) > len(b)-q:
		return -1
	case n <= 0:
		return q
	}
	return q + int(n)
}
