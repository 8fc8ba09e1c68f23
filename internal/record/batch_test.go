package record_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

func TestHeaderAccessors(t *testing.T) {
	recs := []recordtest.Record{
		{Value: []byte("a"), Timestamp: 1000},
		{Value: []byte("b"), Timestamp: 1005},
		{Value: []byte("c"), Timestamp: 1002},
	}
	b := recordtest.Build(t, recordtest.Options{
		Codec: record.CodecZstd, BaseOffset: 100,
		ProducerID: 7, ProducerEpoch: 3, BaseSequence: 40, Transactional: true,
	}, recs...)

	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"BaseOffset", b.BaseOffset(), int64(100)},
		{"Length", b.Length(), int32(len(b) - record.LogOverhead)},
		{"Size", b.Size(), len(b)},
		{"PartitionLeaderEpoch", b.PartitionLeaderEpoch(), int32(-1)},
		{"Magic", b.Magic(), int8(2)},
		{"CRC", b.CRC(), b.ComputeCRC()},
		{"Codec", b.Codec(), record.CodecZstd},
		{"TimestampType", b.TimestampType(), record.CreateTime},
		{"IsTransactional", b.IsTransactional(), true},
		{"IsControl", b.IsControl(), false},
		{"LastOffsetDelta", b.LastOffsetDelta(), int32(2)},
		{"BaseTimestamp", b.BaseTimestamp(), int64(1000)},
		{"MaxTimestamp", b.MaxTimestamp(), int64(1005)},
		{"ProducerID", b.ProducerID(), int64(7)},
		{"ProducerEpoch", b.ProducerEpoch(), int16(3)},
		{"BaseSequence", b.BaseSequence(), int32(40)},
		{"LastSequence", b.LastSequence(), int32(42)},
		{"RecordCount", b.RecordCount(), int32(3)},
		{"LastOffset", b.LastOffset(), int64(102)},
		{"NextOffset", b.NextOffset(), int64(103)},
		{"HasProducerID", b.HasProducerID(), true},
		{"Attributes", b.Attributes(), int16(record.CodecZstd) | 0x10},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// A batch from a plain producer has no producer id or sequence.
	plain := recordtest.Values(t, 5, "x")
	if plain.HasProducerID() || plain.ProducerID() != -1 || plain.BaseSequence() != -1 || plain.LastSequence() != -1 {
		t.Errorf("plain batch: producer id %d, base sequence %d, last sequence %d",
			plain.ProducerID(), plain.BaseSequence(), plain.LastSequence())
	}
	// The header accessors need only the header.
	if hdr := record.Batch(b[:record.HeaderSize]); hdr.NextOffset() != 103 || record.CheckHeader(hdr) != nil {
		t.Errorf("header-only view: next offset %d, CheckHeader %v", hdr.NextOffset(), record.CheckHeader(hdr))
	}
}

// TestBatchErrors checks Validate and Parse on one malformed batch at a
// time. Parse takes the length field's word for where the batch ends, so a
// length that claims too few bytes shows up there as a CRC mismatch.
func TestBatchErrors(t *testing.T) {
	good := recordtest.Build(t, recordtest.Options{Codec: record.CodecNone},
		recordtest.Record{Value: []byte("one"), Timestamp: 1},
		recordtest.Record{Value: []byte("two"), Timestamp: 2},
		recordtest.Record{Value: []byte("three"), Timestamp: 3})
	putLength := func(b []byte, n int32) { binary.BigEndian.PutUint32(b[8:], uint32(n)) }
	putInt32 := func(pos int, v int32) func([]byte) []byte {
		return func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[pos:], uint32(v))
			record.Batch(b).UpdateCRC()
			return b
		}
	}

	for _, tc := range []struct {
		name          string
		mutate        func([]byte) []byte
		validate      error // want errors.Is(Validate(), validate)
		parse         error // want errors.Is(Parse(), parse)
		notCorruption bool  // the error must not wrap ErrCorrupt
	}{
		{name: "good", mutate: func(b []byte) []byte { return b }},
		{name: "empty", mutate: func(b []byte) []byte { return b[:0] },
			validate: record.ErrTruncated, parse: record.ErrTruncated},
		{name: "short header", mutate: func(b []byte) []byte { return b[:record.HeaderSize-1] },
			validate: record.ErrTruncated, parse: record.ErrTruncated},
		{name: "header only", mutate: func(b []byte) []byte { return b[:record.HeaderSize] },
			validate: record.ErrBadLength, parse: record.ErrTruncated},
		{name: "missing last byte", mutate: func(b []byte) []byte { return b[:len(b)-1] },
			validate: record.ErrBadLength, parse: record.ErrTruncated},
		{name: "length one too big", mutate: func(b []byte) []byte { putLength(b, int32(len(b)-11)); return b },
			validate: record.ErrBadLength, parse: record.ErrTruncated},
		{name: "length one too small", mutate: func(b []byte) []byte { putLength(b, int32(len(b)-13)); return b },
			validate: record.ErrBadLength, parse: record.ErrBadCRC},
		{name: "length below header", mutate: func(b []byte) []byte { putLength(b, record.HeaderSize-record.LogOverhead-1); return b },
			validate: record.ErrBadLength, parse: record.ErrBadLength},
		{name: "negative length", mutate: func(b []byte) []byte { putLength(b, -1); return b },
			validate: record.ErrBadLength, parse: record.ErrBadLength},
		{name: "max length", mutate: func(b []byte) []byte { putLength(b, math.MaxInt32); return b },
			validate: record.ErrBadLength, parse: record.ErrTruncated},
		{name: "magic 0", mutate: func(b []byte) []byte { b[16] = 0; return b },
			validate: record.ErrUnsupportedMagic, parse: record.ErrUnsupportedMagic, notCorruption: true},
		{name: "magic 1", mutate: func(b []byte) []byte { b[16] = 1; return b },
			validate: record.ErrUnsupportedMagic, parse: record.ErrUnsupportedMagic, notCorruption: true},
		{name: "magic 3", mutate: func(b []byte) []byte { b[16] = 3; return b },
			validate: record.ErrUnsupportedMagic, parse: record.ErrUnsupportedMagic, notCorruption: true},
		{name: "crc field", mutate: func(b []byte) []byte { b[20] ^= 1; return b },
			validate: record.ErrBadCRC, parse: record.ErrBadCRC},
		{name: "count above last offset delta", mutate: putInt32(recordCountPos, 4),
			validate: record.ErrInvalidRecord, parse: record.ErrInvalidRecord, notCorruption: true},
		{name: "negative count", mutate: putInt32(recordCountPos, -1),
			validate: record.ErrInvalidRecord, parse: record.ErrInvalidRecord, notCorruption: true},
		{name: "negative last offset delta", mutate: putInt32(23, -1),
			validate: record.ErrInvalidRecord, parse: record.ErrInvalidRecord, notCorruption: true},
		// Compaction leaves these behind; they stay valid.
		{name: "gap after compaction", mutate: putInt32(23, 10)},
		{name: "emptied by compaction", mutate: putInt32(recordCountPos, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(good))
			check := func(op string, err, want error) {
				t.Helper()
				if want == nil {
					if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
					return
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s: %v, want %v", op, err, want)
				}
				if errors.Is(err, record.ErrCorrupt) == tc.notCorruption {
					t.Fatalf("%s: %v: errors.Is(ErrCorrupt) = %t", op, err, !tc.notCorruption)
				}
			}
			check("Validate", record.Batch(b).Validate(), tc.validate)
			pb, rest, err := record.Parse(b)
			check("Parse", err, tc.parse)
			if err != nil {
				if pb != nil || len(rest) != len(b) {
					t.Errorf("Parse error returned a batch of %d bytes and %d rest", len(pb), len(rest))
				}
				return
			}
			if len(pb) != len(b) || len(rest) != 0 {
				t.Errorf("Parse: batch %d bytes, rest %d; want %d, 0", len(pb), len(rest), len(b))
			}
		})
	}
}

// TestBatchBitFlips flips every bit of every batch: inside the CRC-covered
// region each flip must fail as a CRC mismatch; outside it (baseOffset,
// partitionLeaderEpoch) the batch stays valid, as the broker relies on when
// it patches those fields.
func TestBatchBitFlips(t *testing.T) {
	for _, c := range record.Codecs {
		t.Run(c.String(), func(t *testing.T) {
			good := recordtest.Build(t, recordtest.Options{Codec: c}, smallFixture()...)
			for i := range len(good) {
				for bit := range 8 {
					b := bytes.Clone(good)
					b[i] ^= 1 << bit
					err := record.Batch(b).Validate()
					switch {
					case i >= 17: // crc and what it covers
						if !errors.Is(err, record.ErrBadCRC) || !errors.Is(err, record.ErrCorrupt) {
							t.Fatalf("flip byte %d bit %d: %v, want CRC mismatch", i, bit, err)
						}
					case i < 8 || (i >= 12 && i < 16):
						if err != nil {
							t.Fatalf("flip byte %d (outside CRC) bit %d: %v", i, bit, err)
						}
					default: // length or magic
						if err == nil {
							t.Fatalf("flip byte %d bit %d: accepted", i, bit)
						}
					}
				}
			}
		})
	}
}

func TestPatchFieldsKeepBatchValid(t *testing.T) {
	for _, c := range record.Codecs {
		t.Run(c.String(), func(t *testing.T) {
			want := fixture()
			b := recordtest.Build(t, recordtest.Options{Codec: c}, want...)
			crc := b.CRC()

			b.SetBaseOffset(1 << 40)
			b.SetPartitionLeaderEpoch(17)
			if err := b.Validate(); err != nil {
				t.Fatalf("after SetBaseOffset/SetPartitionLeaderEpoch: %v", err)
			}
			if b.CRC() != crc || b.BaseOffset() != 1<<40 || b.PartitionLeaderEpoch() != 17 {
				t.Fatalf("crc %08x (was %08x), base offset %d, epoch %d", b.CRC(), crc, b.BaseOffset(), b.PartitionLeaderEpoch())
			}
			got, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, want, 1<<40)

			const appendTime int64 = 1_800_000_000_000
			b.SetLogAppendTime(appendTime)
			if err := b.Validate(); err != nil {
				t.Fatalf("after SetLogAppendTime: %v", err)
			}
			if b.TimestampType() != record.LogAppendTime || b.MaxTimestamp() != appendTime || b.Codec() != c {
				t.Fatalf("timestamp type %v, max timestamp %d, codec %v", b.TimestampType(), b.MaxTimestamp(), b.Codec())
			}
			n := 0
			err = b.ForEachRecord(func(r *record.Record) bool {
				if r.Timestamp != appendTime {
					t.Errorf("record %d: timestamp %d, want log append time %d", n, r.Timestamp, appendTime)
				}
				n++
				return true
			})
			if err != nil || n != len(want) {
				t.Fatalf("ForEachRecord: %d records, %v", n, err)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	batches := []record.Batch{
		recordtest.Values(t, 1, "a", "b"),
		recordtest.Build(t, recordtest.Options{Codec: record.CodecLZ4, BaseOffset: 2}, fixture()[:3]...),
		recordtest.Build(t, recordtest.Options{Codec: record.CodecZstd, BaseOffset: 5}, fixture()[4:6]...),
	}
	var buf []byte
	var starts []int
	for _, b := range batches {
		starts = append(starts, len(buf))
		buf = append(buf, b...)
	}

	var got []record.Batch
	if err := record.Split(buf, func(b record.Batch) bool { got = append(got, b); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(batches) {
		t.Fatalf("split %d batches, want %d", len(got), len(batches))
	}
	for i, b := range got {
		// Pointer equality: the batch is a window on buf, not a copy.
		if &b[0] != &buf[starts[i]] {
			t.Errorf("batch %d does not alias the input", i)
		}
		if !bytes.Equal(b, batches[i]) || cap(b) != len(b) {
			t.Errorf("batch %d: %d bytes, cap %d; want %d bytes", i, len(b), cap(b), len(batches[i]))
		}
	}

	// fn stops the walk.
	n := 0
	if err := record.Split(buf, func(record.Batch) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Errorf("stopping Split: %d calls, %v", n, err)
	}
	// A bad tail yields the valid prefix, then the error.
	n = 0
	err := record.Split(append(bytes.Clone(buf), 0, 0, 0), func(record.Batch) bool { n++; return true })
	if !errors.Is(err, record.ErrTruncated) || n != 3 {
		t.Errorf("Split with a torn tail: %d calls, %v", n, err)
	}
	if err := record.Split(nil, func(record.Batch) bool { t.Error("called on empty input"); return true }); err != nil {
		t.Errorf("Split(nil): %v", err)
	}

	// Parse's rest aliases the input too.
	_, rest, err := record.Parse(buf)
	if err != nil || &rest[0] != &buf[starts[1]] {
		t.Errorf("Parse rest does not alias the input (err %v)", err)
	}
}

func TestIncrementSequence(t *testing.T) {
	for _, tc := range []struct{ seq, delta, want int32 }{
		{0, 0, 0},
		{5, 3, 8},
		{math.MaxInt32 - 3, 3, math.MaxInt32},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 2, 0},
		{math.MaxInt32 - 2, 5, 2},
		{10, math.MaxInt32, 9},
	} {
		if got := record.IncrementSequence(tc.seq, tc.delta); got != tc.want {
			t.Errorf("IncrementSequence(%d, %d) = %d, want %d", tc.seq, tc.delta, got, tc.want)
		}
	}

	b := recordtest.Build(t, recordtest.Options{ProducerID: 1, BaseSequence: math.MaxInt32 - 1},
		recordtest.Record{Value: []byte("a")}, recordtest.Record{Value: []byte("b")}, recordtest.Record{Value: []byte("c")})
	if got := b.LastSequence(); got != 0 {
		t.Errorf("LastSequence with base MaxInt32-1 and 3 records = %d, want 0", got)
	}
}
