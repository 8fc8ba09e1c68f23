package strata_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// batchSources records which broker each fetched batch came from
// (franz-go's HookFetchBatchRead).
type batchSources struct {
	mu    sync.Mutex
	nodes map[int32]int // node id -> batches read from it
}

func (b *batchSources) OnFetchBatchRead(meta kgo.BrokerMetadata, _ string, _ int32, _ kgo.FetchBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nodes[meta.NodeID]++
}

func (b *batchSources) snapshot() map[int32]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[int32]int{}
	for k, v := range b.nodes {
		out[k] = v
	}
	return out
}

// consumeAll reads n records of topic's partition 0 with client cl and
// checks that they are the values v0..v(n-1)-style values from offset
// from, in order.
func consumeAll(t *testing.T, ctx context.Context, cl *kgo.Client, from, n int) {
	t.Helper()
	next := from
	for next < from+n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", next-from, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch error %s-%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("v%d", next); r.Offset != int64(next) || string(r.Value) != want {
				t.Fatalf("record at offset %d = %q, want offset %d %q", r.Offset, r.Value, next, want)
			}
			next++
		})
	}
}

// TestFetchFromClosestReplica runs KIP-392 end to end: three nodes in
// racks a, b and c with the rack-aware selector, a partition led by node 1
// (rack a). A franz-go consumer in rack b is sent to node 2 and reads
// every record from it, in order, including records produced while it
// waits there (the follower's long-poll wakes as its high watermark
// moves); a consumer without a rack reads from the leader.
func TestFetchFromClosestReplica(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(),
		Properties: map[string]string{
			"broker.heartbeat.interval.ms": "250",
			"broker.session.timeout.ms":    "3000",
			"replica.selector.class":       "org.apache.kafka.common.replica.RackAwareReplicaSelector",
		},
		NodeProperties: map[int32]map[string]string{
			1: {"broker.rack": "a"}, 2: {"broker.rack": "b"}, 3: {"broker.rack": "c"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Node 1, the first replica, leads: a manual assignment.
	const topic = "racks"
	admin := newClient(t, c.Nodes()[0].Addr())
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2, 3}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	create.Topics = append(create.Topics, ct)
	resp, err := create.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create: %v", err)
	}
	waitLeader(t, ctx, c, topic, 1)

	produce := func(from, n int) {
		t.Helper()
		p := newClient(t, c.Nodes()[0].Addr(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
		for i := from; i < from+n; i++ {
			p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const first, second = 500, 100
	produce(0, first)

	consumer := func(rack string) (*kgo.Client, *batchSources) {
		src := &batchSources{nodes: map[int32]int{}}
		opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
			kgo.WithHooks(src), kgo.FetchMaxBytes(4096), kgo.FetchMaxPartitionBytes(4096)}
		if rack != "" {
			opts = append(opts, kgo.Rack(rack))
		}
		return newClient(t, c.Nodes()[2].Addr(), opts...), src
	}

	near, nearSrc := consumer("b")
	consumeAll(t, ctx, near, 0, first)
	// Records produced while the consumer waits on the follower reach
	// it there.
	produce(first, second)
	consumeAll(t, ctx, near, first, second)
	got := nearSrc.snapshot()
	if len(got) != 1 || got[2] == 0 {
		t.Errorf("rack-b consumer read batches from %v, want all from node 2", got)
	}

	plain, plainSrc := consumer("")
	consumeAll(t, ctx, plain, 0, first+second)
	if got := plainSrc.snapshot(); len(got) != 1 || got[1] == 0 {
		t.Errorf("consumer without a rack read batches from %v, want all from node 1, the leader", got)
	}
}

// waitLeader waits until every node's metadata names leader as the leader
// of topic's partition 0.
func waitLeader(t *testing.T, ctx context.Context, c *strata.Cluster, topic string, leader int32) {
	t.Helper()
	for _, n := range c.Nodes() {
		cl := newClient(t, n.Addr())
		for {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 && resp.Topics[0].Partitions[0].Leader == leader {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d never showed %s-0 led by %d", n.ID(), topic, leader)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
