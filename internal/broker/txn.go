package broker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// The partition side of transactions (Kafka's ProducerStateManager
// ongoingTxns/unreplicatedTxns, UnifiedLog.fetchLastStableOffset and
// appendEndTxnMarker): which producers have a transaction open here and
// from which offset, the last stable offset (LSO) that read_committed
// consumers read up to, the end-transaction markers (control batches), and
// the aborted transactions read_committed fetches are told of (txnindex.go).

var (
	// ErrInvalidTxnState: INVALID_TXN_STATE (a non-transactional batch
	// from a producer with a transaction open on the partition).
	ErrInvalidTxnState = errors.New("broker: invalid transaction state")
	// ErrTransactionCoordinatorFenced: TRANSACTION_COORDINATOR_FENCED (a
	// marker from a coordinator epoch older than the last one seen).
	ErrTransactionCoordinatorFenced = errors.New("broker: transaction coordinator fenced")
)

// Control record types of an end-transaction marker's key (Kafka's
// ControlRecordType).
const (
	controlAbort  = 0
	controlCommit = 1
)

// AbortedTxn is one aborted transaction of the partition: Kafka's
// AbortedTxn, an entry of a .txnindex file. LastOffset is the offset of its
// ABORT marker; LastStableOffset the LSO right after the marker.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// completedTxn is a transaction whose marker is written but not yet below
// the high watermark: it still holds the LSO at its first offset (Kafka's
// unreplicatedTxns).
type completedTxn struct {
	producerID  int64
	first, last int64
}

// txnState is the partition's transaction state, guarded by Partition.mu.
type txnState struct {
	// ongoing maps a producer id to the first offset of its open
	// transaction on this partition.
	ongoing map[int64]int64
	// unreplicated are completed transactions whose marker the high
	// watermark has not passed yet.
	unreplicated []completedTxn
	// aborted is the content of the .txnindex files, in marker order.
	aborted []txnIndexEntry
	// verifying maps a producer id without a transaction open here to
	// the guard of its verification with the coordinator (KIP-890 part
	// 1), until its transaction begins here or a marker of it comes.
	verifying map[int64]uint64
	// guards numbers the verification guards.
	guards uint64
}

// StartTxnVerification begins the check, with the transaction
// coordinator, of producer pid's first transactional batch here (Kafka's
// UnifiedLog.maybeStartTransactionVerification): needed is false when the
// producer has a transaction open here already. Otherwise the guard is to
// be given to AppendVerifiedNoWait: a marker of the producer written
// meanwhile voids it, so that a verification the transaction's end made
// stale opens no transaction. The same guard is shared by verifications
// running at once.
func (p *Partition) StartTxnVerification(pid int64) (guard uint64, needed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, open := p.txn.ongoing[pid]; open {
		return 0, false
	}
	if g, ok := p.txn.verifying[pid]; ok {
		return g, true
	}
	if p.txn.verifying == nil {
		p.txn.verifying = map[int64]uint64{}
	}
	p.txn.guards++
	p.txn.verifying[pid] = p.txn.guards
	return p.txn.guards, true
}

// AbandonTxnVerification forgets guard after a verification that failed,
// unless something else replaced it meanwhile.
func (p *Partition) AbandonTxnVerification(pid int64, guard uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.txn.verifying[pid] == guard {
		delete(p.txn.verifying, pid)
	}
}

// checkTxnVerificationLocked refuses a transactional batch of pid verified
// under guard when pid has no transaction open here and guard is no
// longer its verification's. Requires mu.
func (p *Partition) checkTxnVerificationLocked(pid int64, guard uint64) error {
	if _, open := p.txn.ongoing[pid]; open {
		return nil
	}
	if p.txn.verifying[pid] != guard {
		return fmt.Errorf("%w: the transaction of producer %d ended while the partition was verified", ErrInvalidTxnState, pid)
	}
	return nil
}

// setTxnActiveLocked publishes whether the LSO may differ from the high
// watermark, for LastStableOffset's lock-free path. Requires mu.
func (p *Partition) setTxnActiveLocked() {
	p.txnActive.Store(int32(len(p.txn.ongoing) + len(p.txn.unreplicated)))
}

// LastStableOffset is the offset below which every transaction is decided
// and replicated (Kafka's UnifiedLog.lastStableOffset): the high watermark,
// or the first offset of the earliest transaction still open or whose
// marker is not yet below the high watermark, if lower.
func (p *Partition) LastStableOffset() int64 {
	// The high watermark first: an append records its transaction before
	// it moves the high watermark, so a reader that sees the new high
	// watermark sees txnActive set too.
	hw := p.Log.HighWatermark()
	if p.txnActive.Load() == 0 {
		return hw
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked()
}

// lsoLocked is LastStableOffset. Requires mu.
func (p *Partition) lsoLocked() int64 {
	hw := p.Log.HighWatermark()
	lso := hw
	p.pruneUnreplicatedLocked(hw)
	for _, c := range p.txn.unreplicated {
		lso = min(lso, c.first)
	}
	for _, first := range p.txn.ongoing {
		lso = min(lso, first)
	}
	p.setTxnActiveLocked()
	// Kafka's updateFirstUnstableOffset: never below the log start
	// offset (retention or DeleteRecords may pass an open transaction).
	return min(hw, max(lso, p.Log.LogStartOffset()))
}

// pruneUnreplicatedLocked forgets the completed transactions whose marker
// is below the high watermark hw (Kafka's
// ProducerStateManager.onHighWatermarkUpdated). Requires mu.
func (p *Partition) pruneUnreplicatedLocked(hw int64) {
	keep := p.txn.unreplicated[:0]
	for _, c := range p.txn.unreplicated {
		if c.last >= hw {
			keep = append(keep, c)
		}
	}
	clear(p.txn.unreplicated[len(keep):])
	p.txn.unreplicated = keep
	p.setTxnActiveLocked()
}

// OngoingTransactions is how many transactions are open on the partition.
func (p *Partition) OngoingTransactions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.txn.ongoing)
}

// OngoingTxnFirstOffset returns the first offset of producer pid's open
// transaction on the partition, ok=false if it has none.
func (p *Partition) OngoingTxnFirstOffset(pid int64) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	first, ok := p.txn.ongoing[pid]
	return first, ok
}

// AbortedTransactions returns the aborted transactions that overlap the
// offsets [from, upTo): those whose marker is at or after from and whose
// first offset is below upTo (Kafka's TransactionIndex.collectAbortedTxns),
// as a read_committed fetch of that range needs them. Never nil.
func (p *Partition) AbortedTransactions(from, upTo int64) []AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []AbortedTxn{}
	a := p.txn.aborted
	i, _ := slices.BinarySearchFunc(a, from, func(e txnIndexEntry, off int64) int {
		return cmp.Compare(e.LastOffset, off)
	})
	for _, e := range a[i:] {
		if e.FirstOffset < upTo {
			out = append(out, e.AbortedTxn)
		}
	}
	return out
}

// beginTxnLocked records a transactional data batch: the first one of a
// producer opens its transaction. Requires mu.
func (p *Partition) beginTxnLocked(b record.Batch) {
	if _, ok := p.txn.ongoing[b.ProducerID()]; !ok {
		delete(p.txn.verifying, b.ProducerID())
		if p.txn.ongoing == nil {
			p.txn.ongoing = map[int64]int64{}
		}
		p.txn.ongoing[b.ProducerID()] = b.BaseOffset()
		p.setTxnActiveLocked()
	}
}

// parseMarker reads an end-transaction marker from a control batch:
// commit or abort and the coordinator epoch. ok is false for other control
// records (Kafka skips those too).
func parseMarker(b record.Batch) (commit bool, coordinatorEpoch int32, ok bool) {
	recs, err := b.Records()
	if err != nil || len(recs) == 0 {
		return false, 0, false
	}
	// Kafka reads the version and type of the key, and the version and
	// coordinator epoch of the value, whatever follows (later versions).
	key, val := recs[0].Key, recs[0].Value
	if len(key) < 4 || len(val) < 6 {
		return false, 0, false
	}
	switch int16(binary.BigEndian.Uint16(key[2:])) {
	case controlAbort:
	case controlCommit:
		commit = true
	default:
		return false, 0, false
	}
	return commit, int32(binary.BigEndian.Uint32(val[2:])), true
}

// endTxnLocked records an appended end-transaction marker (Kafka's
// ProducerAppendInfo.appendEndTxnMarker and completeTxn): the producer's
// epoch and coordinator epoch move to the marker's, its open transaction
// (if any) ends, and an aborted one goes to the txn index with the LSO
// right after it. Requires mu.
func (p *Partition) endTxnLocked(b record.Batch) error {
	commit, coordEpoch, ok := parseMarker(b)
	if !ok {
		return nil
	}
	pid, marker := b.ProducerID(), b.BaseOffset()
	// A verification running across the marker is stale.
	delete(p.txn.verifying, pid)
	st := p.producers[pid]
	if st == nil {
		st = &producerState{epoch: b.ProducerEpoch()}
		p.producers[pid] = st
	}
	if st.epoch != b.ProducerEpoch() {
		st.epoch, st.batches = b.ProducerEpoch(), nil
	}
	st.coordEpoch = coordEpoch
	st.markerTimestamp = b.MaxTimestamp()
	first, open := p.txn.ongoing[pid]
	if !open {
		return nil
	}
	delete(p.txn.ongoing, pid)
	// Pruned here too, so that the list stays short on a replica
	// nobody reads the LSO of.
	p.pruneUnreplicatedLocked(p.Log.HighWatermark())
	p.txn.unreplicated = append(p.txn.unreplicated, completedTxn{producerID: pid, first: first, last: marker})
	p.setTxnActiveLocked()
	if commit {
		return nil
	}
	// Kafka's ProducerStateManager.lastStableOffset(completedTxn): the
	// first offset of the earliest other open transaction, else the
	// offset after the marker.
	lso := marker + 1
	for id, f := range p.txn.ongoing {
		if id != pid {
			lso = min(lso, f)
		}
	}
	return p.appendTxnIndexLocked(AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: marker, LastStableOffset: lso})
}

// recordAppendedLocked updates producer and transaction state with batches
// just appended (or replayed from the log), in offset order. Requires mu.
func (p *Partition) recordAppendedLocked(b record.Batch) error {
	if !b.HasProducerID() {
		return nil
	}
	if b.IsControl() {
		return p.endTxnLocked(b)
	}
	if b.IsTransactional() {
		p.beginTxnLocked(b)
	}
	p.recordBatch(b)
	return nil
}

// buildMarker encodes an end-transaction marker as Kafka's
// MemoryRecords.withEndTransactionMarker does: one control record, key
// version 0 and the type (0 ABORT, 1 COMMIT), value version 0 and the
// coordinator epoch, in a transactional control batch of the producer with
// no sequence.
func buildMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, now int64) record.Batch {
	key := kmsg.ControlRecordKey{Version: 0, Type: controlAbort}
	if commit {
		key.Type = controlCommit
	}
	val := kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: coordinatorEpoch}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // a zero Length encodes in 1 byte
	kb := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                record.Magic,
		Attributes:           0x10 | 0x20, // transactional, control
		LastOffsetDelta:      0,
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           pid,
		ProducerEpoch:        epoch,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              rec.AppendTo(nil),
	}
	b := record.Batch(kb.AppendTo(nil))
	b.SetLength()
	b.UpdateCRC()
	return b
}

// AppendTxnMarker writes an end-transaction marker for producer pid (epoch
// epoch) on this partition as its leader, in the current leader epoch:
// COMMIT if commit, else ABORT, with the coordinator's epoch (Kafka's
// UnifiedLog.appendAsLeader with AppendOrigin.COORDINATOR). A marker with
// an epoch below the producer's current one is ErrInvalidProducerEpoch (a
// higher one is taken: KIP-890 bumps the epoch at the end of a
// transaction); one from a coordinator epoch below the last marker's is
// ErrTransactionCoordinatorFenced. The producer's open transaction on the
// partition, if any, ends at the marker; an abort is added to the txn
// index. As AppendNoWait, res.SyncTo says what to WaitDurable for, and
// res.NextOffset is what the high watermark must reach (WaitFor) before
// the marker counts as written.
func (p *Partition) AppendTxnMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32) (res AppendResult, err error) {
	defer func() { p.wrote(err) }()
	res = AppendResult{LogAppendTime: -1}
	b := buildMarker(pid, epoch, commit, coordinatorEpoch, time.Now().UnixMilli())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.fenced {
		return res, log.ErrClosed
	}
	if p.follow.active {
		return res, ErrNotLeader
	}
	if st := p.producers[pid]; st != nil {
		if epoch < st.epoch {
			return res, fmt.Errorf("%w: marker for producer %d epoch %d, current %d", ErrInvalidProducerEpoch, pid, epoch, st.epoch)
		}
		if coordinatorEpoch < st.coordEpoch {
			return res, fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, last %d", ErrTransactionCoordinatorFenced, pid, coordinatorEpoch, st.coordEpoch)
		}
	}
	return p.appendLeaderResultLocked(b, res)
}
