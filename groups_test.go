package strata_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record/recordtest"
)

// groupProps starts brokers without the 3 s initial rebalance delay, so
// groups form as soon as their members have joined.
func groupProps() map[string]string {
	return map[string]string{"group.initial.rebalance.delay.ms": "0"}
}

func createPartitioned(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopic(ctxT(t), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produceSpread produces n records with values prefix-i spread round robin
// over the topic's partitions.
func produceSpread(t *testing.T, addr, topic, prefix string, n int) {
	t.Helper()
	c := newClient(t, addr, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := c.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// ledger counts how often each record (partition/offset) was consumed,
// and by which member.
type ledger struct {
	mu       sync.Mutex
	seen     map[string]int
	byMember map[string]int
}

func newLedger() *ledger { return &ledger{seen: map[string]int{}, byMember: map[string]int{}} }

func (l *ledger) add(member string, r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
	l.byMember[member]++
}

func (l *ledger) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.seen {
		n += c
	}
	return n
}

func (l *ledger) of(member string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byMember[member]
}

// groupMember is a franz-go group consumer polling in its own goroutine.
// Rebalances wait while a poll's records are being recorded
// (BlockRebalanceOnPoll), and autocommit commits what was polled when
// partitions are revoked, so a correct coordinator hands every record to
// exactly one member.
type groupMember struct {
	name   string
	client *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, addr, group, topic, name string, l *ledger, opts ...kgo.Opt) *groupMember {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.ClientID(name),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{name: name, client: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				cl.AllowRebalance()
				return
			}
			fs.EachRecord(func(r *kgo.Record) { l.add(name, r) })
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends polling and closes the client, which commits what was polled
// and leaves the group (unless the member is static).
func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	m.client.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe returns the group as DescribeGroups reports it.
func describe(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := adm.DescribeGroups(ctxT(t), group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	return ds[group]
}

// stableWith waits until the group is Stable with exactly the named
// members (by client id), every partition of topic assigned to exactly
// one of them, and returns the partitions each holds.
func stableWith(t *testing.T, adm *kadm.Client, group, topic string, partitions int, clients ...string) map[string][]int32 {
	t.Helper()
	var got map[string][]int32
	waitFor(t, 30*time.Second, fmt.Sprintf("group %s stable with %v", group, clients), func() bool {
		d := describe(t, adm, group)
		if d.State != "Stable" || len(d.Members) != len(clients) {
			return false
		}
		got = map[string][]int32{}
		owners := map[int32]int{}
		for _, m := range d.Members {
			if !slices.Contains(clients, m.ClientID) {
				return false
			}
			ca, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			for _, tp := range ca.Topics {
				if tp.Topic == topic {
					for _, p := range tp.Partitions {
						owners[p]++
						got[m.ClientID] = append(got[m.ClientID], p)
					}
				}
			}
		}
		if len(owners) != partitions {
			return false
		}
		for _, n := range owners {
			if n != 1 {
				t.Fatalf("group %s Stable with a partition owned %d times: %v", group, n, got)
			}
		}
		return true
	})
	return got
}

// TestGroupMembersJoinAndLeaveExactlyOnce runs three franz-go consumers on
// a 12-partition topic with each client balancer, eager and cooperative:
// two start, a third joins, the first leaves, and records produced in each
// phase are consumed exactly once across the members.
func TestGroupMembersJoinAndLeaveExactlyOnce(t *testing.T) {
	balancers := map[string]func() kgo.GroupBalancer{
		"range":              kgo.RangeBalancer,
		"roundrobin":         kgo.RoundRobinBalancer,
		"sticky":             kgo.StickyBalancer,
		"cooperative-sticky": kgo.CooperativeStickyBalancer,
	}
	for name, balancer := range balancers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir(), groupProps())
			const topic, group, partitions, perPhase = "jl", "jl-group", 12, 600
			createPartitioned(t, b.Addr(), topic, partitions)
			adm := kadm.NewClient(newClient(t, b.Addr()))
			l := newLedger()
			opt := kgo.Balancers(balancer())

			produceSpread(t, b.Addr(), topic, "a", perPhase)
			m1 := startMember(t, b.Addr(), group, topic, "m1", l, opt)
			m2 := startMember(t, b.Addr(), group, topic, "m2", l, opt)
			stableWith(t, adm, group, topic, partitions, "m1", "m2")
			waitFor(t, 30*time.Second, "phase 1 consumed", func() bool { return l.total() >= perPhase })

			m3 := startMember(t, b.Addr(), group, topic, "m3", l, opt)
			stableWith(t, adm, group, topic, partitions, "m1", "m2", "m3")
			produceSpread(t, b.Addr(), topic, "b", perPhase)
			waitFor(t, 30*time.Second, "phase 2 consumed", func() bool { return l.total() >= 2*perPhase })
			if l.of("m3") == 0 {
				t.Fatal("the member that joined consumed nothing")
			}

			m1.stop()
			stableWith(t, adm, group, topic, partitions, "m2", "m3")
			before := l.of("m1")
			produceSpread(t, b.Addr(), topic, "c", perPhase)
			waitFor(t, 30*time.Second, "phase 3 consumed", func() bool { return l.total() >= 3*perPhase })
			if l.of("m1") != before {
				t.Fatal("a member that left kept consuming")
			}
			m2.stop()
			m3.stop()

			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.seen) != 3*perPhase {
				t.Fatalf("consumed %d distinct records, produced %d", len(l.seen), 3*perPhase)
			}
			for k, n := range l.seen {
				if n != 1 {
					t.Fatalf("record %s consumed %d times", k, n)
				}
			}
		})
	}
}

// killableDialer lets a test cut a client off the network at once, as if
// its process had been killed: no LeaveGroup, no more heartbeats.
type killableDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

func (d *killableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("killed")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// TestGroupDeadMemberExpires cuts a member off without a LeaveGroup: the
// coordinator must remove it when its session timeout (6 s) expires, not
// before, and give its partitions to the survivor.
func TestGroupDeadMemberExpires(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupProps())
	const topic, group, partitions = "dead", "dead-group", 12
	const session = 6 * time.Second
	createPartitioned(t, b.Addr(), topic, partitions)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	l := newLedger()
	d := &killableDialer{}
	victim := startMember(t, b.Addr(), group, topic, "victim", l, kgo.SessionTimeout(session), kgo.Dialer(d.dial))
	startMember(t, b.Addr(), group, topic, "survivor", l, kgo.SessionTimeout(session))
	stableWith(t, adm, group, topic, partitions, "victim", "survivor")

	d.kill()
	killed := time.Now()
	stableWith(t, adm, group, topic, partitions, "survivor")
	took := time.Since(killed)
	t.Logf("dead member's partitions reassigned %v after the kill (session timeout %v)", took.Round(time.Millisecond), session)
	// The last heartbeat came at most one heartbeat interval (0.5 s)
	// before the kill, so expiry cannot be earlier than this.
	if took < session-time.Second {
		t.Fatalf("member removed after %v, before its session timeout %v", took, session)
	}
	if took > session+10*time.Second {
		t.Fatalf("member removed after %v; session timeout is %v", took, session)
	}
	produceSpread(t, b.Addr(), topic, "after", 240)
	waitFor(t, 30*time.Second, "survivor consumes every partition", func() bool { return l.of("survivor") >= 240 })
	victim.cancel()
}

// TestGroupStaticMemberRejoinsWithoutRebalance restarts a static member
// (group.instance.id) within its session timeout: it gets its partitions
// back and the other member sees no rebalance.
func TestGroupStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupProps())
	const topic, group, partitions = "static", "static-group", 6
	createPartitioned(t, b.Addr(), topic, partitions)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	l := newLedger()

	static := func(id string) kgo.Opt { return kgo.InstanceID(id) }
	session := kgo.SessionTimeout(20 * time.Second)
	// The range balancer orders static members by instance id, so a
	// restarted leader computes the plan the group already has. With a
	// sticky balancer the restarted client has no memory of what it owned,
	// may compute another plan than the stored one and, as franz-go does
	// after KIP-814's SkipAssignment, rejoin to force a rebalance.
	rng := kgo.Balancers(kgo.RangeBalancer())
	s1 := startMember(t, b.Addr(), group, topic, "s1", l, static("instance-1"), session, rng)
	s2 := startMember(t, b.Addr(), group, topic, "s2", l, static("instance-2"), session, rng)
	before := stableWith(t, adm, group, topic, partitions, "s1", "s2")
	// The generation s2 is in, once it has synced.
	var s2Member string
	var s2Gen int32
	waitFor(t, 10*time.Second, "s2 in the stable generation", func() bool {
		s2Member, s2Gen = s2.client.GroupMetadata()
		return s2Gen > 0 && len(s2.client.GetConsumeTopics()) > 0
	})

	s1.stop() // a static member does not leave on close
	d := describe(t, adm, group)
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("after a static member closed: state %s with %d members, want Stable with 2", d.State, len(d.Members))
	}
	startMember(t, b.Addr(), group, topic, "s1-again", l, static("instance-1"), session, rng)
	after := stableWith(t, adm, group, topic, partitions, "s1-again", "s2")
	if !slices.Equal(before["s1"], after["s1-again"]) || !slices.Equal(before["s2"], after["s2"]) {
		t.Fatalf("assignment changed across a static rejoin: before %v, after %v", before, after)
	}
	produceSpread(t, b.Addr(), topic, "x", 120)
	waitFor(t, 30*time.Second, "records consumed", func() bool { return l.total() >= 120 })
	if l.of("s1-again") == 0 {
		t.Fatal("the rejoined static member consumed nothing")
	}
	if member, gen := s2.client.GroupMetadata(); member != s2Member || gen != s2Gen {
		t.Fatalf("the other member went from %s generation %d to %s generation %d: a rebalance", s2Member, s2Gen, member, gen)
	}
}

// TestGroupOffsetsSurviveRestart commits offsets, restarts the broker, and
// checks that the offsets and the group are still there and that a new
// member resumes exactly where the first stopped.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir, groupProps())
	const topic, group, partitions = "restart", "restart-group", 4
	createPartitioned(t, b.Addr(), topic, partitions)
	produceSpread(t, b.Addr(), topic, "r", 400)

	l := newLedger()
	m := startMember(t, b.Addr(), group, topic, "first", l)
	waitFor(t, 30*time.Second, "first member consumes", func() bool { return l.total() >= 400 })
	m.stop() // commits what it polled and leaves
	adm := kadm.NewClient(newClient(t, b.Addr()))
	committed, err := adm.FetchOffsets(ctxT(t), group)
	if err != nil || committed.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, committed.Error())
	}
	var sum int64
	committed.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 400 {
		t.Fatalf("committed offsets sum to %d, want 400: %v", sum, committed)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = startBroker(t, dir, groupProps())
	adm = kadm.NewClient(newClient(t, b.Addr()))
	again, err := adm.FetchOffsets(ctxT(t), group)
	if err != nil || again.Error() != nil {
		t.Fatalf("fetch offsets after restart: %v %v", err, again.Error())
	}
	committed.Each(func(o kadm.OffsetResponse) {
		got, ok := again.Lookup(o.Topic, o.Partition)
		if !ok || got.At != o.At || got.Metadata != o.Metadata {
			t.Errorf("partition %d: committed %+v before the restart, %+v after", o.Partition, o.Offset, got.Offset)
		}
	})
	d := describe(t, adm, group)
	if d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("group after restart: state %q protocol type %q, want Empty consumer", d.State, d.ProtocolType)
	}

	produceSpread(t, b.Addr(), topic, "s", 100)
	l2 := newLedger()
	startMember(t, b.Addr(), group, topic, "second", l2)
	waitFor(t, 30*time.Second, "second member consumes", func() bool { return l2.total() >= 100 })
	// Would anything old come back? A marker at the end of every
	// partition: a member reads each partition in offset order, so once it
	// has every marker, whatever it was going to re-read is in the ledger.
	produceSpread(t, b.Addr(), topic, "end", partitions)
	ends, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "second member reads to the end of every partition", func() bool {
		l2.mu.Lock()
		defer l2.mu.Unlock()
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			all = all && l2.seen[fmt.Sprintf("%d/%d", o.Partition, o.Offset-1)] > 0
		})
		return all
	})
	l2.mu.Lock()
	defer l2.mu.Unlock()
	if len(l2.seen) != 100+partitions {
		t.Fatalf("second member consumed %d records, want only the %d new ones", len(l2.seen), 100+partitions)
	}
	for k, n := range l2.seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", k, n)
		}
	}
	for k := range l2.seen {
		var p int32
		var off int64
		fmt.Sscanf(k, "%d/%d", &p, &off)
		if o, _ := again.Lookup(topic, p); off < o.At {
			t.Fatalf("record %s was before the committed offset %d", k, o.At)
		}
	}
}

// TestGroupProtocolErrors drives the group APIs with raw requests and
// checks the error codes Kafka gives for each misuse.
func TestGroupProtocolErrors(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupProps())
	createPartitioned(t, b.Addr(), "raw", 2)
	cl := newClient(t, b.Addr())
	ctx := ctxT(t)
	code := func(what string, got int16, want error) {
		t.Helper()
		if err := kerr.ErrorForCode(got); !errors.Is(err, want) && !(err == nil && want == nil) {
			t.Fatalf("%s: got %v, want %v", what, err, want)
		}
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorKeys = []string{"g1", "g2"}
	fcr, err := fc.RequestWith(ctx, cl)
	if err != nil || len(fcr.Coordinators) != 2 || fcr.Coordinators[0].NodeID != 1 || fcr.Coordinators[1].ErrorCode != 0 {
		t.Fatalf("batched FindCoordinator: %+v %v", fcr, err)
	}
	fc = kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey, fc.CoordinatorType = 3, "txn", 1
	fcr, err = fc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	// Transactions have a coordinator: this node, the leader of the
	// id's partition of __transaction_state (created by the request).
	code("FindCoordinator TRANSACTION", fcr.ErrorCode, nil)
	if fcr.NodeID != 1 {
		t.Fatalf("FindCoordinator TRANSACTION: node %d, want 1", fcr.NodeID)
	}

	protocol := func() []kmsg.JoinGroupRequestProtocol {
		md := kmsg.NewConsumerMemberMetadata()
		md.Topics = []string{"raw"}
		return []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	}
	join := func(memberID string, session int32) *kmsg.JoinGroupResponse {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 9
		req.Group, req.MemberID, req.ProtocolType = "g1", memberID, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = session, 10000
		req.Protocols = protocol()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	code("JoinGroup session timeout 1 ms", join("", 1).ErrorCode, kerr.InvalidSessionTimeout)
	first := join("", 10000)
	code("JoinGroup v4+ without member id", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	code("JoinGroup unknown member", join("nobody", 10000).ErrorCode, kerr.UnknownMemberID)
	joined := join(first.MemberID, 10000)
	code("JoinGroup with the given id", joined.ErrorCode, nil)
	if joined.Generation != 1 || joined.LeaderID != first.MemberID || len(joined.Members) != 1 || *joined.Protocol != "range" {
		t.Fatalf("join response: %+v", joined)
	}

	hb := func(gen int32, member string) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = "g1", gen, member
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	code("Heartbeat between join and sync", hb(1, first.MemberID), nil)
	code("Heartbeat stale generation", hb(0, first.MemberID), kerr.IllegalGeneration)
	code("Heartbeat unknown member", hb(1, "nobody"), kerr.UnknownMemberID)

	commit := func(gen int32, member, topic string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID = "g1", gen, member
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 7
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	code("OffsetCommit between join and sync", commit(1, first.MemberID, "raw"), kerr.RebalanceInProgress)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID = "g1", 1, first.MemberID
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: first.MemberID, MemberAssignment: []byte("mine")}}
	sr, err := sync.RequestWith(ctx, cl)
	if err != nil || sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
		t.Fatalf("SyncGroup: %+v %v", sr, err)
	}
	code("Heartbeat when stable", hb(1, first.MemberID), nil)
	code("OffsetCommit stale generation", commit(0, first.MemberID, "raw"), kerr.IllegalGeneration)
	code("OffsetCommit unknown topic", commit(1, first.MemberID, "nope"), kerr.UnknownTopicOrPartition)
	code("OffsetCommit without generation to an active group", commit(-1, "", "raw"), kerr.UnknownMemberID)
	code("OffsetCommit", commit(1, first.MemberID, "raw"), nil)
	big := kmsg.NewPtrOffsetCommitRequest()
	big.Group, big.Generation, big.MemberID = "g1", 1, first.MemberID
	meta := string(make([]byte, 4097))
	big.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "raw", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 1, Offset: 3, Metadata: &meta}}}}
	if r, err := big.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	} else {
		code("OffsetCommit metadata over offset.metadata.max.bytes", r.Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge)
	}

	adm := kadm.NewClient(cl)
	dr, err := adm.DeleteGroups(ctx, "g1")
	if err != nil || !errors.Is(dr["g1"].Err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroups of an active group: %v %v", dr, err)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g1"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: first.MemberID}, {MemberID: "nobody"}}
	lr, err := leave.RequestWith(ctx, cl)
	if err != nil || lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("LeaveGroup: %+v %v", lr, err)
	}
	if d := describe(t, adm, "g1"); d.State != "Empty" {
		t.Fatalf("after the last member left: %s", d.State)
	}
	code("simple commit to an empty group", commit(-1, "", "raw"), nil)
	dr, err = adm.DeleteGroups(ctx, "g1", "never-existed")
	if err != nil || dr["g1"].Err != nil || !errors.Is(dr["never-existed"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("DeleteGroups: %v %v", dr, err)
	}
	of, err := adm.FetchOffsets(ctx, "g1")
	if err != nil || len(of) != 0 {
		t.Fatalf("offsets of a deleted group: %v %v", of, err)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 6, []string{"never-existed"}
	dgr, err := dg.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	code("DescribeGroups v6 unknown group", dgr.Groups[0].ErrorCode, kerr.GroupIDNotFound)

	// The internal topic is visible and readable, but not writable.
	md, err := adm.Metadata(ctx, "__consumer_offsets")
	if err != nil || !md.Topics["__consumer_offsets"].IsInternal || len(md.Topics["__consumer_offsets"].Partitions) != 50 {
		t.Fatalf("metadata of __consumer_offsets: %+v %v", md.Topics["__consumer_offsets"], err)
	}
	pr := rawProduce(t, cl, "__consumer_offsets", recordtest.Values(t, 1, "x"))
	code("Produce to __consumer_offsets", pr.ErrorCode, kerr.InvalidTopicException)
}

// TestGroupSurvivesRestartWhileConsuming restarts the broker under a
// running two-member group: the group is loaded back Stable with the same
// members, who keep their partitions (no rebalance, no record twice).
func TestGroupSurvivesRestartWhileConsuming(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir, groupProps())
	addr := b.Addr()
	const topic, group = "rr", "rr-group"
	createPartitioned(t, addr, topic, 4)
	l := newLedger()
	m1 := startMember(t, addr, group, topic, "m1", l)
	startMember(t, addr, group, topic, "m2", l)
	adm := kadm.NewClient(newClient(t, addr))
	stableWith(t, adm, group, topic, 4, "m1", "m2")
	produceSpread(t, addr, topic, "a", 200)
	waitFor(t, 20*time.Second, "records before the restart", func() bool { return l.total() >= 200 })
	member, generation := m1.client.GroupMetadata()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2, err := restartOn(t, dir, addr, groupProps())
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { b2.Close() })
	produceSpread(t, addr, topic, "b", 200)
	waitFor(t, 30*time.Second, "records after the restart", func() bool { return l.total() >= 400 })
	stableWith(t, adm, group, topic, 4, "m1", "m2")
	if m, g := m1.client.GroupMetadata(); m != member || g != generation {
		t.Fatalf("member went from %s generation %d to %s generation %d across the restart", member, generation, m, g)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, n := range l.seen {
		if n != 1 {
			t.Fatalf("record %s consumed %d times", k, n)
		}
	}
}
