package strata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// replicaLog is a partition's records on one node: its segment files'
// bytes, oldest first, so that two replicas compare whatever their
// segmentation.
func replicaLog(t *testing.T, dir, topic string, p int32) []byte {
	t.Helper()
	pdir := filepath.Join(dir, fmt.Sprintf("%s-%d", topic, p))
	ents, err := os.ReadDir(pdir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // zero-padded base offsets sort as numbers
	var out []byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(pdir, n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// waitReplicasEqual waits until every replica of each partition of topic
// (every node with its directory, at least two) holds the same bytes, and
// fails with the sizes if they never do.
func waitReplicasEqual(t *testing.T, c *strata.Cluster, topic string, partitions int32, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for p := range partitions {
		waitReplicaEqual(t, c, topic, p, deadline)
	}
}

// waitReplicaEqual is waitReplicasEqual for one partition, until deadline.
func waitReplicaEqual(t *testing.T, c *strata.Cluster, topic string, p int32, deadline time.Time) {
	t.Helper()
	for {
		var logs [][]byte
		var sizes []int
		for _, n := range c.Nodes() {
			if _, err := os.Stat(filepath.Join(n.Dir(), fmt.Sprintf("%s-%d", topic, p))); err != nil {
				continue // no replica there
			}
			l := replicaLog(t, n.Dir(), topic, p)
			logs = append(logs, l)
			sizes = append(sizes, len(l))
		}
		same := len(logs) > 1 && len(logs[0]) > 0
		for _, l := range logs[1:] {
			same = same && bytes.Equal(l, logs[0])
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s-%d: replicas differ (sizes %v)", topic, p, sizes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createReplicated creates topic with partitions partitions of 3
// replicas and waits until every node's metadata has it.
func createReplicated(t *testing.T, ctx context.Context, c *strata.Cluster, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c.Nodes()[0].Addr()))
	r, err := adm.CreateTopic(ctx, partitions, 3, configs, topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	// Every node's metadata has it, with a leader for each partition.
	for _, n := range c.Nodes() {
		a := kadm.NewClient(newClient(t, n.Addr()))
		for {
			md, err := a.Metadata(ctx, topic)
			ok := err == nil && len(md.Topics[topic].Partitions) == int(partitions)
			if ok {
				for _, p := range md.Topics[topic].Partitions {
					ok = ok && p.Leader >= 0 && p.Err == nil
				}
			}
			if ok {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d never showed %s with leaders", n.ID(), topic)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Three replicas of every partition: acks=all records are on all three,
// byte for byte, and each node holds the same log.
func TestReplicationAcksAllReachesEveryReplica(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createReplicated(t, ctx, c, "rep", 3, nil)
	p := newClient(t, c.Nodes()[0].Addr(), kgo.DefaultProduceTopic("rep"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 300
	for i := range n {
		p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(p)
	ends, err := adm.ListEndOffsets(ctx, "rep")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n {
		t.Fatalf("end offsets sum to %d, produced %d", total, n)
	}
	waitReplicasEqual(t, c, "rep", 3, 30*time.Second)

	// In fsync mode each replica counts an offset once it is durable
	// there (the follower fsyncs before it fetches on): acks=all still
	// completes, and the replicas still converge.
	createReplicated(t, ctx, c, "repsync", 1, map[string]*string{"flush.messages": kadm.StringPtr("1"), "min.insync.replicas": kadm.StringPtr("3")})
	ps := newClient(t, c.Nodes()[1].Addr(), kgo.DefaultProduceTopic("repsync"))
	for i := range 50 {
		if err := ps.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "s%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce in fsync mode: %v", err)
		}
	}
	waitReplicasEqual(t, c, "repsync", 1, 30*time.Second)
}

// The leader of a partition is stopped: a follower from the ISR takes
// over, the producer goes on, and once the old leader is back it catches
// up and all replicas are equal; nothing acknowledged is lost or doubled.
func TestReplicationLeaderFailover(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createReplicated(t, ctx, c, "fo", 1, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	p := newClient(t, c.Nodes()[0].Addr(), kgo.DefaultProduceTopic("fo"))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 100)
	adm := kadm.NewClient(p)
	md, err := adm.Metadata(ctx, "fo")
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics["fo"].Partitions[0].Leader
	t.Logf("stopping leader %d", leader)
	if err := c.Node(leader).Stop(); err != nil {
		t.Fatal(err)
	}
	produce(100, 200)
	if err := c.Node(leader).Restart(); err != nil {
		t.Fatal(err)
	}
	produce(200, 300)
	cons := newClient(t, c.Nodes()[0].Addr(), kgo.ConsumeTopics("fo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < 300 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 300", len(seen))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v, k := range seen {
		if k > 1 {
			t.Errorf("%s read %d times", v, k)
		}
	}
	waitReplicasEqual(t, c, "fo", 1, 60*time.Second)
	// Caught up, the old leader is taken back into the ISR.
	for {
		md, err := adm.Metadata(ctx, "fo")
		if err == nil && len(md.Topics["fo"].Partitions[0].ISR) == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the returned node never rejoined the ISR: %+v", md.Topics["fo"].Partitions[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createAssigned creates a one-partition topic on the given replicas, the
// first being the preferred leader.
func createAssigned(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, replicas []int32, configs map[string]*string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: replicas}}
	for k, v := range configs {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: v})
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s on %v: %v %+v", topic, replicas, err, resp)
	}
}

// A leader cut off from the other nodes keeps taking acks=1 writes that
// nobody replicates; the others elect a new leader and take acks=all
// writes. Healed, the old leader truncates what it alone had and
// converges with the new leader byte for byte: only the acks=all records
// remain.
func TestReplicationTruncatesUnreplicatedWrites(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := others(ctrl)
	old, follower := o[0], o[1]
	admin := newClient(t, c.Node(ctrl).Addr())
	createAssigned(t, ctx, admin, "tr", []int32{old, follower, ctrl}, nil)
	all := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("tr"))
	for i := range 10 {
		if err := all.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "all%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitReplicasEqual(t, c, "tr", 1, 30*time.Second)

	c.Cut(old, follower)
	c.Cut(old, ctrl)
	// A client that reaches only the old leader, whose metadata still
	// says it leads.
	one := newClient(t, c.Node(old).Addr(), kgo.DefaultProduceTopic("tr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	for i := range 5 {
		if err := one.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "one%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=1 write to the cut-off leader: %v", err)
		}
	}
	// The others fence it and elect a new leader, which takes acks=all
	// writes (min.insync.replicas 1: the ISR is the two of them).
	adm := kadm.NewClient(all)
	for {
		md, err := adm.Metadata(ctx, "tr")
		if err == nil && md.Topics["tr"].Partitions[0].Leader != old && md.Topics["tr"].Partitions[0].Leader >= 0 {
			t.Logf("new leader %d, epoch %d", md.Topics["tr"].Partitions[0].Leader, md.Topics["tr"].Partitions[0].LeaderEpoch)
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no new leader")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 10; i < 15; i++ {
		if err := all.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "all%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.HealAll()
	waitReplicasEqual(t, c, "tr", 1, 60*time.Second)

	cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumeTopics("tr"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 15 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != fmt.Sprintf("all%d", i) {
			t.Fatalf("offset %d holds %q: the log is %v", i, v, got)
		}
	}
}

// Idempotent acks=all producers write on keys while the leader of the
// busiest partitions is killed (no controlled shutdown) and restarted:
// every record is acknowledged, and the log holds each exactly once, in
// the order each producer sent it per partition (the new leader knows
// the producers' sequences from the replicated log).
func TestReplicationIdempotentProducersAcrossKill(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createReplicated(t, ctx, c, "idem", 4, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	adm := kadm.NewClient(newClient(t, c.Nodes()[0].Addr()))
	md, err := adm.Metadata(ctx, "idem")
	if err != nil {
		t.Fatal(err)
	}
	victim := md.Topics["idem"].Partitions[0].Leader
	const perProducer = 1500
	errs := make(chan error, 2)
	for pi := range 2 {
		// AlwaysRetryEOF: a request in flight to the killed node ends
		// in EOF, which franz-go otherwise takes for a missing SASL
		// setup and fails at once (a producer still initialising its id
		// on that node failed this test under load).
		p := newClient(t, c.Bootstrap()[0], kgo.DefaultProduceTopic("idem"), kgo.ProducerLinger(time.Millisecond), kgo.AlwaysRetryEOF())
		go func() {
			var first error
			for i := range perProducer {
				if pi == 0 && i == perProducer/3 {
					t.Logf("killing node %d", victim)
					c.Node(victim).Kill()
					time.AfterFunc(2*time.Second, func() {
						if err := c.Node(victim).Restart(); err != nil {
							t.Errorf("restart %d: %v", victim, err)
						}
					})
				}
				r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%16), Value: fmt.Appendf(nil, "p%d-%06d", pi, i)}
				p.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil && first == nil {
						first = err
					}
				})
			}
			if err := p.Flush(ctx); err != nil && first == nil {
				first = err
			}
			errs <- first
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	cons := newClient(t, c.Bootstrap()[0], kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	last := map[string]string{} // producer+partition -> last value
	for len(seen) < 2*perProducer {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d", len(seen), 2*perProducer)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v] {
				t.Errorf("%s at partition %d offset %d: a duplicate", v, r.Partition, r.Offset)
			}
			seen[v] = true
			k := fmt.Sprintf("%s/%d", v[:2], r.Partition)
			if last[k] > v {
				t.Errorf("%s after %s in partition %d: out of order", v, last[k], r.Partition)
			}
			last[k] = v
		})
	}
	ends, err := adm.ListEndOffsets(ctx, "idem")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 2*perProducer {
		t.Fatalf("the log holds %d records, %d were produced", total, 2*perProducer)
	}
	waitReplicasEqual(t, c, "idem", 4, 60*time.Second)
}

// With unclean.leader.election.enable, a leader alone in its ISR (its
// follower cut off) takes writes that consumers read; fenced, it loses the
// leadership to the out-of-sync follower, which takes other writes at the
// same offsets. Once the network heals, the consumer that read the lost
// records learns it from the new leader (KIP-320: OffsetForLeaderEpoch finds where the logs
// diverge), reports data loss and reads on from the divergence; healed,
// the old leader truncates the lost records and converges.
func TestReplicationUncleanElectionSignalsConsumers(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), Properties: map[string]string{
		"broker.heartbeat.interval.ms":     "250",
		"broker.session.timeout.ms":        "3000",
		"replica.lag.time.max.ms":          "1500",
		"unclean.leader.election.enable":   "true",
		"offsets.topic.replication.factor": "1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := others(ctrl)
	old, follower := o[0], o[1]
	createAssigned(t, ctx, newClient(t, c.Node(ctrl).Addr()), "uc", []int32{old, follower}, nil)
	p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("uc"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(prefix string, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s%d", prefix, i)}).FirstErr(); err != nil {
				t.Fatalf("produce %s%d: %v", prefix, i, err)
			}
		}
	}
	produce("a", 0, 10)
	cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"uc": {0: kgo.NewOffset().AtStart()}}))
	read := map[int64]string{}
	var dataLoss *kgo.ErrDataLoss
	poll := func(until func() bool) {
		t.Helper()
		for !until() {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %v, data loss %v", read, dataLoss)
			}
			fs.EachError(func(_ string, _ int32, err error) {
				if dl := (*kgo.ErrDataLoss)(nil); errors.As(err, &dl) {
					dataLoss = dl
				}
			})
			fs.EachRecord(func(r *kgo.Record) { read[r.Offset] = string(r.Value) })
		}
	}
	poll(func() bool { return len(read) == 10 })

	// The follower is cut off: the leader drops it from the ISR and goes
	// on alone, and its writes become readable.
	c.Cut(old, follower)
	produce("b", 10, 15)
	poll(func() bool { return read[14] == "b14" })

	// The leader is cut off from the controller too: fenced, it loses
	// the leadership to the follower, outside the ISR (unclean).
	c.Cut(old, ctrl)
	adm := kadm.NewClient(p)
	for {
		md, err := adm.Metadata(ctx, "uc")
		if err == nil && md.Topics["uc"].Partitions[0].Leader == follower {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the follower was never elected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	produce("c", 10, 13)
	// Healed, the old leader learns it no longer leads (until then it
	// serves the consumer from its stale metadata, as a Kafka broker cut
	// off from its controller does), truncates and follows.
	c.HealAll()
	poll(func() bool { return dataLoss != nil && read[12] == "c12" })
	if dataLoss.ResetTo != 10 {
		t.Errorf("data loss %+v: want a reset to 10, where the logs diverge", dataLoss)
	}
	waitReplicasEqual(t, c, "uc", 1, 60*time.Second)
}

// Committed offsets are replicated with __consumer_offsets: when the node
// coordinating a group is killed, the new coordinator (the new leader of
// the group's __consumer_offsets partition) answers with every offset the
// old one acknowledged.
func TestReplicationCommittedOffsetsSurviveCoordinatorKill(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createReplicated(t, ctx, c, "co", 3, nil)
	adm := kadm.NewClient(newClient(t, c.Bootstrap()[0]))
	offsets := kadm.Offsets{}
	for p := range int32(3) {
		offsets.Add(kadm.Offset{Topic: "co", Partition: p, At: int64(100 + p), LeaderEpoch: -1})
	}
	var coordinator int32 = -1
	for {
		resp, err := adm.CommitOffsets(ctx, "g-co", offsets)
		if err == nil && resp.Ok() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("commit: %v %v", err, resp)
		}
		time.Sleep(100 * time.Millisecond) // __consumer_offsets being created
	}
	cs := adm.FindGroupCoordinators(ctx, "g-co")
	for _, r := range cs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		coordinator = r.NodeID
	}
	t.Logf("killing coordinator %d", coordinator)
	c.Node(coordinator).Kill()
	var other string
	for _, n := range c.Nodes() {
		if n.ID() != coordinator {
			other = n.Addr()
		}
	}
	// Each try with a fresh client and its own deadline: franz-go's
	// admin client, told before the fencing that the dead node is the
	// coordinator, retries dialing it for as long as its context lasts.
	for {
		tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := kadm.NewClient(newClient(t, other)).FetchOffsets(tctx, "g-co")
		tcancel()
		if err == nil && got.Error() == nil {
			for p := range int32(3) {
				if o, found := got.Lookup("co", p); !found || o.At != int64(100+p) {
					t.Fatalf("the new coordinator has %v, committed %v", got, offsets)
				}
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no coordinator answered after the kill: %v %v", err, got.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
