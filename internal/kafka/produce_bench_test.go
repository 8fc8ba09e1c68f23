package kafka

import (
	"fmt"
	"testing"

	"github.com/strata-io/strata/internal/record"
)

// BenchmarkProduceCodecs is one Produce request of one batch of 500
// text-like records (about 160 bytes each, as small JSON events) to one
// partition, per codec, through the handler into a real log: the cost of
// the produce path, record validation included. MB/s is of the records
// uncompressed, so codecs compare on the data they carry; stored-B/op is
// what the batch takes on disk.
//
//	go test -run '^$' -bench ProduceCodecs -benchtime=2000x ./internal/kafka/
func BenchmarkProduceCodecs(b *testing.B) {
	recs := make([]record.NewRecord, 500)
	for i := range recs {
		recs[i] = record.NewRecord{
			Key:       fmt.Appendf(nil, "user-%06d", i*7919%100000),
			Value:     fmt.Appendf(nil, `{"id":%d,"event":"page_view","path":"/products/%d","ms":%d,"agent":"Mozilla/5.0 (X11; Linux x86_64)"}`, i, i*31%977, i*13%1000),
			Timestamp: 1_700_000_000_000 + int64(i),
		}
	}
	plain, err := record.Build(record.BuildOptions{}, recs...)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range record.Codecs {
		b.Run(c.String(), func(b *testing.B) {
			batch, err := record.Build(record.BuildOptions{Codec: c}, recs...)
			if err != nil {
				b.Fatal(err)
			}
			ab := newAllocBroker(b, 1)
			r := produceRequestTo(ab.topic.Name, []int32{0}, [][]byte{batch})
			checkProduce(b, r, ab.handle(b, r))
			b.SetBytes(int64(len(plain) - record.HeaderSize))
			b.ReportMetric(float64(len(batch)), "stored-B/op")
			b.ReportAllocs()
			for b.Loop() {
				ab.roundTrip(b, r)
			}
		})
	}
}
