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
// A power loss is simulated by internal/fs's crashable FS, which the
// nodes write their log dirs through: what it kept is what was fsynced
// (strict), or that plus a torn part of what was not. raft's own files
// (__raft, bbolt and raft's snapshot store, which fsync every write) are
// taken as they are.
func TestClusterPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fsync bool
		torn  bool // else strict: nothing unsynced survives
		seed  uint64
	}{
		{"flush.messages=1", true, false, 1},
		{"flush.messages=1 with torn writes", true, true, 2},
		{"page cache loses acknowledged records", false, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lost, total := clusterPowerLoss(t, tc.fsync, tc.torn, tc.seed)
			switch {
			case tc.fsync && lost > 0:
				t.Fatalf("%d of %d acknowledged records lost", lost, total)
			case !tc.fsync && lost == 0:
				t.Fatalf("page-cache mode kept all %d acknowledged records across a power loss of every node: the simulation lost nothing", total)
			}
			t.Logf("%d of %d acknowledged records lost", lost, total)
		})
	}
}

// clusterPowerLoss runs one power loss and returns how many acknowledged
// records are missing after it, of how many. It fails t on a duplicate.
func clusterPowerLoss(t *testing.T, fsync, torn bool, seed uint64) (lost, total int) {
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
		mu      sync.Mutex
		acked   = map[string]bool{}
		counted atomic.Bool // acknowledgements still count
		stop    = make(chan struct{})
		sent    = make(chan struct{})
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
			p.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%16), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err == nil && counted.Load() {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			})
			if i%20 == 0 {
				time.Sleep(time.Millisecond) // a steady stream, not one burst
			}
		}
	}()
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 2000 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d records acknowledged before the deadline", n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The power goes. Acknowledgements from now on do not count: the
	// record might have been acknowledged after its leader's power went.
	counted.Store(false)
	rng := rand.New(rand.NewPCG(seed, seed))
	nodes := c.Nodes()
	rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	for _, n := range nodes {
		n.Kill()
		var tear *rand.Rand
		if torn {
			tear = rng
		}
		powerLoss(t, n.Dir(), crashFS[n.ID()], tear)
	}
	close(stop)
	<-sent
	p.Close()
	mu.Lock()
	total = len(acked)
	mu.Unlock()
	t.Logf("power lost on nodes %d, %d, %d after %d acknowledged records", nodes[0].ID(), nodes[1].ID(), nodes[2].ID(), total)

	restartAll(t, c, func(n *strata.Node) fs.FS { return fs.OS })
	adm := kadm.NewClient(newClient(t, c.Bootstrap()[0]))
	var ends kadm.ListedOffsets
	for {
		// Every partition has a leader again and answers its end.
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil && len(ends[topic]) == partitions {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("partitions without a leader after the restart: %v %v", err, ends.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cons := newClient(t, c.Bootstrap()[0], kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for read := int64(0); read < want; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of the %d records the partitions hold", read, want)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			read++
			v := string(r.Value)
			if seen[v] {
				t.Errorf("%s at partition %d offset %d: a duplicate", v, r.Partition, r.Offset)
			}
			seen[v] = true
		})
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
