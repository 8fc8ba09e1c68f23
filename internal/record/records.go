package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Header is a record header. Kafka never looks at headers; a null header
// value (length -1) comes back as a nil Value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one decoded record. Offset and Timestamp are absolute: the
// batch's base plus the record's delta, except that in a LogAppendTime batch
// every record carries the batch's MaxTimestamp, as Kafka's DefaultRecordBatch
// reports it. A null key or value (length -1) is nil; an empty one is a
// non-nil empty slice.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// minRecordSize is the smallest encoded record: one byte each for length,
// attributes, timestampDelta, offsetDelta, keyLength, valueLength and
// headerCount. It bounds how many records a buffer can hold, so an untrusted
// recordCount never sizes an allocation.
const minRecordSize = 7

// ForEachRecord decodes the batch's records in order, decompressing them
// first if the batch is compressed, and calls fn for each until fn returns
// false. It checks the batch's framing (magic, length) but not its CRC:
// Parse and Validate do that.
//
// rec and rec.Headers are reused between calls, so fn must copy what it
// keeps of them. Key, Value and header values alias the batch (uncompressed)
// or a buffer allocated for this call (compressed); they stay valid as long
// as the batch bytes are not modified, and each has its own capacity, so
// appending to one never overwrites another.
//
// Malformed records (bad varints, lengths past the end, fewer or more
// records than RecordCount, trailing bytes) give an error wrapping
// ErrCorrupt. An unknown codec wraps both ErrCorrupt and ErrUnknownCodec.
func (b Batch) ForEachRecord(fn func(rec *Record) bool) error {
	data, err := b.recordBytes()
	if err != nil {
		return err
	}
	return b.decodeRecords(data, fn)
}

// Records decodes every record of the batch into a new slice. Unlike
// ForEachRecord's, the returned headers are not reused; keys and values still
// alias the batch or the decompressed buffer.
func (b Batch) Records() ([]Record, error) {
	data, err := b.recordBytes()
	if err != nil {
		return nil, err
	}
	n := min(int(max(b.RecordCount(), 0)), len(data)/minRecordSize)
	recs := make([]Record, 0, n)
	err = b.decodeRecords(data, func(r *Record) bool {
		rec := *r
		rec.Headers = slices.Clip(slices.Clone(r.Headers))
		recs = append(recs, rec)
		return true
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// recordBytes returns the batch's records section, decompressed.
func (b Batch) recordBytes() ([]byte, error) {
	if err := CheckHeader(b); err != nil {
		return nil, err
	}
	if b.Size() != len(b) {
		return nil, fmt.Errorf("%w: header says %d bytes, have %d", ErrBadLength, b.Size(), len(b))
	}
	raw := b[HeaderSize:]
	c := b.Codec()
	if c == CodecNone {
		return raw, nil
	}
	if len(raw) == 0 && b.RecordCount() == 0 {
		// Compaction can empty a batch; there is no stream to decompress.
		return nil, nil
	}
	data, err := Decompress(c, nil, raw)
	if errors.Is(err, ErrUnknownCodec) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return data, err
}

// decodeRecords walks the records in data (see doc.go), mirroring the checks
// of Kafka's DefaultRecord.readFrom and DefaultRecordBatch's RecordIterator.
func (b Batch) decodeRecords(data []byte, fn func(*Record) bool) error {
	count := int64(b.RecordCount())
	if count < 0 {
		return fmt.Errorf("%w: negative record count %d", ErrCorrupt, count)
	}
	var (
		baseOffset = b.BaseOffset()
		baseTS     = b.BaseTimestamp()
		appendTime = b.TimestampType() == LogAppendTime
		maxTS      = b.MaxTimestamp()
		rec        Record
		headers    []Header
	)
	d := decoder{b: data}
	var i int64
	for ; len(d.b) > 0; i++ {
		if i == count {
			return fmt.Errorf("%w: %d bytes after the declared %d records", ErrCorrupt, len(d.b), count)
		}
		length := d.varint()
		if d.err == nil && (length < 0 || int(length) > len(d.b)) {
			return fmt.Errorf("%w: record %d: length %d, %d bytes left", ErrCorrupt, i, length, len(d.b))
		}
		if d.err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, d.err)
		}
		r := decoder{b: d.b[:length]}
		d.b = d.b[length:]

		r.skip(1) // attributes: unused
		tsDelta := r.varlong()
		offsetDelta := r.varint()
		rec.Key = r.bytes()
		rec.Value = r.bytes()
		nh := r.varint()
		if r.err == nil && (nh < 0 || int(nh) > len(r.b)/2) {
			// Each header takes at least two bytes; checking up front
			// keeps a bogus count from running the loop below long.
			r.err = fmt.Errorf("header count %d with %d bytes left", nh, len(r.b))
		}
		headers = headers[:0]
		for j := int32(0); j < nh && r.err == nil; j++ {
			k := r.bytes()
			if k == nil && r.err == nil {
				r.err = errors.New("null header key")
			}
			v := r.bytes()
			headers = append(headers, Header{Key: string(k), Value: v})
		}
		if r.err == nil && len(r.b) > 0 {
			r.err = fmt.Errorf("%d bytes after the headers", len(r.b))
		}
		if r.err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrCorrupt, i, r.err)
		}

		rec.Offset = baseOffset + int64(offsetDelta)
		rec.Timestamp = baseTS + tsDelta
		if appendTime {
			rec.Timestamp = maxTS
		}
		rec.Headers = nil
		if nh > 0 {
			rec.Headers = headers
		}
		if !fn(&rec) {
			return nil
		}
	}
	if i != count {
		return fmt.Errorf("%w: %d records, header says %d", ErrCorrupt, i, count)
	}
	return nil
}

// decoder reads Kafka's varint encodings from b. The first failure sticks in
// err, and every later read returns a zero value, so callers check once.
type decoder struct {
	b   []byte
	err error
}

var (
	errVarint    = errors.New("malformed varint")
	errShortRead = errors.New("field past the end of the record")
)

// varlong reads a zigzag varint of up to 10 bytes (Kafka's readVarlong).
func (d *decoder) varlong() int64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) > 0 && d.b[0] < 0x80 { // one-byte fast path: most deltas and lengths
		v := int64(d.b[0])
		d.b = d.b[1:]
		return v>>1 ^ -(v & 1)
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errVarint
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads a zigzag varint that must fit an int32 (Kafka's readVarint).
func (d *decoder) varint() int32 {
	v := d.varlong()
	if v != int64(int32(v)) {
		d.err = errVarint
		return 0
	}
	return int32(v)
}

func (d *decoder) skip(n int) {
	if d.err != nil {
		return
	}
	if len(d.b) < n {
		d.err = errShortRead
		return
	}
	d.b = d.b[n:]
}

// bytes reads a varint length and that many bytes; length -1 is null (nil).
// The result's capacity is its length, so a caller appending to it copies
// instead of overwriting the next field.
func (d *decoder) bytes() []byte {
	n := d.varint()
	if d.err != nil {
		return nil
	}
	switch {
	case n == -1:
		return nil
	case n < -1 || int(n) > len(d.b):
		d.err = fmt.Errorf("%w: length %d, %d bytes left", errShortRead, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
