package strata_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
)

// startCluster starts a 3-node embedded cluster on free ports with raft's
// default timeouts (1 s heartbeat and election), which a shared 2-core
// machine keeps without spurious elections.
func startCluster(t *testing.T) *strata.Cluster {
	t.Helper()
	begin := time.Now()
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Logf("3 nodes started in %v", time.Since(begin).Round(time.Millisecond))
	return c
}

// agreedController returns the controller every one of ids sees, -1 if
// they do not all see the same one or it is not among them.
func agreedController(c *strata.Cluster, ids ...int32) int32 {
	first := c.Node(ids[0]).Controller()
	for _, id := range ids[1:] {
		if c.Node(id).Controller() != first {
			return -1
		}
	}
	if !slices.Contains(ids, first) {
		return -1
	}
	return first
}

// waitAgreed waits until ids agree on a controller among them for which
// ok holds, and returns it.
func waitAgreed(t *testing.T, c *strata.Cluster, within time.Duration, ok func(int32) bool, ids ...int32) int32 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if id := agreedController(c, ids...); id >= 0 && ok(id) {
			return id
		}
		if time.Now().After(deadline) {
			var views []string
			for _, id := range ids {
				views = append(views, fmt.Sprintf("node %d sees %d", id, c.Node(id).Controller()))
			}
			t.Fatalf("nodes %v agree on no controller within %v: %v", ids, within, views)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func anyID(int32) bool { return true }

func others(id int32) []int32 {
	var out []int32
	for _, o := range []int32{1, 2, 3} {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// Killing the active controller's node makes the other two elect one of
// them; the killed node, restarted on its data dir, rejoins and follows.
func TestClusterControllerKillAndRestart(t *testing.T) {
	c := startCluster(t)
	if got := len(c.Bootstrap()); got != 3 {
		t.Fatalf("Bootstrap has %d addresses", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)

	// Records on the controller's node, which a kill leaves for log
	// recovery to find: a topic created at the controller is placed on
	// it.
	adm := kadm.NewClient(newClient(t, c.Node(old).Addr()))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "k"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, c.Node(old).Addr(), kgo.DefaultProduceTopic("k"))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	killed := time.Now()
	c.Node(old).Kill()
	if c.Node(old).Running() || c.Node(old).Controller() != -1 {
		t.Fatal("a killed node still runs")
	}
	if _, err := os.Stat(filepath.Join(c.Node(old).Dir(), ".kafka_cleanshutdown")); !os.IsNotExist(err) {
		t.Fatalf("a killed node left a clean-shutdown marker: %v", err)
	}
	next := waitAgreed(t, c, 10*time.Second, func(id int32) bool { return id != old }, others(old)...)
	t.Logf("controller %d killed; node %d elected after %v", old, next, time.Since(killed).Round(time.Millisecond))
	if got := c.Controller(); got != next {
		t.Fatalf("Cluster.Controller %d, nodes agree on %d", got, next)
	}

	restarted := time.Now()
	if err := c.Node(old).Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(old).Restart(); err == nil {
		t.Fatal("a running node restarted")
	}
	id := waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)
	t.Logf("node %d restarted and agrees on controller %d after %v", old, id, time.Since(restarted).Round(time.Millisecond))
	waitSameImage(t, c, 30*time.Second, 0)

	// The records are back after recovery.
	cons := newClient(t, c.Node(old).Addr(), kgo.ConsumeTopics("k"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 10; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}

	// A clean stop leaves the marker, and the node restarts from it.
	if err := c.Node(old).Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.Node(old).Dir(), ".kafka_cleanshutdown")); err != nil {
		t.Fatalf("a stopped node left no clean-shutdown marker: %v", err)
	}
	if err := c.Node(old).Restart(); err != nil {
		t.Fatal(err)
	}
	waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)
}

// waitSameImage waits until every node's metadata image has the same end
// offset, at least min.
func waitSameImage(t *testing.T, c *strata.Cluster, within time.Duration, min int64) int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var offs []int64
		for _, n := range c.Nodes() {
			st, _ := n.MetadataStatus()
			offs = append(offs, st.Offset)
		}
		if slices.Min(offs) == slices.Max(offs) && offs[0] >= min {
			return offs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("metadata images end at %v, want one offset >= %d", offs, min)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cutting the active controller off from both other nodes makes them
// elect one of them, and the cut-off node stops being controller; a
// change made meanwhile on the majority's side reaches the cut-off node
// once the network heals, and the cluster has one controller again.
func TestClusterControllerPartitionAndHeal(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)
	old, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := waitSameImage(t, c, 30*time.Second, 0)

	cut := time.Now()
	for _, o := range others(old) {
		c.Cut(old, o)
	}
	next := waitAgreed(t, c, 10*time.Second, func(id int32) bool { return id != old }, others(old)...)
	t.Logf("controller %d cut off; node %d elected after %v", old, next, time.Since(cut).Round(time.Millisecond))
	// Without a majority the old leader steps down (raft's leader lease).
	deadline := time.Now().Add(10 * time.Second)
	for c.Node(old).Controller() == old {
		if time.Now().After(deadline) {
			t.Fatalf("node %d still sees itself as controller 10 s after the cut", old)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A change on the majority's side: a topic created at the new
	// controller.
	adm := kadm.NewClient(newClient(t, c.Node(next).Addr()))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "during-cut"); err != nil {
		t.Fatal(err)
	}
	stNext, _ := c.Node(next).MetadataStatus()
	if stNext.Offset <= before {
		t.Fatalf("node %d's image ends at %d after a topic creation, %d before", next, stNext.Offset, before)
	}
	if st, _ := c.Node(old).MetadataStatus(); st.Offset >= stNext.Offset {
		t.Fatalf("the cut-off node's image reached %d across the cut", st.Offset)
	}

	healed := time.Now()
	c.HealAll()
	id := waitAgreed(t, c, 30*time.Second, anyID, 1, 2, 3)
	end := waitSameImage(t, c, 30*time.Second, stNext.Offset)
	if got, err := c.WaitController(ctx); err != nil || got != id {
		t.Fatalf("Cluster.Controller %d (%v), nodes agree on %d", got, err, id)
	}
	t.Logf("healed: all agree on controller %d and image end %d after %v", id, end, time.Since(healed).Round(time.Millisecond))
}

// A node without a controller (the other voters stopped) still stops
// promptly while an admin request it would forward waits for one: the
// forward gives up when the node stops, rather than holding the shutdown
// for its whole timeout.
func TestClusterStopWithoutQuorumWhileForwarding(t *testing.T) {
	c := startCluster(t)
	for _, id := range []int32{2, 3} {
		if err := c.Node(id).Stop(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.Node(1).Controller() >= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node 1 alone still sees controller %d", c.Node(1).Controller())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c.Node(1).Addr()))
	created := make(chan error, 1)
	go func() {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, "lonely")
		created <- err
	}()
	time.Sleep(time.Second) // the request is in node 1's forward loop
	start := time.Now()
	if err := c.Node(1).Stop(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took > 10*time.Second {
		t.Fatalf("node 1 took %v to stop with a forwarded CreateTopics waiting for a controller", took.Round(time.Millisecond))
	}
	t.Logf("node 1 stopped in %v", took.Round(time.Millisecond))
	cancel()
	<-created
}

// A node that cannot start (here its metrics port is taken) fails
// StartCluster at once: the others stop waiting for a quorum that cannot
// form instead of waiting out the start timeout.
func TestStartClusterFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+1))
	if err != nil {
		t.Skipf("port %d is in use already: %v", base+1, err)
	}
	defer taken.Close()
	begin := time.Now()
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), HTTPPort: base})
	if err == nil {
		c.Close()
		t.Fatal("a cluster started with node 2's metrics port taken")
	}
	if took := time.Since(begin); took > 30*time.Second {
		t.Fatalf("StartCluster failed after %v: the other nodes waited for the quorum", took)
	}
	t.Logf("failed in %v: %v", time.Since(begin).Round(time.Millisecond), err)
}
