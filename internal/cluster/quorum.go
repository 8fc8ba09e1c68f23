package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// ErrNotController is what a change proposed on a node that is not the
// active controller (the raft leader) wraps: Kafka's NOT_CONTROLLER.
var ErrNotController = errors.New("cluster: not the active controller")

// NotControllerError refuses a change on a node that is not the raft
// leader, naming the leader so that the change can be sent there, as
// Kafka's brokers forward to the active controller.
type NotControllerError struct {
	// LeaderID is the active controller's node id, -1 while none is
	// known (an election is running).
	LeaderID int32
}

func (e *NotControllerError) Error() string {
	if e.LeaderID < 0 {
		return "cluster: not the active controller, and no controller is elected"
	}
	return fmt.Sprintf("cluster: not the active controller; the active controller is node %d", e.LeaderID)
}

func (e *NotControllerError) Is(target error) bool { return target == ErrNotController }

// Voter is one member of the controller quorum (controller.quorum.voters).
type Voter struct {
	ID   int32
	Addr string // host:port of its controller listener
}

// QuorumOptions configure quorum mode. The durations and counts are
// hashicorp/raft's; zero keeps raft's default.
type QuorumOptions struct {
	// Dir holds the raft state: raft.db (log and stable store) and
	// snapshots/.
	Dir string
	// Voters is the whole quorum, with this node if it is a voter. It
	// bootstraps the raft configuration once, when Dir holds no raft
	// state.
	Voters []Voter
	// Listener is the controller listener, bound by the caller. A
	// voter's address to the others is its entry in Voters.
	Listener net.Listener
	// Addr is this node's controller listener address as the others dial
	// it, when the node is not one of Voters: a broker-only node, which
	// follows the log as a raft non-voter. It bootstraps nothing; the
	// active controller adds it (Store.AddNonvoter) when it registers,
	// and its raft state keeps it a member across restarts.
	Addr string
	// Dial connects to another voter's controller listener; nil is
	// net.DialTimeout over TCP. Tests route it through a network they
	// can cut (internal/netsim).
	Dial func(address string, timeout time.Duration) (net.Conn, error)

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many log entries after the last snapshot
	// make raft take another, checked every SnapshotInterval;
	// TrailingLogs is how many entries a snapshot leaves in the log, so
	// that a follower a little behind catches up without the snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ApplyTimeout bounds how long a change waits to enter the leader's
	// log; 0 is 10 s.
	ApplyTimeout time.Duration
}

// quorum is quorum mode's committer: the metadata log is a hashicorp/raft
// log and the image is its FSM. Store.mu serializes its callers; the FSM
// runs on raft's goroutine.
type quorum struct {
	opts  Options
	raft  *raft.Raft
	fsm   *fsm
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
	// applyTimeout bounds raft.Apply and raft.Barrier.
	applyTimeout time.Duration
	// barrierTerm is the last term in which this node, as leader, saw
	// every entry of earlier terms applied (a raft barrier).
	barrierTerm uint64
	// opened is when raft started: a follower is caught up only after
	// contact with a leader since then (caughtUp).
	opened time.Time
	// apiLn is the controller listener's other half: connections that
	// speak Kafka's protocol (see SplitListener).
	apiLn net.Listener
	// voters are the quorum's node ids, as configured.
	voters []int32
}

// OpenQuorum starts this node's member of the controller quorum and
// returns a Store whose changes go through raft: quorum mode. The raft
// state under q.Dir is reused when it exists; otherwise the raft
// configuration is bootstrapped from q.Voters. The Store owns q.Listener
// from here on: Close closes it, and so does a failed OpenQuorum. raft
// restores its newest snapshot into the image before OpenQuorum returns,
// but applies the log entries after it only once a leader reports them
// committed: WaitCaughtUp waits for that.
func OpenQuorum(opts Options, q QuorumOptions) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var self *Voter
	voter := false
	for i := range q.Voters {
		if q.Voters[i].ID == opts.NodeID {
			self, voter = &q.Voters[i], true
		}
	}
	if self == nil {
		if q.Addr == "" {
			q.Listener.Close()
			return nil, fmt.Errorf("cluster: node %d is not one of the quorum's voters and has no address of its own to follow it as a non-voter", opts.NodeID)
		}
		self = &Voter{ID: opts.NodeID, Addr: q.Addr}
	}
	// Durably: raft's files below fsync themselves, but not their
	// names; a power loss after the first start must not take the
	// votes and log with the directory.
	if err := fs.MkdirAll(fs.OS, q.Dir, 0o755); err != nil {
		q.Listener.Close()
		return nil, err
	}
	hlog := raftLogger(opts.Logger)
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(strconv.Itoa(int(opts.NodeID)))
	conf.Logger = hlog
	setIf(&conf.HeartbeatTimeout, q.HeartbeatTimeout)
	setIf(&conf.ElectionTimeout, q.ElectionTimeout)
	setIf(&conf.LeaderLeaseTimeout, q.LeaderLeaseTimeout)
	setIf(&conf.SnapshotThreshold, q.SnapshotThreshold)
	setIf(&conf.SnapshotInterval, q.SnapshotInterval)
	setIf(&conf.TrailingLogs, q.TrailingLogs)
	if err := raft.ValidateConfig(conf); err != nil {
		q.Listener.Close()
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	c := &quorum{opts: opts, applyTimeout: cmpOr(q.ApplyTimeout, 10*time.Second)}
	for _, v := range q.Voters {
		c.voters = append(c.voters, v.ID)
	}
	image := newImageCell()
	image.Store(emptyImage())
	c.fsm = &fsm{image: image, logger: opts.Logger}

	var err error
	if c.store, err = raftboltdb.NewBoltStore(filepath.Join(q.Dir, "raft.db")); err != nil {
		q.Listener.Close()
		return nil, fmt.Errorf("cluster: open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(q.Dir, snapshotsRetained, hlog)
	if err == nil {
		// raft.db and the snapshots directory, which bolt and raft
		// create without syncing q.Dir.
		err = fs.OS.SyncDir(q.Dir)
	}
	if err != nil {
		c.store.Close()
		q.Listener.Close()
		return nil, fmt.Errorf("cluster: open raft snapshots: %w", err)
	}
	raftLn, kafkaLn := SplitListener(q.Listener)
	c.apiLn = kafkaLn
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: raftLn, addr: tcpAddr(self.Addr), dial: q.Dial},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})
	fail := func(err error) (*Store, error) {
		c.trans.Close()
		kafkaLn.Close() // with raft's half: closes the listener
		c.store.Close()
		return nil, err
	}
	existing, err := raft.HasExistingState(c.store, c.store, snaps)
	if err != nil {
		return fail(fmt.Errorf("cluster: read raft state: %w", err))
	}
	if !existing && voter {
		// Every voter bootstraps the same configuration from the
		// static voter list, once: hashicorp/raft's documented way to
		// form a cluster (Kafka's static controller.quorum.voters,
		// KIP-595). A restarted node keeps its log and term instead.
		var cfg raft.Configuration
		for _, v := range q.Voters {
			cfg.Servers = append(cfg.Servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(strconv.Itoa(int(v.ID))),
				Address:  raft.ServerAddress(v.Addr),
			})
		}
		if err := raft.BootstrapCluster(conf, c.store, c.store, snaps, c.trans, cfg); err != nil {
			return fail(fmt.Errorf("cluster: bootstrap raft: %w", err))
		}
		opts.Logger.Info("bootstrapped the controller quorum", "voters", len(q.Voters), "dir", q.Dir)
	} else if !existing {
		// A non-voter starts with no configuration: it takes no part
		// in elections and waits for the leader to add it and send it
		// the log.
		opts.Logger.Info("following the controller quorum as a non-voter; waiting to be added by the active controller", "voters", len(q.Voters), "dir", q.Dir)
	}
	c.opened = time.Now()
	if c.raft, err = raft.NewRaft(conf, c.fsm, c.store, c.store, snaps, c.trans); err != nil {
		return fail(fmt.Errorf("cluster: start raft: %w", err))
	}
	return newStore(opts, c, image), nil
}

func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// notController is the error of a change on a node that is not leader.
func (c *quorum) notController() error {
	return &NotControllerError{LeaderID: c.controller()}
}

func (c *quorum) controller() int32 {
	_, id := c.raft.LeaderWithID()
	n, err := strconv.ParseInt(string(id), 10, 32)
	if id == "" || err != nil {
		return -1
	}
	return int32(n)
}

// latest returns the leader's image once it holds every entry committed
// before the leader's term. A new raft leader may not have applied all
// of them yet, and a change checked against an older image could, for
// instance, create a topic that exists; Kafka's new active controller
// likewise replays the log to its end before it takes writes.
func (c *quorum) latest() (*Image, error) {
	if err := c.fsm.failed(); err != nil {
		return nil, err
	}
	if c.raft.State() != raft.Leader {
		return nil, c.notController()
	}
	if term := c.raft.CurrentTerm(); term != c.barrierTerm {
		if err := c.raft.Barrier(c.applyTimeout).Error(); err != nil {
			return nil, c.applyError(err)
		}
		c.barrierTerm = term
	}
	return c.fsm.image.Load(), nil
}

func (c *quorum) status() (term, commit, applied uint64) {
	return c.raft.CurrentTerm(), c.raft.CommitIndex(), c.raft.AppliedIndex()
}

// caughtUp: see Store.WaitCaughtUp. Requires Store.mu (latest does).
func (c *quorum) caughtUp() (bool, error) {
	switch c.raft.State() {
	case raft.Leader:
		_, err := c.latest()
		if errors.Is(err, ErrNotController) {
			return false, nil // lost leadership meanwhile: ask again
		}
		return err == nil, err
	case raft.Follower:
		if err := c.fsm.failed(); err != nil {
			return false, err
		}
		// A follower's commit index starts at 0 and is set only by an
		// AppendEntries that carries the leader's: heartbeats do not,
		// yet they count as contact. Until one has come, the log (a
		// snapshot's image, after a restart) may be far behind.
		_, id := c.raft.LeaderWithID()
		commit := c.raft.CommitIndex()
		return id != "" && c.raft.LastContact().After(c.opened) && commit > 0 && c.raft.AppliedIndex() >= commit, nil
	}
	return false, nil
}

// commit proposes recs as one raft log entry, the batch a local metadata
// log would hold, and waits until this node's FSM applied it.
func (c *quorum) commit(recs []records.Record) (*Image, error) {
	d := newDelta(c.fsm.image.Load())
	for _, r := range recs {
		if err := d.apply(r); err != nil {
			return nil, err // a bug in the caller: nothing was proposed
		}
	}
	b, err := encodeBatch(recs)
	if err != nil {
		return nil, err
	}
	f := c.raft.Apply(b, c.applyTimeout)
	if err := f.Error(); err != nil {
		return nil, c.applyError(err)
	}
	switch r := f.Response().(type) {
	case *Image:
		return r, nil
	case error:
		return nil, r
	default:
		panic(fmt.Sprintf("cluster: FSM answered %T", r))
	}
}

// applyError maps raft's errors: a lost leadership is NOT_CONTROLLER. A
// change that was in flight when leadership was lost may still commit
// under the next leader, as with Kafka's NOT_CONTROLLER after a failover:
// a client that retries sees it (TOPIC_ALREADY_EXISTS, say).
func (c *quorum) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return c.notController()
	case errors.Is(err, raft.ErrRaftShutdown):
		return log.ErrClosed
	}
	return fmt.Errorf("cluster: raft: %w", err)
}

// addNonvoter adds node id, at its controller listener addr, to the raft
// configuration as a non-voter, on the leader; nothing when it is a
// member already at that address (a voter, or a non-voter added before).
func (c *quorum) addNonvoter(id int32, addr string) error {
	if c.raft.State() != raft.Leader {
		return c.notController()
	}
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return c.applyError(err)
	}
	sid := raft.ServerID(strconv.Itoa(int(id)))
	for _, s := range f.Configuration().Servers {
		if s.ID == sid && (s.Suffrage == raft.Voter || s.Address == raft.ServerAddress(addr)) {
			return nil
		}
	}
	if err := c.raft.AddNonvoter(sid, raft.ServerAddress(addr), 0, c.applyTimeout).Error(); err != nil {
		return c.applyError(err)
	}
	c.opts.Logger.Info("added a broker to the raft configuration as a non-voter", "broker", id, "addr", addr)
	return nil
}

// close leaves the quorum's state on disk: raft's log, term and snapshots
// are what the next start resumes from.
func (c *quorum) close() error {
	err := c.raft.Shutdown().Error()
	// The controller APIs' half is closed by their server, already
	// (Broker.Close) or never (it did not start): closing it again is a
	// no-op, and the listener closes with the second half.
	return errors.Join(err, c.trans.Close(), c.apiLn.Close(), c.store.Close())
}

// fsm is the metadata image as raft's state machine. Apply runs on
// raft's FSM goroutine, in log order, on every node; Snapshot only
// captures the immutable image pointer (STYLE.md, hashicorp/raft fsm.go).
type fsm struct {
	image  *imageCell
	logger *slog.Logger
	// fault is set when an entry cannot be decoded: the image stops
	// there instead of diverging from the other nodes', as Kafka's
	// broker stops applying metadata on a fault in MetadataLoader.
	fault atomic.Pointer[error]
}

func (f *fsm) failed() error {
	if p := f.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// Apply applies one entry's batch of records. The image's EndOffset
// becomes the entry's raft index: the metadata offset in quorum mode. A
// batch that does not fit the image (ErrInconsistent) is skipped whole on
// every node alike, and its proposer gets the error.
func (f *fsm) Apply(l *raft.Log) any {
	if err := f.failed(); err != nil {
		return err
	}
	cur := f.image.Load()
	recs, err := decodeBatch(l.Data)
	if err != nil {
		err = fmt.Errorf("cluster: metadata entry at raft index %d: %w", l.Index, err)
		f.logger.Error("cannot apply metadata; the image stops here", "index", l.Index, "err", err)
		f.fault.Store(&err)
		return err
	}
	d := newDelta(cur)
	for _, r := range recs {
		if err := d.apply(r); err != nil {
			f.logger.Warn("metadata entry skipped", "index", l.Index, "err", err)
			next := *cur
			next.EndOffset = int64(l.Index)
			f.image.Store(&next)
			return err
		}
	}
	im := d.finish(int64(l.Index))
	f.image.Store(im)
	return im
}

func decodeBatch(data []byte) ([]records.Record, error) {
	b, rest, err := record.Parse(data)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the batch", len(rest))
	}
	if err != nil {
		return nil, err
	}
	var recs []records.Record
	var derr error
	err = b.ForEachRecord(func(r *record.Record) bool {
		var rec records.Record
		rec, _, derr = records.Decode(r.Value)
		recs = append(recs, rec)
		return derr == nil
	})
	if err == nil {
		err = derr
	}
	return recs, err
}

// Snapshot captures the image; Persist writes it on raft's snapshot
// goroutine while Apply goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{im: f.image.Load()}, nil
}

// Restore replaces the image with a snapshot's: at start, and when the
// leader sends a snapshot to a follower that is too far behind.
func (f *fsm) Restore(rc io.ReadCloser) error {
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	im, err := decodeRaftSnapshot(data)
	if err != nil {
		return err
	}
	f.image.Store(im)
	f.logger.Info("restored metadata image from a raft snapshot", "end_offset", im.EndOffset, "topics", len(im.Topics))
	return nil
}

type fsmSnapshot struct{ im *Image }

// Persist writes the raft snapshot: the image's end offset, 8 bytes big
// endian (raft keeps the snapshot's index in its own metadata, which
// Restore is not given), then the batch a local snapshot holds.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := encodeSnapshot(s.im)
	if err == nil {
		_, err = sink.Write(binary.BigEndian.AppendUint64(nil, uint64(s.im.EndOffset)))
	}
	if err == nil && data != nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

func decodeRaftSnapshot(data []byte) (*Image, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("%w: raft snapshot of %d bytes", ErrCorruptSnapshot, len(data))
	}
	end := int64(binary.BigEndian.Uint64(data))
	if len(data) == 8 {
		im := emptyImage()
		im.EndOffset = end
		return im, nil
	}
	im, err := decodeSnapshot(data[8:], end)
	if err != nil {
		return nil, fmt.Errorf("%w: raft snapshot: %w", ErrCorruptSnapshot, err)
	}
	return im, nil
}

// streamLayer is raft's TCP transport on the controller listener the
// caller bound, so that tests can bind port 0 and every node can be
// given its peers' addresses before it starts.
type streamLayer struct {
	net.Listener
	addr net.Addr
	dial func(address string, timeout time.Duration) (net.Conn, error) // nil: TCP
}

// Addr is this node's address as the other voters dial it.
func (s *streamLayer) Addr() net.Addr { return s.addr }

// Dial connects to a voter's controller listener and announces a raft
// connection (see SplitListener).
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	dial := s.dial
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	c, err := dial(string(address), timeout)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{RaftConnByte}); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
