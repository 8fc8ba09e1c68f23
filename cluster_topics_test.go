package strata_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// startFastCluster starts 3 nodes whose brokers heartbeat every 250 ms
// and are fenced after 3 s without one, so that fencing tests take
// seconds; 3 s is still far above what a starved node on a shared 2-core
// machine misses.
func startFastCluster(t *testing.T) *strata.Cluster {
	t.Helper()
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "250",
		"broker.session.timeout.ms":    "3000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// brokersSeen returns the broker ids a client bootstrapped from addr gets
// in Metadata, and the controller id.
func brokersSeen(t *testing.T, ctx context.Context, addr string) ([]int32, int32) {
	t.Helper()
	m, err := kadm.NewClient(newClient(t, addr)).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, b := range m.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids, m.Controller
}

// A 3-node cluster is one Kafka cluster to clients: every node lists all
// three brokers and the same controller; a topic created through one node
// is spread over the three, visible through every node and writable and
// readable through any bootstrap; consumer groups find their coordinator
// on whichever node leads their partition of __consumer_offsets; producer
// ids are unique across nodes; a delete through another node removes every
// node's files.
func TestClusterTopicsAcrossNodes(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes() {
		ids, seenCtrl := brokersSeen(t, ctx, n.Addr())
		if !slices.Equal(ids, []int32{1, 2, 3}) || seenCtrl != ctrl {
			t.Fatalf("node %d: brokers %v controller %d, want [1 2 3] and %d", n.ID(), ids, seenCtrl, ctrl)
		}
	}

	// Sent to a node that is not the controller (clients send admin
	// requests to the controller Metadata names; some tools do not):
	// forwarded, and answered once that node's metadata holds it.
	via := others(ctrl)[1]
	viaClient := newClient(t, c.Node(via).Addr())
	if err := viaClient.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "spread", 6, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, viaClient.Broker(int(via)))
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create through node %d: %v %+v", via, err, resp)
	}
	createdID := resp.Topics[0].TopicID
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, viaClient.Broker(int(via)))
	if err != nil || len(md.Topics) == 0 {
		t.Fatalf("metadata of node %d: %v", via, err)
	}
	if i := slices.IndexFunc(md.Topics, func(t kmsg.MetadataResponseTopic) bool { return *t.Topic == "spread" }); i < 0 || md.Topics[i].TopicID != createdID {
		t.Fatalf("node %d answered the create but its metadata lacks the topic", via)
	}
	leaders := map[int32]int{}
	for _, n := range c.Nodes() {
		// Other nodes follow the metadata log: eventually consistent,
		// as in Kafka.
		adm := kadm.NewClient(newClient(t, n.Addr()))
		var got kadm.TopicDetail
		waitFor(t, 10*time.Second, fmt.Sprintf("topic spread in node %d's metadata", n.ID()), func() bool {
			td, err := adm.ListTopics(ctx, "spread")
			got = td["spread"]
			return err == nil && got.Err == nil
		})
		if got.ID != createdID || len(got.Partitions) != 6 {
			t.Fatalf("node %d sees topic id %s with %d partitions, want %s and 6", n.ID(), got.ID, len(got.Partitions), kadm.TopicID(createdID))
		}
		if n.ID() == 1 {
			for _, p := range got.Partitions {
				leaders[p.Leader]++
			}
		}
	}
	if len(leaders) != 3 || leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("6 partitions led %v, want 2 on each of 3 nodes", leaders)
	}

	// Write through each node's bootstrap; read everything through one
	// in a group.
	for _, n := range c.Nodes() {
		p := newClient(t, n.Addr(), kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		for i := range 12 {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "n%d-%d", n.ID(), i)}).FirstErr(); err != nil {
				t.Fatalf("produce through node %d: %v", n.ID(), err)
			}
		}
	}
	cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumeTopics("spread"), kgo.ConsumerGroup("g-spread"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]bool{}
	for len(seen) < 36 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	// The coordinator is the leader of the group's partition; its
	// offsets are readable through any node.
	for _, n := range c.Nodes() {
		offs, err := kadm.NewClient(newClient(t, n.Addr())).FetchOffsets(ctx, "g-spread")
		if err != nil {
			t.Fatalf("fetch offsets through node %d: %v", n.ID(), err)
		}
		var total int64
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total != 36 {
			t.Fatalf("through node %d the group committed %d records, want 36", n.ID(), total)
		}
	}

	// Producer ids come from blocks reserved through the quorum.
	pids := map[int64]int32{}
	for _, n := range c.Nodes() {
		for range 2 {
			resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, newClient(t, n.Addr()))
			if err != nil || resp.ErrorCode != 0 {
				t.Fatalf("InitProducerId on node %d: %v %v", n.ID(), err, kerr.ErrorForCode(resp.ErrorCode))
			}
			if other, dup := pids[resp.ProducerID]; dup {
				t.Fatalf("producer id %d handed out by nodes %d and %d", resp.ProducerID, other, n.ID())
			}
			pids[resp.ProducerID] = n.ID()
		}
	}

	// Deleted through the controller: every node removes its files.
	if _, err := kadm.NewClient(newClient(t, c.Node(ctrl).Addr())).DeleteTopic(ctx, "spread"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes() {
		for {
			left := partitionDirs(t, n.Dir(), "spread-")
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d still has %v after the delete", n.ID(), left)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// partitionDirs lists the live partition directories under dir whose name
// starts with prefix (a deleted or stray partition's renamed directory is
// not live).
func partitionDirs(t *testing.T, dir, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) && !strings.HasSuffix(e.Name(), "-delete") && !strings.HasSuffix(e.Name(), "-stray") {
			if _, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// A node that stops heartbeating is fenced after broker.session.timeout.ms:
// Metadata stops listing it, and its partitions (replication factor 1)
// have no leader. Restarted, it registers again, is unfenced once it has
// caught up, and leads its partitions again under a new leader epoch, with
// its records.
func TestClusterFencingAndReturn(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := others(ctrl)[0]
	adm := kadm.NewClient(newClient(t, c.Node(ctrl).Addr()))
	// Every partition on the victim, by an explicit assignment.
	createOnBroker(t, ctx, newClient(t, c.Node(ctrl).Addr()), "fence", 2, victim)
	p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("fence"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	epochBefore := leaderEpochs(t, ctx, adm, "fence")[0]

	killed := time.Now()
	c.Node(victim).Kill()
	waitFor(t, 30*time.Second, "the killed node fenced and its partitions leaderless", func() bool {
		ids, _ := brokersSeen(t, ctx, c.Node(ctrl).Addr())
		td, err := adm.ListTopics(ctx, "fence")
		if err != nil || slices.Contains(ids, victim) {
			return false
		}
		for _, pd := range td["fence"].Partitions {
			if pd.Leader != -1 || !errorsIs(pd.Err, kerr.LeaderNotAvailable) {
				return false
			}
		}
		return true
	})
	t.Logf("node %d killed; fenced, partitions leaderless after %v", victim, time.Since(killed).Round(time.Millisecond))

	if err := c.Node(victim).Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restarted node unfenced and leading again", func() bool {
		ids, _ := brokersSeen(t, ctx, c.Node(ctrl).Addr())
		td, err := adm.ListTopics(ctx, "fence")
		if err != nil || !slices.Contains(ids, victim) {
			return false
		}
		for _, pd := range td["fence"].Partitions {
			if pd.Leader != victim {
				return false
			}
		}
		return true
	})
	if got := leaderEpochs(t, ctx, adm, "fence")[0]; got <= epochBefore {
		t.Fatalf("leader epoch %d after the return, was %d: a returning leader needs a new epoch", got, epochBefore)
	}
	cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumeTopics("fence"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 10; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	// And it takes new records in the new epoch.
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func leaderEpochs(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) []int32 {
	t.Helper()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []int32
	for _, p := range td[topic].Partitions.Sorted() {
		out = append(out, p.LeaderEpoch)
	}
	return out
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// While the controller is cut off from the other two, admin requests
// through the majority's nodes still work (they forward to the new
// controller), and a request through the cut-off node gets an error a
// client retries rather than hanging; after the heal it works there too.
func TestClusterAdminDuringPartition(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	old, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range others(old) {
		c.Cut(old, o)
	}
	next := waitAgreed(t, c, 20*time.Second, func(id int32) bool { return id != old }, others(old)...)
	t.Logf("controller %d cut off; %d elected", old, next)
	follower := others(old)[0]
	if follower == next {
		follower = others(old)[1]
	}
	adm := kadm.NewClient(newClient(t, c.Node(follower).Addr()))
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "during"); err != nil || r.Err != nil {
		t.Fatalf("create through node %d during the cut: %v %v", follower, err, r.Err)
	}

	// Through the cut-off node: no controller it can reach. The request
	// fails (the client's own retries give up within its timeout) rather
	// than creating anything or hanging the node.
	cutAdm := kadm.NewClient(newClient(t, c.Node(old).Addr(), kgo.RetryTimeout(2*time.Second)))
	// Briefly: while a link is cut, raft's leader backs off its retries
	// to the cut-off node exponentially (hashicorp/raft caps the wait at
	// about 41 s), and a long cut delays the node's return after the heal
	// by as much.
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	r, err := cutAdm.CreateTopic(short, 1, 1, nil, "cutoff")
	cancelShort()
	if err == nil && r.Err == nil {
		t.Fatal("a node cut off from the quorum created a topic")
	}
	t.Logf("through the cut-off node: %v %v", err, r.Err)

	c.HealAll()
	waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)
	waitFor(t, 90*time.Second, "a create through the healed node", func() bool {
		// kadm returns the topic's error as err too. The create the
		// client gave up on during the cut may have completed at the
		// heal (the cut-off node, knowing no controller, tries the
		// voters in turn): TOPIC_ALREADY_EXISTS then.
		r, err := kadm.NewClient(newClient(t, c.Node(old).Addr())).CreateTopic(ctx, 1, 1, nil, "cutoff")
		return err == nil && r.Err == nil || errorsIs(err, kerr.TopicAlreadyExists)
	})
	// The healed node catches up with the log: Metadata is eventually
	// consistent across nodes, as in Kafka (the create may have gone
	// straight to the controller).
	healed := kadm.NewClient(newClient(t, c.Node(old).Addr()))
	waitFor(t, 30*time.Second, "both topics in the healed node's metadata", func() bool {
		m, err := healed.Metadata(ctx, "during", "cutoff")
		return err == nil && m.Topics["during"].Err == nil && m.Topics["cutoff"].Err == nil
	})
}

func testLogger() *slog.Logger {
	if os.Getenv("STRATA_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Clients ride out a node's controlled shutdown and return: an idempotent
// producer writing to every partition and a group consumer reading them
// see no error while the stopped node's partitions have no leader (they
// have one replica: the records wait in the producer), and every record
// arrives exactly once after the node is back.
func TestClusterClientsRideOutNodeRestart(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, c.Node(ctrl).Addr()))
	if r, err := adm.CreateTopic(ctx, 6, 1, nil, "ride"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	victim := others(ctrl)[0]
	p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("ride"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerLinger(0))
	cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumeTopics("ride"), kgo.ConsumerGroup("g-ride"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))

	const total = 600
	produced := make(chan error, 1)
	go func() {
		var mu sync.Mutex
		var firstErr error
		fail := func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
		for i := range total {
			if i == total/3 {
				// The middle third goes out while the node is down.
				if err := c.Node(victim).Stop(); err != nil {
					fail(fmt.Errorf("stop node %d: %w", victim, err))
				}
				time.AfterFunc(2*time.Second, func() {
					if err := c.Node(victim).Restart(); err != nil {
						t.Errorf("restart node %d: %v", victim, err)
					}
				})
			}
			p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}, func(_ *kgo.Record, err error) { fail(err) })
		}
		fail(p.Flush(ctx))
		mu.Lock()
		defer mu.Unlock()
		produced <- firstErr
	}()
	seen := map[string]int{}
	for len(seen) < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d distinct records: %v", len(seen), total, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			// With RF 1 the group's coordinator may be the stopped
			// node: the client cannot join until it is back and
			// says so, then retries. That is riding it out.
			var sess *kgo.ErrGroupSession
			if errors.As(err, &sess) {
				t.Logf("group session while a node is down: %v", err)
				return
			}
			t.Errorf("consumer error on %s-%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	if err := <-produced; err != nil {
		t.Fatalf("producer saw an error: %v", err)
	}
	for v, n := range seen {
		if n > 1 {
			// A group consumer may see records again after a
			// rebalance; within one member without one, a
			// duplicate would be a second copy in the log.
			t.Logf("record %s seen %d times", v, n)
		}
	}
	// The log holds each record once: count by offsets.
	ends, err := adm.ListEndOffsets(ctx, "ride")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != total {
		t.Fatalf("the log holds %d records, produced %d", n, total)
	}
}

// A topic deleted while one of its nodes is down: the node, back, deletes
// the partition or sets its directory aside as -stray (its topic id is not
// in the caught-up image), never serves it, and a new topic of the same
// name starts empty.
func TestClusterDeleteWhileNodeDown(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := others(ctrl)[0]
	cl := newClient(t, c.Node(ctrl).Addr())
	create := func() { createOnBroker(t, ctx, cl, "gone", 1, victim) }
	create()
	p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("gone"))
	for i := range 5 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "old%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if err := c.Node(victim).Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(victim).Restart(); err != nil {
		t.Fatal(err)
	}
	if left := partitionDirs(t, c.Node(victim).Dir(), "gone-0"); len(left) != 0 {
		t.Fatalf("node %d serves %v after the topic was deleted while it was down", victim, left)
	}
	// Either the restarting node replayed the RemoveTopicRecord as a
	// change (its image had the topic, then lost it: deleted, as on every
	// node), or its image was already past it when the partitions on disk
	// were matched with it (set aside as gone-0.<id>-stray). Never served.
	create()
	ends, err := kadm.NewClient(newClient(t, c.Node(victim).Addr())).ListEndOffsets(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("gone", 0); o.Err != nil || o.Offset != 0 {
		t.Fatalf("the new topic gone-0 ends at %d (%v): it inherited the old records", o.Offset, o.Err)
	}
}

// createOnBroker creates topic with partitions partitions, every one
// assigned to broker alone (an explicit CreateTopics assignment).
func createOnBroker(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32, broker int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p := range partitions {
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: p, Replicas: []int32{broker}})
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s on broker %d: %v %+v", topic, broker, err, resp)
	}
}
