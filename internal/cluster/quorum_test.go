package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/strata-io/strata/internal/cluster/records"
)

// The quorum tests run real raft nodes over TCP on 127.0.0.1 with raft's
// default timeouts, and wait on observable state with deadlines generous
// enough for a loaded two-core machine.
const quorumWait = 60 * time.Second

type qnode struct {
	id   int32
	dir  string
	addr string
	s    *Store // nil while stopped
}

type qcluster struct {
	t      *testing.T
	nodes  []*qnode
	voters []Voter
	tune   func(*QuorumOptions)
}

// startQuorum starts n quorum-mode stores in one process. Every listener
// is bound first, on a free port, so that each node starts knowing all
// voters' addresses.
func startQuorum(t *testing.T, n int, tune func(*QuorumOptions)) *qcluster {
	t.Helper()
	c := &qcluster{t: t, tune: tune}
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		nd := &qnode{id: int32(i + 1), dir: filepath.Join(t.TempDir(), "__raft"), addr: ln.Addr().String()}
		c.nodes = append(c.nodes, nd)
		c.voters = append(c.voters, Voter{ID: nd.id, Addr: nd.addr})
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.s != nil {
				nd.s.Close()
			}
		}
	})
	for i, nd := range c.nodes {
		c.open(nd, lns[i])
	}
	return c
}

func (c *qcluster) open(nd *qnode, ln net.Listener) {
	c.t.Helper()
	q := QuorumOptions{Dir: nd.dir, Voters: c.voters, Listener: ln}
	if c.tune != nil {
		c.tune(&q)
	}
	s, err := OpenQuorum(Options{NodeID: nd.id}, q)
	if err != nil {
		c.t.Fatal(err)
	}
	nd.s = s
}

func (c *qcluster) stop(nd *qnode) {
	c.t.Helper()
	if err := nd.s.Close(); err != nil {
		c.t.Fatalf("close node %d: %v", nd.id, err)
	}
	nd.s = nil
}

// restart starts a stopped node again on its old address and raft state.
func (c *qcluster) restart(nd *qnode) {
	c.t.Helper()
	var ln net.Listener
	waitFor(c.t, fmt.Sprintf("listen again on %s", nd.addr), func() bool {
		var err error
		ln, err = net.Listen("tcp", nd.addr)
		return err == nil
	})
	c.open(nd, ln)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(quorumWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting to %s", quorumWait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader waits until one running node leads and every running node
// names it as the controller.
func (c *qcluster) leader() *qnode {
	c.t.Helper()
	var l *qnode
	waitFor(c.t, "elect a leader every node knows", func() bool {
		l = nil
		for _, nd := range c.nodes {
			if nd.s != nil && nd.s.c.(*quorum).raft.State() == raft.Leader {
				l = nd
			}
		}
		if l == nil {
			return false
		}
		for _, nd := range c.nodes {
			if nd.s != nil && nd.s.ControllerID() != l.id {
				return false
			}
		}
		return true
	})
	return l
}

// converged waits until every running node's image equals want's.
func (c *qcluster) converged(want *Image) {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.s == nil {
			continue
		}
		waitFor(c.t, fmt.Sprintf("node %d applying up to %d", nd.id, want.EndOffset), func() bool {
			return nd.s.Image().EndOffset >= want.EndOffset
		})
		sameImage(c.t, nd.s.Image(), want)
	}
}

func TestQuorumReplicatesChanges(t *testing.T) {
	c := startQuorum(t, 3, nil)
	l := c.leader()
	top, err := l.s.CreateTopic("orders", 3, map[string]string{"retention.ms": "1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.AlterConfigs("orders", map[string]*string{"cleanup.policy": strp("delete")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.SetPartitions("orders", 5, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.CreateTopic("orders", 1, nil, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	pid, err := l.s.AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	im := l.s.Image()
	if im.EndOffset <= 0 || im.Topic("orders").Partitions != 5 || im.ProducerIDsEnd != pid+ProducerIDBlock {
		t.Fatalf("leader image: %s", dump(im))
	}
	c.converged(im)
	for _, nd := range c.nodes {
		if st := nd.s.Status(); st.ControllerID != l.id || st.Term < 1 || st.Offset != im.EndOffset || st.AppliedIndex < uint64(st.Offset) {
			t.Errorf("node %d: status %+v, want controller %d, a term and offset %d applied", nd.id, st, l.id, im.EndOffset)
		}
		if got := nd.s.Image().Topic("orders"); got.ID != top.ID {
			t.Errorf("node %d: topic id %s, want %s", nd.id, got.ID, top.ID)
		}
		if nd == l {
			continue
		}
		// A follower refuses changes, naming the leader.
		_, err := nd.s.CreateTopic("other", 1, nil, nil)
		var nc *NotControllerError
		if !errors.As(err, &nc) || nc.LeaderID != l.id || !errors.Is(err, ErrNotController) {
			t.Errorf("node %d: create on a follower: %v, want NotControllerError naming %d", nd.id, err, l.id)
		}
		if _, err := nd.s.AllocateProducerID(); !errors.Is(err, ErrNotController) {
			t.Errorf("node %d: producer id on a follower: %v", nd.id, err)
		}
	}
	if _, err := l.s.DeleteTopic("orders"); err != nil {
		t.Fatal(err)
	}
	c.converged(l.s.Image())
	for _, nd := range c.nodes {
		if nd.s.Image().Topic("orders") != nil {
			t.Errorf("node %d still has the deleted topic", nd.id)
		}
	}
}

func TestQuorumFailover(t *testing.T) {
	c := startQuorum(t, 3, nil)
	old := c.leader()
	first, err := old.s.CreateTopic("before", 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := old.s.AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	c.converged(old.s.Image())

	c.stop(old)
	l := c.leader()
	if l == old {
		t.Fatal("the stopped node leads")
	}
	if got := l.s.Image().Topic("before"); got == nil || got.ID != first.ID {
		t.Fatalf("new leader lost the committed topic: %v", got)
	}
	second, err := l.s.CreateTopic("after", 1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The new leader reserves producer ids after the old leader's block.
	pid2, err := l.s.AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	if pid2 < pid+ProducerIDBlock {
		t.Fatalf("new leader handed out producer id %d inside the old leader's block from %d", pid2, pid)
	}
	c.converged(l.s.Image())

	// The old leader rejoins as a follower and catches up.
	c.restart(old)
	c.converged(l.s.Image())
	im := old.s.Image()
	if im.Topic("before").ID != first.ID || im.Topic("after").ID != second.ID {
		t.Fatalf("restarted node: %s", dump(im))
	}
	if _, err := old.s.CreateTopic("x", 1, nil, nil); !errors.Is(err, ErrNotController) && c.leader() != old {
		t.Fatalf("restarted follower accepted a change: %v", err)
	}
}

func TestQuorumCatchUpBySnapshot(t *testing.T) {
	c := startQuorum(t, 3, func(q *QuorumOptions) {
		q.SnapshotThreshold = 4
		q.SnapshotInterval = 50 * time.Millisecond
		q.TrailingLogs = 2
	})
	l := c.leader()
	var behind *qnode
	for _, nd := range c.nodes {
		if nd != l {
			behind = nd
		}
	}
	if _, err := l.s.CreateTopic("t0", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.converged(l.s.Image())
	last := behind.s.c.(*quorum).raft.LastIndex()
	c.stop(behind)
	for i := 1; i <= 20; i++ {
		if _, err := l.s.CreateTopic(fmt.Sprintf("t%d", i), 1, map[string]string{"i": fmt.Sprint(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The leader snapshots and truncates its log past what the stopped
	// node holds, so only a snapshot can bring it up to date.
	lq := l.s.c.(*quorum)
	waitFor(t, "truncate the leader's log past the stopped node", func() bool {
		first, err := lq.store.FirstIndex()
		return err == nil && first > last+1
	})
	c.restart(behind)
	c.converged(l.s.Image())
	if got := len(behind.s.Image().Topics); got != 21 {
		t.Fatalf("caught-up node has %d topics, want 21", got)
	}
	// It holds the leader's snapshot, past everything it had.
	snap, err := strconv.ParseUint(behind.s.c.(*quorum).raft.Stats()["last_snapshot_index"], 10, 64)
	if err != nil || snap <= last {
		t.Fatalf("caught-up node's last snapshot index %d (%v), want past %d", snap, err, last)
	}
	// And it keeps following after the snapshot.
	if _, err := l.s.CreateTopic("later", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.converged(l.s.Image())
}

// A raft snapshot restores the image it was taken of, end offset included.
func TestRaftSnapshotRoundTrip(t *testing.T) {
	empty := emptyImage()
	empty.EndOffset = 7
	full := applyAll(t, emptyImage(), 42,
		&records.RegisterBroker{BrokerID: 1, BrokerEpoch: 3, IncarnationID: tid, EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "a", Port: 9092}}},
		&records.Topic{Name: "t", TopicID: tid},
		&records.Partition{PartitionID: 0, TopicID: tid, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1},
		&records.Config{ResourceType: records.ResourceTopic, ResourceName: "t", Name: "retention.ms", Value: strp("1")},
		&records.ProducerIDs{BrokerID: 1, NextProducerID: 3000},
	)
	for _, im := range []*Image{empty, full} {
		sink := &memSink{}
		if err := (&fsmSnapshot{im: im}).Persist(sink); err != nil {
			t.Fatal(err)
		}
		got, err := decodeRaftSnapshot(sink.data)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, got, im)
	}
	if _, err := decodeRaftSnapshot([]byte{1, 2}); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("short snapshot: %v", err)
	}
}

type memSink struct {
	data []byte
}

func (s *memSink) Write(p []byte) (int, error) { s.data = append(s.data, p...); return len(p), nil }
func (s *memSink) Close() error                { return nil }
func (s *memSink) Cancel() error               { return errors.New("cancelled") }
func (s *memSink) ID() string                  { return "mem" }

// The FSM skips, on every node alike, a batch that does not fit the image
// (moving only its end offset), and stops at an entry it cannot decode
// rather than diverge from the nodes that can.
func TestFSMApplyRefusals(t *testing.T) {
	image := newImageCell()
	image.Store(emptyImage())
	f := &fsm{image: image, logger: slog.New(slog.DiscardHandler)}
	entry := func(index uint64, recs ...records.Record) *raft.Log {
		b, err := encodeBatch(recs)
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
	}
	if im, ok := f.Apply(entry(3, &records.Topic{Name: "t", TopicID: tid})).(*Image); !ok || im.Topic("t") == nil || im.EndOffset != 3 {
		t.Fatalf("first entry: %v", im)
	}
	// A partition of an unknown topic: the whole batch is skipped.
	resp := f.Apply(entry(4,
		&records.Topic{Name: "u", TopicID: records.UUID{5}},
		&records.Partition{PartitionID: 0, TopicID: records.UUID{6}, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1}))
	if err, _ := resp.(error); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("inconsistent batch: %v", resp)
	}
	if im := image.Load(); im.Topic("u") != nil || im.EndOffset != 4 || im.Topic("t") == nil {
		t.Fatalf("after a skipped batch: %s", dump(im))
	}
	// Bytes that are no batch: the image stops at index 4.
	if err, _ := f.Apply(&raft.Log{Index: 5, Type: raft.LogCommand, Data: []byte("junk")}).(error); err == nil {
		t.Fatal("junk entry applied")
	}
	if err, _ := f.Apply(entry(6, &records.Topic{Name: "v", TopicID: records.UUID{7}})).(error); err == nil || f.failed() == nil {
		t.Fatal("an entry after a fault applied")
	}
	if im := image.Load(); im.EndOffset != 4 || im.Topic("v") != nil {
		t.Fatalf("after a fault: %s", dump(im))
	}
}
