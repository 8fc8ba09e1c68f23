package record_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// fuzzLimit keeps decompression bombs found by the fuzzer cheap; the bound
// itself is what is under test, not its size.
const fuzzLimit = 4 << 20

func lowerLimitForFuzz(f *testing.F) {
	old := record.MaxDecompressedSize
	record.MaxDecompressedSize = fuzzLimit
	f.Cleanup(func() { record.MaxDecompressedSize = old })
}

// seedBatches are valid batches of every codec for the seed corpus.
func seedBatches(tb testing.TB) []record.Batch {
	var out []record.Batch
	for _, c := range record.Codecs {
		out = append(out, recordtest.Build(tb, recordtest.Options{Codec: c, BaseOffset: 7}, smallFixture()...))
	}
	return out
}

// classified reports whether err is one of the package's error classes, which
// the broker maps to Kafka error codes. An unclassified error would close the
// connection instead of answering CORRUPT_MESSAGE.
func classified(err error) bool {
	return errors.Is(err, record.ErrCorrupt) || errors.Is(err, record.ErrUnsupportedMagic) ||
		errors.Is(err, record.ErrInvalidRecord)
}

// FuzzParse feeds arbitrary bytes to Parse, Split and ForEachRecord.
// Invariants: nothing panics; every error is classified; a batch that Parse
// or Split accepts re-validates, has Size() == len, aliases the input, and
// decodes (or fails as corruption) the same way through Records and
// ForEachRecord, with exactly RecordCount records on success.
func FuzzParse(f *testing.F) {
	lowerLimitForFuzz(f)
	var all []byte
	for _, b := range seedBatches(f) {
		f.Add([]byte(b))
		f.Add([]byte(b[:len(b)-1]))
		all = append(all, b...)
	}
	f.Add(all)

	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		// Random bytes almost never carry a matching CRC, which would
		// keep the fuzzer at the door. Fix the first batch's CRC in a
		// copy so that mutations reach the record decoder too.
		if len(data) >= record.HeaderSize {
			fixed := bytes.Clone(data)
			if size := int64(record.Batch(fixed).Length()) + record.LogOverhead; size >= record.HeaderSize && size <= int64(len(fixed)) {
				record.Batch(fixed[:size]).UpdateCRC()
				checkParse(t, fixed)
			}
		}
	})
}

// checkParse runs Split, Parse and ForEachRecord on data and checks
// FuzzParse's invariants.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	pos := 0
	err := record.Split(data, func(b record.Batch) bool {
		if err := b.Validate(); err != nil {
			t.Fatalf("Split yielded an invalid batch: %v", err)
		}
		if b.Size() != len(b) || &b[0] != &data[pos] {
			t.Fatalf("batch at %d: size %d, len %d, aliases input %t", pos, b.Size(), len(b), &b[0] == &data[pos])
		}
		pos += len(b)
		checkDecode(t, b)
		return true
	})
	if err != nil && !classified(err) {
		t.Fatalf("Split: unclassified error %v", err)
	}
	if err == nil && pos != len(data) {
		t.Fatalf("Split consumed %d of %d bytes without error", pos, len(data))
	}

	b, rest, err := record.Parse(data)
	switch {
	case err != nil && !classified(err):
		t.Fatalf("Parse: unclassified error %v", err)
	case err != nil && (b != nil || len(rest) != len(data)):
		t.Fatalf("Parse failed but returned %d + %d bytes", len(b), len(rest))
	case err == nil && (len(b)+len(rest) != len(data) || b.Validate() != nil || b.Size() != len(b)):
		t.Fatalf("Parse: batch %d bytes, rest %d, of %d", len(b), len(rest), len(data))
	}

	// ForEachRecord checks framing itself, so it is safe on bytes
	// nobody validated.
	if err := record.Batch(data).ForEachRecord(func(*record.Record) bool { return true }); err != nil && !classified(err) {
		t.Fatalf("ForEachRecord on raw input: unclassified error %v", err)
	}
}

// checkDecode decodes b both ways and checks they agree.
func checkDecode(t *testing.T, b record.Batch) {
	t.Helper()
	recs, rerr := b.Records()
	n := 0
	ferr := b.ForEachRecord(func(*record.Record) bool { n++; return true })
	if (rerr == nil) != (ferr == nil) {
		t.Fatalf("Records: %v; ForEachRecord: %v", rerr, ferr)
	}
	if ferr != nil {
		if !errors.Is(ferr, record.ErrCorrupt) {
			t.Fatalf("ForEachRecord: %v, want ErrCorrupt", ferr)
		}
		return
	}
	if len(recs) != n || int64(n) != int64(b.RecordCount()) {
		t.Fatalf("Records %d, ForEachRecord %d, RecordCount %d", len(recs), n, b.RecordCount())
	}
}

// FuzzRecords fuzzes the records section inside a valid header (correct
// length and CRC), for every codec value. Invariants: nothing panics; the
// same record bytes decode identically uncompressed and compressed with each
// codec; the fuzzed bytes taken as compressed data either decode or fail as
// corruption; codecs 5-7 fail as ErrUnknownCodec.
func FuzzRecords(f *testing.F) {
	lowerLimitForFuzz(f)
	for _, b := range seedBatches(f) {
		raw, err := record.Decompress(b.Codec(), nil, b[record.HeaderSize:])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.RecordCount(), raw)
		f.Add(b.RecordCount(), []byte(b[record.HeaderSize:]))
	}
	f.Add(int32(1), goodRecord(0))
	f.Add(int32(0), []byte{})

	f.Fuzz(func(t *testing.T, count int32, data []byte) {
		want, wantErr := decodeSection(t, record.CodecNone, count, data)
		for _, c := range record.Codecs[1:] {
			comp, err := record.Compress(c, nil, data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSection(t, c, count, comp)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%v: error %v, uncompressed %v", c, err, wantErr)
			}
			sameRecords(t, c, got, want)

			// The fuzzed bytes as a compressed stream.
			if _, err := decodeSection(t, c, count, data); err != nil && !errors.Is(err, record.ErrCorrupt) {
				t.Fatalf("%v as compressed: %v", c, err)
			}
		}
		for c := record.Codec(5); c <= 7; c++ {
			if _, err := decodeSection(t, c, count, data); !(count == 0 && len(data) == 0) && !errors.Is(err, record.ErrUnknownCodec) {
				t.Fatalf("%v: %v, want ErrUnknownCodec", c, err)
			}
		}
	})
}

// decodeSection wraps section in a valid batch of codec c and decodes it.
func decodeSection(t *testing.T, c record.Codec, count int32, section []byte) ([]record.Record, error) {
	b := rawBatch(t, int16(c), count, section)
	recs, err := b.Records()
	if err != nil && !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("%v: %v, want ErrCorrupt", c, err)
	}
	return recs, err
}

func sameRecords(t *testing.T, c record.Codec, got, want []record.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%v: %d records, uncompressed %d", c, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !sameBytes(g.Key, w.Key) ||
			!sameBytes(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("%v: record %d differs from uncompressed", c, i)
		}
		for j, h := range w.Headers {
			if g.Headers[j].Key != h.Key || !sameBytes(g.Headers[j].Value, h.Value) {
				t.Fatalf("%v: record %d header %d differs from uncompressed", c, i, j)
			}
		}
	}
}
