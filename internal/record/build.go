package record

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// NewRecord is one record for Build. Timestamp is absolute (ms).
type NewRecord struct {
	Key, Value []byte
	Timestamp  int64
	Headers    []Header
}

// BuildOptions describe a batch for Build. A zero ProducerID means none
// (-1), as for a non-idempotent producer.
type BuildOptions struct {
	Codec         Codec
	BaseOffset    int64
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
}

// Build encodes records as one v2 batch with franz-go's kmsg encoder (a real
// client's), compressing with opts.Codec. The broker uses it for the batches
// it writes itself (metadata, recompression); tests use it for fixtures.
func Build(opts BuildOptions, recs ...NewRecord) (Batch, error) {
	if len(recs) == 0 {
		return nil, errors.New("record: a batch needs at least one record")
	}
	base, maxTS := recs[0].Timestamp, recs[0].Timestamp
	var raw []byte
	for i, r := range recs {
		maxTS = max(maxTS, r.Timestamp)
		rec := kmsg.Record{
			TimestampDelta64: r.Timestamp - base,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
		}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // a zero Length encodes in 1 byte
		raw = rec.AppendTo(raw)
	}
	if opts.Codec != CodecNone {
		c, err := Compress(opts.Codec, nil, raw)
		if err != nil {
			return nil, err
		}
		raw = c
	}
	pid, seq, epoch := opts.ProducerID, opts.BaseSequence, opts.ProducerEpoch
	if pid == 0 {
		pid, seq, epoch = -1, -1, -1 // as Kafka's producer writes without idempotence
	}
	attrs := int16(opts.Codec)
	if opts.Transactional {
		attrs |= transactionalBit
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          opts.BaseOffset,
		PartitionLeaderEpoch: -1,
		Magic:                Magic,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       base,
		MaxTimestamp:         maxTS,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        seq,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	b := Batch(kb.AppendTo(nil))
	b.SetLength()
	b.UpdateCRC()
	return b, b.Validate()
}
