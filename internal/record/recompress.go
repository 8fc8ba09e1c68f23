package record

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Recompress returns b with its records re-encoded with codec to: what the
// broker stores for a topic whose compression.type names a codec other than
// the producer's (Kafka's LogValidator rebuilds such batches the same way).
// It is the one place the produce path copies record bytes.
//
// The new batch keeps b's header byte for byte (base offset, partition
// leader epoch, attributes other than the codec bits, lastOffsetDelta,
// timestamps, producer id, epoch and base sequence, record count) and each
// record's timestamp delta, offset delta, key, value and headers; only the
// records section, the length and the CRC differ. Record attributes, which
// Kafka leaves unused, are written as 0.
//
// b is validated first (as Validate does), so a corrupt batch is refused
// rather than given a fresh CRC; errors decoding its records wrap
// ErrCorrupt. A batch already in codec to, and a control batch, are returned
// as they are, without a copy.
func Recompress(b Batch, to Codec) (Batch, error) {
	if to < CodecNone || to > CodecZstd {
		return nil, unknownCodec(to)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if b.Codec() == to || b.IsControl() {
		return b, nil
	}
	data, err := b.recordBytes()
	if err != nil {
		return nil, err
	}

	// Decode against a copy of the header marked CreateTime: in a
	// LogAppendTime batch records report the batch's max timestamp, which
	// would lose their own deltas.
	var hdr [HeaderSize]byte
	copy(hdr[:], b)
	binary.BigEndian.PutUint16(hdr[attributesPos:], uint16(b.Attributes())&^timestampTypeBit)
	baseOffset, baseTS := b.BaseOffset(), b.BaseTimestamp()

	// The records of a compressed batch are built in raw and compressed
	// into out; an uncompressed batch's are built in out directly.
	// Re-encoded records take as many bytes as the decoded ones (data), and
	// the input's size is a fair guess at the output's.
	out := make([]byte, HeaderSize, HeaderSize+max(len(data), len(b)-HeaderSize))
	copy(out, b[:HeaderSize])
	raw := out
	if to != CodecNone {
		raw = make([]byte, 0, len(data))
	}
	var (
		rec     kmsg.Record
		headers []kmsg.Header
		body    []byte
	)
	err = Batch(hdr[:]).decodeRecords(data, func(r *Record) bool {
		headers = headers[:0]
		for _, h := range r.Headers {
			headers = append(headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		rec = kmsg.Record{
			TimestampDelta64: r.Timestamp - baseTS,
			OffsetDelta:      int32(r.Offset - baseOffset),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          headers,
		}
		// Length 0 encodes in one byte: body[1:] is the record after its
		// length, which is then written in front of it.
		body = rec.AppendTo(body[:0])
		raw = kbin.AppendVarint(raw, int32(len(body)-1))
		raw = append(raw, body[1:]...)
		return true
	})
	if err != nil {
		return nil, err
	}
	// Even no records (a batch emptied by compaction) are compressed into
	// a stream: readers such as franz-go's expect one whenever the codec
	// bits are set.
	if to == CodecNone {
		out = raw
	} else if out, err = Compress(to, out, raw); err != nil {
		return nil, err
	}
	nb := Batch(out)
	binary.BigEndian.PutUint16(nb[attributesPos:], uint16(b.Attributes())&^codecMask|uint16(to))
	nb.SetLength()
	nb.UpdateCRC()
	return nb, nil
}
