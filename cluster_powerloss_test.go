package strata_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/fs"
)

// TestClusterPowerLoss: RF 3, min.insync.replicas=2 and acks=all, while an
// idempotent producer sends, every node loses its power (one after the
// other, none coming back before all are down); the cluster restarts on
// what each node's disk kept. With flush.messages=1 every acknowledged
// record is there, once: each in-sync replica counts a record as caught
// up only once it fsynced it, so a record acks=all acknowledged is on
// the disk of every member of the ISR. In the default page-cache mode the
// same power loss loses acknowledged records, which Kafka's documentation
// says too: the check can tell.
//
// In page-cache mode a power loss of one node, a partition's leader,
// loses nothing acknowledged: the records are in the page cache of the
// other two, and the node that comes back with a shorter log must not
// lead, nor be counted in the ISR, before it has fetched them again.
//
// A power loss is simulated by internal/fs's crashable FS, which the
// nodes write their log dirs through: what it kept is what was fsynced
// (strict), or that plus a torn part of what was not. raft's own files
// (__raft, bbolt and raft's snapshot store, which fsync every write) are
// taken as they are.
func TestClusterPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fsync    bool
		torn     bool // else strict: nothing unsynced survives
		everyone bool // else the leader of the busiest partition alone
		seed     uint64
	}{
		{"every node with flush.messages=1", true, false, true, 1},
		{"every node with flush.messages=1 and torn writes", true, true, true, 2},
		{"every node in page-cache mode loses acknowledged records", false, false, true, 3},
		{"the leader alone in page-cache mode", false, false, false, 4},
		{"the leader alone in page-cache mode with torn writes", false, true, false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lost, total := clusterPowerLoss(t, tc.fsync, tc.torn, tc.everyone, tc.seed)
			switch {
			case (tc.fsync || !tc.everyone) && lost > 0:
				t.Fatalf("%d of %d acknowledged records lost", lost, total)
			case !tc.fsync && tc.everyone && lost == 0:
				t.Fatalf("page-cache mode kept all %d acknowledged records across a power loss of every node: the simulation lost nothing", total)
			}
			t.Logf("%d of %d acknowledged records lost", lost, total)
		})
	}
}

// clusterPowerLoss runs one power loss and returns how many acknowledged
// records are missing after it, of how many. It fails t on a duplicate.
func clusterPowerLoss(t *testing.T, fsync, torn, everyone bool, seed uint64) (lost, total int) {
	const topic, partitions = "pl", 3
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "250",
		"broker.session.timeout.ms":    "3000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	configs := map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}
	if fsync {
		configs["flush.messages"] = kadm.StringPtr("1")
	}
	createReplicated(t, ctx, c, topic, partitions, configs)

	// From here on the nodes write through crashable file systems; what
	// their disks hold now counts as durable.
	crashFS := map[int32]*fs.CrashFS{}
	restartAll(t, c, func(n *strata.Node) fs.FS {
		cfs, err := fs.NewCrashFS(n.Dir())
		if err != nil {
			t.Fatal(err)
		}
		crashFS[n.ID()] = cfs
		return cfs
	})

	p := newClient(t, c.Bootstrap()[0], kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
		kgo.AlwaysRetryEOF(), kgo.RecordDeliveryTimeout(30*time.Second))
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		// perPartition counts acknowledgements by partition: the keys
		// need not reach every partition.
		perPartition = map[int32]int{}
		counted      atomic.Bool // acknowledgements still count
		stop         = make(chan struct{})
		sent         = make(chan struct{})
	)
	counted.Store(true)
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("v%07d", i)
			p.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%16), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil && counted.Load() {
					mu.Lock()
					acked[v] = true
					perPartition[r.Partition]++
					mu.Unlock()
				}
			})
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // a steady stream, not one burst
			}
		}
	}()
	waitAcked := func(n int) {
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%d records acknowledged before the deadline, waiting for %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(2000)

	rng := rand.New(rand.NewPCG(seed, seed))
	var tear *rand.Rand
	if torn {
		tear = rng
	}
	adm := kadm.NewClient(newClient(t, c.Bootstrap()[0]))
	if everyone {
		// The power goes. Acknowledgements from now on do not count:
		// the record might have been acknowledged after its leader's
		// power went.
		counted.Store(false)
		nodes := c.Nodes()
		rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
		for _, n := range nodes {
			n.Kill()
			var before, after []int64
			for p := range partitions {
				before = append(before, segmentBytes(t, n.Dir(), fmt.Sprintf("%s-%d", topic, p)))
			}
			powerLoss(t, n.Dir(), crashFS[n.ID()], tear)
			for p := range partitions {
				after = append(after, segmentBytes(t, n.Dir(), fmt.Sprintf("%s-%d", topic, p)))
			}
			t.Logf("node %d: segment bytes by partition %v before, %v after", n.ID(), before, after)
		}
		close(stop)
		<-sent
		p.Close()
		t.Logf("power lost on nodes %d, %d, %d", nodes[0].ID(), nodes[1].ID(), nodes[2].ID())
		restartAll(t, c, func(n *strata.Node) fs.FS { return fs.OS })
	} else {
		// The leader of the busiest partition loses its power and comes back at
		// once, before the controller's session timeout fences it; the
		// others keep theirs, and the producer goes on.
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		var busiest int32
		for p, n := range perPartition {
			if n > perPartition[busiest] {
				busiest = p
			}
		}
		mu.Unlock()
		part := fmt.Sprintf("%s-%d", topic, busiest)
		victim := c.Node(md.Topics[topic].Partitions[busiest].Leader)
		victim.Kill()
		before := segmentBytes(t, victim.Dir(), part)
		powerLoss(t, victim.Dir(), crashFS[victim.ID()], tear)
		after := segmentBytes(t, victim.Dir(), part)
		if after >= before {
			t.Fatalf("the power loss kept all %d bytes of the victim's %s: it tests nothing", before, part)
		}
		if err := victim.SetFS(fs.OS); err != nil {
			t.Fatal(err)
		}
		if err := victim.Restart(); err != nil {
			t.Fatal(err)
		}
		t.Logf("power lost on node %d, the leader of %s: its log there kept %d of %d bytes", victim.ID(), part, after, before)
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		waitAcked(n + 2000)
		close(stop)
		<-sent
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	mu.Lock()
	total = len(acked)
	mu.Unlock()

	// Read until every acknowledged record is back or nothing new has
	// come for a while (the high watermarks reach the log ends again only
	// as the followers fetch after the restart), then on to the end
	// offsets of that moment, to see any duplicate.
	cons := newClient(t, c.Bootstrap()[0], kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond))
	seen := map[string]bool{}
	next := map[int32]int64{} // by partition: the offset after the last record read
	missing := func() (n int) {
		for v := range acked {
			if !seen[v] {
				n++
			}
		}
		return n
	}
	poll := func() {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		fetches := cons.PollFetches(pctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records, %d acknowledged ones missing, at the deadline", len(seen), missing())
		}
		fetches.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v] {
				t.Errorf("%s at partition %d offset %d: a duplicate", v, r.Partition, r.Offset)
			}
			seen[v] = true
			next[r.Partition] = r.Offset + 1
		})
	}
	for last, lastSeen := time.Now(), 0; missing() > 0 && time.Since(last) < 15*time.Second; {
		poll()
		if len(seen) > lastSeen {
			last, lastSeen = time.Now(), len(seen)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	for done := false; !done; {
		done = true
		ends.Each(func(o kadm.ListedOffset) { done = done && next[o.Partition] >= o.Offset })
		if !done {
			poll()
		}
	}
	if fsync || !everyone {
		// Nothing was lost: every replica of a partition that has
		// records holds them, byte for byte.
		deadline := time.Now().Add(2 * time.Minute)
		for p := range next {
			waitReplicaEqual(t, c, topic, p, deadline)
		}
	}
	for v := range acked {
		if !seen[v] {
			lost++
			if fsync && lost <= 10 {
				t.Errorf("acknowledged %s is gone", v)
			}
		}
	}
	return lost, total
}

// restartAll kills every node, gives it the file system fsFor returns,
// and restarts them all at once (a quorum needs a majority).
func restartAll(t *testing.T, c *strata.Cluster, fsFor func(n *strata.Node) fs.FS) {
	t.Helper()
	for _, n := range c.Nodes() {
		n.Kill()
		if err := n.SetFS(fsFor(n)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(c.Nodes()))
	for _, n := range c.Nodes() {
		go func() { errs <- n.Restart() }()
	}
	for range c.Nodes() {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// powerLoss replaces a stopped node's data dir with what its disk holds
// after a power loss: what cfs saw fsynced (plus torn unsynced writes,
// with tear), and raft's files as they are (they do not go through cfs).
func powerLoss(t *testing.T, dir string, cfs *fs.CrashFS, tear *rand.Rand) {
	t.Helper()
	after := dir + ".after-power-loss"
	if _, err := cfs.CrashClone(after, tear); err != nil {
		t.Fatal(err)
	}
	raft := filepath.Join(after, strata.RaftDir)
	if err := os.RemoveAll(raft); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(raft, os.DirFS(filepath.Join(dir, strata.RaftDir))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(after, dir); err != nil {
		t.Fatal(err)
	}
}

// segmentBytes sums the sizes of a partition directory's segment files.
func segmentBytes(t *testing.T, dir, partition string) int64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, partition, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}
