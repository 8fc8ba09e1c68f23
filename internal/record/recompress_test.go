package record_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// Header byte ranges that recompression may change (doc.go): the length,
// the CRC and the codec bits of the attributes.
const (
	lengthPos     = 8
	crcPos        = 17
	attributesPos = 21
)

// headerWithoutCodec is b's header with the length, CRC and codec bits
// zeroed: what recompression must keep byte for byte.
func headerWithoutCodec(b record.Batch) []byte {
	h := bytes.Clone(b[:record.HeaderSize])
	clear(h[lengthPos : lengthPos+4])
	clear(h[crcPos : crcPos+4])
	h[attributesPos+1] &^= 0x07
	return h
}

// checkRecompressed checks that got is from recompressed to codec to, and
// that franz-go's consumer reads it as we do.
func checkRecompressed(t *testing.T, from, got record.Batch, to record.Codec) {
	t.Helper()
	compareWithKgo(t, got, checkRecompressedOurs(t, from, got, to))
}

// checkRecompressedOurs is checkRecompressed without franz-go, for fuzzed
// batches whose offsets kgo's consumer would skip.
func checkRecompressedOurs(t *testing.T, from, got record.Batch, to record.Codec) []record.Record {
	t.Helper()
	if err := got.Validate(); err != nil {
		t.Fatalf("recompressed batch: %v", err)
	}
	if got.Codec() != to {
		t.Fatalf("codec %v, want %v", got.Codec(), to)
	}
	if h, w := headerWithoutCodec(got), headerWithoutCodec(from); !bytes.Equal(h, w) {
		t.Fatalf("header changed:\n got %x\nwant %x", h, w)
	}
	want, err := from.Records()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := got.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		g := recs[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: offset %d ts %d key %q (%d-byte value), want offset %d ts %d key %q (%d-byte value)",
				i, g.Offset, g.Timestamp, g.Key, len(g.Value), w.Offset, w.Timestamp, w.Key, len(w.Value))
		}
		for j, h := range w.Headers {
			if g.Headers[j].Key != h.Key || !sameBytes(g.Headers[j].Value, h.Value) {
				t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, j, g.Headers[j].Key, g.Headers[j].Value, h.Key, h.Value)
			}
		}
	}
	return recs
}

// TestRecompressEveryCodecPair recompresses batches of an idempotent (and a
// transactional) producer from every codec to every codec. Beyond equal
// headers and records, decompressing again must give back exactly the bytes
// of the batch built uncompressed: the records are re-encoded as a client
// encodes them, not merely equivalent.
func TestRecompressEveryCodecPair(t *testing.T) {
	recs := fixture()
	for _, txn := range []bool{false, true} {
		for _, from := range record.Codecs {
			opts := recordtest.Options{Codec: from, BaseOffset: 1000, ProducerID: 4242, ProducerEpoch: 3, BaseSequence: 17, Transactional: txn}
			b := recordtest.Build(t, opts, recs...)
			b.SetPartitionLeaderEpoch(9)
			opts.Codec = record.CodecNone
			plain := recordtest.Build(t, opts, recs...)
			plain.SetPartitionLeaderEpoch(9)
			for _, to := range record.Codecs {
				t.Run(from.String()+"-to-"+to.String(), func(t *testing.T) {
					src := bytes.Clone(b)
					got, err := record.Recompress(src, to)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(src, b) {
						t.Fatal("Recompress modified its input")
					}
					if from == to {
						if &got[0] != &src[0] || len(got) != len(src) {
							t.Fatal("same codec: batch was copied")
						}
						return
					}
					checkRecompressed(t, b, got, to)
					if got.IsTransactional() != txn || got.ProducerID() != 4242 || got.BaseSequence() != 17 {
						t.Fatalf("producer fields: txn %t pid %d seq %d", got.IsTransactional(), got.ProducerID(), got.BaseSequence())
					}
					back, err := record.Recompress(got, record.CodecNone)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(back, plain) {
						t.Fatalf("recompressed to none: %d bytes, differ from the uncompressed build (%d bytes)", len(back), len(plain))
					}
				})
			}
		}
	}
}

// TestRecompressLogAppendTime: records of a LogAppendTime batch all read as
// the batch's max timestamp, but their own deltas are kept.
func TestRecompressLogAppendTime(t *testing.T) {
	recs := smallFixture()
	b := recordtest.Build(t, recordtest.Options{Codec: record.CodecLZ4}, recs...)
	b.SetLogAppendTime(1_800_000_000_000)
	plain := recordtest.Build(t, recordtest.Options{}, recs...)
	plain.SetLogAppendTime(1_800_000_000_000)

	got, err := record.Recompress(b, record.CodecZstd)
	if err != nil {
		t.Fatal(err)
	}
	checkRecompressed(t, b, got, record.CodecZstd)
	if got.TimestampType() != record.LogAppendTime {
		t.Fatal("timestamp type lost")
	}
	back, err := record.Recompress(got, record.CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, plain) {
		t.Fatal("timestamp deltas not kept")
	}
}

// TestRecompressKgoProducerBatch recompresses a batch whose records franz-go
// encoded and compressed with its producer's compressors, as kgo sends it.
func TestRecompressKgoProducerBatch(t *testing.T) {
	var raw []byte
	for i, r := range fixture() {
		rec := kmsg.Record{TimestampDelta64: r.Timestamp - 1_700_000_000_000, OffsetDelta: int32(i), Key: r.Key, Value: r.Value, Headers: r.Headers}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		raw = rec.AppendTo(raw)
	}
	n := int32(len(fixture()))
	for _, from := range record.Codecs[1:] {
		kc, err := kgo.DefaultCompressor(kgoCodec(from))
		if err != nil {
			t.Fatal(err)
		}
		comp, used := kc.Compress(new(bytes.Buffer), raw)
		if used != kgo.CompressionCodecType(from) {
			t.Fatalf("kgo compressed with %d", used)
		}
		b := rawBatch(t, int16(from), n, bytes.Clone(comp))
		for _, to := range record.Codecs {
			if to == from {
				continue
			}
			got, err := record.Recompress(b, to)
			if err != nil {
				t.Fatalf("%v to %v: %v", from, to, err)
			}
			checkRecompressed(t, b, got, to)
			if to == record.CodecNone && !bytes.Equal(got[record.HeaderSize:], raw) {
				t.Fatalf("%v to none: records differ from what kgo encoded", from)
			}
		}
	}
}

// TestRecompressXerial recompresses a batch as the Java client writes it.
func TestRecompressXerial(t *testing.T) {
	plain := recordtest.Build(t, recordtest.Options{}, fixture()...)
	b := rawBatch(t, int16(record.CodecSnappy), plain.RecordCount(), xerial(t, plain[record.HeaderSize:], 32<<10))
	got, err := record.Recompress(b, record.CodecGzip)
	if err != nil {
		t.Fatal(err)
	}
	checkRecompressed(t, b, got, record.CodecGzip)
}

func TestRecompressControlAndEmpty(t *testing.T) {
	// A control batch is returned as it is, even uncompressed to gzip.
	recs := withLength(recordBody(0, 0, field([]byte{0, 0, 0, 1}), field([]byte{0, 0, 0, 0, 0, 5}), varint(nil, 0)))
	ctrl := rawBatch(t, 0x30, 1, recs)
	got, err := record.Recompress(ctrl, record.CodecGzip)
	if err != nil || &got[0] != &ctrl[0] || len(got) != len(ctrl) {
		t.Fatalf("control batch: %d bytes, %v", len(got), err)
	}

	// A batch emptied by compaction gets an empty stream of the new codec.
	for _, from := range record.Codecs {
		for _, to := range record.Codecs {
			if from == to {
				continue
			}
			b := rawBatch(t, int16(from), 0, nil)
			got, err := record.Recompress(b, to)
			if err != nil {
				t.Fatalf("%v to %v: %v", from, to, err)
			}
			checkRecompressed(t, b, got, to)
		}
	}
}

func TestRecompressErrors(t *testing.T) {
	good := recordtest.Build(t, recordtest.Options{Codec: record.CodecGzip}, smallFixture()...)

	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff
	garbage := rawBatch(t, int16(record.CodecZstd), 3, []byte("not a zstd frame at all"))
	truncatedRecord := rawBatch(t, 0, 2, append(goodRecord(0), goodRecord(1)[:5]...))
	tooFew := record.Batch(bytes.Clone(good))
	binary.BigEndian.PutUint32(tooFew[57:], uint32(good.RecordCount()+1))
	binary.BigEndian.PutUint32(tooFew[23:], uint32(good.RecordCount()))
	tooFew.UpdateCRC()
	v1 := bytes.Clone(good)
	v1[16] = 1

	for _, tc := range []struct {
		name string
		b    record.Batch
		to   record.Codec
		want error
	}{
		{"bad CRC", badCRC, record.CodecNone, record.ErrBadCRC},
		{"bad CRC, same codec", badCRC, record.CodecGzip, record.ErrBadCRC},
		{"truncated", good[:len(good)-1], record.CodecNone, record.ErrCorrupt},
		{"garbage zstd", garbage, record.CodecGzip, record.ErrCorrupt},
		{"truncated record", truncatedRecord, record.CodecSnappy, record.ErrCorrupt},
		{"fewer records than count", tooFew, record.CodecLZ4, record.ErrCorrupt},
		{"magic 1", v1, record.CodecNone, record.ErrUnsupportedMagic},
		{"unknown target codec", good, record.Codec(5), record.ErrUnknownCodec},
	} {
		got, err := record.Recompress(tc.b, tc.to)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: %d bytes, %v; want %v", tc.name, len(got), err, tc.want)
		}
	}
}

// FuzzRecompress recompresses arbitrary batches (CRC fixed, so mutations
// reach the records) to a codec picked by the fuzzer. Invariants: nothing
// panics; an error is classified (the broker answers CORRUPT_MESSAGE and the
// like); a result is a valid batch in the new codec whose records decode as
// the input's.
func FuzzRecompress(f *testing.F) {
	lowerLimitForFuzz(f)
	for i, b := range seedBatches(f) {
		f.Add([]byte(b), uint8(i+1))
	}
	f.Fuzz(func(t *testing.T, data []byte, to uint8) {
		if len(data) < record.HeaderSize {
			return
		}
		b := record.Batch(bytes.Clone(data))
		b.SetLength()
		b.UpdateCRC()
		c := record.Codecs[int(to)%len(record.Codecs)]
		got, err := record.Recompress(b, c)
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			if _, derr := b.Records(); derr == nil && b.Validate() == nil {
				t.Fatalf("Recompress failed on a batch that decodes: %v", err)
			}
			return
		}
		if b.Codec() == c || b.IsControl() {
			return
		}
		checkRecompressedOurs(t, b, got, c)
	})
}
