package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic is the internal topic of the coordinator's state.
const Topic = "__transaction_state"

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Storage persists the coordinator's records in the partitions of
// __transaction_state. Append returns once the record is durable as an
// acks=all produce (min.insync.replicas applies); an error may carry a
// kerr code (NOT_COORDINATOR when this node no longer leads p), others
// are answered COORDINATOR_NOT_AVAILABLE. Read replays partition p's
// records in order (value nil for a tombstone); a partition never written
// reads empty.
type Storage interface {
	Append(p int32, key, value []byte) error
	Read(p int32, fn func(key, value []byte) error) error
}

// Marker is one WriteTxnMarkers entry: the end of a producer's
// transaction in some partitions.
type Marker struct {
	ProducerID         int64
	ProducerEpoch      int16
	Commit             bool
	CoordinatorEpoch   int32
	TransactionVersion int8
	Partitions         []TopicPartition
}

// MarkerWriter writes a transaction's markers to its partitions (the
// kafka package: WriteTxnMarkers to each partition's leader, locally for
// partitions this node leads). It returns the partitions whose marker was
// not written, with why; a partition that no longer exists counts as
// written. The coordinator retries the others until they are written,
// except after TRANSACTION_COORDINATOR_FENCED or INVALID_PRODUCER_EPOCH,
// which mean that another coordinator or a newer epoch owns the
// transaction: it stops there, as Kafka's marker channel does.
type MarkerWriter interface {
	WriteMarkers(ctx context.Context, m Marker) map[TopicPartition]error
}

// Clock is the coordinator's source of time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures a Coordinator.
type Config struct {
	// Partitions is transaction.state.log.num.partitions (50), or the
	// partition count of the existing topic.
	Partitions int32
	// MaxTimeout is transaction.max.timeout.ms (15 min).
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (7 days).
	IDExpiration time.Duration
	// AbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s);
	// RemoveExpiredInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms (1 h).
	// Zero runs no background loop (tests call AbortTimedOut and
	// RemoveExpired).
	AbortInterval         time.Duration
	RemoveExpiredInterval time.Duration
	// MarkerRetryBackoff is the wait before markers are sent again to
	// partitions that did not take them (100 ms when zero).
	MarkerRetryBackoff time.Duration
	Storage            Storage
	Markers            MarkerWriter
	// ProducerIDs allocates a new producer id.
	ProducerIDs func() (int64, error)
	Clock       Clock
	Logger      *slog.Logger
	// OnChange, if set, is called (without locks held) after markers are
	// queued or completed, for metrics.
	OnChange func()
}

// part is a partition of __transaction_state that this node loads or has
// loaded, in the coordinator epoch (its leader epoch) it was loaded in.
type part struct {
	epoch   int32
	loading bool
	ctx     context.Context
	cancel  context.CancelFunc
	// appended counts records written since the load or the last
	// compaction (replayed ones included); live is the ids at the last
	// compaction or load.
	appended, live int64
	compacting     bool
}

// meta is one transactional id's state (Kafka's TransactionMetadata).
// Guarded by Coordinator.mu.
type meta struct {
	id                             string
	part                           int32
	producerID                     int64
	prevProducerID, nextProducerID int64
	epoch, lastEpoch               int16
	timeoutMs                      int32
	state                          State
	partitions                     map[TopicPartition]struct{}
	start, lastUpdate              int64 // ms; start -1 outside a transaction
	txnVersion                     int16
	// pending is set while a transition of the id is being written.
	pending bool
	// sending is set while the markers of a prepared transaction are
	// being sent.
	sending bool
}

func (m *meta) clone() meta {
	n := *m
	n.partitions = maps.Clone(m.partitions)
	if n.partitions == nil {
		n.partitions = map[TopicPartition]struct{}{}
	}
	return n
}

// epochExhausted is Kafka's isEpochExhausted: the last epoch a bump may
// reach is MaxInt16-1, leaving MaxInt16 for a fence.
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

// Coordinator is the transaction coordinator of the partitions of
// __transaction_state this node loaded. Safe for concurrent use.
type Coordinator struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex
	parts  map[int32]*part
	txns   map[string]*meta
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a coordinator that owns no partition yet, and starts its
// timeout loops if the config sets their intervals.
func New(cfg Config) *Coordinator {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 50
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = 7 * 24 * time.Hour
	}
	if cfg.MarkerRetryBackoff <= 0 {
		cfg.MarkerRetryBackoff = 100 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, logger: cfg.Logger, parts: map[int32]*part{}, txns: map[string]*meta{}, stop: make(chan struct{})}
	c.loop(cfg.AbortInterval, c.AbortTimedOut)
	c.loop(cfg.RemoveExpiredInterval, c.RemoveExpired)
	return c
}

func (c *Coordinator) loop(every time.Duration, fn func()) {
	if every <= 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// Close unloads every partition and stops the background work.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for p, pt := range c.parts {
		pt.cancel()
		delete(c.parts, p)
	}
	clear(c.txns)
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

// Partitions is the partition count ids are placed by.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// PartitionFor is the partition of __transaction_state of a transactional
// id: abs(javaHashCode(id)) % partitions, as Kafka's partitionFor.
func PartitionFor(id string, partitions int32) int32 {
	var h int32
	for _, r := range id {
		if r >= 0x10000 {
			// UTF-16 surrogate pair, as Java's String.hashCode sees it.
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

func (c *Coordinator) nowMs() int64 { return c.cfg.Clock.Now().UnixMilli() }

// ownerLocked checks that this node coordinates id: its partition is
// loaded here (COORDINATOR_LOAD_IN_PROGRESS while loading,
// NOT_COORDINATOR otherwise).
func (c *Coordinator) ownerLocked(id string) (int32, *part, error) {
	p := PartitionFor(id, c.cfg.Partitions)
	pt := c.parts[p]
	switch {
	case pt == nil || c.closed:
		return p, nil, kerr.NotCoordinator
	case pt.loading:
		return p, nil, kerr.CoordinatorLoadInProgress
	}
	return p, pt, nil
}

// Loaded reports whether partition p is loaded or loading here, and in
// which coordinator epoch.
func (c *Coordinator) Loaded(p int32) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pt := c.parts[p]
	if pt == nil {
		return 0, false
	}
	return pt.epoch, true
}

// Load makes this node the coordinator of partition p in coordinator
// epoch (the partition's leader epoch), replaying its records from
// Storage, and resumes the markers of its prepared transactions (Kafka's
// loadTransactionsForTxnTopicPartition). A partition loaded in another
// epoch is unloaded first.
func (c *Coordinator) Load(p int32, epoch int32) error {
	if p < 0 || p >= c.cfg.Partitions {
		return fmt.Errorf("txn: load %s-%d: the topic has %d partitions", Topic, p, c.cfg.Partitions)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return kerr.NotCoordinator
	}
	if pt := c.parts[p]; pt != nil {
		if pt.epoch == epoch {
			c.mu.Unlock()
			return nil
		}
		c.unloadLocked(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pt := &part{epoch: epoch, loading: true, ctx: ctx, cancel: cancel}
	c.parts[p] = pt
	c.mu.Unlock()

	found := map[string]*meta{}
	var n int64
	err := c.cfg.Storage.Read(p, func(key, value []byte) error {
		n++
		id, m, err := decodeRecord(key, value)
		if err != nil {
			return err
		}
		if m == nil {
			delete(found, id)
			return nil
		}
		m.part = p
		found[id] = m
		return nil
	})

	c.mu.Lock()
	if c.parts[p] != pt {
		c.mu.Unlock()
		return kerr.NotCoordinator // unloaded or reloaded meanwhile
	}
	if err != nil {
		delete(c.parts, p)
		cancel()
		c.mu.Unlock()
		return fmt.Errorf("txn: load %s-%d: %w", Topic, p, err)
	}
	var resume []*meta
	for id, m := range found {
		if PartitionFor(id, c.cfg.Partitions) != p {
			c.logger.Warn("skipping transactional id of another partition", "transactional_id", id, "partition", p)
			continue
		}
		c.txns[id] = m
		if m.state == PrepareCommit || m.state == PrepareAbort {
			resume = append(resume, m)
		}
	}
	pt.loading = false
	pt.appended, pt.live = n, int64(len(found))
	for _, m := range resume {
		c.startMarkersLocked(m, pt)
	}
	c.mu.Unlock()
	level := slog.LevelInfo
	if len(found) == 0 {
		level = slog.LevelDebug // 50 empty partitions at creation
	}
	c.logger.Log(context.Background(), level, "loaded transaction coordinator partition", "partition", p, "coordinator_epoch", epoch, "transactional_ids", len(found), "resumed_markers", len(resume))
	c.changed()
	return nil
}

// Unload stops this node coordinating partition p (it no longer leads
// it): its ids are dropped from memory and their marker sending stops;
// the new coordinator resumes it.
func (c *Coordinator) Unload(p int32) {
	c.mu.Lock()
	c.unloadLocked(p)
	c.mu.Unlock()
	c.changed()
}

func (c *Coordinator) unloadLocked(p int32) {
	pt := c.parts[p]
	if pt == nil {
		return
	}
	pt.cancel()
	delete(c.parts, p)
	for id, m := range c.txns {
		if m.part == p {
			delete(c.txns, id)
		}
	}
}

func (c *Coordinator) changed() {
	if c.cfg.OnChange != nil {
		c.cfg.OnChange()
	}
}

// writeLocked persists next as m's new state and applies it. It is called
// with c.mu held and m not pending; c.mu is released while the record is
// written, m being pending meanwhile. The partition must still be loaded
// in the same epoch afterwards, or the answer is NOT_COORDINATOR and the
// state is left to the new coordinator.
func (c *Coordinator) writeLocked(m *meta, pt *part, next meta) error {
	m.pending = true
	var value []byte
	if next.state != Dead {
		value = encodeValue(&next)
	}
	key := encodeKey(m.id)
	c.mu.Unlock()
	err := c.cfg.Storage.Append(m.part, key, value)
	c.mu.Lock()
	m.pending = false
	if c.parts[m.part] != pt || c.txns[m.id] != m {
		return kerr.NotCoordinator
	}
	if err != nil {
		c.logger.Warn("writing transaction state failed", "transactional_id", m.id, "state", next.state, "err", err)
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) && (ke == kerr.NotCoordinator || ke == kerr.CoordinatorLoadInProgress) {
			return ke
		}
		// Kafka answers a failed append (not enough replicas, a
		// timeout) with COORDINATOR_NOT_AVAILABLE: the client retries.
		return kerr.CoordinatorNotAvailable
	}
	c.noteAppendedLocked(pt)
	next.pending, next.sending = false, m.sending
	*m = next
	if m.state == Dead {
		delete(c.txns, m.id)
	}
	return nil
}

// InitProducerID gives transactional id its producer id and epoch
// (Kafka's handleInitProducerId). expectedPID/expectedEpoch are the
// KIP-360 fields (-1 for none). An ongoing transaction is aborted first
// with a bumped epoch, and the answer is CONCURRENT_TRANSACTIONS: the
// client retries and gets the epoch after that.
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, expectedPID int64, expectedEpoch int16) (int64, int16, error) {
	if id == "" {
		return -1, -1, kerr.InvalidRequest
	}
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return -1, -1, kerr.InvalidTransactionTimeout
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, pt, err := c.ownerLocked(id)
	if err != nil {
		return -1, -1, err
	}
	m := c.txns[id]
	if m == nil {
		pid, err := c.allocLocked()
		if err != nil {
			return -1, -1, err
		}
		if c.parts[p] != pt {
			return -1, -1, kerr.NotCoordinator // unloaded meanwhile
		}
		if m = c.txns[id]; m == nil {
			m = &meta{id: id, part: p, producerID: pid, prevProducerID: -1, nextProducerID: -1, epoch: -1, lastEpoch: -1,
				timeoutMs: timeoutMs, state: Empty, partitions: map[TopicPartition]struct{}{}, start: -1, lastUpdate: c.nowMs()}
			c.txns[id] = m
		}
	}
	if m.pending {
		return -1, -1, kerr.ConcurrentTransactions
	}
	expected := expectedPID != -1
	if expected && !(m.epoch == -1 || expectedPID == m.producerID ||
		expectedPID == m.prevProducerID && epochExhausted(expectedEpoch)) {
		return -1, -1, kerr.ProducerFenced
	}
	now := c.nowMs()
	switch m.state {
	case PrepareCommit, PrepareAbort:
		return -1, -1, kerr.ConcurrentTransactions
	case Ongoing:
		// Abort the ongoing transaction with a bumped epoch, which
		// fences the old producer; the client retries.
		if err := c.fenceAndAbortLocked(m, pt, false); err != nil {
			return -1, -1, err
		}
		return -1, -1, kerr.ConcurrentTransactions
	case Empty, CompleteCommit, CompleteAbort:
	default:
		return -1, -1, kerr.InvalidTxnState
	}
	next := m.clone()
	next.timeoutMs, next.lastUpdate, next.start = timeoutMs, now, -1
	next.partitions = map[TopicPartition]struct{}{}
	next.nextProducerID = -1
	switch {
	case epochExhausted(m.epoch) && (!expected || expectedEpoch == m.epoch):
		// Kafka's prepareProducerIdRotation.
		m.pending = true
		pid, err := c.allocLocked()
		m.pending = false
		if err != nil {
			return -1, -1, err
		}
		if c.parts[p] != pt || c.txns[id] != m {
			return -1, -1, kerr.NotCoordinator
		}
		next.prevProducerID = m.producerID
		next.producerID, next.epoch, next.lastEpoch = pid, 0, -1
		if expected {
			next.lastEpoch = m.epoch
		}
	case !expected:
		// Kafka's prepareIncrementProducerEpoch without an expected
		// epoch.
		next.epoch, next.lastEpoch = m.epoch+1, -1
	case m.epoch == -1 || expectedEpoch == m.epoch:
		next.epoch, next.lastEpoch = m.epoch+1, m.epoch
	case expectedEpoch == m.lastEpoch:
		// A retry of a bump whose answer was lost: the same epoch.
		next.epoch, next.lastEpoch = m.epoch, m.lastEpoch
	default:
		return -1, -1, kerr.ProducerFenced
	}
	next.state = Empty
	if err := c.writeLocked(m, pt, next); err != nil {
		return -1, -1, err
	}
	return m.producerID, m.epoch, nil
}

// allocLocked allocates a producer id with c.mu released (it may write to
// the metadata log).
func (c *Coordinator) allocLocked() (int64, error) {
	c.mu.Unlock()
	pid, err := c.cfg.ProducerIDs()
	c.mu.Lock()
	if err != nil {
		c.logger.Error("allocate producer id", "err", err)
		return -1, kerr.CoordinatorNotAvailable
	}
	return pid, nil
}

// fenceAndAbortLocked aborts m's ongoing transaction with a bumped epoch
// (Kafka's prepareFenceProducerEpoch, then endTransaction from the
// coordinator): the producer using the old epoch is fenced. An exhausted
// epoch is not bumped (Kafka aborts a timed-out transaction of one with
// its epoch).
//
// A fence whose write failed is retried with the same bump: m keeps the
// old epoch until a write succeeds, so every attempt writes epoch+1, the
// same record whether or not a failed attempt reached the log. (Kafka
// raises its in-memory epoch before writing and so must not bump again
// after a failure, its hasFailedEpochFence; mirroring that flag here, over
// an epoch that was never raised, aborted with the old epoch and fenced
// nobody.)
func (c *Coordinator) fenceAndAbortLocked(m *meta, pt *part, timedOut bool) error {
	next := m.clone()
	if m.epoch < math.MaxInt16 && !(timedOut && epochExhausted(m.epoch)) {
		next.epoch = m.epoch + 1
	}
	next.lastEpoch = -1
	next.state = PrepareAbort
	next.lastUpdate = c.nowMs()
	if err := c.writeLocked(m, pt, next); err != nil {
		return err
	}
	c.startMarkersLocked(m, pt)
	return nil
}

// AddPartitions adds partitions to id's transaction (AddPartitionsToTxn,
// and AddOffsetsToTxn with the group's partition of __consumer_offsets):
// the first one begins the transaction. The error applies to every
// partition of the request, as Kafka answers it.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts []TopicPartition) error {
	if id == "" {
		return kerr.InvalidRequest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, pt, err := c.ownerLocked(id)
	if err != nil {
		return err
	}
	m := c.txns[id]
	switch {
	case m == nil:
		return kerr.InvalidProducerIDMapping
	case m.pending:
		return kerr.ConcurrentTransactions
	case m.producerID != pid:
		return kerr.InvalidProducerIDMapping
	case m.epoch != epoch:
		return kerr.ProducerFenced
	case m.state == PrepareCommit || m.state == PrepareAbort:
		return kerr.ConcurrentTransactions
	case m.state == Dead || m.state == PrepareEpochFence:
		return kerr.InvalidTxnState
	}
	if m.state == Ongoing && subset(parts, m.partitions) {
		return nil
	}
	next := m.clone()
	now := c.nowMs()
	if m.state != Ongoing {
		next.start = now
	}
	for _, tp := range parts {
		next.partitions[tp] = struct{}{}
	}
	next.state, next.lastUpdate = Ongoing, now
	return c.writeLocked(m, pt, next)
}

func subset(parts []TopicPartition, of map[TopicPartition]struct{}) bool {
	for _, tp := range parts {
		if _, ok := of[tp]; !ok {
			return false
		}
	}
	return true
}

// VerifyPartitions answers AddPartitionsToTxn's VerifyOnly form (KIP-890
// part 1, from a partition leader checking a transactional produce): per
// partition, none if it is in the ongoing transaction, else
// TRANSACTION_ABORTABLE; a producer mismatch is one error for all.
func (c *Coordinator) VerifyPartitions(id string, pid int64, epoch int16, parts []TopicPartition) (map[TopicPartition]error, error) {
	if id == "" {
		return nil, kerr.InvalidRequest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.ownerLocked(id); err != nil {
		return nil, err
	}
	m := c.txns[id]
	switch {
	case m == nil, m.producerID != pid:
		return nil, kerr.InvalidProducerIDMapping
	case m.epoch != epoch:
		return nil, kerr.ProducerFenced
	case m.state == PrepareCommit || m.state == PrepareAbort:
		return nil, kerr.ConcurrentTransactions
	}
	out := make(map[TopicPartition]error, len(parts))
	for _, tp := range parts {
		if _, ok := m.partitions[tp]; ok && m.state == Ongoing {
			out[tp] = nil
		} else {
			out[tp] = kerr.TransactionAbortable
		}
	}
	return out, nil
}

// EndTxn commits or aborts id's transaction (Kafka's handleEndTransaction).
// The answer comes once PrepareCommit/PrepareAbort is written; the
// markers follow, and requests for the id get CONCURRENT_TRANSACTIONS
// until CompleteCommit/CompleteAbort is written. v2 is transaction
// version 2 (EndTxn v5, KIP-890 part 2): the epoch is bumped at the end
// of every transaction, and the answer carries the producer id and epoch
// to use next.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit, v2 bool) (int64, int16, error) {
	if id == "" {
		return -1, -1, kerr.InvalidRequest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, pt, err := c.ownerLocked(id)
	if err != nil {
		return -1, -1, err
	}
	m := c.txns[id]
	if m == nil {
		return -1, -1, kerr.InvalidProducerIDMapping
	}
	if v2 {
		return c.endTxnV2Locked(m, pt, pid, epoch, commit)
	}
	switch {
	case m.producerID != pid:
		return -1, -1, kerr.InvalidProducerIDMapping
	case epoch != m.epoch:
		return -1, -1, kerr.ProducerFenced
	case m.pending:
		return -1, -1, kerr.ConcurrentTransactions
	}
	switch m.state {
	case Ongoing:
		return m.producerID, m.epoch, c.prepareEndLocked(m, pt, commit, false, -1)
	case CompleteCommit:
		if commit {
			return m.producerID, m.epoch, nil // a retry
		}
	case CompleteAbort:
		if !commit {
			return m.producerID, m.epoch, nil
		}
	case PrepareCommit:
		if commit {
			return -1, -1, kerr.ConcurrentTransactions
		}
	case PrepareAbort:
		if !commit {
			return -1, -1, kerr.ConcurrentTransactions
		}
	}
	return -1, -1, kerr.InvalidTxnState
}

// endTxnV2Locked is handleEndTransaction for transaction version 2.
func (c *Coordinator) endTxnV2Locked(m *meta, pt *part, pid int64, epoch int16, commit bool) (int64, int16, error) {
	if m.pending {
		return -1, -1, kerr.ConcurrentTransactions
	}
	// A retry after an epoch overflow: the transaction ended with a new
	// producer id, epoch 0.
	retryOnOverflow := m.prevProducerID == pid && epoch == math.MaxInt16-1 && m.epoch == 0
	// A retry after the end's epoch bump.
	retryOnBump := m.producerID == pid && m.epoch == epoch+1
	if m.producerID != pid && !retryOnOverflow {
		return -1, -1, kerr.InvalidProducerIDMapping
	}
	var valid bool
	switch m.state {
	case Ongoing, Empty:
		valid = epoch == m.epoch
	case PrepareCommit, PrepareAbort:
		valid = retryOnBump
	case CompleteCommit, CompleteAbort:
		// The same epoch is the next transaction's end.
		valid = retryOnBump || retryOnOverflow || epoch == m.epoch
	}
	if !valid {
		return -1, -1, kerr.ProducerFenced
	}
	retry := retryOnBump || retryOnOverflow
	switch m.state {
	case Ongoing:
		return c.endV2Locked(m, pt, commit)
	case Empty:
		if !commit {
			return c.endV2Locked(m, pt, false)
		}
	case CompleteCommit:
		if commit && retry {
			return m.producerID, m.epoch, nil
		}
		if !commit && !retry {
			return c.endV2Locked(m, pt, false)
		}
	case CompleteAbort:
		if !commit {
			if retry {
				return m.producerID, m.epoch, nil
			}
			return c.endV2Locked(m, pt, false)
		}
	case PrepareCommit:
		if commit {
			return -1, -1, kerr.ConcurrentTransactions
		}
	case PrepareAbort:
		if !commit {
			return -1, -1, kerr.ConcurrentTransactions
		}
	}
	return -1, -1, kerr.InvalidTxnState
}

func (c *Coordinator) endV2Locked(m *meta, pt *part, commit bool) (int64, int16, error) {
	next := int64(-1)
	if epochExhausted(m.epoch) {
		m.pending = true
		pid, err := c.allocLocked()
		m.pending = false
		if err != nil {
			return -1, -1, err
		}
		if c.parts[m.part] != pt || c.txns[m.id] != m {
			return -1, -1, kerr.NotCoordinator
		}
		next = pid
	}
	if err := c.prepareEndLocked(m, pt, commit, true, next); err != nil {
		return -1, -1, err
	}
	if m.nextProducerID != -1 {
		return m.nextProducerID, 0, nil
	}
	return m.producerID, m.epoch, nil
}

// prepareEndLocked writes PrepareCommit/PrepareAbort (Kafka's
// prepareAbortOrCommit) and starts the markers. bump is transaction
// version 2's epoch bump; nextPID the new producer id when that epoch
// overflows.
func (c *Coordinator) prepareEndLocked(m *meta, pt *part, commit, bump bool, nextPID int64) error {
	next := m.clone()
	next.state = PrepareAbort
	if commit {
		next.state = PrepareCommit
	}
	if bump {
		next.txnVersion = 2
		next.lastEpoch = m.epoch
		next.epoch = m.epoch + 1
		next.nextProducerID = nextPID
	}
	next.lastUpdate = c.nowMs()
	if err := c.writeLocked(m, pt, next); err != nil {
		return err
	}
	c.startMarkersLocked(m, pt)
	return nil
}

// startMarkersLocked sends the markers of m's prepared transaction on a
// goroutine of its own, then writes its completion.
func (c *Coordinator) startMarkersLocked(m *meta, pt *part) {
	if m.sending {
		return
	}
	m.sending = true
	mk := Marker{
		ProducerID:         m.producerID,
		ProducerEpoch:      m.epoch,
		Commit:             m.state == PrepareCommit,
		CoordinatorEpoch:   pt.epoch,
		TransactionVersion: int8(max(m.txnVersion, 0)),
		Partitions:         slices.SortedFunc(maps.Keys(m.partitions), cmpTP),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.sendMarkers(pt, m, mk)
	}()
}

func cmpTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}

// sendMarkers writes mk to its partitions until every one has it (Kafka's
// TransactionMarkerChannelManager), then completes the transaction. It
// stops when the partition is unloaded.
func (c *Coordinator) sendMarkers(pt *part, m *meta, mk Marker) {
	defer func() {
		c.mu.Lock()
		m.sending = false
		c.mu.Unlock()
		c.changed()
	}()
	c.changed()
	for len(mk.Partitions) > 0 {
		if pt.ctx.Err() != nil {
			return
		}
		failed := c.cfg.Markers.WriteMarkers(pt.ctx, mk)
		var retry []TopicPartition
		for _, tp := range mk.Partitions {
			err, ok := failed[tp]
			if !ok || err == nil {
				continue
			}
			if errors.Is(err, kerr.TransactionCoordinatorFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
				// Another coordinator or a newer epoch owns the
				// transaction: Kafka's marker channel abandons it.
				c.logger.Warn("transaction markers abandoned", "transactional_id", m.id, "partition", tp, "err", err)
				return
			}
			retry = append(retry, tp)
		}
		mk.Partitions = retry
		if len(retry) == 0 {
			break
		}
		c.logger.Debug("retrying transaction markers", "transactional_id", m.id, "partitions", len(retry))
		select {
		case <-pt.ctx.Done():
			return
		case <-time.After(c.cfg.MarkerRetryBackoff):
		}
	}
	// CompleteCommit/CompleteAbort (Kafka's prepareComplete), retried
	// while this node is still the coordinator.
	for {
		c.mu.Lock()
		if c.parts[m.part] != pt || c.txns[m.id] != m || (m.state != PrepareCommit && m.state != PrepareAbort) {
			c.mu.Unlock()
			return
		}
		if m.pending {
			c.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		next := m.clone()
		next.state = CompleteAbort
		if m.state == PrepareCommit {
			next.state = CompleteCommit
		}
		if m.txnVersion >= 2 && m.nextProducerID != -1 {
			next.prevProducerID = m.producerID
			next.producerID, next.epoch = m.nextProducerID, 0
		}
		next.nextProducerID = -1
		next.partitions = map[TopicPartition]struct{}{}
		next.lastUpdate = c.nowMs()
		err := c.writeLocked(m, pt, next)
		c.mu.Unlock()
		if err == nil || errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorLoadInProgress) {
			return
		}
		select {
		case <-pt.ctx.Done():
			return
		case <-time.After(c.cfg.MarkerRetryBackoff):
		}
	}
}

// AbortTimedOut aborts, with a bumped epoch, every ongoing transaction
// older than its timeout (Kafka's abortTimedOutTransactions).
func (c *Coordinator) AbortTimedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowMs()
	var due []*meta
	for _, m := range c.txns {
		if m.state == Ongoing && !m.pending && m.start >= 0 && m.start+int64(m.timeoutMs) < now {
			due = append(due, m)
		}
	}
	for _, m := range due {
		pt := c.parts[m.part]
		if pt == nil || pt.loading || c.txns[m.id] != m || m.pending || m.state != Ongoing {
			continue
		}
		c.logger.Info("aborting timed-out transaction", "transactional_id", m.id, "producer_id", m.producerID, "epoch", m.epoch, "timeout_ms", m.timeoutMs)
		if err := c.fenceAndAbortLocked(m, pt, true); err != nil {
			c.logger.Warn("abort of a timed-out transaction failed", "transactional_id", m.id, "err", err)
		}
	}
}

// RemoveExpired removes the transactional ids with no transaction for
// transactional.id.expiration.ms (Kafka's removeExpiredTransactionalIds):
// a tombstone in their partition, then out of memory.
func (c *Coordinator) RemoveExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowMs()
	var due []*meta
	for _, m := range c.txns {
		switch m.state {
		case Empty, CompleteCommit, CompleteAbort:
			if !m.pending && m.lastUpdate+c.cfg.IDExpiration.Milliseconds() <= now {
				due = append(due, m)
			}
		}
	}
	for _, m := range due {
		pt := c.parts[m.part]
		if pt == nil || pt.loading || c.txns[m.id] != m || m.pending {
			continue
		}
		next := m.clone()
		next.state = Dead
		if err := c.writeLocked(m, pt, next); err != nil {
			c.logger.Warn("removing an expired transactional id failed", "transactional_id", m.id, "err", err)
			continue
		}
		c.logger.Info("removed expired transactional id", "transactional_id", m.id)
	}
}

// Description is a transactional id's state, as DescribeTransactions and
// ListTransactions answer it.
type Description struct {
	TransactionalID string
	State           State
	ProducerID      int64
	ProducerEpoch   int16
	TimeoutMs       int32
	// StartMs is when the transaction began, -1 outside one.
	StartMs    int64
	Partitions []TopicPartition
}

func (m *meta) describe() Description {
	return Description{
		TransactionalID: m.id, State: m.state, ProducerID: m.producerID, ProducerEpoch: m.epoch,
		TimeoutMs: m.timeoutMs, StartMs: m.start,
		Partitions: slices.SortedFunc(maps.Keys(m.partitions), cmpTP),
	}
}

// Describe is id's state: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
// TRANSACTIONAL_ID_NOT_FOUND when there is none here.
func (c *Coordinator) Describe(id string) (Description, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.ownerLocked(id); err != nil {
		return Description{}, err
	}
	m := c.txns[id]
	if m == nil {
		return Description{}, kerr.TransactionalIDNotFound
	}
	return m.describe(), nil
}

// List describes every transactional id this node coordinates;
// COORDINATOR_LOAD_IN_PROGRESS while a partition loads, as Kafka answers.
func (c *Coordinator) List() ([]Description, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pt := range c.parts {
		if pt.loading {
			return nil, kerr.CoordinatorLoadInProgress
		}
	}
	out := make([]Description, 0, len(c.txns))
	for _, m := range c.txns {
		out = append(out, m.describe())
	}
	slices.SortFunc(out, func(a, b Description) int {
		if a.TransactionalID < b.TransactionalID {
			return -1
		}
		if a.TransactionalID > b.TransactionalID {
			return 1
		}
		return 0
	})
	return out, nil
}

// Stats are counts for metrics: ongoing transactions (Ongoing or being
// ended) and transactions whose markers are being sent.
func (c *Coordinator) Stats() (ongoing, markersPending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.txns {
		switch m.state {
		case Ongoing, PrepareCommit, PrepareAbort:
			ongoing++
		}
		if m.sending {
			markersPending++
		}
	}
	return ongoing, markersPending
}
