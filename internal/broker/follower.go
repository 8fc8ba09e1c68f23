package broker

import (
	"errors"
	"fmt"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// The follower's storage operations (Kafka's UnifiedLog.appendAsFollower and
// truncateTo, with the follower side of Partition's high watermark). The
// replica fetcher drives them; they do no networking.
//
// A partition is a follower from its first AppendAsFollower,
// UpdateFollowerHighWatermark or TruncateTo until BecomeLeader. While it
// follows, its high watermark is min(leader's high watermark, the local
// offsets that are visible): appends alone never make records visible to
// consumers, and with flush.messages an offset is visible only once it is
// durable here, as on the leader's path.

// ErrNotFollower: a follower operation on a partition led here
// (MakeLeader), from a fetch begun before the leadership moved.
var ErrNotFollower = errors.New("broker: the partition is led here, not followed")

// followLocked makes the partition a follower if it is not one yet. The
// leader's high watermark is taken to be the current one until the first
// fetch response says otherwise, and what is already visible stays so.
// Requires mu.
func (p *Partition) followLocked() {
	if p.follow.active {
		return
	}
	hw := p.Log.HighWatermark()
	p.follow.active, p.follow.leaderHW, p.follow.visible = true, hw, hw
}

// updateFollowerHWLocked sets the high watermark to min(leader's high
// watermark, visible local end), and wakes the consumers' long-polls if it
// moved up. Requires mu.
func (p *Partition) updateFollowerHWLocked() {
	old := p.Log.HighWatermark()
	hw := p.Log.SetHighWatermark(min(p.follow.leaderHW, p.follow.visible))
	if hw > old {
		p.notify(unknownBytes) // offsets, not bytes, became visible
	}
}

// UpdateFollowerHighWatermark records the high watermark the leader sent
// with a fetch response and moves this follower's to min(leaderHW, own log
// end offset), as Kafka's ReplicaFetcherThread does after each append. It
// may move back (a new leader's high watermark can lag). Returns the high
// watermark set.
func (p *Partition) UpdateFollowerHighWatermark(leaderHW int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lead.active {
		return p.Log.HighWatermark()
	}
	p.followLocked()
	p.follow.leaderHW = leaderHW
	p.updateFollowerHWLocked()
	return p.Log.HighWatermark()
}

// AppendAsFollower appends record batches fetched from the leader as they
// are (Kafka's UnifiedLog.appendAsFollower): the leader's offsets and
// partition leader epochs are kept, the first batch must start at the log
// end offset and the others follow on (log.ErrNotContiguous), and every CRC
// is checked (a bad batch fails the call, nothing is written). Control
// batches are taken: the leader wrote them. Sequences are not checked (the
// leader did), but producer state records every producer batch, so that
// this replica dedupes a retry once it leads. Each new leader epoch seen is
// assigned in the epoch cache at the first offset that carries it, and the
// checkpoint is written before the batches.
//
// It returns as AppendNoWait does: res.SyncTo, when flush.messages calls
// for an fsync, is what to WaitDurable for (with res.SyncGen) before the
// fetcher counts the offsets as its own (its next fetch offset). The
// records become visible to consumers only up to the leader's high
// watermark (UpdateFollowerHighWatermark).
func (p *Partition) AppendAsFollower(data []byte) (res AppendResult, err error) {
	defer func() { p.wrote(err) }()
	res = AppendResult{LogAppendTime: -1}
	var epochs []epochEntry // first offset of each epoch change, in order
	var nb int
	if err := record.Split(data, func(b record.Batch) bool {
		nb++
		e := b.PartitionLeaderEpoch()
		if e >= 0 && (len(epochs) == 0 || e != epochs[len(epochs)-1].Epoch) {
			epochs = append(epochs, epochEntry{e, b.BaseOffset()})
		}
		return true
	}); err != nil {
		return res, err
	}
	if nb == 0 {
		return res, fmt.Errorf("%w: no record batch to append", record.ErrInvalidRecord)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.fenced {
		return res, log.ErrClosed
	}
	if p.lead.active {
		return res, ErrNotFollower
	}
	p.followLocked()
	if first := record.Batch(data).BaseOffset(); first != p.Log.LogEndOffset() {
		// Checked again by the log, under its lock; here so that no
		// epoch is assigned for batches the log will refuse.
		return res, fmt.Errorf("%w: batch at offset %d, log end offset %d", log.ErrNotContiguous, first, p.Log.LogEndOffset())
	}
	// The epochs go to the checkpoint first: a crash after it and before
	// the batches reach the disk leaves entries above the log end, which
	// loading trims (truncateFromEnd); the other order could leave batches
	// of an epoch the checkpoint does not know.
	before, changed := p.epochs.snapshot(), false
	for _, e := range epochs {
		// Kafka's maybeAssignEpochStartOffset: a new epoch starts at
		// the first batch that carries it (an epoch older than the
		// cache's latest drops the newer entries, as in Kafka).
		changed = p.epochs.assign(e.Epoch, e.StartOffset) || changed
	}
	if changed {
		if err := p.writeEpochsLocked(); err != nil {
			return res, err
		}
	}
	info, err := p.Log.AppendAsFollowerNoWait(data)
	if err != nil {
		if changed {
			// Undo the assignments: no batch was written. A crash
			// before this rewrite leaves the checkpoint as assigned:
			// loading trims the entries above the log end (entries
			// an older epoch dropped stay dropped; only a leader
			// whose epochs go back could cause that).
			p.epochs.restore(before)
			if werr := p.writeEpochsLocked(); werr != nil {
				p.logger.Error("write leader-epoch-checkpoint", "err", werr)
			}
		}
		return res, err
	}
	if base := p.Log.ActiveSegmentBaseOffset(); base != p.activeBase {
		p.activeBase = base
		if base == info.FirstOffset {
			p.onRollLocked(base)
		}
	}
	for rest := data; len(rest) > 0; {
		b := record.Batch(rest)
		b = b[:b.Size()] // its records alone (a marker is read)
		if err := p.recordAppendedLocked(b); err != nil {
			// The batches are written; only a txn index entry
			// failed (rebuilt by the next replay of the log).
			p.logger.Error("record followed batch", "offset", b.BaseOffset(), "err", err)
		}
		rest = rest[b.Size():]
	}
	if info.SyncTo > 0 {
		// Visible once durable (advanceDurable).
		res.SyncTo, res.SyncGen = info.SyncTo, info.SyncGen
	} else {
		p.follow.visible = p.Log.LogEndOffset()
	}
	p.updateFollowerHWLocked()
	res.BaseOffset = info.FirstOffset
	res.LogStartOffset = p.Log.LogStartOffset()
	return res, nil
}

// writeEpochsLocked writes leader-epoch-checkpoint from the cache. Requires mu.
func (p *Partition) writeEpochsLocked() error {
	return writeFileAtomic(p.Log.FS(), p.Log.Dir(), leaderEpochCheckpointFile, encodeEpochCheckpoint(p.epochs.snapshot()))
}

// TruncateTo removes every offset >= offset from a follower whose log
// diverged from its leader's (Kafka's UnifiedLog.truncateTo): the log (on a
// batch boundary: an offset inside a batch takes the whole batch), the
// epoch cache (entries starting at or after the new log end,
// truncateFromEnd), producer state (rebuilt from the log up to the new end;
// snapshots above it are deleted), and the high watermark (clamped). An
// offset below the log start offset empties the log and restarts it there,
// with an empty epoch cache and no producers. An offset at or past the log
// end changes nothing. Waiters for the durability of truncated offsets get
// an error, never success.
func (p *Partition) TruncateTo(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.fenced {
		return log.ErrClosed
	}
	if p.lead.active {
		return ErrNotFollower
	}
	p.followLocked()
	if offset >= p.Log.LogEndOffset() {
		return nil
	}
	full := offset < p.Log.LogStartOffset()
	if err := p.Log.TruncateTo(offset); err != nil {
		return err
	}
	return p.afterTruncateLocked(full)
}

// TruncateFullyAndStartAt empties a follower's log and restarts it at
// offset, the leader's log start offset, when its own log ends below it
// (Kafka's truncateFullyAndStartAt on OFFSET_OUT_OF_RANGE): epoch cache
// and producer state are emptied with it.
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.fenced {
		return log.ErrClosed
	}
	if p.lead.active {
		return ErrNotFollower
	}
	p.followLocked()
	if err := p.Log.TruncateFullyAndStartAt(offset); err != nil {
		return err
	}
	return p.afterTruncateLocked(true)
}

// afterTruncateLocked brings what the partition keeps beside its log in
// line with a truncation: the visible end, the epoch cache (emptied when
// full), producer state, the high watermark and the checkpoints.
// Requires mu.
func (p *Partition) afterTruncateLocked(full bool) error {
	leo := p.Log.LogEndOffset()
	p.follow.visible = min(p.follow.visible, leo)
	var epochErr error
	changed := p.epochs.truncateFromEnd(leo)
	if full {
		changed = p.epochs.clear() || changed
	}
	if changed {
		epochErr = p.writeEpochsLocked()
	}
	// The snapshots of a roll in flight may cover truncated offsets:
	// rebuildProducerStateLocked waits for them, then deletes every
	// snapshot above the new end before loading.
	if err := p.rebuildProducerStateLocked(); err != nil {
		return err
	}
	p.updateFollowerHWLocked()
	if epochErr != nil {
		return epochErr
	}
	if p.onTruncate != nil {
		// The recovery-point checkpoint on disk may name offsets above
		// the truncation: lower it now, as Kafka's LogManager.truncateTo
		// checkpoints the recovery points after truncating.
		if err := p.onTruncate(); err != nil {
			return err
		}
	}
	return nil
}

// FollowerView is what a followed partition serves consumers by (KIP-392
// reads from a follower): the leader epoch MakeFollower set, which a
// consumer's CurrentLeaderEpoch must match, and the leader's high
// watermark as of the last fetch response. ok is false while the
// partition is led here or never followed.
func (p *Partition) FollowerView() (leaderEpoch int32, leaderHW int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.follow.active || p.lead.active {
		return -1, -1, false
	}
	return p.follow.epoch, p.follow.leaderHW, true
}
