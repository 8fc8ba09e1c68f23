package group

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic is the internal topic holding group metadata and offsets.
const Topic = "__consumer_offsets"

// Config configures a Coordinator. Zero durations and sizes take Kafka's
// defaults (see withDefaults).
type Config struct {
	// Partitions is the partition count of __consumer_offsets
	// (offsets.topic.num.partitions, 50).
	Partitions int32
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min/max.session.timeout.ms, 6 s and 30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (group.initial.rebalance.delay.ms,
	// 3 s). NoInitialRebalanceDelay sets it to zero.
	InitialRebalanceDelay   time.Duration
	NoInitialRebalanceDelay bool
	// MaxGroupSize is group.max.size (unbounded).
	MaxGroupSize int
	// OffsetsRetention is offsets.retention.minutes (7 days): how long
	// the offsets of an empty group are kept.
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms
	// (10 min).
	RetentionCheckInterval time.Duration
	// MaxMetadataSize is offset.metadata.max.bytes (4096).
	MaxMetadataSize int
	// ConsumerHeartbeatInterval and ConsumerSessionTimeout are
	// group.consumer.heartbeat.interval.ms (5 s) and
	// group.consumer.session.timeout.ms (45 s), for KIP-848 groups.
	ConsumerHeartbeatInterval, ConsumerSessionTimeout time.Duration
	// GroupConfigs, if set, returns a group's own session timeout and
	// heartbeat interval (KIP-848 group configs; zero: the above), ok
	// false when the group has none. Asked on every heartbeat.
	GroupConfigs func(groupID string) (session, heartbeat time.Duration, ok bool)
	// Topics resolves topic ids for KIP-848 assignments.
	Topics Topics
	// CompactAfterRecords is how many records a partition of
	// __consumer_offsets takes before it is compacted, when the Storage
	// is a Compactor (10000; and at least twice its live records).
	CompactAfterRecords int64
	// Storage persists records to __consumer_offsets.
	Storage Storage
	// PartitionExists reports whether a topic partition exists, for
	// OffsetCommit's UNKNOWN_TOPIC_OR_PARTITION. Nil accepts all.
	PartitionExists func(topic string, partition int32) bool
	Clock           Clock
	Logger          *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = 50
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.NoInitialRebalanceDelay {
		c.InitialRebalanceDelay = 0
	} else if c.InitialRebalanceDelay <= 0 {
		c.InitialRebalanceDelay = 3 * time.Second
	}
	if c.MaxGroupSize <= 0 {
		c.MaxGroupSize = math.MaxInt32
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = 10 * time.Minute
	}
	if c.MaxMetadataSize <= 0 {
		c.MaxMetadataSize = 4096
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.Topics == nil {
		c.Topics = noTopics{}
	}
	if c.CompactAfterRecords <= 0 {
		c.CompactAfterRecords = 10000
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PartitionExists == nil {
		c.PartitionExists = func(string, int32) bool { return true }
	}
	return c
}

type noTopics struct{}

func (noTopics) TopicByName(string) (TopicInfo, bool) { return TopicInfo{}, false }
func (noTopics) TopicByID([16]byte) (TopicInfo, bool) { return TopicInfo{}, false }
func (noTopics) AllTopics() []TopicInfo               { return nil }

// Storage appends records to __consumer_offsets.
type Storage interface {
	// Append writes one record batch to the partition and returns once
	// it is in the log (acknowledged as a produce with acks=all would
	// be).
	Append(partition int32, batch []byte) error
}

// Errors of a group operation, each carrying its Kafka code (codeFor).
var (
	// errNotCoordinator is returned once the coordinator is closed.
	errNotCoordinator = fmt.Errorf("group: coordinator is shutting down: %w", kerr.NotCoordinator)
	// errNotOwned: the group's partition of __consumer_offsets is not
	// loaded here (this node does not lead it).
	errNotOwned = fmt.Errorf("group: partition not coordinated by this node: %w", kerr.NotCoordinator)
	// errLoading: the group's partition is being loaded.
	errLoading = fmt.Errorf("group: partition is loading: %w", kerr.CoordinatorLoadInProgress)
)

// partState is the coordinator's hold on one partition of
// __consumer_offsets, as Kafka's GroupMetadataManager keeps its
// ownedPartitions and loadingPartitions.
type partState int8

const (
	partNotOwned partState = iota // not led here: NOT_COORDINATOR
	partLoading                   // Load is replaying it: COORDINATOR_LOAD_IN_PROGRESS
	partLoaded                    // its groups are served
)

// Coordinator runs the groups of the __consumer_offsets partitions this
// broker leads. A partition is served only between its Load and its
// Unload (Kafka's onElection and onResignation); a group of any other
// partition gets NOT_COORDINATOR, and one of a partition being loaded
// COORDINATOR_LOAD_IN_PROGRESS. Safe for concurrent use.
//
// Locks: partMu[p] (Load, Unload, compaction and CompleteTxn of p, one
// at a time) is taken before a group's mu, which is taken before mu (see
// LOCKS.md).
type Coordinator struct {
	cfg    Config
	clock  Clock
	logger *slog.Logger

	partMu []sync.Mutex // per partition: serializes Load, Unload, compact

	mu     sync.Mutex
	groups map[string]*group // only groups of loaded partitions
	parts  []partState       // per partition of __consumer_offsets
	closed bool
	expiry Timer

	// Compaction (compact.go), per partition: records appended since the
	// last compaction, live records after it, and whether one is queued.
	compactCh  chan int32
	closing    chan struct{}
	appended   []atomic.Int64
	live       []atomic.Int64
	compacting []atomic.Bool

	// next is, per partition, the position the next record written
	// takes in the order of the partition's records: the log end offset
	// after Load, then one more per record appended. Offsets remember
	// theirs (committed.order) so that a transaction's COMMIT applies a
	// transactional offset only over an older one (txn.go).
	next []atomic.Int64

	// txnGroups is, per partition, the groups in which each producer id
	// has pending transactional offsets (under mu), so that CompleteTxn
	// visits only those. It may name groups since deleted or completed.
	txnGroups []map[int64]map[string]struct{}
}

// New returns a coordinator that owns no partition: Load takes each
// partition this broker leads, filling its groups from the log.
func New(cfg Config) *Coordinator {
	cfg = cfg.withDefaults()
	c := &Coordinator{cfg: cfg, clock: cfg.Clock, logger: cfg.Logger, groups: map[string]*group{}, closing: make(chan struct{})}
	c.partMu = make([]sync.Mutex, cfg.Partitions)
	c.parts = make([]partState, cfg.Partitions)
	c.next = make([]atomic.Int64, cfg.Partitions)
	c.txnGroups = make([]map[int64]map[string]struct{}, cfg.Partitions)
	c.expiry = c.clock.AfterFunc(cfg.RetentionCheckInterval, c.runExpiry)
	if comp, ok := cfg.Storage.(Compactor); ok {
		c.compactCh = make(chan int32, cfg.Partitions)
		c.appended = make([]atomic.Int64, cfg.Partitions)
		c.live = make([]atomic.Int64, cfg.Partitions)
		c.compacting = make([]atomic.Bool, cfg.Partitions)
		go c.compactLoop(comp)
	}
	return c
}

func (c *Coordinator) runExpiry() {
	c.ExpireOffsets()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.expiry = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, c.runExpiry)
	}
}

// Partitions is the partition count of __consumer_offsets.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// PartitionFor returns the __consumer_offsets partition of a group, as
// Kafka computes it: the Java String.hashCode of the id, made non-negative,
// modulo the partition count. Using Kafka's function keeps a data directory
// readable by the same layout rules.
func PartitionFor(groupID string, partitions int32) int32 {
	var h int32
	for _, c := range utf16Units(groupID) {
		h = 31*h + int32(c)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// lockGroup returns the group locked, creating it (Empty) when create is
// set. nil means no such group. A group that died while this call waited
// for its lock (deleted, or its partition unloaded) is looked up again.
// The error is errNotOwned or errLoading when the group's partition is not
// served here.
func (c *Coordinator) lockGroup(id string, create bool) (*group, error) {
	p := PartitionFor(id, c.cfg.Partitions)
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errNotCoordinator
		}
		switch c.parts[p] {
		case partNotOwned:
			c.mu.Unlock()
			return nil, errNotOwned
		case partLoading:
			c.mu.Unlock()
			return nil, errLoading
		}
		g := c.groups[id]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil, nil
			}
			g = newGroup(c, id)
			c.groups[id] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if g.state != Dead {
			return g, nil
		}
		g.mu.Unlock()
	}
}

// removeLocked makes g Dead and forgets it. The caller holds g.mu.
func (c *Coordinator) removeLocked(g *group) {
	g.transition(Dead)
	g.stopTimers()
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

// groupsSnapshot returns the groups, sorted by id.
func (c *Coordinator) groupsSnapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return gs
}

// Close answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR
// (the client finds the coordinator again, as when Kafka moves a group)
// and stops all timers. Later requests get NOT_COORDINATOR too.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.closing)
	if c.expiry != nil {
		c.expiry.Stop()
	}
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		for _, m := range g.members {
			g.answerJoin(m, kerr.NotCoordinator.Code)
			g.answerSync(m, kerr.NotCoordinator.Code)
		}
		g.stopTimers()
		g.mu.Unlock()
	}
}

// codeFor maps a coordinator error to a Kafka error code.
func codeFor(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotCoordinator), errors.Is(err, errNotOwned), errors.Is(err, errLoading):
		errors.As(err, &ke)
		return ke.Code
	case errors.Is(err, kerr.InvalidProducerEpoch):
		// A transactional offset commit from a fenced producer.
		return kerr.InvalidProducerEpoch.Code
	}
	// The log could not take the write: the client retries, and
	// may find the coordinator elsewhere.
	return kerr.CoordinatorNotAvailable.Code
}

// nowMs is the clock in Unix milliseconds, as records carry it.
func (c *Coordinator) nowMs() int64 { return c.clock.Now().UnixMilli() }
