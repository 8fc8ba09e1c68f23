package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// Errors the kafka layer maps to error codes.
var (
	// ErrOutOfOrderSequence: OUT_OF_ORDER_SEQUENCE_NUMBER.
	ErrOutOfOrderSequence = errors.New("broker: out of order sequence number")
	// ErrInvalidProducerEpoch: INVALID_PRODUCER_EPOCH (an older epoch of a
	// producer that has since been re-initialized).
	ErrInvalidProducerEpoch = errors.New("broker: invalid producer epoch")
	// ErrMessageTooLarge: MESSAGE_TOO_LARGE (batch over max.message.bytes).
	ErrMessageTooLarge = errors.New("broker: batch larger than max.message.bytes")
)

// producerBatches is how many recent batches per producer are remembered
// to answer retries with their original offsets (Kafka keeps 5, matching
// max.in.flight.requests.per.connection).
const producerBatches = 5

type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64 // the batch's max timestamp (the log append time if stamped)
}

// producerState is what a partition remembers of one idempotent producer.
type producerState struct {
	epoch   int16
	batches []batchMeta // oldest first, at most producerBatches
	// coordEpoch is the coordinator epoch of the producer's last
	// end-transaction marker, -1 if none (Kafka's
	// ProducerStateEntry.coordinatorEpoch).
	coordEpoch int32
	// markerTimestamp is the timestamp of its last marker, -1 if none:
	// with the batches', what its expiration goes by.
	markerTimestamp int64
}

// newProducerState is the state of a producer first seen at epoch.
func newProducerState(epoch int16) *producerState {
	return &producerState{epoch: epoch, coordEpoch: -1, markerTimestamp: -1}
}

// lastTimestamp is the timestamp of the producer's last batch or marker
// (-1 if none).
func (st *producerState) lastTimestamp() int64 {
	last := st.markerTimestamp
	if k := len(st.batches); k > 0 {
		last = max(last, st.batches[k-1].timestamp)
	}
	return last
}

// Partition is one partition of this broker: its log, the high watermark
// (on a single node, the log end offset after each append), producer state
// for idempotence (snapshotted to disk), the leader epoch cache, and the
// fetchers waiting for data. Safe for concurrent use.
type Partition struct {
	TP  log.TopicPartition
	Log *log.Log

	logger *slog.Logger

	// mu serializes appends with their idempotence check, so that the
	// check and the append see the same producer state. It also
	// serializes the writes of leader-epoch-checkpoint.
	mu        sync.Mutex
	producers map[int64]*producerState
	// activeBase is the active segment's base offset as of the last
	// append: Append sees a roll when it changes.
	activeBase int64
	// expiration is producer.id.expiration.ms (set by the Broker; 0 in
	// tests that build a Partition alone: nothing expires).
	expiration time.Duration
	// replayed counts the batches the last RebuildProducerState read
	// from the log (tests check that a snapshot spared the replay).
	replayed int
	// txn is the partition's transaction state (txn.go), guarded by mu;
	// txnActive is how many transactions may hold the LSO below the
	// high watermark, read without mu (LastStableOffset).
	txn       txnState
	txnActive atomic.Int32
	closed    bool // by Close: for good
	fenced    bool // by Fence, until Unfence

	// snapMu serializes the producer-state snapshot files: writing,
	// pruning, loading. A roll captures the state under mu and writes it
	// under snapMu alone, on its own goroutine (snapWG), so that appends
	// never wait for a snapshot's fsyncs. Lock order: mu, then snapMu.
	snapMu sync.Mutex
	snapWG sync.WaitGroup
	// snapOffset is the offset of the newest snapshot on disk known to
	// match the state (written or loaded by this process), -1 if none.
	// Guarded by snapMu.
	snapOffset int64

	// follow is the follower's view of the high watermark (follower.go),
	// guarded by mu: active from the first follower operation until
	// BecomeLeader; leaderHW is the leader's high watermark as last
	// fetched; visible is the local offset below which appends may be
	// seen (the log end, or the durable offset while an fsync
	// flush.messages asked for is pending).
	follow struct {
		active            bool
		leaderHW, visible int64
		epoch             int32 // the leader's epoch (MakeFollower)
	}
	// lead is the leader's replication state (replication.go), guarded
	// by mu.
	lead leadState
	// leading mirrors lead.active, read without mu (IsLeader).
	leading atomic.Bool
	// keepCheckpointedHW: open leaves the high watermark the checkpoint
	// had, for MakeLeader to raise as the ISR allows (a cluster node),
	// instead of taking the log end (a single node: all of it may have
	// been acknowledged).
	keepCheckpointedHW bool
	// appending is set, under mu, while an append moves the high
	// watermark: it notifies the fetches itself.
	appending bool
	// onTruncate, if set (by the Broker), writes the log dir checkpoints
	// after a truncation.
	onTruncate func() error
	// onWrite, if set (by the Broker), is told the outcome of every
	// append and fsync wait: a failed write to the log dir fences the
	// node (storageHealth).
	onWrite func(error)

	epochs epochCache
	// leaderEpoch is the epoch this node leads in (BecomeLeader).
	leaderEpoch atomic.Int32

	metaMu struct {
		sync.Mutex
		topicID    [16]byte
		hasTopicID bool
	}

	waitMu  sync.Mutex
	waiters map[*Waiter]struct{}

	deleted atomic.Bool // set by markDeleted
}

func newPartition(tp log.TopicPartition, l *log.Log, logger *slog.Logger) *Partition {
	p := &Partition{
		TP: tp, Log: l,
		logger:     logger.With("partition", tp.String()),
		producers:  map[int64]*producerState{},
		snapOffset: -1,
		waiters:    map[*Waiter]struct{}{},
	}
	l.SetOnDurable(p.advanceDurable)
	return p
}

// advanceDurable moves the high watermark up to the durable offset. With
// flush.messages set, appends that must be fsynced before they are
// acknowledged become visible to consumers only then, as in Kafka, where
// the flush happens inside the append, before the high watermark moves.
func (p *Partition) advanceDurable() {
	p.mu.Lock()
	d := min(p.Log.DurableOffset(), p.Log.LogEndOffset())
	if p.follow.active {
		p.follow.visible = max(p.follow.visible, d)
		p.updateFollowerHWLocked()
		p.mu.Unlock()
		return
	}
	p.setVisibleLocked(d)
	p.mu.Unlock()
}

// open loads what the partition keeps beside its log: it removes temporary
// files a crash left, reads (or first writes) leader-epoch-checkpoint, reads
// partition.metadata, and rebuilds producer state from the latest snapshot.
// Called before the partition is shared.
func (p *Partition) open() error {
	if err := removeTempFiles(p.Log.FS(), p.Log.Dir()); err != nil {
		return err
	}
	p.mu.Lock()
	err := p.loadEpochsLocked()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.loadMetadata()
	// A leader whose in-sync replica set is itself alone moves the high
	// watermark to its log end offset as it becomes leader (Kafka's
	// Partition.makeLeader -> maybeIncrementLeaderHW). The checkpointed
	// value may lag after a crash; on a single node everything in the log
	// was acknowledged or may be, so it is all committed.
	if !p.keepCheckpointedHW {
		p.Log.SetHighWatermark(p.Log.LogEndOffset())
	}
	p.lead.visible = p.Log.HighWatermark()
	return p.RebuildProducerState()
}

// Close writes a producer-state snapshot at the log end offset, so that the
// next start replays nothing, and brings leader-epoch-checkpoint up to date.
// Appends after Close fail with log.ErrClosed. It does not close the log:
// the log manager does.
func (p *Partition) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.wakeLocked() // acks=all waits end: NOT_LEADER_OR_FOLLOWER
	entries, leo := p.snapshotEntriesLocked(), p.Log.LogEndOffset()
	epochErr := p.syncEpochsLocked()
	p.mu.Unlock()
	// No append can follow: the state is final. Roll snapshots still
	// being written go first, so that this one is the newest.
	p.snapWG.Wait()
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	return errors.Join(p.writeSnapshotSnapLocked(leo, entries), epochErr)
}

// markDeleted stops appends to a partition whose files are being deleted
// and wakes the fetches waiting on it, which then answer at once
// (Deleted), as Kafka completes a delayed fetch whose partition is gone.
func (p *Partition) markDeleted() {
	p.Fence()
	p.deleted.Store(true)
	p.notify(unknownBytes)
}

// Deleted reports whether the partition was deleted: its files are going,
// and a request still holding it must answer UNKNOWN_TOPIC_OR_PARTITION.
func (p *Partition) Deleted() bool { return p.deleted.Load() }

// Fence stops appends: once it returns, no append is in progress and later
// ones fail with log.ErrClosed. A topic being deleted is fenced before the
// delete is recorded, so that no write lands, and is acknowledged, after
// the topic is gone.
func (p *Partition) Fence() {
	p.mu.Lock()
	p.fenced = true
	p.wakeLocked() // acks=all waits end rather than time out
	p.mu.Unlock()
}

// Unfence undoes Fence when the delete it prepared for failed. It never
// reopens a closed partition.
func (p *Partition) Unfence() {
	p.mu.Lock()
	p.fenced = false
	p.mu.Unlock()
}

// AppendResult is the outcome of a produce to one partition.
type AppendResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Duplicate      bool
	// SyncTo, from AppendNoWait, is the offset to WaitDurable for before
	// acknowledging; 0 when the append is already as durable as the
	// topic's flush.messages asks.
	SyncTo int64
	// SyncGen goes with SyncTo to WaitDurable: the log's truncation
	// generation when the offsets were written.
	SyncGen uint64
	// NextOffset is the offset after the appended (or duplicate)
	// batch: the high watermark that commits it (WaitFor).
	NextOffset int64
}

// Append appends a produce request's records to the partition. data holds
// the batches exactly as the producer sent them; they are validated and
// stored without a copy. For idempotent producers the sequence is checked
// and a retried batch gets its original offsets back instead of being
// written twice. maxMessageBytes is the topic's max.message.bytes;
// logAppendTime, when true, stamps the broker's clock on the batch.
func (p *Partition) Append(data []byte, maxMessageBytes int, logAppendTime bool) (AppendResult, error) {
	res, err := p.AppendNoWait(data, maxMessageBytes, logAppendTime)
	if err == nil && res.SyncTo > 0 {
		err = p.WaitDurable(res.SyncTo, res.SyncGen)
	}
	return res, err
}

// WaitDurable waits until offsets below syncTo, appended at truncation
// generation gen (AppendResult.SyncGen), are fsynced and visible. If a
// truncation (a leader turned follower) removed any of them meanwhile, it
// fails, even once other records took their offsets: nothing above a
// truncation point is acknowledged.
func (p *Partition) WaitDurable(syncTo int64, gen uint64) error {
	if err := p.Log.WaitDurableSince(syncTo, gen); err != nil {
		p.wrote(err)
		return err
	}
	p.advanceDurable()
	return nil
}

// wrote reports a failed write to the broker's storage health.
func (p *Partition) wrote(err error) {
	if err != nil && p.onWrite != nil {
		p.onWrite(err)
	}
}

// AppendNoWait is Append that returns before the fsync flush.messages
// calls for: res.SyncTo says what to WaitDurable for before acknowledging.
// The partition takes further appends meanwhile, which share the fsync.
func (p *Partition) AppendNoWait(data []byte, maxMessageBytes int, logAppendTime bool) (AppendResult, error) {
	b, err := parseProduced(data)
	if err != nil {
		return AppendResult{LogAppendTime: -1}, err
	}
	return p.AppendValidatedNoWait(b, maxMessageBytes, logAppendTime)
}

// AppendValidatedNoWait is AppendNoWait for a batch that ValidateProduced
// (or the broker itself, recompressing) already checked, so that the
// produce path parses and CRC-checks each batch once.
func (p *Partition) AppendValidatedNoWait(b record.Batch, maxMessageBytes int, logAppendTime bool) (res AppendResult, err error) {
	return p.AppendVerifiedNoWait(b, maxMessageBytes, logAppendTime, 0)
}

// AppendVerifiedNoWait is AppendValidatedNoWait for a transactional batch
// whose partition was verified with the transaction coordinator (KIP-890
// part 1) under guard, from StartTxnVerification: unless the producer's
// transaction is open here, the batch is ErrInvalidTxnState when the
// guard is no longer the producer's (a marker ended the transaction
// meanwhile), as Kafka's VerificationGuard. Guard 0 checks nothing.
func (p *Partition) AppendVerifiedNoWait(b record.Batch, maxMessageBytes int, logAppendTime bool, guard uint64) (res AppendResult, err error) {
	defer func() { p.wrote(err) }()
	res = AppendResult{LogAppendTime: -1}
	if len(b) > maxMessageBytes {
		return res, fmt.Errorf("%w: %d bytes, max.message.bytes is %d", ErrMessageTooLarge, len(b), maxMessageBytes)
	}
	if logAppendTime {
		res.LogAppendTime = time.Now().UnixMilli()
		b.SetLogAppendTime(res.LogAppendTime)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.fenced {
		return res, log.ErrClosed
	}
	if p.follow.active {
		return res, ErrNotLeader
	}
	if b.HasProducerID() {
		if dup, ok, err := p.checkSequence(b); err != nil {
			return res, err
		} else if ok {
			res.BaseOffset, res.Duplicate = dup.firstOffset, true
			res.LogStartOffset = p.Log.LogStartOffset()
			res.NextOffset = dup.lastOffset + 1
			if p.Log.Config().FlushMessages == 1 && p.Log.DurableOffset() <= dup.lastOffset {
				// The original is written but not yet fsynced: the
				// retry is acknowledged no sooner than it would be.
				res.SyncTo = dup.lastOffset + 1
				res.SyncGen = p.Log.TruncationGen()
			}
			if logAppendTime {
				res.LogAppendTime = dup.timestamp
			}
			return res, nil
		}
	}
	if b.HasProducerID() && !b.IsTransactional() {
		// Kafka's ProducerAppendInfo.checkProducerEpoch's companion:
		// a producer with a transaction open here writes
		// transactionally until its marker.
		if _, open := p.txn.ongoing[b.ProducerID()]; open {
			return res, fmt.Errorf("%w: non-transactional batch from producer %d, which has a transaction open", ErrInvalidTxnState, b.ProducerID())
		}
	}
	if guard != 0 && b.IsTransactional() {
		if err := p.checkTxnVerificationLocked(b.ProducerID(), guard); err != nil {
			return res, err
		}
	}
	return p.appendLeaderResultLocked(b, res)
}

// appendLeaderResultLocked appends b as the leader (appendLeaderLocked)
// and fills res with where it went.
func (p *Partition) appendLeaderResultLocked(b record.Batch, res AppendResult) (AppendResult, error) {
	info, err := p.appendLeaderLocked(b)
	if err != nil {
		return res, err
	}
	res.SyncTo, res.SyncGen = info.SyncTo, info.SyncGen
	res.BaseOffset = info.FirstOffset
	res.NextOffset = p.Log.LogEndOffset()
	res.LogStartOffset = p.Log.LogStartOffset()
	return res, nil
}

// appendLeaderLocked appends a checked batch as the leader, in the current
// leader epoch: a roll's snapshot is taken, producer and transaction state
// record the batch, and only then does the high watermark move (unless an
// fsync must come first: advanceDurable), so that no reader sees the new
// high watermark without the transaction the batch opened. Requires mu.
func (p *Partition) appendLeaderLocked(b record.Batch) (log.AppendInfo, error) {
	// The batch's CRC was checked; the log need not again.
	info, err := p.Log.AppendValidatedNoWait(b, p.leaderEpoch.Load())
	if err != nil {
		return info, err
	}
	if base := p.Log.ActiveSegmentBaseOffset(); base != p.activeBase {
		p.activeBase = base
		if base == info.FirstOffset {
			// The log rolled before writing these batches: the state,
			// not yet updated with them, is the state below base.
			p.onRollLocked(base)
		}
	}
	if err := p.recordAppendedLocked(b); err != nil {
		// The batch is written; only its txn index entry failed.
		p.logger.Error("record appended batch", "offset", info.FirstOffset, "err", err)
	}
	if info.SyncTo == 0 {
		p.appending = true
		p.setVisibleLocked(p.Log.LogEndOffset())
		p.appending = false
	}
	p.notify(int64(len(b)))
	return info, nil
}

// validateProduced applies the checks Kafka's LogValidator makes on what a
// client produces, beyond the batch's own integrity: exactly one batch per
// partition (n is how many data holds, b the first), at least one record,
// offset deltas 0..count-1, and no control batches (those are the broker's
// to write). Without them a crafted batch could claim billions of offsets
// and push a segment past what its 32-bit relative offsets can index.
func validateProduced(b record.Batch, n int) error {
	if n != 1 {
		return fmt.Errorf("%w: a produce request must hold exactly one record batch per partition, got %d", record.ErrInvalidRecord, n)
	}
	switch {
	case b.IsControl():
		return fmt.Errorf("%w: clients may not write control batches", record.ErrInvalidRecord)
	case b.RecordCount() <= 0:
		return fmt.Errorf("%w: batch has %d records", record.ErrInvalidRecord, b.RecordCount())
	case int64(b.LastOffsetDelta()) != int64(b.RecordCount())-1:
		return fmt.Errorf("%w: %d records but last offset delta %d", record.ErrInvalidRecord, b.RecordCount(), b.LastOffsetDelta())
	}
	return nil
}

// checkSequence applies Kafka's ProducerStateManager rules to a batch of an
// idempotent producer: a retry of one of the last batches is a duplicate
// (ok=true, with its metadata); an older epoch is fenced; a new epoch must
// start at sequence 0 (unless the producer is new to this partition); in the
// same epoch the sequence must follow the last one, wrapping past MaxInt32.
func (p *Partition) checkSequence(b record.Batch) (batchMeta, bool, error) {
	st := p.producers[b.ProducerID()]
	if st == nil {
		return batchMeta{}, false, nil
	}
	epoch, firstSeq := b.ProducerEpoch(), b.BaseSequence()
	switch {
	case epoch < st.epoch:
		return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, b.ProducerID(), epoch, st.epoch)
	case firstSeq < 0:
		// The broker's own transactional write (the group
		// coordinator's TxnOffsetCommit; ValidateProduced refuses a
		// produced batch without a sequence): only the epoch is
		// checked, as Kafka checks AppendOrigin.COORDINATOR appends.
		return batchMeta{}, false, nil
	case epoch > st.epoch:
		if firstSeq != 0 {
			return batchMeta{}, false, fmt.Errorf("%w: new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, epoch, firstSeq)
		}
		return batchMeta{}, false, nil
	}
	for _, m := range st.batches {
		if m.firstSeq == firstSeq && m.lastSeq == b.LastSequence() {
			return m, true, nil
		}
	}
	if len(st.batches) > 0 {
		last := st.batches[len(st.batches)-1].lastSeq
		if firstSeq != record.IncrementSequence(last, 1) {
			return batchMeta{}, false, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, b.ProducerID(), record.IncrementSequence(last, 1), firstSeq)
		}
	}
	return batchMeta{}, false, nil
}

// onRollLocked snapshots producer state at the new segment's base offset, as
// Kafka's UnifiedLog.roll does, and follows the log start offset in the
// epoch cache. The state is captured here; the file is written and fsynced
// on another goroutine, as Kafka flushes it from its scheduler, so the
// append that rolled does not wait for it. The append already succeeded,
// so a failure is only logged: the next start replays more.
func (p *Partition) onRollLocked(base int64) {
	entries := p.snapshotEntriesLocked()
	p.dropAbortedBelowLocked(p.Log.LogStartOffset())
	p.snapWG.Add(1)
	go func() {
		defer p.snapWG.Done()
		p.snapMu.Lock()
		err := p.writeSnapshotSnapLocked(base, entries)
		p.snapMu.Unlock()
		if err != nil {
			p.logger.Error("write producer state snapshot", "offset", base, "err", err)
		}
	}()
	if err := p.syncEpochsLocked(); err != nil {
		p.logger.Error("write leader-epoch-checkpoint", "err", err)
	}
}

// recordBatch remembers an appended batch (offsets already assigned).
func (p *Partition) recordBatch(b record.Batch) {
	st := p.producers[b.ProducerID()]
	if st == nil {
		st = newProducerState(b.ProducerEpoch())
		p.producers[b.ProducerID()] = st
	}
	if b.ProducerEpoch() != st.epoch {
		// A new epoch forgets the batches, keeps the coordinator
		// epoch (Kafka's maybeUpdateProducerEpoch).
		st.epoch, st.batches = b.ProducerEpoch(), nil
	}
	if len(st.batches) == producerBatches {
		st.batches = append(st.batches[:0], st.batches[1:]...)
	}
	st.batches = append(st.batches, batchMeta{
		firstSeq: b.BaseSequence(), lastSeq: b.LastSequence(),
		firstOffset: b.BaseOffset(), lastOffset: b.LastOffset(), timestamp: b.MaxTimestamp(),
	})
}

// RebuildProducerState loads producer state as Kafka's
// ProducerStateManager does: from the newest usable snapshot (see doc.go),
// then replaying the batches from its offset to the log end. Without one,
// it replays the last two segments: producers seen only in older segments
// are then treated as new (any sequence accepted), which never rejects a
// valid producer and only forgets duplicates too old to be retried.
func (p *Partition) RebuildProducerState() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuildProducerStateLocked()
}

// rebuildProducerStateLocked is RebuildProducerState. Requires mu.
func (p *Partition) rebuildProducerStateLocked() error {
	p.snapWG.Wait() // a roll's snapshot may name offsets a truncation removed
	p.snapMu.Lock()
	l := p.Log
	p.activeBase = l.ActiveSegmentBaseOffset()
	p.snapOffset = -1
	clear(p.producers)
	clear(p.txn.ongoing)
	p.txn.unreplicated = nil
	p.setTxnActiveLocked()
	txnErr := p.loadTxnIndexLocked()
	from, ok, err := p.loadSnapshotLocked()
	p.snapMu.Unlock()
	if err = errors.Join(err, txnErr); err != nil {
		return err
	}
	if !ok {
		bases := l.SegmentBaseOffsets()
		from = l.LogStartOffset()
		if len(bases) >= 2 {
			from = max(from, bases[len(bases)-2])
		}
	}
	n, err := p.replayLocked(from, l.LogEndOffset())
	p.replayed = n
	if err != nil {
		return err
	}
	// As Kafka's ProducerStateManager, a producer expired while the
	// broker was down is not brought back by a snapshot or the replay.
	expired := p.removeExpiredLocked(time.Now())
	p.logger.Debug("rebuilt producer state", "snapshot", ok, "from", from, "batches_replayed", n, "producers", len(p.producers), "expired", expired)
	return nil
}

// RemoveExpiredProducers forgets the idempotent producers whose last batch
// on this partition has a timestamp older than producer.id.expiration.ms
// before now (Kafka's ProducerStateManager.removeExpiredProducers, which
// also goes by the batch's max timestamp). A producer that writes again
// after that is treated as new: its sequence is accepted as it comes. It
// returns how many were removed.
func (p *Partition) RemoveExpiredProducers(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeExpiredLocked(now)
}

func (p *Partition) removeExpiredLocked(now time.Time) int {
	if p.expiration <= 0 {
		return 0
	}
	cutoff := now.Add(-p.expiration).UnixMilli()
	n := 0
	for id, st := range p.producers {
		if _, open := p.txn.ongoing[id]; open {
			continue // Kafka's isProducerExpired: never with a transaction open
		}
		// -1: a producer known only by its epoch (snapshot entry
		// without a batch).
		if st.lastTimestamp() <= cutoff {
			delete(p.producers, id)
			n++
		}
	}
	return n
}

// replayLocked records the producer batches in [from, to) and returns how
// many batches it read.
func (p *Partition) replayLocked(from, to int64) (int, error) {
	l := p.Log
	n := 0
	var buf []byte
	for off := from; off < to; {
		r, err := l.Read(off, 1<<20, to)
		if err != nil {
			return n, err
		}
		if r.Len == 0 {
			return n, nil
		}
		if int64(cap(buf)) < r.Len {
			buf = make([]byte, r.Len)
		}
		buf = buf[:r.Len]
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			return n, err
		}
		if err := record.Split(buf, func(b record.Batch) bool {
			n++
			if b.LastOffset() >= from {
				if err := p.recordAppendedLocked(b); err != nil {
					p.logger.Error("replay: txn index", "offset", b.BaseOffset(), "err", err)
				}
			}
			off = b.NextOffset()
			return true
		}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ProducerInfo describes an idempotent producer active on the partition.
type ProducerInfo struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32
	LastTimestamp int64
	// CoordinatorEpoch is that of its last transaction marker, -1 if
	// none; CurrentTxnStartOffset the first offset of its transaction
	// open on the partition, -1 if none.
	CoordinatorEpoch      int32
	CurrentTxnStartOffset int64
}

// Producers returns the producers the partition remembers.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerInfo, 0, len(p.producers))
	for id, st := range p.producers {
		pi := ProducerInfo{ProducerID: id, ProducerEpoch: st.epoch, LastSequence: -1, LastTimestamp: st.lastTimestamp(),
			CoordinatorEpoch: st.coordEpoch, CurrentTxnStartOffset: -1}
		if n := len(st.batches); n > 0 {
			pi.LastSequence = st.batches[n-1].lastSeq
		}
		if first, open := p.txn.ongoing[id]; open {
			pi.CurrentTxnStartOffset = first
		}
		out = append(out, pi)
	}
	return out
}
