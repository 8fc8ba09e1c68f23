package record_test

import (
	"fmt"
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// benchRecords are n records of about 160 bytes, like small JSON events:
// compressible but not trivially.
func benchRecords(n int) []recordtest.Record {
	recs := make([]recordtest.Record, n)
	for i := range recs {
		recs[i] = recordtest.Record{
			Key:       fmt.Appendf(nil, "user-%06d", i*7919%100000),
			Value:     fmt.Appendf(nil, `{"id":%d,"event":"page_view","path":"/products/%d","ms":%d,"agent":"Mozilla/5.0 (X11; Linux x86_64)"}`, i, i*31%977, i*13%1000),
			Timestamp: 1_700_000_000_000 + int64(i),
		}
	}
	return recs
}

// BenchmarkValidate measures CRC-32C throughput over a 16 KiB batch: the
// cost the broker pays per produced batch and per batch on recovery.
func BenchmarkValidate(b *testing.B) {
	recs := benchRecords(200)
	for len(recordtest.Build(b, recordtest.Options{}, recs...)) > 16<<10 {
		recs = recs[:len(recs)-1]
	}
	batch := recordtest.Build(b, recordtest.Options{}, recs...)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := batch.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForEachRecord decodes a batch of 500 records per codec; MB/s is
// of uncompressed record bytes.
func BenchmarkForEachRecord(b *testing.B) {
	recs := benchRecords(500)
	raw := len(recordtest.Build(b, recordtest.Options{}, recs...)) - record.HeaderSize
	for _, c := range record.Codecs {
		b.Run(c.String(), func(b *testing.B) {
			batch := recordtest.Build(b, recordtest.Options{Codec: c}, recs...)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				if err := batch.ForEachRecord(func(*record.Record) bool { n++; return true }); err != nil || n != len(recs) {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(raw)/float64(len(batch)-record.HeaderSize), "ratio")
		})
	}
}

// BenchmarkCompress measures Compress per codec on the same records section.
func BenchmarkCompress(b *testing.B) {
	plain := recordtest.Build(b, recordtest.Options{}, benchRecords(500)...)
	src := plain[record.HeaderSize:]
	for _, c := range record.Codecs[1:] {
		b.Run(c.String(), func(b *testing.B) {
			dst := make([]byte, 0, 2*len(src))
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = record.Compress(c, dst[:0], src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateRecords measures the produce path's record walk per
// codec, on the same batch as BenchmarkForEachRecord (500 records of about
// 160 bytes); MB/s is of uncompressed record bytes, so the two read side
// by side: the walk streams and skips keys and values, ForEachRecord
// decompresses the whole section and decodes every field.
func BenchmarkValidateRecords(b *testing.B) {
	recs := benchRecords(500)
	raw := len(recordtest.Build(b, recordtest.Options{}, recs...)) - record.HeaderSize
	checks := record.Checks{Timestamps: true, Now: 1_700_000_000_000, BeforeMaxMs: 1 << 62, AfterMaxMs: 3_600_000}
	for _, c := range record.Codecs {
		b.Run(c.String(), func(b *testing.B) {
			batch := recordtest.Build(b, recordtest.Options{Codec: c}, recs...)
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			for b.Loop() {
				if err := batch.ValidateRecords(checks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateRecordsSmall is the walk on the batches `strata perf
// produce --record-size 100` sends (franz-go, 1 MB batches): about 9,700
// records of a 100-byte value and no key, their timestamps milliseconds
// apart. Offset deltas past 8,191 take three bytes, lengths two.
func BenchmarkValidateRecordsSmall(b *testing.B) {
	recs := make([]recordtest.Record, 9700)
	for i := range recs {
		recs[i] = recordtest.Record{Value: make([]byte, 100), Timestamp: 1_700_000_000_000 + int64(i/200)}
	}
	batch := recordtest.Build(b, recordtest.Options{}, recs...)
	checks := record.Checks{Timestamps: true, Now: 1_700_000_000_000, BeforeMaxMs: 1 << 62, AfterMaxMs: 3_600_000}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := batch.ValidateRecords(checks); err != nil {
			b.Fatal(err)
		}
	}
}
