package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// Config configures a node's Controller.
type Config struct {
	NodeID    int32
	ClusterID string
	Store     *cluster.Store
	// Client reaches the active controller; nil in local mode, where the
	// node is its own controller and registers itself unfenced.
	Client *Client
	// DefaultReplicationFactor is default.replication.factor (1): the
	// factor of a topic created without one.
	DefaultReplicationFactor int16
	// HeartbeatInterval is broker.heartbeat.interval.ms (2 s);
	// SessionTimeout is broker.session.timeout.ms (9 s).
	HeartbeatInterval, SessionTimeout time.Duration
	// UncleanLeaderElection is unclean.leader.election.enable (false):
	// whether a partition whose ISR has no usable member may elect a
	// replica outside it, losing the records it lacks. A topic's own
	// unclean.leader.election.enable, or the cluster-wide dynamic default,
	// overrides it (Unclean).
	UncleanLeaderElection bool
	// AutoLeaderRebalance is auto.leader.rebalance.enable (true in
	// internal/config; false in a zero Config): the active controller
	// moves leadership back to each partition's preferred replica every
	// LeaderImbalanceCheckInterval (leader.imbalance.check.interval.seconds,
	// 300 s) for the brokers whose share of partitions not led by their
	// preferred replica is above LeaderImbalancePerBrokerPercentage
	// (leader.imbalance.per.broker.percentage, 10).
	AutoLeaderRebalance                bool
	LeaderImbalanceCheckInterval       time.Duration
	LeaderImbalancePerBrokerPercentage int
	// ControllerListener is the name of the controller listener
	// (controller.listener.names' first): a broker that is not a voter
	// registers it among its listeners, and the active controller adds
	// that address to raft as a non-voter.
	ControllerListener string
	Logger             *slog.Logger
}

// Controller is a node's part in the broker lifecycle (KIP-631), on the
// sides its process.roles give it (RunBroker, RunController; a combined
// node runs both):
//
//   - as a broker, a node registers with the active controller
//     (BrokerRegistration, with a new incarnation id per process) and then
//     heartbeats every broker.heartbeat.interval.ms, reporting its metadata
//     offset; it registers fenced and is unfenced once it has caught up
//     with the metadata log up to its registration, and a controlled
//     shutdown asks, through the same heartbeats, for its leaderships to
//     move away before the process stops;
//   - as the active controller (the raft leader, always a voter), it
//     adds a broker that is not a voter to raft as a non-voter, answers those
//     requests with records through the Store, and fences a broker whose
//     last heartbeat is older than broker.session.timeout.ms, moving its
//     leaderships away (Kafka's BrokerHeartbeatManager and
//     ClusterControlManager). Session times live in memory only: a new
//     active controller gives every broker a fresh session, as Kafka's
//     does.
type Controller struct {
	cfg    Config
	logger *slog.Logger
	inc    records.UUID
	// refused is the last registration refusal logged, so that a
	// refusal repeated on every retry is logged once. Owned by Run's
	// goroutine.
	refused error

	mu struct {
		sync.Mutex
		// sessions: last heartbeat per broker, on the active
		// controller; leading is whether they are being kept. heard
		// holds the brokers that registered or heartbeat to this
		// controller since it became active (a fresh session given at
		// failover does not prove a broker alive).
		sessions map[int32]time.Time
		heard    map[int32]bool
		// offsets: each broker's metadata offset as its last
		// heartbeat reported it (DescribeQuorum).
		offsets map[int32]int64
		leading bool
		// broker side
		epoch        int64
		fenced       bool
		wantShutdown bool
		// wantFence: the broker asks to be fenced (its log dirs
		// failed, SetWantFence).
		wantFence      bool
		shouldShutdown bool
	}
	changed chan struct{} // broker state changed (buffered 1)
}

// New returns a node's Controller. Run starts its loops.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 9 * time.Second
	}
	if cfg.LeaderImbalanceCheckInterval <= 0 {
		cfg.LeaderImbalanceCheckInterval = 300 * time.Second
	}
	c := &Controller{cfg: cfg, logger: cfg.Logger, changed: make(chan struct{}, 1)}
	for c.inc == (records.UUID{}) {
		rand.Read(c.inc[:])
	}
	c.mu.sessions = map[int32]time.Time{}
	c.mu.heard = map[int32]bool{}
	c.mu.offsets = map[int32]int64{}
	c.mu.epoch = -1
	c.mu.fenced = true
	return c
}

// Store is the metadata store the controller proposes to.
func (c *Controller) Store() *cluster.Store { return c.cfg.Store }

// Client is the client of the active controller, nil in local mode.
func (c *Controller) Client() *Client { return c.cfg.Client }

// Fenced reports whether this broker is fenced (or not registered yet).
// In local mode, where the node registers itself and no heartbeat answers,
// its registration in the image says.
func (c *Controller) Fenced() bool {
	if c.cfg.Client == nil {
		b := c.localRegistration()
		return b == nil || b.Fenced
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.fenced
}

// BrokerEpoch is this broker's epoch, -1 before it registered (in local
// mode, the epoch of its registration in the image).
func (c *Controller) BrokerEpoch() int64 {
	if c.cfg.Client == nil {
		if b := c.localRegistration(); b != nil {
			return b.Epoch
		}
		return -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.epoch
}

// localRegistration is this node's registration in the image, nil if
// none (or no Store).
func (c *Controller) localRegistration() *cluster.Broker {
	if c.cfg.Store == nil {
		return nil
	}
	return c.cfg.Store.Image().Broker(c.cfg.NodeID)
}

// ---- the active controller's side ----

var (
	errStaleEpoch    = fmt.Errorf("%w: the broker epoch is not the registered one", kerr.StaleBrokerEpoch)
	errNotRegistered = fmt.Errorf("%w: the broker is not registered", kerr.BrokerIDNotRegistered)
)

// RegisterBroker handles BrokerRegistration on the active controller: a
// RegisterBrokerRecord, fenced, whose offset-derived epoch it returns. A
// retry of the same incarnation gets the epoch it already has; a new
// incarnation while the old one still heartbeats is
// DUPLICATE_BROKER_REGISTRATION. Leaderships of the broker's previous
// incarnation move away with the registration: they come back when it
// is unfenced.
func (c *Controller) RegisterBroker(req *kmsg.BrokerRegistrationRequest) (int64, error) {
	if req.ClusterID != c.cfg.ClusterID {
		return -1, fmt.Errorf("%w: the broker's cluster id is %q, this cluster's %q", kerr.InconsistentClusterID, req.ClusterID, c.cfg.ClusterID)
	}
	if err := c.addNonvoter(req); err != nil {
		return -1, err
	}
	var epoch int64
	_, err := c.cfg.Store.Propose(func(im *cluster.Image) ([]records.Record, error) {
		old := im.Broker(req.BrokerID)
		if old != nil && old.IncarnationID == req.IncarnationID {
			epoch = old.Epoch
			return nil, nil
		}
		// A new incarnation while the old one still heartbeats is a
		// second process with the same node.id. One that finished a
		// controlled shutdown said it was stopping, and this node's
		// own old incarnation is this very process's past.
		if old != nil && !old.Fenced && !old.InControlledShutdown && req.BrokerID != c.cfg.NodeID && c.heardAlive(req.BrokerID) {
			return nil, fmt.Errorf("%w: broker %d is registered with another incarnation that is still alive", kerr.DuplicateBrokerRegistration, req.BrokerID)
		}
		epoch = im.EndOffset
		reg := &records.RegisterBroker{
			BrokerID: req.BrokerID, IncarnationID: req.IncarnationID, BrokerEpoch: epoch,
			Rack: req.Rack, Fenced: true, LogDirs: nil,
		}
		for _, l := range req.Listeners {
			reg.EndPoints = append(reg.EndPoints, records.Endpoint{Name: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol})
		}
		recs := []records.Record{reg}
		if old != nil {
			recs = append(recs, FenceChanges(im, req.BrokerID, c.Unclean(im))...)
		}
		return recs, nil
	})
	if err != nil {
		return -1, err
	}
	c.touch(req.BrokerID)
	c.logger.Info("broker registered", "broker", req.BrokerID, "epoch", epoch)
	return epoch, nil
}

// addNonvoter makes a registering broker that is not a voter of the
// quorum a raft non-voter at its controller listener, before its
// registration is recorded, so that the metadata log reaches it (strata's
// broker-only nodes follow the log through raft, where Kafka's fetch it
// from the controllers). It does nothing for a voter or a broker added
// before (a restart, a retry).
func (c *Controller) addNonvoter(req *kmsg.BrokerRegistrationRequest) error {
	voters := c.cfg.Store.Voters()
	if voters == nil || slices.Contains(voters, req.BrokerID) {
		return nil
	}
	for _, l := range req.Listeners {
		if l.Name == c.cfg.ControllerListener && c.cfg.ControllerListener != "" {
			return c.cfg.Store.AddNonvoter(req.BrokerID, net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))))
		}
	}
	return fmt.Errorf("%w: broker %d is not a voter of the controller quorum and registers no %s listener for the metadata log to reach it", kerr.InvalidRegistration, req.BrokerID, c.cfg.ControllerListener)
}

// Heartbeat handles BrokerHeartbeat on the active controller.
func (c *Controller) Heartbeat(req *kmsg.BrokerHeartbeatRequest) (*kmsg.BrokerHeartbeatResponse, error) {
	resp := kmsg.NewPtrBrokerHeartbeatResponse()
	im := c.cfg.Store.Image()
	b := im.Broker(req.BrokerID)
	switch {
	case b == nil:
		return nil, errNotRegistered
	case b.Epoch != req.BrokerEpoch:
		return nil, errStaleEpoch
	}
	c.touch(req.BrokerID)
	c.mu.Lock()
	c.mu.offsets[req.BrokerID] = req.CurrentMetadataOffset
	c.mu.Unlock()
	caughtUp := req.CurrentMetadataOffset > b.Epoch
	im, err := c.cfg.Store.Propose(func(im *cluster.Image) ([]records.Record, error) {
		b := im.Broker(req.BrokerID)
		if b == nil || b.Epoch != req.BrokerEpoch {
			return nil, errStaleEpoch
		}
		change := &records.BrokerRegistrationChange{BrokerID: b.ID, BrokerEpoch: b.Epoch}
		switch {
		case req.WantShutdown && !b.InControlledShutdown:
			change.InControlledShutdown = 1
			return append([]records.Record{change}, ControlledShutdownChanges(im, b.ID, c.Unclean(im))...), nil
		case req.WantShutdown && b.InControlledShutdown:
			// Leaderships may have come back meanwhile (an election);
			// move them again.
			return ControlledShutdownChanges(im, b.ID, c.Unclean(im)), nil
		case req.WantFence && !b.Fenced:
			change.Fenced = 1
			return append([]records.Record{change}, FenceChanges(im, b.ID, c.Unclean(im))...), nil
		case b.Fenced && caughtUp && !req.WantFence && !b.InControlledShutdown:
			change.Fenced = -1
			recs := append([]records.Record{change}, UnfenceChanges(im, b.ID, c.Unclean(im))...)
			// A reassignment waiting for a usable leader among its
			// target replicas may complete now. Its record comes after
			// any election above and states the whole result, so that
			// it holds applied on top.
			return append(recs, ReassignmentCompletions(im, b.ID)...), nil
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	b = im.Broker(req.BrokerID)
	resp.IsCaughtUp = caughtUp
	resp.IsFenced = b.Fenced
	resp.ShouldShutdown = b.InControlledShutdown && !leadsAny(im, b.ID)
	return resp, nil
}

// AllocateProducerIDs handles AllocateProducerIds on the active
// controller: the next block of producer ids, through the quorum.
func (c *Controller) AllocateProducerIDs(req *kmsg.AllocateProducerIDsRequest) (start int64, n int32, err error) {
	b := c.cfg.Store.Image().Broker(req.BrokerID)
	if b == nil || b.Epoch != req.BrokerEpoch {
		return 0, 0, errStaleEpoch
	}
	start, err = c.cfg.Store.ReserveProducerIDs(req.BrokerID, req.BrokerEpoch)
	return start, cluster.ProducerIDBlock, err
}

func leadsAny(im *cluster.Image, id int32) bool {
	for _, t := range im.Topics {
		for _, p := range t.PartitionStates {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

func (c *Controller) touch(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.leading {
		c.mu.sessions[id] = time.Now()
		c.mu.heard[id] = true
	}
}

func (c *Controller) sessionValid(id int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.mu.sessions[id]
	return ok && time.Since(last) < c.cfg.SessionTimeout
}

// heardAlive reports whether broker id heartbeat to this controller within
// the session timeout: another incarnation of it cannot register then.
func (c *Controller) heardAlive(id int32) bool {
	c.mu.Lock()
	heard := c.mu.heard[id]
	c.mu.Unlock()
	return heard && c.sessionValid(id)
}

// fenceExpired runs on every node; only the active controller acts. It
// fences each unfenced broker whose session expired and moves its
// leaderships away.
func (c *Controller) fenceExpired() {
	store := c.cfg.Store
	leading := store.ControllerID() == c.cfg.NodeID
	now := time.Now()
	c.mu.Lock()
	if !leading {
		c.mu.leading = false
		c.mu.Unlock()
		return
	}
	if !c.mu.leading {
		// A new active controller: every broker starts a fresh session.
		c.mu.leading = true
		clear(c.mu.sessions)
		clear(c.mu.heard)
		clear(c.mu.offsets)
		for id := range store.Image().Brokers {
			c.mu.sessions[id] = now
		}
	}
	var expired []int32
	for id, b := range store.Image().Brokers {
		last, ok := c.mu.sessions[id]
		if !ok {
			c.mu.sessions[id] = now
			continue
		}
		if !b.Fenced && now.Sub(last) > c.cfg.SessionTimeout {
			expired = append(expired, id)
		}
	}
	c.mu.Unlock()
	for _, id := range expired {
		_, err := store.Propose(func(im *cluster.Image) ([]records.Record, error) {
			b := im.Broker(id)
			if b == nil || b.Fenced || c.sessionValid(id) {
				return nil, nil
			}
			recs := []records.Record{&records.BrokerRegistrationChange{BrokerID: id, BrokerEpoch: b.Epoch, Fenced: 1}}
			return append(recs, FenceChanges(im, id, c.Unclean(im))...), nil
		})
		if err != nil {
			c.logger.Warn("fencing a broker whose session expired", "broker", id, "err", err)
			continue
		}
		c.logger.Warn("fenced broker: no heartbeat within broker.session.timeout.ms", "broker", id, "session_timeout", c.cfg.SessionTimeout)
	}
}

// ---- the broker's side ----

// Registration is what this broker registers: its listeners and rack.
type Registration struct {
	Listeners []kmsg.BrokerRegistrationRequestListener
	Rack      *string
}

// RunController is a controller's side (process.roles controller): while
// this node is the active controller, it fences brokers whose sessions
// expire and, every leader.imbalance.check.interval.seconds, runs
// BalanceLeaders (unclean elections where allowed, and with
// auto.leader.rebalance.enable preferred leader elections). It returns
// when ctx ends. In local mode it does nothing.
func (c *Controller) RunController(ctx context.Context) {
	if c.cfg.Client == nil {
		return
	}
	t := time.NewTicker(c.cfg.SessionTimeout / 9)
	defer t.Stop()
	balance := time.NewTicker(c.cfg.LeaderImbalanceCheckInterval)
	defer balance.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.fenceExpired()
		case <-balance.C:
			if _, err := c.BalanceLeaders(); err != nil {
				c.logger.Warn("leader imbalance check", "err", err)
			}
		}
	}
}

// RunBroker is a broker's side (process.roles broker): it registers this
// broker with the active controller and heartbeats until ctx ends. In
// local mode it does nothing: the node registered itself at start.
func (c *Controller) RunBroker(ctx context.Context, reg Registration) {
	if c.cfg.Client == nil {
		return
	}
	retry := c.cfg.HeartbeatInterval / 8
	next := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		case <-c.changed:
		}
		next = c.cfg.HeartbeatInterval
		if err := c.beat(ctx, reg); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.logger.Debug("broker heartbeat", "err", err)
			next = retry
		}
	}
}

// beat registers the broker if it has no epoch yet, else heartbeats.
func (c *Controller) beat(ctx context.Context, reg Registration) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
	defer cancel()
	c.mu.Lock()
	epoch, wantShutdown, wantFence := c.mu.epoch, c.mu.wantShutdown, c.mu.wantFence
	c.mu.Unlock()
	if epoch < 0 {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.SetVersion(3)
		req.BrokerID, req.ClusterID, req.IncarnationID = c.cfg.NodeID, c.cfg.ClusterID, c.inc
		req.Listeners, req.Rack, req.PreviousBrokerEpoch = reg.Listeners, reg.Rack, -1
		r, err := c.cfg.Client.Send(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.BrokerRegistrationResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			// A refusal other than NOT_CONTROLLER (a failover) keeps
			// this broker fenced, and at start not ready, until an
			// operator acts: say so once per reason, not at Debug on
			// every retry.
			if !errors.Is(err, kerr.NotController) && !errors.Is(err, c.refused) {
				attrs := []any{"err", err, "cluster_id", c.cfg.ClusterID, "controller", c.cfg.Store.ControllerID()}
				switch {
				case errors.Is(err, kerr.DuplicateBrokerRegistration):
					// A restart within the session of the previous
					// process: Kafka's controller too waits for it to
					// expire.
					c.logger.Info("the previous incarnation of this broker is still registered: retrying until its session expires (broker.session.timeout.ms)", attrs...)
				case errors.Is(err, kerr.InconsistentClusterID):
					c.logger.Warn("the controller refused this broker's registration: its cluster id differs from this node's (meta.properties), derived from controller.quorum.voters, which must name the same voters with the same addresses on every node", attrs...)
				default:
					c.logger.Warn("the controller refused this broker's registration", attrs...)
				}
			}
			c.refused = err
			return fmt.Errorf("register: %w", err)
		}
		c.refused = nil
		c.mu.Lock()
		c.mu.epoch = resp.BrokerEpoch
		c.mu.Unlock()
		c.logger.Info("registered with the controller", "broker_epoch", resp.BrokerEpoch, "controller", c.cfg.Store.ControllerID())
		c.kick()
		return nil
	}
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.SetVersion(1)
	req.BrokerID, req.BrokerEpoch = c.cfg.NodeID, epoch
	req.CurrentMetadataOffset = c.cfg.Store.Image().EndOffset
	req.WantShutdown = wantShutdown
	req.WantFence = wantFence
	r, err := c.cfg.Client.Send(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.BrokerHeartbeatResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered) {
			// The controller lost our registration (or another
			// incarnation replaced it): register again.
			c.mu.Lock()
			c.mu.epoch, c.mu.fenced = -1, true
			c.mu.Unlock()
		}
		return fmt.Errorf("heartbeat: %w", err)
	}
	c.mu.Lock()
	was := c.mu.fenced
	c.mu.fenced = resp.IsFenced
	c.mu.shouldShutdown = resp.ShouldShutdown
	c.mu.Unlock()
	if was != resp.IsFenced {
		c.logger.Info("broker fencing changed", "fenced", resp.IsFenced, "caught_up", resp.IsCaughtUp)
	}
	if resp.IsFenced && resp.IsCaughtUp {
		return nil
	}
	if resp.IsFenced || wantShutdown && !resp.ShouldShutdown {
		// Still catching up, or waiting for leaderships to move:
		// heartbeat again soon rather than in 2 s.
		return errRetrySoon
	}
	return nil
}

var errRetrySoon = errors.New("retry soon")

func (c *Controller) kick() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// SetWantFence makes this broker's heartbeats ask to be fenced, or stop
// asking, and heartbeats at once. A broker whose log dirs fail asks, so
// that the controller moves its leaderships away and takes it out of
// every ISR (Kafka's broker goes further and stops); once they heal it
// is unfenced as at startup, when caught up with the metadata.
func (c *Controller) SetWantFence(fence bool) {
	c.mu.Lock()
	c.mu.wantFence = fence
	c.mu.Unlock()
	c.kick()
}

// ControlledShutdown asks the active controller to move this broker's
// leaderships away and waits until it says the broker may stop, or ctx
// ends (Kafka's controlled.shutdown: a second signal or the timeout stops
// the broker anyway). In local mode there is nothing to move.
func (c *Controller) ControlledShutdown(ctx context.Context) error {
	if c.cfg.Client == nil {
		return nil
	}
	c.mu.Lock()
	c.mu.wantShutdown = true
	c.mu.Unlock()
	c.kick()
	for {
		if c.cfg.Store.ControllerID() < 0 {
			// No quorum to move leaderships through (the others are
			// down, or this node is cut off): nothing will answer.
			return ErrNoController
		}
		c.mu.Lock()
		done := c.mu.shouldShutdown
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ReserveProducerIDs reserves a block of producer ids for this broker
// through the active controller (AllocateProducerIds), retrying while
// there is no controller, for up to the session timeout.
func (c *Controller) ReserveProducerIDs() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.SessionTimeout)
	defer cancel()
	for {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = c.cfg.NodeID, c.BrokerEpoch()
		r, err := c.cfg.Client.Send(ctx, req)
		if err == nil {
			resp := r.(*kmsg.AllocateProducerIDsResponse)
			if err = kerr.ErrorForCode(resp.ErrorCode); err == nil {
				return resp.ProducerIDStart, nil
			}
			if !errors.Is(err, kerr.NotController) {
				return 0, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("reserve producer ids: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitUnfenced waits until this broker is registered and unfenced, as a
// Kafka broker waits for its first unfencing before it starts serving, and
// until its own metadata image shows it so: the heartbeat response that
// unfences it can arrive before this node applies the UnfenceBrokerRecord,
// and a client bootstrapping from a node in that window would get a
// Metadata response that leaves the node itself out.
func (c *Controller) WaitUnfenced(ctx context.Context) error {
	for c.Fenced() || !c.imageUnfenced() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller: waiting to be unfenced (controller %d): %w", c.cfg.Store.ControllerID(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// imageUnfenced reports whether this node's image has this broker, at its
// current epoch, unfenced.
func (c *Controller) imageUnfenced() bool {
	b := c.cfg.Store.Image().Broker(c.cfg.NodeID)
	return b != nil && !b.Fenced && b.Epoch == c.BrokerEpoch()
}

// BrokerState is a broker as the active controller last heard from it.
type BrokerState struct {
	ID int32
	// MetadataOffset is the offset its last heartbeat reported, -1 if
	// none reached this controller since it became active.
	MetadataOffset int64
	// LastHeartbeat is when that was (zero if never).
	LastHeartbeat time.Time
}

// BrokerStates returns, on the active controller, what each registered
// broker's heartbeats last said; nil on other nodes.
func (c *Controller) BrokerStates() []BrokerState {
	if c.cfg.Store.ControllerID() != c.cfg.NodeID {
		return nil
	}
	im := c.cfg.Store.Image()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []BrokerState
	for id := range im.Brokers {
		st := BrokerState{ID: id, MetadataOffset: -1}
		if off, ok := c.mu.offsets[id]; ok {
			st.MetadataOffset, st.LastHeartbeat = off, c.mu.sessions[id]
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b BrokerState) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
