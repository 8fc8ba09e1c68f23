package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/metrics"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/server"
)

// Steady-state cost of one Produce and one Fetch request (issue 6): the
// request bytes as they arrive on the wire are decoded by Handle, applied to
// a real log in a temp dir (or read from one), and the response is encoded
// up to what the server writes: byte parts, and for Fetch the file regions
// it hands to sendfile. The server's own framing and writing are measured
// by internal/server's BenchmarkRoundTrip and TestAllocsPerRequest.
//
// Every partition gets one batch of `records` records of allocValueBytes
// each. The broker allocates nothing per record (produce validates the
// batch's CRC and walks its records without keeping them; fetch sends the
// bytes it finds), so allocs/op must not grow with records;
// TestProduceFetchAllocsConstant holds it to that.
//
//	go test -run '^$' -bench 'Produce|Fetch' -benchmem -benchtime=2000x ./internal/kafka/

const allocValueBytes = 100

var (
	allocRecordCounts   = []int{1, 10, 100, 1000}
	allocPartitionCount = []int{1, 8}
)

// allocBroker is a real broker, metadata store and handler (with metrics,
// as strata.Start wires them) serving one topic.
type allocBroker struct {
	h     *Handler
	topic *cluster.Topic
}

func newAllocBroker(tb testing.TB, partitions int) *allocBroker {
	tb.Helper()
	h := newTestHandler(tb, tb.TempDir(), Config{NodeID: 1, ClusterID: "alloc", AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092,
		NumPartitions: 1, TopicDefaults: broker.DefaultTopicConfig(), Logger: slog.New(slog.DiscardHandler),
		Metrics: metrics.New()})
	// Segments of 256 MiB: a long run rolls now and then, as a broker
	// does, without one segment growing to the default 1 GiB.
	t, err := h.createTopic(context.Background(), "alloc", int32(partitions), -1, nil, map[string]string{"segment.bytes": strconv.Itoa(256 << 20)})
	if err != nil {
		tb.Fatal(err)
	}
	return &allocBroker{h: h, topic: t}
}

// allocBatch is one uncompressed batch of n records, no key, a value of
// allocValueBytes, as a non-idempotent producer builds it.
func allocBatch(tb testing.TB, n int) record.Batch {
	tb.Helper()
	recs := make([]record.NewRecord, n)
	for i := range recs {
		v := make([]byte, allocValueBytes)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		recs[i] = record.NewRecord{Value: v, Timestamp: 1_700_000_000_000 + int64(i)}
	}
	b, err := record.Build(record.BuildOptions{}, recs...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// produceRequest is a Produce request (acks=-1, the newest version served)
// with one batch of records for each partition, as it arrives on the wire.
// The handler patches each batch's base offset in place, outside the CRC,
// so the same bytes can be sent again and again.
func (ab *allocBroker) produceRequest(tb testing.TB, records int) *server.Request {
	batch := allocBatch(tb, records)
	parts := make([]int32, ab.topic.Partitions)
	batches := make([][]byte, ab.topic.Partitions)
	for p := range parts {
		parts[p], batches[p] = int32(p), batch
	}
	return produceRequestTo(ab.topic.Name, parts, batches)
}

// produceRequestTo is an acks=all Produce request of the newest version
// served, carrying batches[i] to partition parts[i] of topic.
func produceRequestTo(topic string, parts []int32, batches [][]byte) *server.Request {
	req := kmsg.NewPtrProduceRequest()
	req.Version = apis[0].max
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for i, p := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batches[i]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return &server.Request{APIKey: req.Key(), APIVersion: req.Version, CorrelationID: 1, Body: req.AppendTo(nil)}
}

// fetchRequest is a consumer's Fetch request (the newest version served, so
// topic IDs; MaxWait 500 ms and MinBytes 1, as Kafka's consumer sends) from
// offset 0 of every partition.
func (ab *allocBroker) fetchRequest() *server.Request {
	req := kmsg.NewPtrFetchRequest()
	req.Version = apis[1].max
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 50<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = ab.topic.Name, ab.topic.ID
	for p := range ab.topic.Partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.FetchOffset = 0
		rp.LogStartOffset = -1
		rp.CurrentLeaderEpoch = -1
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return &server.Request{APIKey: req.Key(), APIVersion: req.Version, CorrelationID: 1, Body: req.AppendTo(nil)}
}

// handle sends one request through Handle.
func (ab *allocBroker) handle(tb testing.TB, r *server.Request) *server.Response {
	resp, err := ab.h.Handle(context.Background(), r)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

// roundTrip handles one request and releases its response, as the server
// does once the response is written.
func (ab *allocBroker) roundTrip(tb testing.TB, r *server.Request) {
	release(ab.handle(tb, r))
}

func release(resp *server.Response) {
	if resp.Release != nil {
		resp.Release()
	}
}

// checkProduce decodes a Produce response and fails on any error code.
func checkProduce(tb testing.TB, r *server.Request, resp *server.Response) {
	tb.Helper()
	defer release(resp)
	kresp := kmsg.NewPtrProduceResponse()
	kresp.Version = r.APIVersion
	if err := kresp.ReadFrom(joinBytes(tb, resp)); err != nil {
		tb.Fatal(err)
	}
	for _, t := range kresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				tb.Fatalf("produce partition %d: error %d", p.Partition, p.ErrorCode)
			}
		}
	}
}

// checkFetch requires one region per partition of exactly want bytes.
func checkFetch(tb testing.TB, resp *server.Response, partitions int, want int64) {
	tb.Helper()
	defer release(resp)
	n := 0
	for _, p := range resp.Parts {
		if p.Region.File == nil {
			continue
		}
		if p.Region.Len != want {
			tb.Fatalf("fetch region of %d bytes, want %d", p.Region.Len, want)
		}
		n++
	}
	if n != partitions {
		tb.Fatalf("fetch: %d regions, want %d", n, partitions)
	}
}

func joinBytes(tb testing.TB, resp *server.Response) []byte {
	var out []byte
	for _, p := range resp.Parts {
		if p.Region.File != nil {
			tb.Fatal("unexpected file region")
		}
		out = append(out, p.Bytes...)
	}
	return out
}

// loopAllocs runs the benchmark loop and reports allocations per record
// beside -benchmem's per request.
func loopAllocs(b *testing.B, records int, fn func()) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		fn()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N)/float64(records), "allocs/record")
}

func BenchmarkProduceAllocs(b *testing.B) {
	for _, parts := range allocPartitionCount {
		for _, n := range allocRecordCounts {
			b.Run(fmt.Sprintf("partitions=%d/records=%d", parts, n), func(b *testing.B) {
				ab := newAllocBroker(b, parts)
				r := ab.produceRequest(b, n)
				checkProduce(b, r, ab.handle(b, r))
				b.SetBytes(int64(len(r.Body)))
				loopAllocs(b, n*parts, func() { ab.roundTrip(b, r) })
			})
		}
	}
}

func BenchmarkFetchAllocs(b *testing.B) {
	for _, parts := range allocPartitionCount {
		for _, n := range allocRecordCounts {
			b.Run(fmt.Sprintf("partitions=%d/records=%d", parts, n), func(b *testing.B) {
				ab := newAllocBroker(b, parts)
				pr := ab.produceRequest(b, n)
				checkProduce(b, pr, ab.handle(b, pr))
				size := int64(len(allocBatch(b, n)))
				r := ab.fetchRequest()
				checkFetch(b, ab.handle(b, r), parts, size)
				b.SetBytes(size * int64(parts))
				loopAllocs(b, n*parts, func() { ab.roundTrip(b, r) })
			})
		}
	}
}
