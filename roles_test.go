package strata_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// startRolesCluster starts an embedded cluster whose nodes have the given
// process.roles (ids 1..len(roles)).
func startRolesCluster(t *testing.T, logger *slog.Logger, roles ...string) *strata.Cluster {
	t.Helper()
	begin := time.Now()
	m := map[int32]string{}
	for i, r := range roles {
		m[int32(i+1)] = r
	}
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Nodes: len(roles), Roles: m, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		begin := time.Now()
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		t.Logf("closed in %v", time.Since(begin).Round(time.Millisecond))
	})
	t.Logf("%d nodes (%v) started in %v", len(roles), roles, time.Since(begin).Round(time.Millisecond))
	return c
}

// metadataBrokers returns the broker ids a Metadata answer through addr
// lists.
func metadataBrokers(t *testing.T, ctx context.Context, addr string) []int32 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, b := range bs {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

// waitTopic waits until Metadata through addr lists topic with its
// partitions, each with a leader. (kgo caches the metadata it fetched for
// MetadataMinAge, 5 s by default: lowered here.)
func waitTopic(t *testing.T, ctx context.Context, addr string, topic string, partitions int) kadm.TopicDetails {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr, kgo.MetadataMinAge(10*time.Millisecond)))
	for {
		td, err := adm.ListTopics(ctx, topic)
		ok := err == nil && td[topic].Err == nil && len(td[topic].Partitions) == partitions
		for _, p := range td[topic].Partitions {
			ok = ok && p.Leader >= 0
		}
		if ok {
			return td
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s through %s: %v %v", topic, addr, err, td[topic].Err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// produceConsume writes n records to topic through addr and reads them
// back (all partitions) through another broker.
func produceConsume(t *testing.T, ctx context.Context, topic string, n int, from, to string) {
	t.Helper()
	p := newClient(t, from, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range n {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", topic, i)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", topic, err)
		}
	}
	cons := newClient(t, to, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

// Three controller-only voters and two broker-only nodes: only the brokers
// are listed and hold partitions; the broker-only nodes follow the
// metadata log as raft non-voters, through a controller failover and
// their own restart.
func TestClusterSeparateRoles(t *testing.T) {
	adds := &nonvoterAdds{n: map[string]int{}}
	if testing.Verbose() {
		adds.next = slog.NewTextHandler(os.Stderr, nil)
	}
	c := startRolesCluster(t, slog.New(adds), "controller", "controller", "controller", "broker", "broker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if got := c.Bootstrap(); len(got) != 2 || got[0] != c.Node(4).Addr() || got[1] != c.Node(5).Addr() {
		t.Fatalf("Bootstrap = %v, want the two brokers", got)
	}
	for _, id := range []int32{4, 5} {
		if got := metadataBrokers(t, ctx, c.Node(id).Addr()); !slices.Equal(got, []int32{4, 5}) {
			t.Fatalf("Metadata through node %d lists brokers %v, want [4 5]", id, got)
		}
	}
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ctrl < 1 || ctrl > 3 {
		t.Fatalf("controller %d is not a voter", ctrl)
	}

	// DescribeQuorum (forwarded by a broker): the three voters, the two
	// brokers as observers.
	dq := kmsg.NewPtrDescribeQuorumRequest()
	dqt := kmsg.NewDescribeQuorumRequestTopic()
	dqt.Topic = "__cluster_metadata"
	dqt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	dq.Topics = append(dq.Topics, dqt)
	r, err := dq.RequestWith(ctx, newClient(t, c.Node(5).Addr()))
	if err != nil || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeQuorum: %v %+v", err, r)
	}
	var gotVoters, gotObservers []int32
	for _, v := range r.Topics[0].Partitions[0].CurrentVoters {
		gotVoters = append(gotVoters, v.ReplicaID)
	}
	for _, o := range r.Topics[0].Partitions[0].Observers {
		gotObservers = append(gotObservers, o.ReplicaID)
	}
	if !slices.Equal(gotVoters, []int32{1, 2, 3}) || !slices.Equal(gotObservers, []int32{4, 5}) {
		t.Fatalf("DescribeQuorum voters %v observers %v, want [1 2 3] and [4 5]", gotVoters, gotObservers)
	}

	// Created through broker 4 (forwarded to the controller), visible
	// and usable through broker 5.
	adm4 := kadm.NewClient(newClient(t, c.Node(4).Addr()))
	if _, err := adm4.CreateTopic(ctx, 4, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	adm5 := kadm.NewClient(newClient(t, c.Node(5).Addr()))
	// Broker 5's image follows broker 4's a moment later.
	td := waitTopic(t, ctx, c.Node(5).Addr(), "spread", 4)
	leaders := map[int32]int{}
	for _, p := range td["spread"].Partitions {
		if len(p.Replicas) != 1 || p.Replicas[0] != p.Leader {
			t.Fatalf("partition %d replicas %v, leader %d", p.Partition, p.Replicas, p.Leader)
		}
		leaders[p.Leader]++
	}
	if len(td["spread"].Partitions) != 4 || leaders[4] != 2 || leaders[5] != 2 {
		t.Fatalf("partitions %d, leaders %v: want 4 spread 2 and 2 over brokers 4 and 5", len(td["spread"].Partitions), leaders)
	}
	produceConsume(t, ctx, "spread", 40, c.Node(4).Addr(), c.Node(5).Addr())

	// A consumer group: __consumer_offsets is created by the
	// controller-only active controller (forwarded), on the brokers.
	g := newClient(t, c.Node(5).Addr(), kgo.ConsumeTopics("spread"), kgo.ConsumerGroup("g"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for n := 0; n < 40; {
		fs := g.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	if err := g.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	offs, err := kadm.NewClient(newClient(t, c.Node(4).Addr())).FetchOffsets(ctx, "g")
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, offs.Error())
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 40 {
		t.Fatalf("group g committed %d records, want 40", total)
	}
	g.Close()

	// The active controller dies: another voter takes over, the brokers
	// keep serving and creating topics works again.
	killed := time.Now()
	c.Node(ctrl).Kill()
	var voters []int32
	for _, id := range []int32{1, 2, 3} {
		if id != ctrl {
			voters = append(voters, id)
		}
	}
	next := waitAgreed(t, c, 30*time.Second, func(id int32) bool { return id != ctrl }, append(voters, 4, 5)...)
	t.Logf("controller %d killed; %d elected, seen by both brokers, after %v", ctrl, next, time.Since(killed).Round(time.Millisecond))
	produceConsume(t, ctx, "spread", 40, c.Node(5).Addr(), c.Node(4).Addr())
	if _, err := adm5.CreateTopic(ctx, 2, 1, nil, "after-failover"); err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, "after-failover", 10, c.Node(5).Addr(), c.Node(4).Addr())
	if err := c.Node(ctrl).Restart(); err != nil {
		t.Fatal(err)
	}

	// A broker-only node restarted on its raft state rejoins; its image
	// follows a change made while it was down.
	if err := c.Node(4).Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := adm5.CreateTopic(ctx, 1, 1, nil, "while-down"); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := c.Node(4).Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker 4 restarted in %v", time.Since(restarted).Round(time.Millisecond))
	adm4 = kadm.NewClient(newClient(t, c.Node(4).Addr()))
	waitTopic(t, ctx, c.Node(4).Addr(), "while-down", 1)
	produceConsume(t, ctx, "after-failover", 10, c.Node(4).Addr(), c.Node(5).Addr())
	waitSameImage(t, c, 30*time.Second, 0)
	// Each broker joined raft once: its restart kept its membership.
	if got := adds.counts(); got["4"] != 1 || got["5"] != 1 || len(got) != 2 {
		t.Fatalf("non-voters added %v, want brokers 4 and 5 once each", got)
	}
}

// nonvoterAdds counts the active controllers' log lines that add a
// broker to raft as a non-voter, by broker; next, if set, gets every line.
type nonvoterAdds struct {
	mu   sync.Mutex
	n    map[string]int
	next slog.Handler
}

func (a *nonvoterAdds) Enabled(context.Context, slog.Level) bool { return true }
func (a *nonvoterAdds) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *nonvoterAdds) WithGroup(string) slog.Handler            { return a }
func (a *nonvoterAdds) Handle(ctx context.Context, r slog.Record) error {
	if a.next != nil {
		a.next.Handle(ctx, r)
	}
	if !strings.HasPrefix(r.Message, "added a broker to the raft configuration") {
		return nil
	}
	r.Attrs(func(at slog.Attr) bool {
		if at.Key == "broker" {
			a.mu.Lock()
			a.n[at.Value.String()]++
			a.mu.Unlock()
		}
		return true
	})
	return nil
}

func (a *nonvoterAdds) counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.n)
}

// Three combined nodes and one broker-only node: the broker-only node is
// listed and takes partitions like the others.
func TestClusterCombinedAndBrokerOnly(t *testing.T) {
	c := startRolesCluster(t, nil, "broker,controller", "broker,controller", "broker,controller", "broker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if got := metadataBrokers(t, ctx, c.Node(4).Addr()); !slices.Equal(got, []int32{1, 2, 3, 4}) {
		t.Fatalf("Metadata through node 4 lists brokers %v", got)
	}
	adm := kadm.NewClient(newClient(t, c.Node(4).Addr()))
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "mix"); err != nil {
		t.Fatal(err)
	}
	td := waitTopic(t, ctx, c.Node(1).Addr(), "mix", 8)
	on4 := 0
	for _, p := range td["mix"].Partitions {
		if p.Leader == 4 {
			on4++
		}
	}
	if on4 != 2 {
		t.Fatalf("broker 4 leads %d of 8 partitions, want 2", on4)
	}
	produceConsume(t, ctx, "mix", 40, c.Node(4).Addr(), c.Node(2).Addr())
}

// strata.Start (as `strata serve`) runs a controller-only node, which
// opens no PLAINTEXT listener, and a broker-only node whose controller
// listener is on a port the OS picks: it registers the bound address, the
// controller adds it to raft, and it serves.
func TestStartControllerOnlyAndBrokerOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctrlAddr := ln.Addr().String()
	ln.Close()
	voters := "1@" + ctrlAddr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The controller-only node waits for its quorum (itself) at start;
	// the broker-only one for the controller: start them together.
	type started struct {
		b   *strata.Broker
		err error
	}
	ctrlCh := make(chan started, 1)
	go func() {
		b, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: map[string]string{
			"node.id": "1", "process.roles": "controller", "listeners": "CONTROLLER://" + ctrlAddr,
			"controller.quorum.voters": voters,
		}})
		ctrlCh <- started{b, err}
	}()
	brk, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: map[string]string{
		"node.id": "2", "process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
		"controller.quorum.voters": voters,
	}})
	ctrl := <-ctrlCh
	if ctrl.err != nil {
		t.Fatal(ctrl.err)
	}
	defer ctrl.b.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer brk.Close()
	if ctrl.b.Addr() != "" {
		t.Fatalf("controller-only node listens for clients on %s", ctrl.b.Addr())
	}
	if got := metadataBrokers(t, ctx, brk.Addr()); !slices.Equal(got, []int32{2}) {
		t.Fatalf("Metadata lists brokers %v, want [2]", got)
	}
	if _, err := kadm.NewClient(newClient(t, brk.Addr())).CreateTopic(ctx, 2, 1, nil, "solo"); err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, "solo", 10, brk.Addr(), brk.Addr())
}
