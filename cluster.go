package strata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/netsim"
)

// ClusterOptions configure an embedded cluster (StartCluster).
type ClusterOptions struct {
	// Nodes is how many nodes run; default 3. Their ids are 1..Nodes and,
	// unless Roles says otherwise, every one is a combined node
	// (broker,controller), a voter of the controller quorum.
	Nodes int
	// Roles gives a node's process.roles by id: "controller" (a voter
	// that serves no clients and hosts no partitions), "broker" (a raft
	// non-voter that follows the metadata log) or "broker,controller".
	// A node not named takes Properties' process.roles, else
	// broker,controller. At least one node must be a controller.
	Roles map[int32]string
	// Dir holds node N's data in Dir/node-N; default ./strata-data.
	Dir string
	// Properties are Kafka broker properties applied to every node. The
	// cluster sets node.id, process.roles (see Roles), listeners,
	// controller.quorum.voters, http.listener and log.dirs itself, over
	// these.
	Properties map[string]string
	// NodeProperties are Kafka broker properties for one node, by id,
	// over Properties (broker.rack, say); the cluster's own settings
	// above still win.
	NodeProperties map[int32]map[string]string
	// Logger gets every node's logs, each with a node=<id> attribute.
	Logger *slog.Logger
	// Host is the address every listener binds and advertises; default
	// 127.0.0.1.
	Host string
	// Listener names each node's client listener, PLAINTEXT by default;
	// its security protocol is listener.security.protocol.map's (in
	// Properties), and with one client listener it is the inter-broker
	// one too. An SSL listener takes its ssl.* Properties.
	Listener string
	// ExtraListeners name more client listeners each broker node binds,
	// on free ports of Host, after Listener (their protocols and, say,
	// inter.broker.listener.name come from Properties). Node.ListenerAddr
	// gives their addresses.
	ExtraListeners []string
	// KafkaPort, ControllerPort and HTTPPort are node 1's ports of its
	// client, CONTROLLER and http.listener listeners; node N's are
	// the port + N-1. Zero takes free ports from the OS. HTTPPort -1
	// disables the HTTP endpoint.
	KafkaPort, ControllerPort, HTTPPort int
}

// Cluster is a set of nodes running in this process, each a broker, a
// controller-quorum voter or both (ClusterOptions.Roles; both by default),
// with its own data dir and listeners, joined
// by an in-process network that tests can cut (Cut, Heal). It is for tests
// and development (`strata serve --dev-cluster`), not for production: the
// nodes share one process, so they crash, stall and run out of memory
// together. A Cluster is safe for concurrent use.
type Cluster struct {
	nodes []*Node
	net   *netsim.Network
}

// Node is one node of an embedded cluster. It keeps its id, data dir and
// addresses across Stop, Kill and Restart. Safe for concurrent use.
type Node struct {
	id   int32
	cfg  config.Config
	addr string // the client listener's host:port
	// extra are the ExtraListeners' names and host:ports.
	extra    []config.Listener
	ctrlAddr string // CONTROLLER host:port
	logger   *slog.Logger
	nn       nodeNet

	mu struct {
		sync.Mutex
		b *Broker // nil while stopped
		// fsys holds the node's log dirs: fs.OS, or in power-loss
		// tests a crashable FS (internal/fs.CrashFS).
		fsys fs.FS
	}
}

// StartCluster starts opts.Nodes nodes and returns once each has caught
// up with the controller quorum, which needs a majority of them to elect
// a controller: they start concurrently.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	n := cmp.Or(opts.Nodes, 3)
	if n < 1 {
		return nil, fmt.Errorf("cluster: %d nodes", n)
	}
	host := cmp.Or(opts.Host, "127.0.0.1")
	dir := cmp.Or(opts.Dir, "./strata-data")
	// Bind every listener first: the voter list names each node's
	// controller address, and every node needs it before it starts.
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	bind := func(base, i int) (net.Listener, error) {
		port := 0
		if base != 0 {
			port = base + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			lns = append(lns, ln)
		}
		return ln, err
	}
	roles := func(id int32) string {
		return cmp.Or(opts.Roles[id], opts.Properties["process.roles"], "broker,controller")
	}
	kafkaLns, ctrlLns := make([]net.Listener, n), make([]net.Listener, n)
	extraLns := make([][]net.Listener, n)
	var voters []string
	for i := range n {
		var err error
		r := roles(int32(i + 1))
		if strings.Contains(r, "broker") {
			if kafkaLns[i], err = bind(opts.KafkaPort, i); err != nil {
				closeAll()
				return nil, fmt.Errorf("cluster: node %d listener: %w", i+1, err)
			}
			for _, name := range opts.ExtraListeners {
				ln, err := bind(0, i)
				if err != nil {
					closeAll()
					return nil, fmt.Errorf("cluster: node %d listener %s: %w", i+1, name, err)
				}
				extraLns[i] = append(extraLns[i], ln)
			}
		}
		if ctrlLns[i], err = bind(opts.ControllerPort, i); err != nil {
			closeAll()
			return nil, fmt.Errorf("cluster: node %d controller listener: %w", i+1, err)
		}
		if strings.Contains(r, "controller") {
			voters = append(voters, fmt.Sprintf("%d@%s", i+1, ctrlLns[i].Addr()))
		}
	}
	if len(voters) == 0 {
		closeAll()
		return nil, errors.New("cluster: no node has the controller role")
	}
	c := &Cluster{net: netsim.New()}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for i := range n {
		id := int32(i + 1)
		cfg := config.Default()
		for k, v := range opts.Properties {
			if err := cfg.Set(k, v); err != nil {
				closeAll()
				return nil, err
			}
		}
		for k, v := range opts.NodeProperties[id] {
			if err := cfg.Set(k, v); err != nil {
				closeAll()
				return nil, fmt.Errorf("cluster: node %d: %w", id, err)
			}
		}
		httpAddr := ""
		if opts.HTTPPort >= 0 {
			port := 0
			if opts.HTTPPort > 0 {
				port = opts.HTTPPort + i
			}
			httpAddr = net.JoinHostPort(host, strconv.Itoa(port))
		}
		node := &Node{
			id:       id,
			ctrlAddr: ctrlLns[i].Addr().String(),
			logger:   logger.With("node", id),
			nn:       nodeNet{dial: c.net.Dialer(id)},
		}
		node.mu.fsys = fs.OS
		listeners := "CONTROLLER://" + node.ctrlAddr
		if kafkaLns[i] != nil {
			node.addr = kafkaLns[i].Addr().String()
			first := cmp.Or(opts.Listener, "PLAINTEXT") + "://" + node.addr
			for j, name := range opts.ExtraListeners {
				node.extra = append(node.extra, config.Listener{Name: name, Addr: extraLns[i][j].Addr().String()})
				first += "," + name + "://" + node.extra[j].Addr
			}
			listeners = first + "," + listeners
		}
		for k, v := range map[string]string{
			"node.id":                  strconv.Itoa(int(id)),
			"process.roles":            roles(id),
			"listeners":                listeners,
			"controller.quorum.voters": strings.Join(voters, ","),
			"http.listener":            httpAddr,
			"log.dirs":                 filepath.Join(dir, fmt.Sprintf("node-%d", id)),
		} {
			if err := cfg.Set(k, v); err != nil {
				closeAll()
				return nil, fmt.Errorf("cluster: node %d: %w", id, err)
			}
		}
		if err := cfg.Validate(); err != nil {
			closeAll()
			return nil, fmt.Errorf("cluster: node %d: %w", id, err)
		}
		node.cfg = cfg
		for _, l := range node.extra {
			c.net.Register(l.Addr, id)
		}
		if node.addr != "" {
			c.net.Register(node.addr, id)
		}
		c.net.Register(node.ctrlAddr, id)
		c.nodes = append(c.nodes, node)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	// A node that fails to start (a port taken, a bad config) aborts
	// the others' waits for a quorum that cannot form.
	abort := make(chan struct{})
	var abortOnce sync.Once
	for i, node := range c.nodes {
		node.nn.abort = abort
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = node.start(append([]net.Listener{kafkaLns[i]}, extraLns[i]...), ctrlLns[i]); errs[i] != nil {
				abortOnce.Do(func() { close(abort) })
			}
		}()
	}
	wg.Wait()
	for _, node := range c.nodes {
		node.nn.abort = nil // restarts wait as long as they need
	}
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	// Every node is unfenced in its own image once it started; the
	// others learn it from the metadata log a moment later. Return when
	// every node lists every broker, so that a client sees the whole
	// cluster whichever node it bootstraps from.
	ctx, cancel := context.WithTimeout(context.Background(), quorumStartTimeout)
	defer cancel()
	if err := c.waitAllUnfenced(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitAllUnfenced waits until every running node's image has every
// broker registered and unfenced.
func (c *Cluster) waitAllUnfenced(ctx context.Context) error {
	for {
		ok := true
		for _, n := range c.nodes {
			n.mu.Lock()
			b := n.mu.b
			n.mu.Unlock()
			if b == nil {
				continue
			}
			im := b.meta.Image()
			for _, o := range c.nodes {
				if !o.IsBroker() {
					continue
				}
				if br := im.Broker(o.id); br == nil || br.Fenced {
					ok = false
				}
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for every node to see every broker unfenced: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Nodes returns the nodes in id order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns the node with id, nil if there is none.
func (c *Cluster) Node(id int32) *Node {
	if id < 1 || int(id) > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

// Bootstrap returns every broker's PLAINTEXT address, for a client's
// seed brokers (kgo.SeedBrokers(c.Bootstrap()...)); controller-only
// nodes serve no clients.
func (c *Cluster) Bootstrap() []string {
	var out []string
	for _, n := range c.nodes {
		if n.addr != "" {
			out = append(out, n.addr)
		}
	}
	return out
}

// Close stops every running node cleanly, concurrently, and returns
// their errors joined.
func (c *Cluster) Close() error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Cut cuts the network between nodes a and b: their open connections
// close and new ones are refused until Heal (see internal/netsim: a cut
// is noticed at once, as a refused connection, not through timeouts as a
// silent partition would be). It covers every connection one node makes
// to another (raft's transport and any other node-to-node traffic), not
// a client's connections to either node.
func (c *Cluster) Cut(a, b int32) { c.net.Cut(a, b) }

// Heal restores the network between nodes a and b.
func (c *Cluster) Heal(a, b int32) { c.net.Heal(a, b) }

// HealAll restores every cut link.
func (c *Cluster) HealAll() { c.net.HealAll() }

// Controller returns the active controller as a majority of the nodes
// see it: the node id that more than half of the cluster's nodes (the
// stopped ones count, as not seeing it) report as raft leader; -1 when no
// majority agrees, as during an election or while a majority is down.
func (c *Cluster) Controller() int32 {
	votes := map[int32]int{}
	for _, n := range c.nodes {
		if id := n.Controller(); id >= 0 {
			votes[id]++
		}
	}
	for id, v := range votes {
		if v > len(c.nodes)/2 {
			return id
		}
	}
	return -1
}

// WaitController waits until a majority of the nodes agree on an active
// controller (Controller) and returns its id.
func (c *Cluster) WaitController(ctx context.Context) (int32, error) {
	for {
		if id := c.Controller(); id >= 0 {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("cluster: no controller agreed by a majority: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ID is the node's node.id.
func (n *Node) ID() int32 { return n.id }

// Addr is the node's client listener address (host:port); it stays the same
// across restarts. "" on a controller-only node.
func (n *Node) Addr() string { return n.addr }

// ListenerAddr is the address of the node's client listener name (Listener
// or one of ExtraListeners), "" when it has none.
func (n *Node) ListenerAddr(name string) string {
	for _, l := range n.extra {
		if l.Name == name {
			return l.Addr
		}
	}
	if ls, err := n.cfg.ClientListeners(); err == nil && len(ls) > 0 && ls[0].Name == name {
		return n.addr
	}
	return ""
}

// IsBroker reports whether the node has the broker role (process.roles).
func (n *Node) IsBroker() bool { return n.cfg.HasRole("broker") }

// IsController reports whether the node has the controller role: it is
// a voter of the controller quorum.
func (n *Node) IsController() bool { return n.cfg.HasRole("controller") }

// ControllerAddr is the node's CONTROLLER listener address (host:port).
func (n *Node) ControllerAddr() string { return n.ctrlAddr }

// Dir is the node's data dir (log.dirs).
func (n *Node) Dir() string { return n.cfg.LogDirs[0] }

// Running reports whether the node is started.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.b != nil
}

// HTTPAddr is the node's /metrics endpoint, "" when it is disabled or the
// node is stopped.
func (n *Node) HTTPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.b == nil {
		return ""
	}
	return n.mu.b.HTTPAddr()
}

// Controller is the active controller (raft leader) as this node sees
// it: -1 while it knows none or the node is stopped.
func (n *Node) Controller() int32 {
	n.mu.Lock()
	b := n.mu.b
	n.mu.Unlock()
	if b == nil {
		return -1
	}
	return b.meta.ControllerID()
}

// MetadataStatus is a node's view of the metadata log.
type MetadataStatus struct {
	// Offset is the metadata image's end offset: in quorum mode the raft
	// index of the last change applied.
	Offset       int64
	ControllerID int32
	// Term, CommitIndex and AppliedIndex are raft's.
	Term, CommitIndex, AppliedIndex uint64
}

// MetadataStatus returns the node's view of the metadata log; ok is false
// while the node is stopped.
func (n *Node) MetadataStatus() (st MetadataStatus, ok bool) {
	n.mu.Lock()
	b := n.mu.b
	n.mu.Unlock()
	if b == nil {
		return MetadataStatus{}, false
	}
	s := b.meta.Status()
	return MetadataStatus{Offset: s.Offset, ControllerID: s.ControllerID, Term: s.Term, CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex}, true
}

// Stop stops the node cleanly (Broker.Close): the next start skips log
// recovery. Stopping a stopped node does nothing.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.b == nil {
		return nil
	}
	err := n.mu.b.Close()
	n.mu.b = nil
	return err
}

// Kill stops the node as abruptly as an in-process stop can: its client
// and node connections close at once, raft stops, and the logs close
// without Close's flush, producer-state snapshots, checkpoints and
// clean-shutdown marker, so that Restart runs log recovery as after a
// crash (see log.Manager.Abandon).
//
// What it simulates: a process kill (SIGKILL) as the node's peers and
// clients see it (connections reset, no goodbye), and the data dir a
// kill leaves behind. Raft's state is as durable at any moment as after
// a kill (raft-boltdb fsyncs every write; no snapshot is taken on the
// way down).
//
// What it cannot: writes already in the page cache stay there (a power
// loss would lose the unsynced ones: internal/fs's crashable FS and the
// power-loss tests simulate that); requests being handled run to their
// end before the files close, and appends and background flushes in
// progress finish rather than stop mid-write (no torn batch at the tail);
// the process's goroutines and memory are shared, so a node cannot be
// killed by the OS on its own (a real process kill: kill_test.go and the
// chaos suite).
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.b == nil {
		return
	}
	n.mu.b.kill()
	n.mu.b = nil
}

// Restart starts a stopped or killed node again with the same id, data
// dir and addresses, and returns once it has caught up with the
// controller quorum (which needs a majority running).
func (n *Node) Restart() error {
	n.mu.Lock()
	running := n.mu.b != nil
	n.mu.Unlock()
	if running {
		return fmt.Errorf("cluster: node %d is running", n.id)
	}
	// Go's listeners set SO_REUSEADDR: the addresses rebind while the
	// old connections linger in TIME_WAIT.
	var lns []net.Listener
	closeLns := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	if n.addr != "" {
		addrs := []string{n.addr}
		for _, l := range n.extra {
			addrs = append(addrs, l.Addr)
		}
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				closeLns()
				return fmt.Errorf("cluster: node %d: %w", n.id, err)
			}
			lns = append(lns, ln)
		}
	}
	ctrlLn, err := net.Listen("tcp", n.ctrlAddr)
	if err != nil {
		closeLns()
		return fmt.Errorf("cluster: node %d: %w", n.id, err)
	}
	return n.start(lns, ctrlLn)
}

// start starts the node on its bound listeners; it owns them. lns are
// its client listeners in the order of its listeners property (a nil or
// empty first one on a controller-only node).
func (n *Node) start(lns []net.Listener, ctrlLn net.Listener) error {
	if len(lns) > 0 && lns[0] == nil {
		lns = nil
	}
	closeLn := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	var httpLn net.Listener
	if n.cfg.HTTPListener != "" {
		var err error
		if httpLn, err = net.Listen("tcp", n.cfg.HTTPListener); err != nil {
			closeLn()
			ctrlLn.Close()
			return fmt.Errorf("cluster: node %d: http.listener: %w", n.id, err)
		}
	}
	var cls []clientListener
	if len(lns) > 0 {
		ls, err := n.cfg.ClientListeners()
		if err != nil || len(ls) != len(lns) { // Validate passed at StartCluster
			panic(fmt.Sprintf("cluster: node %d: %d listeners bound for %v: %v", n.id, len(lns), ls, err))
		}
		for i, ln := range lns {
			cls = append(cls, clientListener{ls[i], ln})
		}
	}
	n.mu.Lock()
	fsys := n.mu.fsys
	n.mu.Unlock()
	b, err := start(n.cfg, cls, httpLn, ctrlLn, n.logger, n.nn, fsys)
	if err != nil {
		closeLn()
		if httpLn != nil {
			httpLn.Close()
		}
		return fmt.Errorf("cluster: node %d: %w", n.id, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.b != nil { // a concurrent Restart won
		b.Close()
		return fmt.Errorf("cluster: node %d is running", n.id)
	}
	n.mu.b = b
	return nil
}

// kill closes the broker as Node.Kill describes. Later Close calls
// return nil.
func (b *Broker) kill() {
	b.closeOnce.Do(func() {
		if b.http != nil {
			b.http.SetReady(false)
		}
		b.h.Stop()
		// A cancelled context: every connection closes at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		b.srv.Shutdown(ctx)
		<-b.done
		if b.replicas != nil {
			b.replicas.Close() // a dead node fetches nothing more
		}
		if b.stopCtrl != nil {
			// No controlled shutdown: heartbeats just stop.
			b.stopCtrl()
			b.ctrl.Client().Close()
			b.ctrlSrv.Shutdown(ctx)
			<-b.ctrlDone
		}
		// Quorum mode: raft shuts down and leaves its state as it is.
		b.meta.Close()
		b.broker.Abandon()
		if b.http != nil {
			b.http.Close()
		}
	})
}
