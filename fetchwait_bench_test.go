package strata_test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkIdleLongPolls measures what idle long-polling fetches cost the
// broker while a producer writes 1 KiB records to partition 0 of a
// 1,000-partition topic. Each of `idle` connections holds one Fetch
// (MaxWait 60 s) that the writes cannot complete:
//
//   - own-partition: each fetch asks for one other partition, MinBytes 1;
//   - all-partitions: each fetch asks for all 1,000 partitions at the log
//     end, MinBytes 1 MiB (a consumer tuned with fetch.min.bytes).
//
// cpu-us/op is the process's CPU time (broker and producer: the idle
// connections only block in read) per produced record; compare idle=0 with
// idle=1000 in one run. It must not grow with the idle fetches.
//
//	go test -run '^$' -bench IdleLongPolls -benchtime 2000x .
func BenchmarkIdleLongPolls(b *testing.B) {
	const partitions = 1000
	for _, layout := range []string{"own-partition", "all-partitions"} {
		for _, idle := range []int{0, 1000} {
			b.Run(fmt.Sprintf("%s/idle=%d", layout, idle), func(b *testing.B) {
				br := startBroker(b, b.TempDir(), map[string]string{"max.broker.partitions": "2000", "http.listener": ""})
				cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.DefaultProduceTopic("wide"),
					kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				adm := kadm.NewClient(cl)
				resp, err := adm.CreateTopic(b.Context(), partitions, 1, nil, "wide")
				if err != nil || resp.Err != nil {
					b.Fatalf("create: %v %v", err, resp.Err)
				}
				if err := cl.ProduceSync(b.Context(), &kgo.Record{Partition: 0, Value: []byte("warm")}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				for i := range idle {
					conn, err := net.Dial("tcp", br.Addr())
					if err != nil {
						b.Fatal(err)
					}
					defer conn.Close()
					var req *kmsg.FetchRequest
					if layout == "own-partition" {
						req = idleFetch(resp.ID, 1, 1+int32(i)%(partitions-1))
					} else {
						req = idleFetch(resp.ID, 1<<20, allPartitions(partitions)...)
					}
					if err := writeRequest(conn, req); err != nil {
						b.Fatal(err)
					}
				}
				// The fetches are parked once the broker has read them:
				// wait for a round trip on a fresh connection so that
				// their first reads are behind us (the connections are
				// served in parallel, so give it a moment on 2 cores).
				if _, err := adm.ListEndOffsets(b.Context(), "wide"); err != nil {
					b.Fatal(err)
				}
				time.Sleep(time.Second)
				value := make([]byte, 1024)
				b.ResetTimer()
				before := cpuTime()
				for range b.N {
					if err := cl.ProduceSync(b.Context(), &kgo.Record{Partition: 0, Value: value}).FirstErr(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-us/op")
			})
		}
	}
}

func allPartitions(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// idleFetch is a Fetch v13 (topic ids) at the log end of each partition:
// offset 1 on partition 0 (after the warm-up record), 0 elsewhere.
func idleFetch(topicID [16]byte, minBytes int32, partitions ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.ReplicaID = -1
	req.MaxWaitMillis = 60000
	req.MinBytes = minBytes
	req.MaxBytes = 50 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = topicID
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.CurrentLeaderEpoch = -1
		rp.PartitionMaxBytes = 1 << 20
		if p == 0 {
			rp.FetchOffset = 1
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// writeRequest writes req with the request header of its version.
func writeRequest(conn net.Conn, req kmsg.Request) error {
	_, err := conn.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1))
	return err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
