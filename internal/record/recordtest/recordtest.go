// Package recordtest builds v2 record batches for tests with franz-go's kmsg
// encoder, a real client's, so fixtures are not hand-rolled.
package recordtest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// Record is one record of a batch to build. Timestamp is absolute (ms).
type Record struct {
	Key, Value []byte
	Timestamp  int64
	Headers    []kmsg.Header
}

// Options describe a batch. Zero values give an uncompressed batch from a
// non-idempotent producer (producer id -1).
type Options struct {
	Codec         record.Codec
	BaseOffset    int64
	ProducerID    int64 // 0 means -1 (none)
	ProducerEpoch int16
	BaseSequence  int32
	Transactional bool
}

// Build encodes recs as one batch. Record timestamps become deltas from the
// first record's; the batch max timestamp is the largest of them.
func Build(tb testing.TB, opts Options, recs ...Record) record.Batch {
	tb.Helper()
	if len(recs) == 0 {
		tb.Fatal("recordtest: a batch needs at least one record")
	}
	base, maxTS := recs[0].Timestamp, recs[0].Timestamp
	var raw []byte
	for i, r := range recs {
		if r.Timestamp > maxTS {
			maxTS = r.Timestamp
		}
		rec := kmsg.Record{
			TimestampDelta64: r.Timestamp - base,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          r.Headers,
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // placeholder length of 0 takes 1 byte
		raw = rec.AppendTo(raw)
	}
	if opts.Codec != record.CodecNone {
		c, err := record.Compress(opts.Codec, nil, raw)
		if err != nil {
			tb.Fatalf("recordtest: compress %s: %v", opts.Codec, err)
		}
		raw = c
	}
	pid := opts.ProducerID
	if pid == 0 {
		pid = -1
	}
	seq, epoch := opts.BaseSequence, opts.ProducerEpoch
	if pid == -1 {
		seq, epoch = -1, -1 // as Kafka's producer writes without idempotence
	}
	attrs := int16(opts.Codec)
	if opts.Transactional {
		attrs |= 0x10
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          opts.BaseOffset,
		PartitionLeaderEpoch: -1,
		Magic:                2,
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
	out := kb.AppendTo(nil)
	// kmsg leaves Length and CRC to the caller (its producer fills them in
	// after compression); fill them the way kgo does.
	b := record.Batch(out)
	b.SetLength()
	b.UpdateCRC()
	if err := b.Validate(); err != nil {
		tb.Fatalf("recordtest: built an invalid batch: %v", err)
	}
	return b
}

// Values builds an uncompressed batch with one record per value, all at
// timestamp ts.
func Values(tb testing.TB, ts int64, values ...string) record.Batch {
	tb.Helper()
	recs := make([]Record, len(values))
	for i, v := range values {
		recs[i] = Record{Value: []byte(v), Timestamp: ts}
	}
	return Build(tb, Options{}, recs...)
}
