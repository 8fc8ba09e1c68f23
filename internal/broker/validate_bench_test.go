package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/record"
)

// BenchmarkValidateProduced puts the produce path's validation before and
// after the record walk side by side, per codec, on one batch of 500
// text-like records (about 160 bytes each): "crc" is what the produce path
// checked before (record.Parse: length, magic, CRC), "records" is
// ValidateProduced (the same, the header rules, and every record, streamed
// and decompressed). MB/s is of the records uncompressed.
//
//	go test -run '^$' -bench ValidateProduced -benchtime=2000x ./internal/broker/
func BenchmarkValidateProduced(b *testing.B) {
	recs := make([]record.NewRecord, 500)
	for i := range recs {
		recs[i] = record.NewRecord{
			Key:       fmt.Appendf(nil, "user-%06d", i*7919%100000),
			Value:     fmt.Appendf(nil, `{"id":%d,"event":"page_view","path":"/products/%d","ms":%d,"agent":"Mozilla/5.0 (X11; Linux x86_64)"}`, i, i*31%977, i*13%1000),
			Timestamp: time.Now().UnixMilli(),
		}
	}
	plain, err := record.Build(record.BuildOptions{}, recs...)
	if err != nil {
		b.Fatal(err)
	}
	tc := DefaultTopicConfig()
	for _, c := range record.Codecs {
		batch, err := record.Build(record.BuildOptions{Codec: c}, recs...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.String()+"/crc", func(b *testing.B) {
			b.SetBytes(int64(len(plain) - record.HeaderSize))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := record.Parse(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.String()+"/records", func(b *testing.B) {
			b.SetBytes(int64(len(plain) - record.HeaderSize))
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				if _, err := ValidateProduced(batch, tc, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
