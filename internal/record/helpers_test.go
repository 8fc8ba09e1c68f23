package record_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// recordCountPos is where recordCount sits in the header (doc.go); tests
// patch it to build inconsistent batches.
const recordCountPos = 57

// rawBatch wraps an already encoded (and, for codec != none, compressed)
// records section in a v2 header with a correct length and CRC. It lets
// tests put hand-made or fuzzed record bytes inside an otherwise valid batch.
func rawBatch(tb testing.TB, attrs int16, count int32, records []byte) record.Batch {
	tb.Helper()
	kb := kmsg.RecordBatch{
		FirstOffset:          1000,
		PartitionLeaderEpoch: 3,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      max(count-1, 0),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_500,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           count,
		Records:              records,
	}
	b := record.Batch(kb.AppendTo(nil))
	b.SetLength()
	b.UpdateCRC()
	return b
}

// setCount patches recordCount and fixes the CRC.
func setCount(b record.Batch, n int32) {
	binary.BigEndian.PutUint32(b[recordCountPos:], uint32(n))
	b.UpdateCRC()
}

// fixture is a set of records that exercises every field: keys, null and
// empty keys and values, headers with null values, timestamps out of order,
// and a value large enough to span several compression blocks.
func fixture() []recordtest.Record {
	big := bytes.Repeat([]byte("strata compresses this value. "), 4000) // ~120 KB
	recs := []recordtest.Record{
		{Key: []byte("k0"), Value: []byte("v0"), Timestamp: 1_700_000_000_000,
			Headers: []kmsg.Header{{Key: "h1", Value: []byte("x")}, {Key: "h2", Value: nil}, {Key: "", Value: []byte{}}}},
		{Key: nil, Value: []byte{}, Timestamp: 1_699_999_999_000},
		{Key: []byte{}, Value: nil, Timestamp: 1_700_000_002_000},
		{Key: []byte("big"), Value: big, Timestamp: 1_700_000_001_000},
	}
	for i := range 50 {
		recs = append(recs, recordtest.Record{
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     fmt.Appendf(nil, "value-%d-%s", i, bytes.Repeat([]byte{'z'}, i)),
			Timestamp: 1_700_000_000_000 + int64(i),
		})
	}
	return recs
}

// smallFixture is fixture without its big value, for tests that loop over
// every byte of a batch.
func smallFixture() []recordtest.Record {
	f := fixture()
	return append(f[:3], f[4:10]...)
}

// sameBytes is bytes.Equal that also tells nil from empty, since a null key
// and an empty key mean different things to Kafka clients.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// checkRecords compares decoded records with what recordtest.Build was given.
func checkRecords(t *testing.T, got []record.Record, want []recordtest.Record, baseOffset int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != baseOffset+int64(i) {
			t.Errorf("record %d: offset %d, want %d", i, g.Offset, baseOffset+int64(i))
		}
		if g.Timestamp != w.Timestamp {
			t.Errorf("record %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
		}
		if !sameBytes(g.Key, w.Key) {
			t.Errorf("record %d: key %q (nil %t), want %q (nil %t)", i, g.Key, g.Key == nil, w.Key, w.Key == nil)
		}
		if !sameBytes(g.Value, w.Value) {
			t.Errorf("record %d: value of %d bytes (nil %t), want %d (nil %t)", i, len(g.Value), g.Value == nil, len(w.Value), w.Value == nil)
		}
		if len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
			continue
		}
		for j, h := range w.Headers {
			if g.Headers[j].Key != h.Key || !sameBytes(g.Headers[j].Value, h.Value) {
				t.Errorf("record %d header %d: %q=%q, want %q=%q", i, j, g.Headers[j].Key, g.Headers[j].Value, h.Key, h.Value)
			}
		}
	}
}

// Hand-made record encoding for malformed-input tests. Kafka's varints are
// zigzag, as encoding/binary's signed varints are.

func varint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// recordBody is attributes, timestampDelta, offsetDelta, then the given
// key/value/header bytes verbatim.
func recordBody(tsDelta, offsetDelta int64, rest ...[]byte) []byte {
	b := []byte{0}
	b = varint(b, tsDelta)
	b = varint(b, offsetDelta)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

// withLength prefixes body with its varint length, as a record is framed.
func withLength(body []byte) []byte { return append(varint(nil, int64(len(body))), body...) }

// field encodes a length-prefixed field; nil is the null field (-1).
func field(v []byte) []byte {
	if v == nil {
		return varint(nil, -1)
	}
	return append(varint(nil, int64(len(v))), v...)
}

// goodRecord encodes a well-formed record with one header.
func goodRecord(offsetDelta int64) []byte {
	return withLength(recordBody(0, offsetDelta, field([]byte("k")), field([]byte("v")),
		varint(nil, 1), field([]byte("hk")), field([]byte("hv"))))
}
