package strata_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// Hand-made records for batches whose contents contradict their header.

func recVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// recBody is a record after its length: attributes, timestamp delta, offset
// delta, then rest verbatim.
func recBody(offsetDelta int64, rest ...[]byte) []byte {
	b := recVarint(recVarint([]byte{0}, 0), offsetDelta)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

func recFramed(body []byte) []byte { return append(recVarint(nil, int64(len(body))), body...) }

func recField(v string) []byte { return append(recVarint(nil, int64(len(v))), v...) }

// recGood is a well-formed record with a key, a value and one header.
func recGood(offsetDelta int64) []byte {
	return recFramed(recBody(offsetDelta, recField("k"), recField("v"), recVarint(nil, 1), recField("h"), recField("x")))
}

// liarBatch wraps a records section (compressed with codec here) in a
// header whose count is count and lastOffsetDelta count-1, with a valid
// CRC: only the records can give it away.
func liarBatch(t *testing.T, codec record.Codec, count int32, section []byte, ts int64) []byte {
	t.Helper()
	comp, err := record.Compress(codec, nil, section)
	if err != nil {
		t.Fatal(err)
	}
	kb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: count - 1, FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: count, Records: comp,
	}
	b := record.Batch(kb.AppendTo(nil))
	b.SetLength()
	b.UpdateCRC()
	if err := b.Validate(); err != nil {
		t.Fatalf("the header should be valid: %v", err)
	}
	return b
}

// rawProduceVersion sends one batch to partition 0 in a Produce request of
// exactly the given (non-flexible, <= 8) version, on its own connection:
// kgo would raise the version to the highest the broker supports.
func rawProduceVersion(t *testing.T, addr string, version int16, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	rawRoundTrip(t, addr, req, resp)
	return resp.Topics[0].Partitions[0]
}

// TestProduceRefusesLyingRecords: a batch with a valid CRC whose records
// contradict its header is refused, in every codec, with Kafka's code
// (INVALID_RECORD for records, CORRUPT_MESSAGE for streams that do not
// decompress), and the log end offset does not move. Before, such batches
// were acknowledged and the partition could no longer be consumed.
func TestProduceRefusesLyingRecords(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	now := time.Now().UnixMilli()
	two := append(recGood(0), recGood(1)...)
	lies := []struct {
		name    string
		count   int32
		section []byte
	}{
		{"count above records", 3, two},
		{"count below records", 1, two},
		{"record length past the batch", 2, append(recGood(0), append(recVarint(nil, 1000), recBody(1)...)...)},
		{"record length short of its fields", 2, append(append(recVarint(nil, int64(len(recGood(0))-3)), recGood(0)[1:]...), recGood(1)...)},
		{"key length past the record", 1, recFramed(recBody(0, recVarint(nil, 50), recVarint(nil, -1), recVarint(nil, 0)))},
		{"value length past the record", 1, recFramed(recBody(0, recVarint(nil, -1), recVarint(nil, 30), recVarint(nil, 0)))},
		{"header count past the record", 1, recFramed(recBody(0, recVarint(nil, -1), recVarint(nil, -1), recVarint(nil, 1000)))},
		{"header value past the record", 1, recFramed(recBody(0, recVarint(nil, -1), recVarint(nil, -1), recVarint(nil, 1), recField("h"), recVarint(nil, 9)))},
		{"malformed varint", 1, recFramed(append([]byte{0}, bytes.Repeat([]byte{0xff}, 11)...))},
		{"trailing bytes", 2, append(bytes.Clone(two), 0, 0, 0)},
		{"offset deltas 0, 2", 2, append(recGood(0), recGood(2)...)},
	}
	for _, codec := range record.Codecs {
		topic := "lies-" + codec.String()
		createTopic(t, adm, topic, nil)
		for _, lie := range lies {
			batch := liarBatch(t, codec, lie.count, lie.section, now)
			if got := rawProduce(t, c, topic, batch); got.ErrorCode != kerr.InvalidRecord.Code {
				t.Errorf("%v, %s: %v (%v), want INVALID_RECORD", codec, lie.name, kerr.ErrorForCode(got.ErrorCode), deref(got.ErrorMessage))
			}
		}
		if codec != record.CodecNone {
			// Not a stream of this codec at all, under a valid CRC.
			garbage := liarBatch(t, record.CodecNone, 2, two, now)
			garbage[22] |= byte(codec)
			record.Batch(garbage).UpdateCRC()
			if got := rawProduce(t, c, topic, garbage); got.ErrorCode != kerr.CorruptMessage.Code {
				t.Errorf("%v, not compressed: %v, want CORRUPT_MESSAGE", codec, kerr.ErrorForCode(got.ErrorCode))
			}
		}
		if end := endOffset(t, adm, topic, 0); end != 0 {
			t.Fatalf("%v: log end offset %d after refused batches", codec, end)
		}
		// The partition takes honest batches and reads back.
		if got := rawProduce(t, c, topic, liarBatch(t, codec, 2, two, now)); got.ErrorCode != 0 || got.BaseOffset != 0 {
			t.Fatalf("%v: honest batch: %v", codec, kerr.ErrorForCode(got.ErrorCode))
		}
		if recs := consumeN(t, b.Addr(), topic, 2); string(recs[1].Value) != "v" || recs[1].Offset != 1 {
			t.Fatalf("%v: read back %+v", codec, recs[1])
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestProduceSequenceRequired: LogValidator.validateBatch refuses an
// idempotent batch (producer id set) without a sequence number.
func TestProduceSequenceRequired(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	createTopic(t, adm, "seq", nil)
	noSeq := build(t, record.BuildOptions{ProducerID: 9, BaseSequence: -1}, []byte("x"))
	if got := rawProduce(t, c, "seq", noSeq); got.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("producer id without sequence: %v, want INVALID_RECORD", kerr.ErrorForCode(got.ErrorCode))
	}
	if end := endOffset(t, adm, "seq", 0); end != 0 {
		t.Fatalf("log end offset %d", end)
	}
	withSeq := build(t, record.BuildOptions{ProducerID: 9, BaseSequence: 0}, []byte("x"))
	if got := rawProduce(t, c, "seq", withSeq); got.ErrorCode != 0 {
		t.Fatalf("producer id with sequence 0: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// TestProduceLegacyMagic: a magic 1 batch is INVALID_RECORD in Produce v3+
// (Kafka's ProduceRequest.validateRecords), and UNSUPPORTED_FOR_MESSAGE_FORMAT
// in v0-2, whose message formats strata does not support (as Kafka 4).
func TestProduceLegacyMagic(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	createTopic(t, adm, "legacy", nil)
	magic1 := build(t, record.BuildOptions{}, []byte("x"))
	magic1[16] = 1
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{0, kerr.UnsupportedForMessageFormat}, {2, kerr.UnsupportedForMessageFormat}, {3, kerr.InvalidRecord}, {8, kerr.InvalidRecord}} {
		if got := rawProduceVersion(t, b.Addr(), tc.version, "legacy", magic1); got.ErrorCode != tc.want.Code {
			t.Errorf("Produce v%d: %v, want %v", tc.version, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
	}
	// The highest version, as kgo negotiates it.
	if got := rawProduce(t, c, "legacy", magic1); got.ErrorCode != kerr.InvalidRecord.Code {
		t.Errorf("Produce (latest): %v, want INVALID_RECORD", kerr.ErrorForCode(got.ErrorCode))
	}
	if end := endOffset(t, adm, "legacy", 0); end != 0 {
		t.Fatalf("log end offset %d", end)
	}
}

// TestProduceDecompressionBomb: a small zstd batch that decompresses past
// record.MaxDecompressedSize (256 MiB) is CORRUPT_MESSAGE, is never held
// in memory (the walk streams), and is not stored.
func TestProduceDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses and walks 260 MiB")
	}
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	createTopic(t, adm, "bomb", nil)
	// 260 records of 1 MiB of zeros each: 60 KB compressed.
	const n, size = 260, 1 << 20
	batch := zerosBatch(t, n, size, time.Now().UnixMilli())
	t.Logf("bomb: %d bytes compressed, %d MiB of records", len(batch), n*size>>20)
	if got := rawProduce(t, c, "bomb", batch); got.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("bomb: %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(got.ErrorCode))
	}
	if end := endOffset(t, adm, "bomb", 0); end != 0 {
		t.Fatalf("log end offset %d", end)
	}
}

// TestProduceTimestampBounds (KIP-937): with Kafka 4's defaults a CreateTime
// record more than an hour ahead of the broker's clock is INVALID_TIMESTAMP
// and nothing of its batch is stored, while old records are accepted; the
// topic configs override the broker's; LogAppendTime topics do not check.
func TestProduceTimestampBounds(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	const hour = int64(time.Hour / time.Millisecond)
	batchAt := func(ts ...int64) []byte {
		recs := make([]record.NewRecord, len(ts))
		for i, x := range ts {
			recs[i] = record.NewRecord{Value: []byte("v"), Timestamp: x}
		}
		bt, err := record.Build(record.BuildOptions{Codec: record.CodecLZ4}, recs...)
		if err != nil {
			t.Fatal(err)
		}
		return bt
	}
	createTopic(t, adm, "ts-default", nil)
	createTopic(t, adm, "ts-tolerant", map[string]string{"message.timestamp.after.max.ms": fmt.Sprint(48 * hour)})
	createTopic(t, adm, "ts-recent", map[string]string{"message.timestamp.before.max.ms": fmt.Sprint(hour)})
	createTopic(t, adm, "ts-append", map[string]string{"message.timestamp.type": "LogAppendTime"})
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		topic string
		batch []byte
		want  *kerr.Error // nil: accepted
	}{
		{"ts-default", batchAt(now + 2*hour), kerr.InvalidTimestamp},
		// One record of the batch is enough: Kafka checks each record,
		// not the batch's first or max timestamp alone.
		{"ts-default", batchAt(now, now+2*hour, now), kerr.InvalidTimestamp},
		{"ts-default", batchAt(now, now+30*60_000), nil},
		{"ts-default", batchAt(1), nil}, // any age by default
		{"ts-tolerant", batchAt(now + 24*hour), nil},
		{"ts-tolerant", batchAt(now + 72*hour), kerr.InvalidTimestamp},
		{"ts-recent", batchAt(now - 3*hour), kerr.InvalidTimestamp},
		{"ts-recent", batchAt(now - 30*60_000), nil},
		{"ts-append", batchAt(now + 100*hour), nil},
		// LogValidator.validateTimestamp: the broker stamps
		// LogAppendTime, a producer may not claim it.
		{"ts-append", func() []byte { b := record.Batch(batchAt(now)); b.SetLogAppendTime(now); return b }(), kerr.InvalidTimestamp},
	} {
		before := endOffset(t, adm, tc.topic, 0)
		got := rawProduce(t, c, tc.topic, tc.batch)
		after := endOffset(t, adm, tc.topic, 0)
		switch {
		case tc.want != nil && (got.ErrorCode != tc.want.Code || after != before):
			t.Errorf("%s: %v, end offset %d -> %d; want %v and no change", tc.topic, kerr.ErrorForCode(got.ErrorCode), before, after, tc.want)
		case tc.want == nil && (got.ErrorCode != 0 || after == before):
			t.Errorf("%s: %v (%s), end offset %d -> %d; want accepted", tc.topic, kerr.ErrorForCode(got.ErrorCode), deref(got.ErrorMessage), before, after)
		}
	}
	// The topic config is visible and can be changed like any other.
	rs, err := adm.AlterTopicConfigs(ctxT(t), []kadm.AlterConfig{{Name: "message.timestamp.after.max.ms", Value: kadm.StringPtr(fmt.Sprint(3 * hour))}}, "ts-default")
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := rawProduce(t, c, "ts-default", batchAt(time.Now().UnixMilli()+2*hour)); got.ErrorCode != 0 {
		t.Errorf("after raising message.timestamp.after.max.ms: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// TestTimestampBoundsBrokerProperty: the broker properties set the default
// of every topic.
func TestTimestampBoundsBrokerProperty(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"log.message.timestamp.after.max.ms": "0"})
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	createTopic(t, adm, "strict-clock", nil)
	ahead := build(t, record.BuildOptions{}, []byte("x"))
	binary.BigEndian.PutUint64(ahead[27:], uint64(time.Now().UnixMilli()+60_000)) // baseTimestamp
	binary.BigEndian.PutUint64(ahead[35:], uint64(time.Now().UnixMilli()+60_000)) // maxTimestamp
	ahead.UpdateCRC()
	if got := rawProduce(t, c, "strict-clock", ahead); got.ErrorCode != kerr.InvalidTimestamp.Code {
		t.Fatalf("a minute ahead with after.max.ms=0: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// zerosBatch is a zstd batch of n records of size zero bytes each, at
// timestamps ts, ts+1, ..., streamed into the encoder so the test never
// holds the decompressed records.
func zerosBatch(t *testing.T, n, size int, ts int64) record.Batch {
	t.Helper()
	var comp bytes.Buffer
	enc, err := zstd.NewWriter(&comp, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, size)
	for i := range n {
		body := append([]byte{0}, recVarint(nil, int64(i))...) // attributes, timestamp delta
		body = recVarint(body, int64(i))                       // offset delta
		body = recVarint(recVarint(body, -1), int64(size))     // null key, value length
		enc.Write(recVarint(nil, int64(len(body)+size+1)))
		enc.Write(body)
		enc.Write(zeros)
		enc.Write([]byte{0}) // no headers
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	kb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(record.CodecZstd),
		LastOffsetDelta: int32(n - 1), FirstTimestamp: ts, MaxTimestamp: ts + int64(n-1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: comp.Bytes()}
	b := record.Batch(kb.AppendTo(nil))
	b.SetLength()
	b.UpdateCRC()
	return b
}

// TestListOffsetsBoundedDecompression: ListOffsets by timestamp streams the
// records of the batch it lands in and decompresses at most 64 MiB per
// request, so a batch of 100 MiB of records (accepted: it is under
// record.MaxDecompressedSize) cannot make every lookup cost 100 MiB. Past
// the budget the answer is the batch's first offset, never a later one.
func TestListOffsetsBoundedDecompression(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	resp, err := adm.CreateTopic(ctxT(t), 2, 1, nil, "heavy")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixMilli()
	batch := zerosBatch(t, 100, 1<<20, base)
	for p := range int32(2) {
		if got := rawProducePartition(t, c, "heavy", p, batch); got.ErrorCode != 0 {
			t.Fatalf("partition %d: %v", p, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	listAt := func(ts ...int64) []kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "heavy"
		for i, x := range ts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = int32(i), x
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), c)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions
	}
	for _, tc := range []struct {
		name   string
		ts     []int64
		offset []int64
	}{
		{"first record", []int64{base}, []int64{0}},
		{"within the budget: exact", []int64{base + 40}, []int64{40}},
		{"past the budget: the batch's first offset", []int64{base + 90}, []int64{0}},
		// The budget is per request: the first partition spends 51 MiB,
		// the second has 13 MiB left.
		{"two partitions share one budget", []int64{base + 50, base + 50}, []int64{50, 0}},
	} {
		got := listAt(tc.ts...)
		for i, p := range got {
			if p.ErrorCode != 0 || p.Offset != tc.offset[i] {
				t.Errorf("%s: partition %d: offset %d (%v), want %d", tc.name, i, p.Offset, kerr.ErrorForCode(p.ErrorCode), tc.offset[i])
			}
		}
	}
}
