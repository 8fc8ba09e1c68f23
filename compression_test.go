package strata_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/internal/record"
)

// topicCodec is the codec a topic's compression.type stores batches with;
// "producer" has none of its own.
var topicCodec = map[string]record.Codec{
	"uncompressed": record.CodecNone,
	"gzip":         record.CodecGzip,
	"snappy":       record.CodecSnappy,
	"lz4":          record.CodecLZ4,
	"zstd":         record.CodecZstd,
}

var producerCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
	want  record.Codec
}{
	{"none", kgo.NoCompression(), record.CodecNone},
	{"gzip", kgo.GzipCompression(), record.CodecGzip},
	{"snappy", kgo.SnappyCompression(), record.CodecSnappy},
	{"lz4", kgo.Lz4Compression(), record.CodecLZ4},
	{"zstd", kgo.ZstdCompression(), record.CodecZstd},
}

// storedBatches reads the batches of partition 0 of topic straight from its
// first segment file in the broker's data dir.
func storedBatches(t *testing.T, dir, topic string) []record.Batch {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, topic+"-0", "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []record.Batch
	if err := record.Split(data, func(b record.Batch) bool { out = append(out, b); return true }); err != nil {
		t.Fatalf("segment of %s: %v", topic, err)
	}
	return out
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, configs map[string]string) {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(ctxT(t), 1, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// TestCompressionTypeEveryCodec produces with every codec of franz-go's
// (idempotent) producer to a topic of every compression.type, consumes the
// records back, and checks the codec of the batches in the segment file:
// "producer" keeps the producer's, every other type stores its own.
func TestCompressionTypeEveryCodec(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	const n = 300
	for _, compression := range []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"} {
		for _, pc := range producerCodecs {
			t.Run(compression+"/"+pc.name, func(t *testing.T) {
				topic := fmt.Sprintf("ct-%s-%s", compression, pc.name)
				createTopic(t, adm, topic, map[string]string{"compression.type": compression})
				want := pc.want
				if c, ok := topicCodec[compression]; ok {
					want = c
				}

				p := newClient(t, b.Addr(), kgo.ProducerBatchCompression(pc.codec), kgo.ProducerLinger(0))
				var rs []*kgo.Record
				for i := range n {
					// Every value repeats itself: franz-go stores a
					// batch uncompressed when the codec does not make it
					// smaller, which a batch of one short record (the
					// first one, with linger 0 on a loaded machine)
					// would not be.
					r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "value %d %s", i, bytes.Repeat([]byte("compressible "), 8+i%40))}
					if i%3 != 0 { // every third record has a null key
						r.Key = fmt.Appendf(nil, "key-%d", i)
					}
					if i%5 == 0 {
						r.Headers = []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}, {Key: "empty"}}
					}
					rs = append(rs, r)
				}
				if err := p.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}

				got := consumeN(t, b.Addr(), topic, n)
				if len(got) != n {
					t.Fatalf("consumed %d records, want %d", len(got), n)
				}
				for i, r := range got {
					w := rs[i]
					if r.Offset != int64(i) || !bytes.Equal(r.Value, w.Value) || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) {
						t.Fatalf("record %d: offset %d key %q value %.30q, want key %q value %.30q", i, r.Offset, r.Key, r.Value, w.Key, w.Value)
					}
					if len(r.Headers) != len(w.Headers) {
						t.Fatalf("record %d: %d headers, want %d", i, len(r.Headers), len(w.Headers))
					}
					for j, h := range w.Headers {
						if r.Headers[j].Key != h.Key || !bytes.Equal(r.Headers[j].Value, h.Value) {
							t.Fatalf("record %d header %d: %q=%q", i, j, r.Headers[j].Key, r.Headers[j].Value)
						}
					}
					if !r.Timestamp.Equal(w.Timestamp) {
						t.Fatalf("record %d: timestamp %v, produced at %v", i, r.Timestamp, w.Timestamp)
					}
				}

				total, seq, epoch := 0, int32(0), int16(-1)
				for _, sb := range storedBatches(t, dir, topic) {
					if sb.Codec() != want {
						t.Errorf("batch at offset %d stored with %v, want %v", sb.BaseOffset(), sb.Codec(), want)
					}
					if sb.ProducerEpoch() != epoch {
						// A producer that bumps its epoch (KIP-360,
						// e.g. after a timeout on a loaded machine)
						// restarts its sequence at 0.
						seq, epoch = 0, sb.ProducerEpoch()
					}
					if !sb.HasProducerID() || sb.BaseSequence() != seq {
						t.Errorf("batch at offset %d: producer id %d epoch %d, sequence %d, want sequence %d", sb.BaseOffset(), sb.ProducerID(), sb.ProducerEpoch(), sb.BaseSequence(), seq)
					}
					seq += sb.RecordCount()
					total += int(sb.RecordCount())
				}
				if total != n {
					t.Errorf("segment holds %d records, want %d", total, n)
				}
			})
		}
	}
}

// build is record.Build for tests that fails the test on error.
func build(t *testing.T, opts record.BuildOptions, values ...[]byte) record.Batch {
	t.Helper()
	var recs []record.NewRecord
	for i, v := range values {
		recs = append(recs, record.NewRecord{Value: v, Timestamp: 1_700_000_000_000 + int64(i)})
	}
	b, err := record.Build(opts, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompressionCorruptRecords: on a topic that recompresses, records that
// do not decode are refused and nothing is stored.
func TestCompressionCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr())
	createTopic(t, kadm.NewClient(c), "corrupt", map[string]string{"compression.type": "gzip"})

	// A zstd stream cut short, under a valid CRC.
	truncated := build(t, record.BuildOptions{Codec: record.CodecZstd}, []byte("a"), []byte("b"), []byte("c"))
	truncated = truncated[:len(truncated)-4]
	truncated.SetLength()
	truncated.UpdateCRC()
	// More records declared than there are, under a valid CRC.
	short := build(t, record.BuildOptions{}, []byte("a"), []byte("b"))
	short[60]++ // recordCount 2 -> 3
	short[26]++ // lastOffsetDelta 1 -> 2
	short.UpdateCRC()
	// A bad CRC is refused before anything is decoded.
	badCRC := build(t, record.BuildOptions{Codec: record.CodecLZ4}, []byte("a"))
	badCRC[len(badCRC)-1] ^= 0xff

	// Records that contradict their header are caught by the record walk
	// before recompression, with Kafka's INVALID_RECORD
	// (InvalidRecordException); streams that do not decompress and bad
	// CRCs are CORRUPT_MESSAGE.
	for name, tc := range map[string]struct {
		batch record.Batch
		want  *kerr.Error
	}{
		"truncated zstd": {truncated, kerr.CorruptMessage},
		"short":          {short, kerr.InvalidRecord},
		"bad CRC":        {badCRC, kerr.CorruptMessage},
	} {
		if got := rawProduce(t, c, "corrupt", tc.batch); got.ErrorCode != tc.want.Code {
			t.Errorf("%s: error %v, want %v", name, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
	}
	if got := storedBatches(t, dir, "corrupt"); len(got) != 0 {
		t.Fatalf("%d batches stored", len(got))
	}
	good := build(t, record.BuildOptions{Codec: record.CodecZstd}, []byte("a"))
	if got := rawProduce(t, c, "corrupt", good); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("good batch after corrupt ones: %+v", got)
	}
}

// TestCompressionMaxMessageBytes: max.message.bytes applies to the batch as
// produced and again as stored, after recompression (Kafka's LogValidator).
func TestCompressionMaxMessageBytes(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	createTopic(t, adm, "grows", map[string]string{"compression.type": "uncompressed", "max.message.bytes": "2000"})
	createTopic(t, adm, "shrinks", map[string]string{"compression.type": "gzip", "max.message.bytes": "2000"})

	zeros := make([]byte, 20000)
	// ~100 bytes as gzip, 20 KB uncompressed: too large as stored.
	small := build(t, record.BuildOptions{Codec: record.CodecGzip}, zeros)
	if len(small) > 2000 {
		t.Fatalf("fixture: gzip batch of %d bytes", len(small))
	}
	if got := rawProduce(t, c, "grows", small); got.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("gzip batch decompressed past max.message.bytes: error %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(got.ErrorCode))
	}
	fits := build(t, record.BuildOptions{Codec: record.CodecGzip}, zeros[:1000])
	if got := rawProduce(t, c, "grows", fits); got.ErrorCode != 0 {
		t.Errorf("batch that fits uncompressed: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := storedBatches(t, dir, "grows"); len(got) != 1 || got[0].Codec() != record.CodecNone {
		t.Errorf("stored %d batches", len(got))
	}

	// 20 KB as produced, ~100 bytes once gzipped: Kafka checks the batch
	// as produced too, so it is refused.
	big := build(t, record.BuildOptions{}, zeros)
	if got := rawProduce(t, c, "shrinks", big); got.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("batch over max.message.bytes as produced: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := storedBatches(t, dir, "shrinks"); len(got) != 0 {
		t.Errorf("stored %d batches", len(got))
	}
	fitsBoth := build(t, record.BuildOptions{}, zeros[:1500])
	if got := rawProduce(t, c, "shrinks", fitsBoth); got.ErrorCode != 0 {
		t.Errorf("batch that fits: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := storedBatches(t, dir, "shrinks"); len(got) != 1 || got[0].Codec() != record.CodecGzip {
		t.Errorf("stored %d batches", len(got))
	}
}

// TestCompressionIdempotentRetry: a retried batch of an idempotent producer
// is recognized after recompression (its producer fields are kept) and gets
// its original offset.
func TestCompressionIdempotentRetry(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr())
	createTopic(t, kadm.NewClient(c), "retry", map[string]string{"compression.type": "zstd"})
	opts := record.BuildOptions{ProducerID: 77, ProducerEpoch: 0, BaseSequence: 0}
	first := build(t, opts, []byte("a"), []byte("b"))
	opts.BaseSequence = 2
	second := build(t, opts, []byte("c"))
	for i, batch := range []record.Batch{first, second, second} {
		got := rawProduce(t, c, "retry", bytes.Clone(batch))
		if want := []int64{0, 2, 2}[i]; got.ErrorCode != 0 || got.BaseOffset != want {
			t.Fatalf("produce %d: error %v at %d, want offset %d", i, kerr.ErrorForCode(got.ErrorCode), got.BaseOffset, want)
		}
	}
	stored := storedBatches(t, dir, "retry")
	if len(stored) != 2 {
		t.Fatalf("%d batches stored, want 2", len(stored))
	}
	for _, sb := range stored {
		if sb.Codec() != record.CodecZstd || sb.ProducerID() != 77 {
			t.Errorf("stored batch: codec %v producer %d", sb.Codec(), sb.ProducerID())
		}
	}
}

// TestCompressionLogAppendTime: recompression and broker timestamps combine.
func TestCompressionLogAppendTime(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	createTopic(t, adm, "lat", map[string]string{"compression.type": "snappy", "message.timestamp.type": "LogAppendTime"})
	p := newClient(t, b.Addr(), kgo.ProducerBatchCompression(kgo.GzipCompression()))
	produceAll(t, p, "lat", "one one one one one one", "two two two two two two")
	got := consumeN(t, b.Addr(), "lat", 2)
	stored := storedBatches(t, dir, "lat")
	if len(stored) != 1 || stored[0].Codec() != record.CodecSnappy || stored[0].TimestampType() != record.LogAppendTime {
		t.Fatalf("stored %d batches", len(stored))
	}
	for _, r := range got {
		if r.Timestamp.UnixMilli() != stored[0].MaxTimestamp() {
			t.Errorf("record %d: timestamp %d, log append time %d", r.Offset, r.Timestamp.UnixMilli(), stored[0].MaxTimestamp())
		}
	}
}
