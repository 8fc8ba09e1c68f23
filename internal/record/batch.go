package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte positions of the v2 batch header fields (see doc.go).
const (
	baseOffsetPos           = 0
	lengthPos               = 8
	partitionLeaderEpochPos = 12
	magicPos                = 16
	crcPos                  = 17
	attributesPos           = 21
	lastOffsetDeltaPos      = 23
	baseTimestampPos        = 27
	maxTimestampPos         = 35
	producerIDPos           = 43
	producerEpochPos        = 51
	baseSequencePos         = 53
	recordCountPos          = 57

	// HeaderSize is the size of a v2 batch header, records excluded
	// (Kafka's RECORD_BATCH_OVERHEAD).
	HeaderSize = 61
	// LogOverhead is the part of the header that batchLength does not count:
	// baseOffset and batchLength itself (Kafka's LOG_OVERHEAD).
	LogOverhead = 12
	// Magic is the only message format strata accepts; v0 and v1 are refused
	// as Kafka 4 refuses them.
	Magic = 2
)

// Attribute bits.
const (
	codecMask            = 0x07
	timestampTypeBit     = 0x08
	transactionalBit     = 0x10
	controlBit           = 0x20
	deleteHorizonSetBit  = 0x40
	noSequence           = -1
	maxRecordsPerBatchOK = 1<<31 - 1
)

// Errors returned by Parse and Validate. ErrCorrupt is the class the broker
// maps to CORRUPT_MESSAGE; ErrUnsupportedMagic maps to
// UNSUPPORTED_FOR_MESSAGE_FORMAT; ErrInvalidRecord to INVALID_RECORD.
var (
	ErrCorrupt          = errors.New("record: corrupt batch")
	ErrTruncated        = fmt.Errorf("%w: truncated", ErrCorrupt)
	ErrBadLength        = fmt.Errorf("%w: invalid batch length", ErrCorrupt)
	ErrBadCRC           = fmt.Errorf("%w: CRC-32C mismatch", ErrCorrupt)
	ErrUnsupportedMagic = errors.New("record: unsupported message format (magic != 2)")
	ErrInvalidRecord    = errors.New("record: invalid batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TimestampType says who set a batch's timestamps.
type TimestampType int8

const (
	CreateTime    TimestampType = 0
	LogAppendTime TimestampType = 1
)

// Batch is a view over the bytes of exactly one v2 record batch. Accessors
// read the header in place; they assume len(b) >= HeaderSize (Parse and
// Validate check that). A Batch is not safe for concurrent mutation.
type Batch []byte

// Header reads only the first HeaderSize bytes, so a Batch built over just a
// header (as the log does when it scans segment files) answers every header
// accessor; Validate and Records need the whole batch.

func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[baseOffsetPos:])) }

// Length is the batchLength field: the batch size minus LogOverhead.
func (b Batch) Length() int32 { return int32(binary.BigEndian.Uint32(b[lengthPos:])) }

// Size is the whole batch size in bytes as the header declares it.
func (b Batch) Size() int { return int(b.Length()) + LogOverhead }

func (b Batch) PartitionLeaderEpoch() int32 {
	return int32(binary.BigEndian.Uint32(b[partitionLeaderEpochPos:]))
}
func (b Batch) Magic() int8       { return int8(b[magicPos]) }
func (b Batch) CRC() uint32       { return binary.BigEndian.Uint32(b[crcPos:]) }
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[attributesPos:])) }
func (b Batch) LastOffsetDelta() int32 {
	return int32(binary.BigEndian.Uint32(b[lastOffsetDeltaPos:]))
}
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[baseTimestampPos:])) }
func (b Batch) MaxTimestamp() int64  { return int64(binary.BigEndian.Uint64(b[maxTimestampPos:])) }
func (b Batch) ProducerID() int64    { return int64(binary.BigEndian.Uint64(b[producerIDPos:])) }
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[producerEpochPos:])) }
func (b Batch) BaseSequence() int32  { return int32(binary.BigEndian.Uint32(b[baseSequencePos:])) }
func (b Batch) RecordCount() int32   { return int32(binary.BigEndian.Uint32(b[recordCountPos:])) }

// LastOffset is the offset of the batch's last record.
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// NextOffset is the offset that follows the batch.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// LastSequence is the sequence number of the batch's last record, wrapping
// past MaxInt32 to 0 as Kafka's DefaultRecordBatch.incrementSequence does.
func (b Batch) LastSequence() int32 {
	base := b.BaseSequence()
	if base == noSequence {
		return noSequence
	}
	return IncrementSequence(base, b.LastOffsetDelta())
}

// IncrementSequence adds delta to a producer sequence number, wrapping past
// MaxInt32 to 0 (KIP-98).
func IncrementSequence(seq, delta int32) int32 {
	if seq > maxRecordsPerBatchOK-delta {
		return delta - (maxRecordsPerBatchOK - seq) - 1
	}
	return seq + delta
}

func (b Batch) Codec() Codec { return Codec(b.Attributes() & codecMask) }

func (b Batch) TimestampType() TimestampType {
	if b.Attributes()&timestampTypeBit != 0 {
		return LogAppendTime
	}
	return CreateTime
}

func (b Batch) IsTransactional() bool { return b.Attributes()&transactionalBit != 0 }
func (b Batch) IsControl() bool       { return b.Attributes()&controlBit != 0 }

// HasProducerID reports whether the batch was written by an idempotent or
// transactional producer.
func (b Batch) HasProducerID() bool { return b.ProducerID() >= 0 }

// SetBaseOffset patches the base offset in place. The field is outside the
// CRC, so the batch stays valid.
func (b Batch) SetBaseOffset(off int64) {
	binary.BigEndian.PutUint64(b[baseOffsetPos:], uint64(off))
}

// SetPartitionLeaderEpoch patches the leader epoch in place (outside the CRC).
func (b Batch) SetPartitionLeaderEpoch(epoch int32) {
	binary.BigEndian.PutUint32(b[partitionLeaderEpochPos:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as broker-assigned and sets
// its max timestamp to ts, then recomputes the CRC. This is what Kafka does for
// topics with message.timestamp.type=LogAppendTime: records keep their own
// deltas and readers take the batch's max timestamp for every record.
func (b Batch) SetLogAppendTime(ts int64) {
	attrs := uint16(b.Attributes()) | timestampTypeBit
	binary.BigEndian.PutUint16(b[attributesPos:], attrs)
	binary.BigEndian.PutUint64(b[maxTimestampPos:], uint64(ts))
	b.UpdateCRC()
}

// ComputeCRC returns the CRC-32C of the batch's covered bytes.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[attributesPos:], castagnoli) }

// UpdateCRC recomputes and stores the CRC after a change to covered bytes.
func (b Batch) UpdateCRC() { binary.BigEndian.PutUint32(b[crcPos:], b.ComputeCRC()) }

// SetLength stores len(b)-LogOverhead in the length field, for encoders that
// build a batch and fill in its length last.
func (b Batch) SetLength() { binary.BigEndian.PutUint32(b[lengthPos:], uint32(len(b)-LogOverhead)) }

// CheckHeader validates what can be checked from the first HeaderSize bytes
// alone: the length field and the magic byte. It does not need the records,
// so the log uses it when scanning batch headers in segment files.
func CheckHeader(hdr []byte) error {
	// v0/v1 messages carry magic at the same position but may be shorter
	// than a v2 header: report the format, not a truncation.
	if len(hdr) > magicPos && int8(hdr[magicPos]) != Magic {
		return fmt.Errorf("%w: got %d", ErrUnsupportedMagic, int8(hdr[magicPos]))
	}
	if len(hdr) < HeaderSize {
		return ErrTruncated
	}
	b := Batch(hdr)
	if b.Magic() != Magic {
		// Only v2 carries magic at byte 16 and a 61-byte header; the
		// legacy v0/v1 formats carry it at the same position, so this
		// test is meaningful for every format.
		return fmt.Errorf("%w: got %d", ErrUnsupportedMagic, b.Magic())
	}
	if int64(b.Length())+LogOverhead < HeaderSize {
		return fmt.Errorf("%w: %d", ErrBadLength, b.Length())
	}
	return nil
}

// Validate checks the whole batch: that b holds exactly the bytes the length
// field declares, magic 2, the CRC, and a record count consistent with the
// last offset delta. It does not decompress records.
func (b Batch) Validate() error {
	if err := CheckHeader(b); err != nil {
		return err
	}
	if b.Size() != len(b) {
		return fmt.Errorf("%w: header says %d bytes, have %d", ErrBadLength, b.Size(), len(b))
	}
	if got, want := b.ComputeCRC(), b.CRC(); got != want {
		return fmt.Errorf("%w: computed %08x, stored %08x", ErrBadCRC, got, want)
	}
	n := b.RecordCount()
	if n < 0 || b.LastOffsetDelta() < 0 {
		return fmt.Errorf("%w: record count %d, last offset delta %d", ErrInvalidRecord, n, b.LastOffsetDelta())
	}
	// Kafka requires lastOffsetDelta == recordCount-1 for batches a
	// producer sends; compaction can leave gaps (delta larger than count-1),
	// never the other way round. An empty batch (count 0) only results from
	// compaction and keeps the delta of what it once held.
	if n > 0 && int64(b.LastOffsetDelta()) < int64(n)-1 {
		return fmt.Errorf("%w: %d records but last offset delta %d", ErrInvalidRecord, n, b.LastOffsetDelta())
	}
	return nil
}

// Parse returns the batch at the front of buf and the bytes after it,
// validated as Validate does. The returned Batch and rest alias buf: nothing
// is copied.
func Parse(buf []byte) (b Batch, rest []byte, err error) {
	if len(buf) < HeaderSize {
		return nil, buf, fmt.Errorf("%w: %d bytes, need at least %d", ErrTruncated, len(buf), HeaderSize)
	}
	if err := CheckHeader(buf); err != nil {
		return nil, buf, err
	}
	// In int64: on 32-bit platforms Size() overflows for a length field
	// near MaxInt32, and a negative size would slice out of range.
	size := int64(Batch(buf).Length()) + LogOverhead
	if size > int64(len(buf)) {
		return nil, buf, fmt.Errorf("%w: batch of %d bytes, have %d", ErrTruncated, size, len(buf))
	}
	b = Batch(buf[:size:size])
	if err := b.Validate(); err != nil {
		return nil, buf, err
	}
	return b, buf[size:], nil
}

// Split calls fn for each batch in buf, in order, without copying. It stops
// at the first invalid batch or when fn returns false. A buf that is not a
// whole number of valid batches yields an error after the valid prefix.
func Split(buf []byte, fn func(Batch) bool) error {
	for len(buf) > 0 {
		b, rest, err := Parse(buf)
		if err != nil {
			return err
		}
		if !fn(b) {
			return nil
		}
		buf = rest
	}
	return nil
}
