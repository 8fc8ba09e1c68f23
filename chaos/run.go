package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// group runs goroutines and joins their errors; errgroup without the
// cancellation (and without a new module dependency).
type group struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

// Config is one run: a cluster (one node by default), a workload, a fault
// plan.
type Config struct {
	Bin      string        // strata binary (see Build)
	Dir      string        // log dir (a node<i> dir in it per node of a cluster); a fresh temp dir when empty
	Seed     uint64        // reproduces the fault plan and the producers' keys
	Duration time.Duration // how long the producers send and the faults run
	Nemeses  []Nemesis
	Schedule Schedule
	Sets     []string // extra broker properties, name=value

	// Nodes is how many `strata serve` processes form the cluster (1: a
	// plain broker, as the suite always ran). RF and MinISR are the
	// topic's replication factor and min.insync.replicas (0: 1 and the
	// broker's default).
	Nodes            int
	RF               int
	MinISR           int
	Victims          []string // victim rules drawn per fault (VictimAny, ...); none: any node
	NetNS            bool     // run the nodes in network namespaces even without a network nemesis
	SkipReplicaCheck bool     // do not stop the nodes and compare replicas at the end
	// DiskSize is each node's tmpfs when the mix has diskfull (0: 256 MiB).
	// What the nodes wrote there is gone after the run.
	DiskSize int64
	// NodeLogs, when set, is a dir that gets each node's whole output
	// (node<i>.log, every restart appended).
	NodeLogs string

	Partitions, Producers, Keys, Rate, MaxRecords int
	Assigned, Grouped                             int
	// Txn, when positive, makes the producers transactional with Txn
	// records a transaction (Workload.Txn) and every reader read_committed.
	Txn int

	Logf func(format string, args ...any) // progress; nil for silence
}

// DefaultSchedule holds faults for 1-5 s with 2-6 s of quiet between them:
// long enough that clients time out, retry and reconnect, short enough for
// many faults in a minute.
var DefaultSchedule = Schedule{QuietMin: 2 * time.Second, QuietMax: 6 * time.Second, HoldMin: time.Second, HoldMax: 5 * time.Second}

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Partitions, 8)
	def(&c.Nodes, 1)
	def(&c.RF, 1)
	def(&c.Producers, 3)
	// 256 keys: murmur2 (Kafka's key partitioner) maps k0..k63 to only 7 of
	// 8 partitions, leaving one untested; 256 cover 6 or 8 partitions.
	def(&c.Keys, 256)
	def(&c.Rate, 100)
	def(&c.MaxRecords, 1<<30)
	if c.DiskSize == 0 {
		c.DiskSize = 256 << 20
	}
	if c.Schedule == (Schedule{}) {
		c.Schedule = DefaultSchedule
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// diskSize is the disks' size for the history, 0 without disks.
func diskSize(d *Disks) int64 {
	if d == nil {
		return 0
	}
	return d.Size
}

// Build compiles cmd/strata into dir and returns the binary's path. It runs
// `go build` on the module's package path, so it works from any directory
// inside the module.
func Build(dir string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("chaos: go is not on PATH: %w", err)
	}
	bin := filepath.Join(dir, "strata")
	cmd := exec.Command(gobin, "build", "-buildvcs=false", "-o", bin, "github.com/strata-io/strata/cmd/strata")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build cmd/strata: %v\n%s", err, out)
	}
	return bin, nil
}

// Run starts the cluster, runs the workload under the fault plan, heals,
// does the final read, stops the nodes and compares their replicas, and
// checks the history. It returns the history even when it fails, so that
// a failing run can be saved and replayed. An error is a harness failure
// or a broker that crashed or would not restart; anomalies in the data are
// in the Result.
func Run(ctx context.Context, c Config) (*Result, []Event, error) {
	c.defaults()
	h := NewHistory()
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "strata-chaos-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(d)
		c.Dir = d
	}
	// Network nemeses need namespaces, and disk full a tmpfs per node:
	// without root, ip or iptables, or when the mount fails, they are
	// dropped from the mix, loudly, before the plan is drawn (so the plan
	// is what runs).
	wantLab := c.NetNS
	var disks *Disks
	var diskErr error
	for _, m := range c.Nemeses {
		if needsDisks(m) && disks == nil && diskErr == nil {
			dirs := make([]string, c.Nodes)
			for i := range dirs {
				dirs[i] = NodeDir(c.Dir, c.Nodes, i)
			}
			if disks, diskErr = MountDisks(dirs, c.DiskSize); diskErr == nil {
				// Before the temp dir's removal (defers run last first);
				// the cluster's Close unmounts them too.
				defer disks.Close()
			}
		}
	}
	var kept []string
	var ms []Nemesis
	skipped := map[error][]string{}
	var skipErrs []error
	labErr := LabAvailable()
	for _, m := range c.Nemeses {
		var err error
		if needsLab(m) {
			err = labErr
		} else if needsDisks(m) {
			err = diskErr
		}
		if err != nil {
			if skipped[err] == nil {
				skipErrs = append(skipErrs, err)
			}
			skipped[err] = append(skipped[err], m.Name())
			continue
		}
		wantLab = wantLab || needsLab(m)
		ms = append(ms, m)
		kept = append(kept, m.Name())
	}
	for _, err := range skipErrs {
		msg := fmt.Sprintf("skipping nemeses %s: %v", strings.Join(skipped[err], ","), err)
		c.Logf("%s", msg)
		h.Add(Event{Kind: KindInfo, Proc: "harness", Part: -1, Off: -1, Err: msg})
	}
	if wantLab && labErr != nil {
		return nil, h.Events(), labErr
	}
	plan := c.Schedule.PlanVictims(c.Seed, c.Duration, kept, c.Victims)
	h.Add(Event{Kind: KindStart, Part: -1, Off: -1, Info: fmt.Sprintf("seed=%d duration=%v nemeses=%s victims=%s nodes=%d rf=%d min.insync.replicas=%d netns=%v partitions=%d producers=%d txn=%d keys=%d rate=%d assigned=%d grouped=%d sets=%s disk=%d faults=%d",
		c.Seed, c.Duration, strings.Join(kept, ","), strings.Join(c.Victims, ","), c.Nodes, c.RF, c.MinISR, wantLab, c.Partitions, c.Producers, c.Txn, c.Keys, c.Rate, c.Assigned, c.Grouped, strings.Join(c.Sets, ","), diskSize(disks), len(plan))})
	for _, st := range plan {
		h.Add(Event{Kind: KindInfo, Proc: "nemesis", Part: -1, Off: -1, Info: "plan " + st.String()})
	}

	if c.NodeLogs != "" {
		if err := os.MkdirAll(c.NodeLogs, 0o755); err != nil {
			return nil, h.Events(), err
		}
	}
	var lab *Lab
	if wantLab {
		var err error
		if lab, err = NewLab(c.Nodes); err != nil {
			return nil, h.Events(), err
		}
	}
	sets := []string{
		// A group forms at once instead of after Kafka's 3 s delay.
		"group.initial.rebalance.delay.ms=0",
		"offsets.topic.num.partitions=4",
	}
	if c.Nodes > 1 {
		// Fence a dead or cut-off broker within seconds instead of
		// Kafka's 9 s, with room for a stall on a busy machine (the
		// values cluster_process_test.go uses).
		sets = append(sets, "broker.heartbeat.interval.ms=1000", "broker.session.timeout.ms=6000",
			fmt.Sprintf("offsets.topic.replication.factor=%d", min(c.RF, c.Nodes)))
	}
	cl, err := NewCluster(ClusterConfig{Bin: c.Bin, Dir: c.Dir, Nodes: c.Nodes, Sets: append(sets, c.Sets...), Lab: lab, Disks: disks, LogDir: c.NodeLogs, Topic: "chaos"})
	if err != nil {
		if lab != nil {
			lab.Close()
		}
		return nil, h.Events(), err
	}
	defer cl.Close()
	if err := cl.Start(ctx); err != nil {
		return nil, h.Events(), err
	}
	c.Logf("%d node(s) on %s, data in %s; %d faults planned", c.Nodes, strings.Join(cl.Addrs(), ","), c.Dir, len(plan))

	w := &Workload{Addrs: cl.Addrs(), Topic: "chaos", Group: "chaos", Partitions: c.Partitions, RF: c.RF, MinISR: c.MinISR,
		Producers: c.Producers, Keys: c.Keys, Rate: c.Rate, MaxRecords: c.MaxRecords,
		Assigned: c.Assigned, Grouped: c.Grouped, Seed: c.Seed, Txn: c.Txn, H: h}
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = w.CreateTopic(tctx)
	cancel()
	if errors.Is(err, kerr.InvalidReplicationFactor) {
		// Refused by design (no replication yet, or rf above nodes): the
		// nodes' logs would only bury the reason.
		return nil, h.Events(), err
	}
	if err != nil {
		return nil, h.Events(), fmt.Errorf("%w\n%s", err, cl.Logs())
	}

	// Consumers run until the final read is about to start.
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var consumers group
	for i := 0; i < c.Assigned; i++ {
		consumers.Go(func() error { return w.Consume(cctx, fmt.Sprintf("a%d", i), false) })
	}
	for i := 0; i < c.Grouped; i++ {
		consumers.Go(func() error { return w.Consume(cctx, fmt.Sprintf("g%d", i), true) })
	}

	start := time.Now()
	// Producers send until the duration has passed and every planned fault
	// has been healed: on a busy machine restarts run late and push later
	// faults past the duration, and cutting the plan short would make a run
	// test less than its seed says. Only ctx (Ctrl-C) cuts it short.
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	var nemErr error
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		nemErr = RunPlan(ctx, start, plan, ms, cl, h)
	}()
	var producers group
	for i := 0; i < c.Producers; i++ {
		// Flush is bounded by the delivery timeout of the records.
		producers.Go(func() error { return w.Produce(wctx, i, 3*time.Minute) })
	}
	select {
	case <-time.After(c.Duration):
	case <-ctx.Done():
	}
	<-nemDone
	stopWorkload()
	// The measured window (throughput, unavailability) ends with sending,
	// not with the flush that follows.
	h.Add(Event{Kind: KindStop, Part: -1, Off: -1})
	c.Logf("send window over after %v; flushing", time.Since(start).Round(time.Millisecond))
	var errs []error
	if nemErr != nil {
		errs = append(errs, nemErr)
	}
	// Whatever the plan did, the final read needs running brokers.
	for i, n := range cl.Nodes() {
		if dead, out := n.Exited(); dead {
			errs = append(errs, fmt.Errorf("chaos: node %d exited on its own: %s", i+1, out))
			n.Kill()
		}
	}
	if err := cl.Start(context.Background()); err != nil {
		errs = append(errs, err)
		return nil, h.Events(), errors.Join(errs...)
	}
	if err := producers.Wait(); err != nil {
		// A flush that times out leaves indeterminate records, which the
		// checker allows; it is a harness problem only if nothing was acked.
		h.Add(Event{Kind: KindInfo, Proc: "harness", Part: -1, Off: -1, Err: err.Error()})
		c.Logf("%v", err)
	}
	// Let the consumers catch up for a moment, so their polls cover the
	// tail that the producers flushed.
	time.Sleep(2 * time.Second)
	stopConsumers()
	if err := consumers.Wait(); err != nil {
		errs = append(errs, err)
	}
	c.Logf("final read")
	// Not derived from ctx: a run ended early (Ctrl-C) is still read and
	// checked.
	fctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	err = w.FinalRead(fctx)
	cancel()
	if err != nil {
		errs = append(errs, fmt.Errorf("%w\n%s", err, cl.Logs()))
	}
	for i, n := range cl.Nodes() {
		if dead, out := n.Exited(); dead {
			errs = append(errs, fmt.Errorf("chaos: node %d exited on its own: %s", i+1, out))
		}
	}
	if !c.SkipReplicaCheck {
		// Followers finish fetching what the final read saw, then every
		// node stops cleanly, writing its checkpoints, and the replicas
		// on disk are compared.
		if c.RF > 1 {
			time.Sleep(3 * time.Second)
		}
		c.Logf("stopping the nodes to compare replicas")
		if err := cl.Stop(time.Minute); err != nil {
			errs = append(errs, err)
		}
		dirs := make([]string, len(cl.Nodes()))
		for i, n := range cl.Nodes() {
			dirs[i] = n.Dir
		}
		for _, e := range CompareReplicas(dirs, "chaos", c.Partitions) {
			h.Add(e)
		}
	}
	events := h.Events()
	return Check(events), events, errors.Join(errs...)
}
