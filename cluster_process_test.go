package strata_test

// A cluster of three real `strata serve` processes, each a broker and a
// voter of the controller quorum on its own ports (chosen at run time) and
// data dir: clients bootstrap from any node, the active controller is
// SIGKILLed and replaced, a SIGSTOPped broker is fenced and comes back, and
// the whole cluster restarts with its metadata and records. The processes
// are built and run with kill_test.go's killBroker.
//
// Three brokers on a shared two-core machine are slow: every wait here is
// generous, and a failure message carries each process's last log lines
// so that a stall (CPU starvation) can be told from a fault.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// Shorter than the defaults (2 s, 9 s) to keep the test short, with
	// room for a scheduling stall of a few seconds on a busy machine.
	procHeartbeatMs      = 1000
	procSessionTimeoutMs = 6000
	procSessionTimeout   = procSessionTimeoutMs * time.Millisecond
)

// procCluster is three strata serve processes forming one cluster; node i
// is nodes[i-1]. Owned by the test goroutine.
type procCluster struct {
	t     *testing.T
	nodes []*killBroker
}

// startProcCluster builds the binary (once per test binary run; the go
// build cache makes later builds cheap) and starts n quorum nodes, with
// extra properties for every node; each node's killLog keeps the lines
// that contain a string of watch.
func startProcCluster(t *testing.T, n int, watch []string, extra ...string) *procCluster {
	t.Helper()
	bin := killBinary(t)
	c := &procCluster{t: t}
	// The voter list names every controller address before any node
	// starts, so the ports are found free first (bind :0, close).
	used := map[int]bool{}
	free := func() int {
		for {
			if p := killFreePort(t); !used[p] {
				used[p] = true
				return p
			}
		}
	}
	var voters []string
	for i := 1; i <= n; i++ {
		b := &killBroker{t: t, bin: bin, dir: t.TempDir(), port: free(), ctrlPort: free(), watch: watch}
		voters = append(voters, fmt.Sprintf("%d@%s", i, b.ctrlAddr()))
		c.nodes = append(c.nodes, b)
	}
	for i, b := range c.nodes {
		vs := slices.Clone(voters)
		if i == n-1 {
			// The last node names the voters in another order: the
			// cluster id, derived from the voters, must not depend
			// on it (INCONSISTENT_CLUSTER_ID at registration would
			// keep the node from ever getting ready).
			slices.Reverse(vs)
		}
		b.sets = append([]string{
			"node.id=" + strconv.Itoa(i+1),
			"controller.quorum.voters=" + strings.Join(vs, ","),
			"broker.heartbeat.interval.ms=" + strconv.Itoa(procHeartbeatMs),
			"broker.session.timeout.ms=" + strconv.Itoa(procSessionTimeoutMs),
		}, extra...)
	}
	t.Cleanup(func() {
		for _, b := range c.nodes {
			b.kill9()
		}
	})
	c.startAll()
	return c
}

// use makes t the test that c and its nodes fail: a subtest's own, as
// FailNow must run on the goroutine of the test it fails.
func (c *procCluster) use(t *testing.T) {
	c.t = t
	for _, b := range c.nodes {
		b.t = t
	}
}

func (c *procCluster) node(id int32) *killBroker { return c.nodes[id-1] }

// startAll starts every stopped node, concurrently (a node is ready only
// once a majority of voters elected a controller and it is unfenced), and
// waits until each is ready.
func (c *procCluster) startAll() {
	c.t.Helper()
	var todo []*killBroker
	for _, b := range c.nodes {
		if b.cmd == nil {
			b.launch()
			todo = append(todo, b)
		}
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		var again []*killBroker
		for _, b := range todo {
			if out := b.await(90 * time.Second); out != "" {
				if attempt == 4 {
					c.t.Fatalf("node could not bind its ports: %s", out)
				}
				again = append(again, b)
			}
		}
		for _, b := range again {
			time.Sleep(200 * time.Millisecond)
			b.launch()
		}
		todo = again
	}
	// Each node is ready once its own image shows it unfenced; the others
	// apply that a moment later. The cluster is up when every node lists
	// every broker (what strata.StartCluster waits for too).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitFor(ctx, 30*time.Second, "every node listing every broker", func() (bool, string) {
		for i := range c.nodes {
			id := int32(i + 1)
			m, err := c.metadata(ctx, id)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", id, err)
			}
			if got := brokerIDs(m); len(got) != len(c.nodes) {
				return false, fmt.Sprintf("node %d lists brokers %v", id, got)
			}
		}
		return true, ""
	})
}

// signal sends sig to a running node.
func (b *killBroker) signal(sig syscall.Signal) {
	b.t.Helper()
	if b.cmd == nil {
		b.t.Fatalf("signal %v: broker on %s is not running", sig, b.addr())
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for a node sent SIGTERM to stop and fails the test
// unless it stopped cleanly within timeout.
func (b *killBroker) waitExit(timeout time.Duration) {
	b.t.Helper()
	select {
	case err := <-b.done:
		b.cmd = nil
		if err != nil || !strings.Contains(b.log.String(), "stopped cleanly") {
			b.t.Fatalf("broker on %s did not stop cleanly after SIGTERM (%v):\n%s", b.addr(), err, b.log)
		}
	case <-time.After(timeout):
		b.t.Fatalf("broker on %s still running %v after SIGTERM:\n%s", b.addr(), timeout, b.log)
	}
}

// logs is the last lines of every node's output, for failure messages.
func (c *procCluster) logs() string {
	var sb strings.Builder
	for i, b := range c.nodes {
		state := "stopped"
		if b.cmd != nil {
			state = fmt.Sprintf("pid %d", b.cmd.Process.Pid)
		}
		fmt.Fprintf(&sb, "\n--- node %d (%s, process %d, %s) last lines:\n%s\n", i+1, b.addr(), b.gen, state, b.log)
	}
	return sb.String()
}

func (c *procCluster) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), c.logs())
}

// metadata asks node id itself (not any broker the client learns of) for
// the metadata of every topic.
func (c *procCluster) metadata(ctx context.Context, id int32) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.node(id).addr()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

func brokerIDs(m *kmsg.MetadataResponse) []int32 {
	var ids []int32
	for _, b := range m.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

func metaTopic(m *kmsg.MetadataResponse, name string) *kmsg.MetadataResponseTopic {
	for i := range m.Topics {
		if t := &m.Topics[i]; t.Topic != nil && *t.Topic == name {
			return t
		}
	}
	return nil
}

// waitFor polls cond every 200 ms until it holds, failing the test after
// timeout with what cond last said. It returns how long it took.
func (c *procCluster) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	c.t.Helper()
	t0 := time.Now()
	var last string
	for {
		var ok bool
		if ok, last = cond(); ok {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout || ctx.Err() != nil {
			c.fatalf("%s: not so after %v (%v); last: %s", what, time.Since(t0).Round(time.Millisecond), ctx.Err(), last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaders returns topic's partition leaders as node id asks them, and
// the partitions' error codes.
func leaders(m *kmsg.MetadataResponse, topic string) (map[int32]int32, map[int32]int16) {
	tp := metaTopic(m, topic)
	if tp == nil {
		return nil, nil
	}
	ld, ec := map[int32]int32{}, map[int32]int16{}
	for _, p := range tp.Partitions {
		ld[p.Partition], ec[p.Partition] = p.Leader, p.ErrorCode
	}
	return ld, ec
}

// procRecords is what the test produced: value -> partition.
type procRecords map[string]int32

// produce writes n records per partition of topic through bootstrap node
// id, with an idempotent acks=all producer (franz-go's default). Their
// values name the topic, tag, node, partition and record number.
func (c *procCluster) produce(ctx context.Context, id int32, topic, tag string, partitions int32, n int, recs procRecords) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.node(id).addr()),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RecordDeliveryTimeout(30*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("%s/%s/via%d/p%d/%d", topic, tag, id, p, i)
			rs = append(rs, &kgo.Record{Partition: p, Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		c.fatalf("produce %d records to %s through node %d: %v", len(rs), topic, id, err)
	}
	for _, r := range rs {
		recs[string(r.Value)] = r.Partition
	}
}

// consume reads topic from the start through bootstrap node id until it
// has seen every record of want, and fails on a record it does not know.
func (c *procCluster) consume(ctx context.Context, id int32, topic string, want procRecords) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.node(id).addr()),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	seen := map[string]bool{}
	var fetchErrs []string
	for len(seen) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var missing []string
			for v := range want {
				if !seen[v] {
					missing = append(missing, v)
				}
			}
			sort.Strings(missing)
			c.fatalf("consume %s through node %d: read %d of %d records; missing e.g. %v; fetch errors %v",
				topic, id, len(seen), len(want), missing[:min(5, len(missing))], fetchErrs[max(0, len(fetchErrs)-5):])
		}
		fs.EachError(func(_ string, p int32, err error) {
			fetchErrs = append(fetchErrs, fmt.Sprintf("p%d: %v", p, err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			p, ok := want[v]
			switch {
			case !ok:
				c.fatalf("consume %s through node %d: unexpected record %q at partition %d offset %d", topic, id, v, r.Partition, r.Offset)
			case p != r.Partition:
				c.fatalf("consume %s through node %d: %q produced to partition %d read from %d", topic, id, v, p, r.Partition)
			case seen[v]:
				c.fatalf("consume %s through node %d: %q read twice (offset %d)", topic, id, v, r.Offset)
			}
			seen[v] = true
		})
	}
}

// kcatBrokers runs `kcat -L -b addr` and returns the broker ids it lists.
func kcatBrokers(ctx context.Context, addr string) ([]int32, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "kcat", "-L", "-b", addr, "-m", "10").CombinedOutput()
	if err != nil {
		return nil, string(out), err
	}
	var ids []int32
	for _, line := range strings.Split(string(out), "\n") {
		// "  broker 2 at 127.0.0.1:40123 (controller)"
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "broker" && f[2] == "at" {
			id, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, string(out), err
			}
			ids = append(ids, int32(id))
		}
	}
	slices.Sort(ids)
	return ids, string(out), nil
}

// controllerID is the controller every live node names, once they agree
// on one that is a live broker.
func (c *procCluster) waitController(ctx context.Context, live []int32, not int32, timeout time.Duration) (int32, time.Duration) {
	c.t.Helper()
	var ctrl int32
	took := c.waitFor(ctx, timeout, fmt.Sprintf("nodes %v agree on a live controller other than %d", live, not), func() (bool, string) {
		var ids []int32
		for _, id := range live {
			m, err := c.metadata(ctx, id)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", id, err)
			}
			ids = append(ids, m.ControllerID)
		}
		ctrl = ids[0]
		for _, id := range ids {
			if id != ctrl || id == not || !slices.Contains(live, id) {
				return false, fmt.Sprintf("controller ids %v", ids)
			}
		}
		return true, ""
	})
	return ctrl, took
}

func TestProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three strata serve processes for about a minute; skipped with -short")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startProcCluster(t, 3, nil)
	defer c.use(t)
	t.Logf("3 nodes built and ready in %v", time.Since(start).Round(time.Millisecond))
	all := []int32{1, 2, 3}
	const (
		topic      = "spread"
		partitions = 6
	)
	recs := procRecords{}
	var topicID, afterID [16]byte // of topic and of after-failover

	// checkTopic checks that node id knows topic with its id and
	// partition count.
	checkTopic := func(id int32, name string, wantID [16]byte, n int) (bool, string) {
		m, err := c.metadata(ctx, id)
		if err != nil {
			return false, fmt.Sprintf("node %d: %v", id, err)
		}
		tp := metaTopic(m, name)
		switch {
		case tp == nil:
			return false, fmt.Sprintf("node %d does not know %s", id, name)
		case tp.ErrorCode != 0:
			return false, fmt.Sprintf("node %d: %s: %v", id, name, kerr.ErrorForCode(tp.ErrorCode))
		case tp.TopicID != wantID:
			return false, fmt.Sprintf("node %d: %s has id %x, want %x", id, name, tp.TopicID, wantID)
		case len(tp.Partitions) != n:
			return false, fmt.Sprintf("node %d: %s has %d partitions, want %d", id, name, len(tp.Partitions), n)
		}
		return true, ""
	}

	ok := t.Run("bootstrap", func(t *testing.T) {
		c.use(t)
		t0 := time.Now()
		if _, err := exec.LookPath("kcat"); err != nil {
			t.Log("kcat is not on PATH: skipping the kcat -L check")
		} else {
			for _, id := range all {
				ids, out, err := kcatBrokers(ctx, c.node(id).addr())
				if err != nil || !slices.Equal(ids, all) {
					c.fatalf("kcat -L -b node %d: brokers %v, want %v (%v):\n%s", id, ids, all, err, out)
				}
			}
		}
		for _, id := range all {
			adm := kadm.NewClient(newClient(t, c.node(id).addr()))
			m, err := adm.BrokerMetadata(ctx)
			if err != nil {
				c.fatalf("kadm BrokerMetadata through node %d: %v", id, err)
			}
			var got []string
			for _, b := range m.Brokers {
				got = append(got, fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port))
			}
			var want []string
			for _, b := range all {
				want = append(want, fmt.Sprintf("%d@%s", b, c.node(b).addr()))
			}
			if !slices.Equal(got, want) {
				c.fatalf("kadm BrokerMetadata through node %d: brokers %v, want %v", id, got, want)
			}
			if !slices.Contains(all, m.Controller) {
				c.fatalf("node %d names controller %d", id, m.Controller)
			}
		}

		adm := kadm.NewClient(newClient(t, c.node(3).addr()))
		resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			c.fatalf("create topic %s through node 3: %v", topic, err)
		}
		topicID = resp.ID
		for _, id := range all {
			c.waitFor(ctx, 10*time.Second, fmt.Sprintf("node %d sees topic %s", id, topic), func() (bool, string) {
				return checkTopic(id, topic, topicID, partitions)
			})
		}
		// RF 1: the partitions' leaders are spread over the three brokers.
		m, _ := c.metadata(ctx, 1)
		ld, _ := leaders(m, topic)
		led := map[int32]int{}
		for _, l := range ld {
			led[l]++
		}
		for _, id := range all {
			if led[id] == 0 {
				c.fatalf("broker %d leads none of %s's partitions: leaders %v", id, topic, ld)
			}
		}
		for _, id := range all {
			c.produce(ctx, id, topic, "bootstrap", partitions, 5, recs)
		}
		for _, id := range all {
			c.consume(ctx, id, topic, recs)
		}
		t.Logf("3 brokers seen through every node; %s (6 partitions, leaders %v) created through node 3, %d records written and read through every node, in %v",
			topic, ld, len(recs), time.Since(t0).Round(time.Millisecond))
	})
	if !ok {
		return
	}

	ok = t.Run("fencing", func(t *testing.T) {
		c.use(t)
		ctrl, _ := c.waitController(ctx, all, -1, 10*time.Second)
		// A broker that is not the controller: pausing the controller
		// would also test failover, which the next step does.
		victim := int32(1)
		for victim == ctrl {
			victim++
		}
		m, _ := c.metadata(ctx, ctrl)
		ld, _ := leaders(m, topic)
		var owned []int32
		for p, l := range ld {
			if l == victim {
				owned = append(owned, p)
			}
		}
		c.node(victim).signal(syscall.SIGSTOP)
		stopped := true
		defer func() {
			if stopped {
				c.node(victim).signal(syscall.SIGCONT)
			}
		}()
		fenced := c.waitFor(ctx, procSessionTimeout+10*time.Second, fmt.Sprintf("SIGSTOPped broker %d leaves the brokers of Metadata (controller %d)", victim, ctrl), func() (bool, string) {
			m, err := c.metadata(ctx, ctrl)
			if err != nil {
				return false, err.Error()
			}
			if ids := brokerIDs(m); slices.Contains(ids, victim) {
				return false, fmt.Sprintf("brokers %v", ids)
			}
			ld, ec := leaders(m, topic)
			for _, p := range owned {
				if ld[p] != -1 || ec[p] != kerr.LeaderNotAvailable.Code {
					return false, fmt.Sprintf("partition %d of broker %d: leader %d, error %v", p, victim, ld[p], kerr.ErrorForCode(ec[p]))
				}
			}
			return true, ""
		})
		if fenced < procSessionTimeout-time.Second {
			c.fatalf("broker %d fenced %v after SIGSTOP, before its session timeout %v", victim, fenced, procSessionTimeout)
		}
		c.node(victim).signal(syscall.SIGCONT)
		stopped = false
		back := c.waitFor(ctx, 10*procHeartbeatMs*time.Millisecond, fmt.Sprintf("broker %d back in Metadata after SIGCONT, leading its partitions %v", victim, owned), func() (bool, string) {
			for _, id := range all {
				m, err := c.metadata(ctx, id)
				if err != nil {
					return false, fmt.Sprintf("node %d: %v", id, err)
				}
				if ids := brokerIDs(m); !slices.Equal(ids, all) {
					return false, fmt.Sprintf("node %d lists brokers %v", id, ids)
				}
				ld, _ := leaders(m, topic)
				for _, p := range owned {
					if ld[p] != victim {
						return false, fmt.Sprintf("node %d: partition %d led by %d", id, p, ld[p])
					}
				}
			}
			return true, ""
		})
		c.consume(ctx, victim, topic, recs)
		t.Logf("broker %d (partitions %v) SIGSTOPped: fenced after %v (session timeout %v); SIGCONT: unfenced and leading again after %v",
			victim, owned, fenced.Round(time.Millisecond), procSessionTimeout, back.Round(time.Millisecond))
	})
	if !ok {
		return
	}

	ok = t.Run("controller-kill", func(t *testing.T) {
		c.use(t)
		ctrl, _ := c.waitController(ctx, all, -1, 10*time.Second)
		var live []int32
		for _, id := range all {
			if id != ctrl {
				live = append(live, id)
			}
		}
		m, _ := c.metadata(ctx, live[0])
		ld, _ := leaders(m, topic)
		var owned []int32
		for p, l := range ld {
			if l == ctrl {
				owned = append(owned, p)
			}
		}
		slices.Sort(owned)
		c.node(ctrl).kill9()
		killed := time.Now()
		next, elected := c.waitController(ctx, live, ctrl, 30*time.Second)
		if elected > 10*time.Second {
			c.fatalf("controller %d SIGKILLed: new controller %d named after %v, want within 10s", ctrl, next, elected)
		}
		// Topic creation works again, through a surviving node that
		// is not the new controller where there is one.
		via := live[0]
		if via == next {
			via = live[1]
		}
		adm := kadm.NewClient(newClient(t, c.node(via).addr()))
		created := c.waitFor(ctx, 20*time.Second, fmt.Sprintf("create topic after-failover through node %d", via), func() (bool, string) {
			resp, err := adm.CreateTopic(ctx, 2, 1, nil, "after-failover")
			if err == nil {
				err = resp.Err
			}
			if errors.Is(err, kerr.TopicAlreadyExists) {
				// An earlier attempt's answer was lost on the way.
				td, lerr := adm.ListTopics(ctx, "after-failover")
				if lerr != nil {
					return false, lerr.Error()
				}
				resp.ID, err = td["after-failover"].ID, nil
			}
			if err != nil {
				return false, err.Error()
			}
			afterID = resp.ID
			return true, ""
		})
		for _, id := range live {
			c.waitFor(ctx, 10*time.Second, fmt.Sprintf("node %d still knows %s", id, topic), func() (bool, string) {
				return checkTopic(id, topic, topicID, partitions)
			})
			c.waitFor(ctx, 10*time.Second, fmt.Sprintf("node %d knows after-failover", id), func() (bool, string) {
				return checkTopic(id, "after-failover", afterID, 2)
			})
		}
		// After the session timeout the dead broker is fenced and its
		// RF 1 partitions have no leader.
		c.waitFor(ctx, procSessionTimeout+10*time.Second, fmt.Sprintf("partitions %v of killed broker %d LEADER_NOT_AVAILABLE", owned, ctrl), func() (bool, string) {
			m, err := c.metadata(ctx, next)
			if err != nil {
				return false, err.Error()
			}
			if ids := brokerIDs(m); slices.Contains(ids, ctrl) {
				return false, fmt.Sprintf("brokers %v", ids)
			}
			ld, ec := leaders(m, topic)
			for _, p := range owned {
				if ld[p] != -1 || ec[p] != kerr.LeaderNotAvailable.Code {
					return false, fmt.Sprintf("partition %d: leader %d, error %v", p, ld[p], kerr.ErrorForCode(ec[p]))
				}
			}
			return true, ""
		})
		offlineAt := time.Since(killed)
		if offlineAt < procSessionTimeout-time.Second {
			c.fatalf("killed broker %d fenced %v after the kill, before its session timeout %v", ctrl, offlineAt, procSessionTimeout)
		}

		t1 := time.Now()
		c.node(ctrl).start(false)
		ready := time.Since(t1)
		back := c.waitFor(ctx, 20*time.Second, fmt.Sprintf("restarted broker %d listed and leading %v everywhere", ctrl, owned), func() (bool, string) {
			for _, id := range all {
				m, err := c.metadata(ctx, id)
				if err != nil {
					return false, fmt.Sprintf("node %d: %v", id, err)
				}
				if ids := brokerIDs(m); !slices.Equal(ids, all) {
					return false, fmt.Sprintf("node %d lists brokers %v", id, ids)
				}
				ld, _ := leaders(m, topic)
				for _, p := range owned {
					if ld[p] != ctrl {
						return false, fmt.Sprintf("node %d: partition %d led by %d", id, p, ld[p])
					}
				}
			}
			return true, ""
		})
		for _, id := range all {
			c.waitFor(ctx, 10*time.Second, fmt.Sprintf("node %d knows after-failover", id), func() (bool, string) {
				return checkTopic(id, "after-failover", afterID, 2)
			})
		}
		c.consume(ctx, ctrl, topic, recs)
		c.produce(ctx, ctrl, topic, "restarted", partitions, 2, recs)
		t.Logf("controller %d (partitions %v) SIGKILLed: node %d controller after %v, topic created after %v more, partitions offline %v after the kill; restarted: ready in %v, leading again %v later; its records readable",
			ctrl, owned, next, elected.Round(time.Millisecond), created.Round(time.Millisecond), offlineAt.Round(time.Millisecond), ready.Round(time.Millisecond), back.Round(time.Millisecond))
	})
	if !ok {
		return
	}

	t.Run("restart-all", func(t *testing.T) {
		c.use(t)
		t0 := time.Now()
		for _, b := range c.nodes {
			b.signal(syscall.SIGTERM)
		}
		for _, b := range c.nodes {
			b.waitExit(60 * time.Second)
		}
		stopped := time.Since(t0)
		t1 := time.Now()
		c.startAll()
		ready := time.Since(t1)
		for _, id := range all {
			c.waitFor(ctx, 20*time.Second, fmt.Sprintf("node %d knows %s with every partition led, and 3 brokers", id, topic), func() (bool, string) {
				if ok, why := checkTopic(id, topic, topicID, partitions); !ok {
					return false, why
				}
				m, err := c.metadata(ctx, id)
				if err != nil {
					return false, err.Error()
				}
				if ids := brokerIDs(m); !slices.Equal(ids, all) {
					return false, fmt.Sprintf("brokers %v", ids)
				}
				ld, _ := leaders(m, topic)
				for p, l := range ld {
					if l < 0 {
						return false, fmt.Sprintf("partition %d has no leader", p)
					}
				}
				return true, ""
			})
			if ok, why := checkTopic(id, "after-failover", afterID, 2); !ok {
				c.fatalf("topic after-failover after the restart: %s", why)
			}
		}
		for _, id := range all {
			c.consume(ctx, id, topic, recs)
		}
		t.Logf("SIGTERM to all three: stopped cleanly in %v; all started and ready in %v; topics, ids and %d records back", stopped.Round(time.Millisecond), ready.Round(time.Millisecond), len(recs))
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// httpAddr is the address of a running node's http.listener, from its
// ready line (the node watches "strata ready").
func (b *killBroker) httpAddr() string {
	b.t.Helper()
	lines := b.log.seen("strata ready")
	if len(lines) == 0 {
		b.t.Fatalf("broker on %s: no ready line watched", b.addr())
	}
	for _, f := range strings.Fields(lines[len(lines)-1]) {
		if v, ok := strings.CutPrefix(f, "http="); ok {
			return v
		}
	}
	b.t.Fatalf("broker on %s: no http= in %q", b.addr(), lines[len(lines)-1])
	return ""
}

// metric reads one unlabelled gauge from a running node's /metrics.
func (b *killBroker) metric(name string) int64 {
	b.t.Helper()
	resp, err := http.Get("http://" + b.httpAddr() + "/metrics")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.t.Fatalf("metric %s: %q", name, line)
			}
			return int64(f)
		}
	}
	b.t.Fatalf("broker on %s has no metric %s", b.addr(), name)
	return 0
}

// logAttr returns attribute key of a slog text line, or "".
func logAttr(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// A voter that was down while the others wrote more metadata than raft
// keeps in its log after a snapshot catches up from the leader's snapshot
// (raft's InstallSnapshot), not from the log, and then knows every topic
// and config.
func TestProcessClusterSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three strata serve processes; skipped with -short")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		installed = "Installed remote snapshot"
		compacted = "compacting logs"
		ready     = "strata ready"
		topics    = 60
	)
	// Snapshots every 32 entries, checked every 100-200 ms, leaving 8
	// entries of log: a few dozen metadata changes outrun a stopped voter.
	c := startProcCluster(t, 3, []string{installed, compacted, ready},
		"metadata.raft.snapshot.threshold=32",
		"metadata.raft.snapshot.interval.ms=100",
		"metadata.raft.trailing.logs=8")
	t.Logf("3 nodes ready in %v", time.Since(start).Round(time.Millisecond))
	adm := kadm.NewClient(newClient(t, c.node(1).addr()))
	if resp, err := adm.CreateTopic(ctx, 3, 1, nil, "before"); err != nil || resp.Err != nil {
		c.fatalf("create topic before: %v / %v", err, resp.Err)
	}
	c.waitFor(ctx, 10*time.Second, "node 3 knows topic before", func() (bool, string) {
		m, err := c.metadata(ctx, 3)
		if err != nil {
			return false, err.Error()
		}
		return metaTopic(m, "before") != nil, "not yet"
	})
	n3 := c.node(3)
	stoppedAt := n3.metric("strata_quorum_applied_index")
	n3.signal(syscall.SIGTERM)
	n3.waitExit(60 * time.Second)

	// Metadata changes while node 3 is down: topics, and config changes
	// of one of them.
	t0 := time.Now()
	ids := map[string][16]byte{}
	for i := 0; i < topics; i++ {
		name := fmt.Sprintf("snap-%02d", i)
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			c.fatalf("create topic %s: %v", name, err)
		}
		ids[name] = resp.ID
		if i%3 == 0 {
			retention := strconv.Itoa(3600000 + i)
			rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &retention}}, "before")
			if err == nil {
				_, err = rs.On("before", nil)
			}
			if err != nil {
				c.fatalf("alter retention.ms of before: %v", err)
			}
		}
	}
	wantRetention := strconv.Itoa(3600000 + (topics-1)/3*3)
	t.Logf("%d topics and %d config changes written in %v with node 3 down (stopped at raft index %d)", topics, (topics+2)/3, time.Since(t0).Round(time.Millisecond), stoppedAt)

	// The live voters snapshot and drop their log past node 3's index.
	for _, id := range []int32{1, 2} {
		c.waitFor(ctx, 20*time.Second, fmt.Sprintf("node %d compacts its raft log past index %d", id, stoppedAt), func() (bool, string) {
			lines := c.node(id).log.seen(compacted)
			if len(lines) == 0 {
				return false, "no compaction logged"
			}
			last := lines[len(lines)-1]
			to, _ := strconv.ParseInt(logAttr(last, "to"), 10, 64)
			return to > stoppedAt, last
		})
	}

	t1 := time.Now()
	n3.start(false)
	readyIn := time.Since(t1)
	if got := n3.log.seen(installed); len(got) == 0 {
		c.fatalf("node 3 caught up without installing the leader's snapshot")
	}
	// Node 3's own Metadata has every topic with its id, and its own
	// DescribeConfigs the last retention.ms.
	c.waitFor(ctx, 10*time.Second, "node 3 knows every topic with its id", func() (bool, string) {
		m, err := c.metadata(ctx, 3)
		if err != nil {
			return false, err.Error()
		}
		for name, id := range ids {
			tp := metaTopic(m, name)
			if tp == nil || tp.TopicID != id {
				return false, fmt.Sprintf("topic %s: %+v", name, tp)
			}
		}
		return true, ""
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(n3.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "before", []string{"retention.ms"}
	req.Resources = append(req.Resources, rr)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		c.fatalf("describe configs through node 3: %v", err)
	}
	var got string
	for _, r := range resp.(*kmsg.DescribeConfigsResponse).Resources {
		for _, cfg := range r.Configs {
			if cfg.Name == "retention.ms" && cfg.Value != nil {
				got = *cfg.Value
			}
		}
	}
	if got != wantRetention {
		c.fatalf("node 3 answers retention.ms %q for topic before, want %q", got, wantRetention)
	}
	t.Logf("node 3 restarted: installed the leader's snapshot (%q) and was ready in %v, with all %d topics and the last config; total %v",
		n3.log.seen(installed)[0], readyIn.Round(time.Millisecond), len(ids), time.Since(start).Round(time.Millisecond))
}
