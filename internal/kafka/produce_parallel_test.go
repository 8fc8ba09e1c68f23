package kafka

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// TestProduceManyPartitionsAtOnce: a request large enough for appendAll to
// append its partitions at once answers each as the sequential path did:
// its own offsets, its own error (one corrupt batch fails only its
// partition), and a partition named twice keeps the request's order.
func TestProduceManyPartitionsAtOnce(t *testing.T) {
	ab := newAllocBroker(t, 4)
	recs := make([]record.NewRecord, 200)
	for i := range recs {
		recs[i] = record.NewRecord{Value: bytes.Repeat([]byte{byte('a' + i%26)}, 1024), Timestamp: 1_700_000_000_000}
	}
	batch, err := record.Build(record.BuildOptions{}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append(record.Batch(nil), batch...)
	corrupt[len(corrupt)-1] ^= 0xff // the CRC no longer matches
	if 4*len(batch) < parallelAppendBytes {
		t.Fatalf("request of %d bytes would not be appended at once", 4*len(batch))
	}

	produce := func(parts []int32, data []record.Batch) []kmsg.ProduceResponseTopicPartition {
		t.Helper()
		batches := make([][]byte, len(data))
		for i := range data {
			batches[i] = append([]byte(nil), data[i]...)
		}
		r := produceRequestTo(ab.topic.Name, parts, batches)
		resp := ab.handle(t, r)
		defer release(resp)
		kresp := kmsg.NewPtrProduceResponse()
		kresp.Version = r.APIVersion
		if err := kresp.ReadFrom(joinBytes(t, resp)); err != nil {
			t.Fatal(err)
		}
		if len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != len(parts) {
			t.Fatalf("answer %+v for %d partitions", kresp.Topics, len(parts))
		}
		return kresp.Topics[0].Partitions
	}
	type want struct {
		partition int32
		code      int16
		base      int64
	}
	check := func(got []kmsg.ProduceResponseTopicPartition, wants ...want) {
		t.Helper()
		for i, w := range wants {
			g := got[i]
			if g.Partition != w.partition || g.ErrorCode != w.code || g.BaseOffset != w.base {
				t.Errorf("answer %d: partition %d error %d base offset %d; want partition %d error %d base offset %d",
					i, g.Partition, g.ErrorCode, g.BaseOffset, w.partition, w.code, w.base)
			}
		}
	}

	all := []int32{0, 1, 2, 3}
	check(produce(all, []record.Batch{batch, batch, batch, batch}),
		want{0, 0, 0}, want{1, 0, 0}, want{2, 0, 0}, want{3, 0, 0})
	check(produce(all, []record.Batch{batch, corrupt, batch, batch}),
		want{0, 0, 200}, want{1, kerr.CorruptMessage.Code, -1}, want{2, 0, 200}, want{3, 0, 200})
	check(produce([]int32{0, 3, 0, 1}, []record.Batch{batch, batch, batch, batch}),
		want{0, 0, 400}, want{3, 0, 400}, want{0, 0, 600}, want{1, 0, 200})
	for p, end := range map[int32]int64{0: 800, 1: 400, 2: 400, 3: 600} {
		part, _, code := ab.h.partition(ab.topic, p)
		if code != 0 {
			t.Fatalf("partition %d: error %d", p, code)
		}
		if got := part.Log.LogEndOffset(); got != end {
			t.Errorf("partition %d ends at %d, want %d", p, got, end)
		}
	}
}
