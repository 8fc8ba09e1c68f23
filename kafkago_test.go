package strata_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafka-go (segmentio/kafka-go) speaks old API versions (FindCoordinator
// v0, JoinGroup v1-2, SyncGroup v0, Heartbeat v0, OffsetFetch v1,
// OffsetCommit v2) and runs its own rebalance loop, which joins as soon as
// FindCoordinator answers and rejoins after a heartbeat's
// REBALANCE_IN_PROGRESS once its fetches end, so it exercises paths
// franz-go does not.

// kafkagoReader reads from a group with kafka-go's Reader, recording each
// message (partition/offset) in the ledger under name.
type kafkagoReader struct {
	r      *kafkago.Reader
	cancel context.CancelFunc
	done   chan struct{}
}

func startKafkagoReader(t *testing.T, addr, group, topic, name string, l *ledger) *kafkagoReader {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: []string{addr},
		GroupID: group,
		Topic:   topic,
		// Defaults for heartbeats, sessions and rebalances; only the
		// fetch wait is short so that the test does not idle.
		MaxWait:        200 * time.Millisecond,
		StartOffset:    kafkago.FirstOffset,
		CommitInterval: 0, // CommitMessages commits synchronously
	})
	ctx, cancel := context.WithCancel(context.Background())
	kr := &kafkagoReader{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(kr.done)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			l.addKey(name, fmt.Sprintf("%d/%d", m.Partition, m.Offset))
			if err := r.CommitMessages(ctx, m); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	t.Cleanup(func() { once.Do(kr.stop) })
	return kr
}

func (l *ledger) addKey(member, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[key]++
	l.byMember[member]++
}

func (kr *kafkagoReader) stop() {
	kr.cancel()
	<-kr.done
	kr.r.Close()
}

// TestKafkaGoReadersShareGroup starts two kafka-go Readers in one group, one
// shortly after the other, on a fresh broker and a two-partition topic
// that already holds records: both must join the first generation (the
// initial rebalance delay waits for them), so that both read, and together
// every record. It failed while the first FindCoordinator created all 50
// logs of __consumer_offsets (half a second to seconds) and the second
// reader, finding the topic in the metadata, was answered at once and
// formed the first generation alone, reading every record.
func TestKafkaGoReadersShareGroup(t *testing.T) {
	t.Parallel()
	props := groupProps()
	props["group.initial.rebalance.delay.ms"] = "250"
	b := startBroker(t, t.TempDir(), props)
	const topic, group, n = "kgo-share", "kgo-share-group", 200
	createPartitioned(t, b.Addr(), topic, 2)
	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addr()), Topic: topic, Balancer: &kafkago.RoundRobin{}, BatchTimeout: 10 * time.Millisecond}
	t.Cleanup(func() { w.Close() })
	msgs := make([]kafkago.Message, n)
	for i := range msgs {
		msgs[i] = kafkago.Message{Value: []byte(strconv.Itoa(i))}
	}
	if err := w.WriteMessages(ctxT(t), msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}

	l := newLedger()
	startKafkagoReader(t, b.Addr(), group, topic, "r1", l)
	// The second starts once the first's FindCoordinator, the first on
	// this broker, has put __consumer_offsets in the metadata: well
	// within the initial delay.
	cl := newClient(t, b.Addr())
	waitFor(t, 30*time.Second, "__consumer_offsets in the metadata", func() bool {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), cl)
		return err == nil && slices.ContainsFunc(resp.Topics, func(t kmsg.MetadataResponseTopic) bool {
			return t.Topic != nil && *t.Topic == "__consumer_offsets"
		})
	})
	startKafkagoReader(t, b.Addr(), group, topic, "r2", l)
	waitFor(t, 60*time.Second, "both readers read and together every record", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.byMember["r1"] > 0 && l.byMember["r2"] > 0 && len(l.seen) >= n
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != n {
		t.Fatalf("read %d distinct records, produced %d", len(l.seen), n)
	}
}

// TestKafkaGoReaderJoinsStableGroup runs two kafka-go Readers in one group
// on a two-partition topic, the second joining once the first reads:
// after it joins, both must read, and together they read every record.
func TestKafkaGoReaderJoinsStableGroup(t *testing.T) {
	t.Parallel()
	props := groupProps()
	props["group.initial.rebalance.delay.ms"] = "100"
	b := startBroker(t, t.TempDir(), props)
	const topic, group = "kgo-readers", "kgo-readers-group"
	createPartitioned(t, b.Addr(), topic, 2)

	l := newLedger()
	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addr()), Topic: topic, Balancer: &kafkago.RoundRobin{}, BatchTimeout: 10 * time.Millisecond}
	t.Cleanup(func() { w.Close() })
	// Records keep coming (in small batches, to both partitions) until
	// each reader named has read more than it had.
	produced := 0
	produceUntil := func(what string, d time.Duration, readers ...string) {
		t.Helper()
		deadline := time.Now().Add(d)
		l.mu.Lock()
		before := maps.Clone(l.byMember)
		l.mu.Unlock()
		for {
			l.mu.Lock()
			all := true
			for _, r := range readers {
				all = all && l.byMember[r] > before[r]
			}
			l.mu.Unlock()
			if all {
				return
			}
			if time.Now().After(deadline) {
				l.mu.Lock()
				defer l.mu.Unlock()
				t.Fatalf("%s: after %v and %d records, reads per reader: %v", what, d, produced, l.byMember)
			}
			msgs := make([]kafkago.Message, 10)
			for i := range msgs {
				msgs[i] = kafkago.Message{Value: []byte(strconv.Itoa(produced + i))}
			}
			if err := w.WriteMessages(ctxT(t), msgs...); err != nil {
				t.Fatalf("write: %v", err)
			}
			produced += len(msgs)
			time.Sleep(250 * time.Millisecond) // pacing the producer, not waiting for state
		}
	}
	// The second reader joins a group that is already Stable with the
	// first, so the first must rejoin through its heartbeat loop.
	startKafkagoReader(t, b.Addr(), group, topic, "r1", l)
	produceUntil("the first reader reads", 60*time.Second, "r1")
	startKafkagoReader(t, b.Addr(), group, topic, "r2", l)
	produceUntil("both readers read after the second joined", 60*time.Second, "r1", "r2")
	waitFor(t, 60*time.Second, "every record read", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.seen) >= produced
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != produced {
		t.Fatalf("read %d distinct records, produced %d", len(l.seen), produced)
	}
}

// TestKafkaGoCommonPaths checks kafka-go's other everyday calls: creating a
// topic, reading its partitions, the Writer with its default balancer, and
// a Reader without a group.
func TestKafkaGoCommonPaths(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupProps())
	const topic = "kgo-paths"
	conn, err := kafkago.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafkago.TopicConfig{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	var parts []kafkago.Partition
	waitFor(t, 30*time.Second, "ReadPartitions lists 3 partitions", func() bool {
		parts, err = conn.ReadPartitions(topic)
		return err == nil && len(parts) == 3
	})
	for _, p := range parts {
		host, port, _ := net.SplitHostPort(b.Addr())
		if p.Leader.Host != host || strconv.Itoa(p.Leader.Port) != port {
			t.Fatalf("partition %d leader %+v, want %s", p.ID, p.Leader, b.Addr())
		}
	}

	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addr()), Topic: topic, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	const n = 30
	for i := range n {
		// One message per call: the default balancer (round robin)
		// moves on per batch.
		if err := w.WriteMessages(ctxT(t), kafkago.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var total int64
	for p := range 3 {
		c, err := kafkago.DialLeader(ctxT(t), "tcp", b.Addr(), topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := c.ReadLastOffset()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			t.Errorf("partition %d got nothing from the default balancer", p)
		}
		total += last
	}
	if total != n {
		t.Fatalf("partitions hold %d records, wrote %d", total, n)
	}

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{b.Addr()}, Topic: topic, Partition: 1, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("read partition 1: %v", err)
	}
	if m.Partition != 1 || m.Offset != 0 {
		t.Fatalf("read partition %d offset %d, want partition 1 offset 0", m.Partition, m.Offset)
	}
}
