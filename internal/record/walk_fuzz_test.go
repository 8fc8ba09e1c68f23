package record_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// walkClassified reports whether err is one of the classes the produce path
// maps to a Kafka error code.
func walkClassified(err error) bool {
	return errors.Is(err, record.ErrInvalidRecord) || errors.Is(err, record.ErrCorrupt) ||
		errors.Is(err, record.ErrInvalidTimestamp)
}

// FuzzValidateRecords fuzzes the produce path's record walk: a records
// section of fuzzed bytes with a fuzzed count, inside a valid header,
// uncompressed, compressed with every codec, and taken as a compressed
// stream as it is. Invariants:
//   - nothing panics, and every error is classified;
//   - the same records are judged the same uncompressed and compressed
//     with any codec (accepted, or refused as ErrInvalidRecord);
//   - whatever it accepts, a consumer can read: ForEachRecord decodes
//     exactly RecordCount records at offsets base+0..base+n-1;
//   - whatever ForEachRecord decodes with those offsets, it accepts (it
//     refuses nothing a reader would take);
//   - FindTimestamp never panics and fails only where the walk fails.
func FuzzValidateRecords(f *testing.F) {
	lowerLimitForFuzz(f)
	for _, b := range seedBatches(f) {
		raw, err := record.Decompress(b.Codec(), nil, b[record.HeaderSize:])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.RecordCount(), raw)
	}
	f.Add(int32(1), goodRecord(0))
	f.Add(int32(2), append(goodRecord(0), goodRecord(1)...))
	f.Add(int32(2), append(goodRecord(0), goodRecord(2)...))
	f.Add(int32(1), append(goodRecord(0), 0))

	f.Fuzz(func(t *testing.T, count int32, data []byte) {
		plain := rawBatch(t, 0, count, data)
		want := plain.ValidateRecords(record.Checks{})
		if want != nil && !walkClassified(want) {
			t.Fatalf("unclassified: %v", want)
		}
		if want != nil && errors.Is(want, record.ErrCorrupt) {
			t.Fatalf("uncompressed records reported as a corrupt stream: %v", want)
		}
		readable := consecutive(plain)
		if (want == nil) != readable {
			t.Fatalf("ValidateRecords: %v, but ForEachRecord reads consecutive records: %v", want, readable)
		}
		if _, _, _, _, err := plain.FindTimestamp(0, 0, fuzzLimit); err != nil && want == nil {
			t.Fatalf("FindTimestamp failed on a valid batch: %v", err)
		}
		for _, c := range record.Codecs[1:] {
			comp, err := record.Compress(c, nil, data)
			if err != nil {
				t.Fatal(err)
			}
			b := rawBatch(t, int16(c), count, comp)
			got := b.ValidateRecords(record.Checks{})
			if (got == nil) != (want == nil) || got != nil && !errors.Is(got, record.ErrInvalidRecord) {
				t.Fatalf("%v: %v; uncompressed: %v", c, got, want)
			}

			// The fuzzed bytes as a compressed stream.
			b = rawBatch(t, int16(c), count, data)
			err = b.ValidateRecords(record.Checks{})
			if err != nil && !walkClassified(err) {
				t.Fatalf("%v as compressed: unclassified %v", c, err)
			}
			if err == nil && !consecutive(b) {
				t.Fatalf("%v as compressed: accepted a batch ForEachRecord cannot read", c)
			}
			b.FindTimestamp(0, 0, fuzzLimit) //nolint:errcheck // must not panic
		}
	})
}

// consecutive reports whether ForEachRecord reads b's records, exactly
// RecordCount of them, at offsets base+0, base+1, ...
func consecutive(b record.Batch) bool {
	i := int64(0)
	ok := true
	err := b.ForEachRecord(func(r *record.Record) bool {
		ok = ok && r.Offset == b.BaseOffset()+i
		i++
		return ok
	})
	return err == nil && ok && i == int64(b.RecordCount())
}

// FuzzValidateBuilt: every batch franz-go's kmsg encoder builds passes the
// walk, whatever its keys, values, headers and timestamps, in every codec.
func FuzzValidateBuilt(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), "h", []byte("hv"), int64(1_700_000_000_000), int64(5), uint8(3))
	f.Add([]byte(nil), []byte(nil), "", []byte(nil), int64(-1), int64(-1), uint8(1))
	f.Add([]byte{}, make([]byte, 4000), "x", []byte{}, int64(0), int64(1<<40), uint8(0))
	f.Fuzz(func(t *testing.T, key, value []byte, hkey string, hval []byte, ts, step int64, n uint8) {
		// Large values add nothing the seeds do not cover but slow
		// every codec down.
		key, value, hval = key[:min(len(key), 1<<10)], value[:min(len(value), 1<<12)], hval[:min(len(hval), 1<<10)]
		recs := make([]recordtest.Record, int(n%8)+1)
		for i := range recs {
			recs[i] = recordtest.Record{Key: key, Value: value, Timestamp: ts + int64(i)*step}
			if i%2 == 1 {
				recs[i].Key = nil
			}
			if i%3 == 2 {
				recs[i].Headers = append(recs[i].Headers, kmsg.Header{Key: hkey, Value: hval}, kmsg.Header{Key: hkey})
			}
		}
		for _, c := range record.Codecs {
			b := recordtest.Build(t, recordtest.Options{Codec: c, BaseOffset: 3}, recs...)
			if err := b.ValidateRecords(record.Checks{}); err != nil {
				t.Fatalf("%v: a built batch was refused: %v", c, err)
			}
		}
	})
}
