package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is the Target of a run: one or more `strata serve` processes
// forming one Kafka cluster (every node a broker and a voter of the
// controller quorum, as cluster_process_test.go and docs/OPERATIONS.md
// "Running a cluster" start them). One node runs a plain broker, as the
// suite always did. With a Lab the nodes live in network namespaces of
// their own and can be cut off from each other (Cutter).
//
// Safe for concurrent use: the nemesis goroutine resolves victims and
// injects faults while the runner reads addresses.
type Cluster struct {
	nodes []*Node
	lab   *Lab   // nil: every node on 127.0.0.1, no network faults
	disks *Disks // nil: the nodes' dirs on the machine's disk, no disk full
	topic string
}

// ClusterConfig shapes NewCluster.
type ClusterConfig struct {
	Bin   string
	Dir   string // parent of the nodes' log dirs (node1, node2, ...)
	Nodes int
	Sets  []string
	Lab   *Lab   // optional: run each node in its own network namespace
	Disks *Disks // optional: each node's dir (NodeDir) on a tmpfs of its own
	// LogDir, when set, gets each node's whole output as node<i>.log.
	LogDir string
	Topic  string // the workload's topic, for leader lookups
}

// NewCluster lays out the nodes (ports, dirs, voters) without starting
// them. On 127.0.0.1 every port is found free first (bind :0, close); in
// namespaces each node has its own address and the ports are fixed.
func NewCluster(c ClusterConfig) (*Cluster, error) {
	if c.Nodes < 1 {
		c.Nodes = 1
	}
	if c.Lab != nil && len(c.Lab.Hosts) != c.Nodes {
		return nil, fmt.Errorf("chaos: lab has %d namespaces for %d nodes", len(c.Lab.Hosts), c.Nodes)
	}
	if c.Disks != nil && len(c.Disks.Dirs) != c.Nodes {
		return nil, fmt.Errorf("chaos: %d disks for %d nodes", len(c.Disks.Dirs), c.Nodes)
	}
	cl := &Cluster{lab: c.Lab, disks: c.Disks, topic: c.Topic}
	used := map[int]bool{}
	free := func() (int, error) {
		for {
			p, err := freePort()
			if err != nil {
				return 0, err
			}
			if !used[p] {
				used[p] = true
				return p, nil
			}
		}
	}
	var voters []string
	for i := 0; i < c.Nodes; i++ {
		dir := NodeDir(c.Dir, c.Nodes, i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		n := &Node{Bin: c.Bin, Dir: dir, Sets: c.Sets}
		if c.LogDir != "" {
			n.LogPath = filepath.Join(c.LogDir, fmt.Sprintf("node%d.log", i+1))
		}
		if c.Lab != nil {
			n.Host, n.NetNS = c.Lab.Hosts[i], c.Lab.NetNS[i]
			n.Port, n.CtrlPort = 9092, 9093
		}
		if c.Nodes > 1 || c.Lab != nil {
			n.ID = int32(i + 1)
			if n.Port == 0 {
				var err error
				if n.Port, err = free(); err != nil {
					return nil, err
				}
				if n.CtrlPort, err = free(); err != nil {
					return nil, err
				}
			}
			voters = append(voters, fmt.Sprintf("%d@%s", n.ID, n.CtrlAddr()))
		}
		cl.nodes = append(cl.nodes, n)
	}
	for _, n := range cl.nodes {
		n.Voters = strings.Join(voters, ",")
	}
	return cl, nil
}

// NodeDir is node i's log dir: dir itself for one node, dir/node<i+1> in
// a cluster.
func NodeDir(dir string, nodes, i int) string {
	if nodes <= 1 {
		return dir
	}
	return filepath.Join(dir, fmt.Sprintf("node%d", i+1))
}

// Nodes returns the nodes; node i has node.id i+1 in a cluster.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Addrs lists every node's Kafka listener, the clients' seed brokers.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Start starts every stopped node concurrently (a cluster node is ready
// only once a majority of the voters runs) and waits for all of them.
func (c *Cluster) Start(ctx context.Context) error {
	var g group
	for _, n := range c.nodes {
		if !n.Running() {
			g.Go(func() error { return n.Start(ctx) })
		}
	}
	return g.Wait()
}

// Close kills every node (SIGCONT first if paused) and removes the lab's
// namespaces and rules and unmounts the disks, if any.
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.Close()
	}
	if c.lab != nil {
		c.lab.Close()
	}
	if c.disks != nil {
		_ = c.disks.Close()
	}
}

// Stop shuts every node down cleanly (SIGTERM, up to wait each), so that
// the logs and checkpoints on disk are final: the replica check reads them.
func (c *Cluster) Stop(wait time.Duration) error {
	var g group
	for _, n := range c.nodes {
		g.Go(func() error { return n.Term(wait) })
	}
	return g.Wait()
}

// Logs is the last lines of every node's output, for error messages.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i, n := range c.nodes {
		fmt.Fprintf(&b, "\n--- node %d (%s) last lines:\n%s\n", i+1, n.Addr(), n.Log())
	}
	return b.String()
}

// index maps a broker id to a node index, -1 if unknown.
func (c *Cluster) index(id int32) int {
	if len(c.nodes) == 1 {
		return 0
	}
	if id < 1 || int(id) > len(c.nodes) {
		return -1
	}
	return int(id - 1)
}

// admin returns a short-lived admin client that bootstraps from every
// running, unpaused node.
func (c *Cluster) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DialTimeout(2*time.Second),
		kgo.RetryTimeout(3*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// Controller returns the index of the active controller, as Metadata
// names it (KIP-590: the broker clients see as controller is the active
// quorum controller in KRaft).
func (c *Cluster) Controller(ctx context.Context) (int, string, error) {
	if len(c.nodes) == 1 {
		return 0, "the only node", nil
	}
	adm, done, err := c.admin()
	if err != nil {
		return -1, "", err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := adm.Metadata(ctx)
	if err != nil {
		return -1, "", err
	}
	i := c.index(m.Controller)
	if i < 0 {
		return -1, "", fmt.Errorf("chaos: metadata names controller %d", m.Controller)
	}
	return i, fmt.Sprintf("active controller %d", m.Controller), nil
}

// BusiestLeader returns the index of the leader of the busiest partition
// of the workload's topic: the one with the highest end offset (the
// workload spreads keys evenly, so that is the one written most), ties to
// the lowest partition.
func (c *Cluster) BusiestLeader(ctx context.Context) (int, string, error) {
	adm, done, err := c.admin()
	if err != nil {
		return -1, "", err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// A partition whose leader is being elected fails its shard; the
	// others still say which partition is busiest.
	ends, err := adm.ListEndOffsets(ctx, c.topic)
	if err != nil && len(ends) == 0 {
		return -1, "", err
	}
	type po struct {
		p   int32
		off int64
	}
	var ps []po
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			ps = append(ps, po{o.Partition, o.Offset})
		}
	})
	if len(ps) == 0 {
		return -1, "", fmt.Errorf("chaos: no end offsets for %s: %v", c.topic, ends.Error())
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].off != ps[j].off {
			return ps[i].off > ps[j].off
		}
		return ps[i].p < ps[j].p
	})
	m, err := adm.Metadata(ctx, c.topic)
	if err != nil {
		return -1, "", err
	}
	pd, ok := m.Topics[c.topic].Partitions[ps[0].p]
	if !ok || pd.Leader < 0 {
		return -1, "", fmt.Errorf("chaos: no leader known for %s-%d", c.topic, ps[0].p)
	}
	i := c.index(pd.Leader)
	if i < 0 {
		return -1, "", fmt.Errorf("chaos: %s-%d led by unknown broker %d", c.topic, ps[0].p, pd.Leader)
	}
	return i, fmt.Sprintf("leader %d of %s-%d (end offset %d)", pd.Leader, c.topic, ps[0].p, ps[0].off), nil
}

// Cut drops every packet between node victim and the other nodes, and
// with clients also between it and the clients (the runner's namespace).
func (c *Cluster) Cut(victim int, clients bool) error {
	if c.lab == nil {
		return ErrNoLab
	}
	return c.lab.Cut(victim, clients)
}

// HealCut removes the rules of Cut.
func (c *Cluster) HealCut(victim int) error {
	if c.lab == nil {
		return ErrNoLab
	}
	return c.lab.Heal(victim)
}

// FillDisk leaves node victim's disk almost full.
func (c *Cluster) FillDisk(victim int) error {
	if c.disks == nil {
		return ErrNoDisks
	}
	return c.disks.Fill(victim)
}

// FreeDisk removes the ballast of FillDisk.
func (c *Cluster) FreeDisk(victim int) error {
	if c.disks == nil {
		return ErrNoDisks
	}
	return c.disks.Free(victim)
}

// ErrNoDisks is returned by disk faults on nodes without a tmpfs each.
var ErrNoDisks = errors.New("chaos: disk faults need each node on a tmpfs of its own (root)")

// ErrNoLab is returned by network faults on nodes that share 127.0.0.1.
var ErrNoLab = errors.New("chaos: network faults need the nodes in network namespaces (root, ip and iptables)")
