package record_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

func TestRecordsEveryCodec(t *testing.T) {
	for _, c := range record.Codecs {
		t.Run(c.String(), func(t *testing.T) {
			want := fixture()
			b := recordtest.Build(t, recordtest.Options{Codec: c, BaseOffset: 42}, want...)
			if b.Codec() != c {
				t.Fatalf("built codec %v", b.Codec())
			}
			got, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, want, 42)

			// ForEachRecord sees the same and stops when told to.
			n := 0
			err = b.ForEachRecord(func(r *record.Record) bool {
				if r.Offset != got[n].Offset || !sameBytes(r.Key, got[n].Key) {
					t.Errorf("ForEachRecord record %d differs from Records", n)
				}
				n++
				return n < 3
			})
			if err != nil || n != 3 {
				t.Errorf("stopped ForEachRecord: %d calls, %v", n, err)
			}

			// Keys and values have their own capacity: appending to one
			// must not overwrite the next field in the shared buffer.
			_ = append(got[0].Key, "XXXXXXXX"...)
			if string(got[0].Value) != "v0" {
				t.Errorf("append to key overwrote the value: %q", got[0].Value)
			}

			compareWithKgo(t, b, got)
		})
	}
}

// compareWithKgo decodes b with franz-go's consumer path (CRC check,
// decompression, record parsing) and compares with our records.
func compareWithKgo(t *testing.T, b record.Batch, ours []record.Record) {
	t.Helper()
	rp := &kmsg.FetchResponseTopicPartition{HighWatermark: b.NextOffset(), LastStableOffset: b.NextOffset(), RecordBatches: b}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{KeepControlRecords: true, Topic: "t"},
		rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("kgo: %v", fp.Err)
	}
	if len(fp.Records) != len(ours) {
		t.Fatalf("kgo decoded %d records, we %d", len(fp.Records), len(ours))
	}
	for i, k := range fp.Records {
		o := ours[i]
		if k.Offset != o.Offset || !k.Timestamp.Equal(time.UnixMilli(o.Timestamp)) ||
			!bytes.Equal(k.Key, o.Key) || !bytes.Equal(k.Value, o.Value) || len(k.Headers) != len(o.Headers) {
			t.Fatalf("record %d: kgo offset %d ts %v key %q, we offset %d ts %d key %q",
				i, k.Offset, k.Timestamp.UnixMilli(), k.Key, o.Offset, o.Timestamp, o.Key)
		}
		for j, h := range k.Headers {
			if h.Key != o.Headers[j].Key || !bytes.Equal(h.Value, o.Headers[j].Value) {
				t.Fatalf("record %d header %d: kgo %q=%q, we %q=%q", i, j, h.Key, h.Value, o.Headers[j].Key, o.Headers[j].Value)
			}
		}
	}
}

func TestLogAppendTimeMatchesKgo(t *testing.T) {
	b := recordtest.Build(t, recordtest.Options{Codec: record.CodecSnappy}, smallFixture()...)
	b.SetLogAppendTime(1_800_000_000_000)
	got, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	compareWithKgo(t, b, got)
}

func TestControlBatch(t *testing.T) {
	// A commit marker as a transaction coordinator writes it: key is
	// version 0, type 1 (commit); value is version 0, coordinator epoch 5.
	key := []byte{0, 0, 0, 1}
	value := []byte{0, 0, 0, 0, 0, 5}
	recs := withLength(recordBody(0, 0, field(key), field(value), varint(nil, 0)))
	b := rawBatch(t, 0x30, 1, recs) // transactional | control
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if !b.IsControl() || !b.IsTransactional() {
		t.Fatalf("attributes %#x", b.Attributes())
	}
	got, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Key, key) || !bytes.Equal(got[0].Value, value) || got[0].Offset != 1000 {
		t.Fatalf("control record %+v", got)
	}
	compareWithKgo(t, b, got)
}

func TestEmptyBatch(t *testing.T) {
	// Compaction can leave a batch with no records; Kafka keeps it for its
	// producer state. It iterates as nothing, whatever its codec bits say.
	for _, c := range record.Codecs {
		b := rawBatch(t, int16(c), 0, nil)
		if err := b.Validate(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if err := b.ForEachRecord(func(*record.Record) bool { t.Error("called"); return true }); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

func TestXerialBatch(t *testing.T) {
	// A batch as the Java client writes it: xerial-framed snappy.
	want := fixture()
	plain := recordtest.Build(t, recordtest.Options{}, want...)
	b := rawBatch(t, int16(record.CodecSnappy), plain.RecordCount(), xerial(t, plain[record.HeaderSize:], 32<<10))
	got, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Timestamp = want[i].Timestamp - want[0].Timestamp + b.BaseTimestamp()
	}
	checkRecords(t, got, want, b.BaseOffset())
	compareWithKgo(t, b, got)
}

// TestMalformedRecords puts broken record bytes inside an otherwise valid
// batch, under every codec (compressed with our Compress, so the decoder sees
// the same broken bytes after decompression). Each must fail as corruption.
func TestMalformedRecords(t *testing.T) {
	good := goodRecord(0)
	long := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}
	for _, tc := range []struct {
		name  string
		count int32
		data  []byte
	}{
		{"no records", 1, nil},
		{"fewer than count", 2, good},
		{"more than count", 1, append(bytes.Clone(good), goodRecord(1)...)},
		{"trailing byte", 1, append(bytes.Clone(good), 0)},
		{"truncated record", 1, good[:len(good)-1]},
		{"truncated length varint", 1, []byte{0x80}},
		{"overlong length varint", 1, long},
		{"negative length", 1, varint(nil, -2)},
		{"length past end", 1, append(varint(nil, 100), recordBody(0, 0)...)},
		{"length beyond int32", 1, varint(nil, 1<<40)},
		{"empty body", 1, withLength(nil)},
		{"fields past length", 1, withLength(recordBody(0, 0))},
		{"offset delta beyond int32", 1, withLength(recordBody(0, 1<<33, field(nil), field(nil), varint(nil, 0)))},
		{"bad timestamp varlong", 1, withLength(append([]byte{0}, long[:10]...))},
		{"key past end", 1, withLength(recordBody(0, 0, varint(nil, 50), field(nil), varint(nil, 0)))},
		{"key length -2", 1, withLength(recordBody(0, 0, varint(nil, -2), field(nil), varint(nil, 0)))},
		{"value past end", 1, withLength(recordBody(0, 0, field(nil), varint(nil, 9), varint(nil, 0)))},
		{"no header count", 1, withLength(recordBody(0, 0, field(nil), field(nil)))},
		{"negative header count", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, -1)))},
		{"huge header count", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1<<30)))},
		{"header count past data", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 2), field([]byte("k")), field(nil)))},
		{"null header key", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1), field(nil), field(nil)))},
		{"header value past end", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1), field([]byte("k")), varint(nil, 3)))},
		{"bytes after headers", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 0), []byte{7}))},
	} {
		for _, c := range record.Codecs {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				section, err := record.Compress(c, nil, tc.data)
				if err != nil {
					t.Fatal(err)
				}
				b := rawBatch(t, int16(c), tc.count, section)
				if err := b.Validate(); err != nil {
					t.Fatalf("the header should be valid: %v", err)
				}
				calls := 0
				err = b.ForEachRecord(func(*record.Record) bool { calls++; return true })
				if !errors.Is(err, record.ErrCorrupt) {
					t.Fatalf("ForEachRecord after %d records: %v, want ErrCorrupt", calls, err)
				}
				if recs, err := b.Records(); !errors.Is(err, record.ErrCorrupt) || recs != nil {
					t.Fatalf("Records: %d records, %v", len(recs), err)
				}
			})
		}
	}
}

func TestForEachRecordBadFraming(t *testing.T) {
	good := recordtest.Values(t, 1, "a")
	setCodec := func(c int16) record.Batch {
		b := record.Batch(bytes.Clone(good))
		b[22] = b[22]&^7 | byte(c) // attributes low byte
		b.UpdateCRC()
		return b
	}
	for _, tc := range []struct {
		name string
		b    record.Batch
		want []error
	}{
		{"nil", nil, []error{record.ErrTruncated}},
		{"header only", good[:record.HeaderSize], []error{record.ErrBadLength}},
		{"magic 1", func() record.Batch { b := bytes.Clone(good); b[16] = 1; return b }(), []error{record.ErrUnsupportedMagic}},
		{"codec 5", setCodec(5), []error{record.ErrCorrupt, record.ErrUnknownCodec}},
		{"codec 6", setCodec(6), []error{record.ErrCorrupt, record.ErrUnknownCodec}},
		{"codec 7", setCodec(7), []error{record.ErrCorrupt, record.ErrUnknownCodec}},
		{"gzip bits on plain records", setCodec(1), []error{record.ErrCorrupt}},
		{"zstd bits on plain records", setCodec(4), []error{record.ErrCorrupt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.ForEachRecord(func(*record.Record) bool { return true })
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want errors.Is %v", err, w)
				}
			}
		})
	}
}
