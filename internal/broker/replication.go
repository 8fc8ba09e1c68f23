package broker

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strata-io/strata/internal/log"
)

// The leader's side of replication (Kafka's Partition and Replica): the
// in-sync replica set as the controller last committed it, each follower's
// fetch state, the high watermark as the minimum log end offset over the
// maximal ISR, and the waits of acks=all produces on it.
//
// A partition nobody made a leader with MakeLeader and that does not
// follow (a single node, or a test that builds a Partition alone) is its
// own ISR: its high watermark is its visible log end, as before
// replication existed.

var (
	// ErrNotLeader: the partition stopped being led here while a
	// request waited on it (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("broker: not the leader of the partition")
	// ErrNotEnoughReplicas: fewer in-sync replicas than
	// min.insync.replicas, nothing appended (NOT_ENOUGH_REPLICAS).
	ErrNotEnoughReplicas = errors.New("broker: in-sync replicas below min.insync.replicas")
	// ErrNotEnoughReplicasAfterAppend: the records were appended, then
	// the ISR shrank below min.insync.replicas before they were
	// replicated (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
	ErrNotEnoughReplicasAfterAppend = errors.New("broker: in-sync replicas fell below min.insync.replicas after the append")
	// ErrReplicationTimeout: the followers did not catch up before the
	// request's timeout (REQUEST_TIMED_OUT).
	ErrReplicationTimeout = errors.New("broker: records not replicated to the in-sync replicas in time")
)

// LeaderState is what the metadata says about a partition this node leads.
type LeaderState struct {
	Self           int32 // this node's id
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
	MinISR         int // min.insync.replicas
}

// remoteReplica is the leader's view of one follower (Kafka's
// ReplicaState).
type remoteReplica struct {
	leo          int64 // its log end offset as of its last fetch; -1 unknown
	brokerEpoch  int64
	lastFetch    time.Time
	lastFetchLEO int64 // the leader's log end offset at that fetch
	lastCaughtUp time.Time
}

// leadState is the replication state of a partition led here, guarded by
// Partition.mu.
type leadState struct {
	active         bool
	self           int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32
	// pending is the ISR proposed to the controller and not yet
	// answered (one change in flight per partition), nil if none.
	pending []int32
	minISR  int
	// visible is the local offset the high watermark may reach: the
	// log end, or with flush.messages=1 the durable end.
	visible   int64
	followers map[int32]*remoteReplica
	// hwMoved is closed (and dropped) whenever the high watermark, the
	// ISR or the role changes: acks=all waits select on it.
	hwMoved chan struct{}
	// stopped: the broker is shutting down (StopWaits).
	stopped bool
}

// wakeLocked wakes every wait on the high watermark. The channel is made
// by the first wait after, so that an append nobody waits on allocates
// nothing. Requires mu.
func (p *Partition) wakeLocked() {
	if p.lead.hwMoved != nil {
		close(p.lead.hwMoved)
		p.lead.hwMoved = nil
	}
}

// MakeLeader makes this node the partition's leader as the metadata says
// (Kafka's Partition.makeLeader), or updates the state of a leadership it
// has (a new ISR, replica set or min.insync.replicas). A new leader epoch
// starts at the log end offset; every follower's position is then unknown
// until it fetches, so the high watermark waits for the whole ISR, and each
// ISR member counts as caught up now (it is not dropped before it had the
// time to fetch).
func (p *Partition) MakeLeader(st LeaderState) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return log.ErrClosed
	}
	if p.follow.active && st.LeaderEpoch <= p.follow.epoch {
		// An image older than the one that made it follow.
		return fmt.Errorf("%w: leader epoch %d, following since epoch %d", ErrNotLeader, st.LeaderEpoch, p.follow.epoch)
	}
	cur := p.leaderEpoch.Load()
	switch {
	case st.LeaderEpoch < cur && !p.lead.active:
		return fmt.Errorf("%w: leader epoch %d, led until epoch %d", ErrNotLeader, st.LeaderEpoch, cur)
	case st.LeaderEpoch < cur || (st.LeaderEpoch == cur && p.lead.active && st.PartitionEpoch < p.lead.partitionEpoch):
		return nil // an older image than what this partition applied
	}
	newTerm := !p.lead.active || st.LeaderEpoch > cur
	if st.LeaderEpoch > cur {
		if err := p.becomeLeaderLocked(st.LeaderEpoch); err != nil {
			return err
		}
	}
	l := &p.lead
	now := time.Now()
	if newTerm {
		l.followers = map[int32]*remoteReplica{}
		l.pending = nil
		l.visible = p.Log.LogEndOffset()
		if p.Log.Config().FlushMessages == 1 {
			l.visible = max(min(p.Log.DurableOffset(), l.visible), p.Log.HighWatermark())
		}
	}
	for _, id := range st.Replicas {
		if id != st.Self && l.followers[id] == nil {
			l.followers[id] = &remoteReplica{leo: -1, lastCaughtUp: now, brokerEpoch: -1}
		}
	}
	for id := range l.followers {
		if !slices.Contains(st.Replicas, id) {
			delete(l.followers, id)
		}
	}
	if l.pending != nil && st.PartitionEpoch > l.partitionEpoch {
		l.pending = nil // the controller decided; the image says how
	}
	l.active, l.self = true, st.Self
	p.leading.Store(true)
	l.partitionEpoch = st.PartitionEpoch
	l.replicas, l.isr = slices.Clone(st.Replicas), slices.Clone(st.ISR)
	l.minISR = max(st.MinISR, 1)
	p.follow.active = false
	p.wakeLocked()
	p.maybeIncrementHWLocked()
	return nil
}

// MakeFollower ends this node's leadership of the partition, if it had
// one (Kafka's Partition.makeFollower): produce waits fail with
// ErrNotLeader, and the high watermark is from now on the follower's
// (follower.go). leaderEpoch is the new leader's epoch, which fetches from
// it are made in (FollowerEpoch).
func (p *Partition) MakeFollower(leaderEpoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.follow.active && leaderEpoch < p.follow.epoch {
		return // an older image
	}
	p.lead.active = false
	p.leading.Store(false)
	p.lead.pending = nil
	p.lead.followers = nil
	p.followLocked()
	p.follow.epoch = leaderEpoch
	p.wakeLocked()
}

// FollowerEpoch is the leader epoch MakeFollower last set, -1 while the
// partition leads or never followed.
func (p *Partition) FollowerEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.follow.active || p.lead.active {
		return -1
	}
	return p.follow.epoch
}

// IsLeader reports whether MakeLeader made this node the partition's
// leader and no MakeFollower since.
func (p *Partition) IsLeader() bool { return p.leading.Load() }

// InSyncReplicas is the size of the ISR as the controller committed it
// (1 for a partition that is its own ISR), which produce compares with
// min.insync.replicas before an acks=all append.
func (p *Partition) InSyncReplicas() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lead.active {
		return 1
	}
	return len(p.lead.isr)
}

// maximalISRLocked is the ISR the high watermark waits for: the committed
// one, with the members of a proposed expansion added (Kafka's maximalIsr:
// a replica being added must have the records the leader counts
// committed, and a shrink takes effect only once committed). Requires mu.
func (p *Partition) maximalISRLocked() []int32 {
	l := &p.lead
	if l.pending == nil {
		return l.isr
	}
	m := slices.Clone(l.isr)
	for _, id := range l.pending {
		if !slices.Contains(m, id) {
			m = append(m, id)
		}
	}
	return m
}

// maybeIncrementHWLocked moves the high watermark up to the lowest log end
// offset of the maximal ISR (this node's counted as its visible end), not
// while the ISR is smaller than min.insync.replicas (Kafka 3.7+), and wakes
// the waits on it. A partition that is not led with MakeLeader and does
// not follow is its own ISR. Requires mu.
func (p *Partition) maybeIncrementHWLocked() {
	if p.follow.active {
		return
	}
	l := &p.lead
	hw := l.visible
	if l.active {
		isr := p.maximalISRLocked()
		if len(isr) < l.minISR {
			return
		}
		for _, id := range isr {
			if id == l.self {
				continue
			}
			f := l.followers[id]
			if f == nil || f.leo < 0 {
				return // unknown: nothing new is known to be on it
			}
			hw = min(hw, f.leo)
		}
	}
	if hw <= p.Log.HighWatermark() {
		return
	}
	p.Log.SetHighWatermark(hw)
	p.wakeLocked()
	if !p.appending {
		// Offsets, not bytes, became visible. An append notifies
		// its fetches itself, with the bytes it wrote.
		p.notify(unknownBytes)
	}
}

// setVisibleLocked records that the local log is visible up to offset
// (an append, or an fsync with flush.messages) and moves the high
// watermark. Requires mu.
func (p *Partition) setVisibleLocked(offset int64) {
	if offset > p.lead.visible {
		p.lead.visible = offset
	}
	p.maybeIncrementHWLocked()
}

// FollowerFetch records a fetch from follower id (broker epoch
// brokerEpoch) at fetchOffset, its log end offset (Kafka's
// Replica.updateFetchStateOrThrow): it is caught up as of this fetch if it
// asked for the leader's log end, or as of its previous fetch if it asked
// for at least the log end the leader had then. The high watermark moves if
// it can. It returns the ISR to propose to the controller when the
// follower, out of the ISR, has caught up with the high watermark and the
// current leader epoch's start (Kafka's maybeExpandIsr), with no other
// change in flight; nil otherwise. The caller sends it and reports the
// outcome with ISRChanged or ISRChangeFailed.
func (p *Partition) FollowerFetch(id int32, brokerEpoch, fetchOffset int64, now time.Time) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &p.lead
	if !l.active {
		return nil
	}
	f := l.followers[id]
	if f == nil {
		return nil
	}
	leo := p.Log.LogEndOffset()
	if fetchOffset >= leo {
		f.lastCaughtUp = maxTime(f.lastCaughtUp, now)
	} else if fetchOffset >= f.lastFetchLEO && !f.lastFetch.IsZero() {
		f.lastCaughtUp = maxTime(f.lastCaughtUp, f.lastFetch)
	}
	f.lastFetchLEO, f.lastFetch = leo, now
	f.leo, f.brokerEpoch = fetchOffset, brokerEpoch
	p.maybeIncrementHWLocked()
	if l.pending != nil || slices.Contains(l.isr, id) {
		return nil
	}
	start := p.epochs.startOf(p.leaderEpoch.Load())
	if fetchOffset < p.Log.HighWatermark() || fetchOffset < start {
		return nil
	}
	l.pending = append(slices.Clone(l.isr), id)
	p.maybeIncrementHWLocked()
	return slices.Clone(l.pending)
}

// MaybeShrinkISR returns the ISR to propose without the followers that
// have not caught up for longer than lagMax (replica.lag.time.max.ms,
// Kafka's maybeShrinkIsr), nil when none is out of sync or a change is in
// flight. The caller sends it and reports the outcome.
func (p *Partition) MaybeShrinkISR(now time.Time, lagMax time.Duration) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &p.lead
	if !l.active || l.pending != nil {
		return nil
	}
	var keep []int32
	for _, id := range l.isr {
		if f := l.followers[id]; id != l.self && (f == nil || now.Sub(f.lastCaughtUp) > lagMax) {
			continue
		}
		keep = append(keep, id)
	}
	if len(keep) == len(l.isr) {
		return nil
	}
	l.pending = keep
	return slices.Clone(keep)
}

// ISRChanged applies the ISR and partition epoch the controller answered a
// proposal with.
func (p *Partition) ISRChanged(leaderEpoch int32, isr []int32, partitionEpoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &p.lead
	if !l.active || leaderEpoch != p.leaderEpoch.Load() {
		return
	}
	l.pending = nil
	if partitionEpoch >= l.partitionEpoch {
		l.isr, l.partitionEpoch = slices.Clone(isr), partitionEpoch
	}
	p.wakeLocked()
	p.maybeIncrementHWLocked()
}

// ISRChangeFailed drops the proposal in flight: the controller refused it
// (the image will bring the state it holds) or could not be reached.
func (p *Partition) ISRChangeFailed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lead.pending = nil
	p.wakeLocked()
	p.maybeIncrementHWLocked()
}

// ISRProposal is what an ISR change proposal needs besides the new ISR.
type ISRProposal struct {
	LeaderEpoch    int32
	PartitionEpoch int32
	BrokerEpochs   map[int32]int64 // of each ISR member, -1 unknown
}

// Proposal returns the leader epoch and partition epoch a proposal of isr
// is made from, and the broker epochs of its members as they fetched.
func (p *Partition) Proposal(isr []int32) ISRProposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := ISRProposal{LeaderEpoch: p.leaderEpoch.Load(), PartitionEpoch: p.lead.partitionEpoch, BrokerEpochs: map[int32]int64{}}
	for _, id := range isr {
		pr.BrokerEpochs[id] = -1
		if f := p.lead.followers[id]; f != nil {
			pr.BrokerEpochs[id] = f.brokerEpoch
		}
	}
	return pr
}

// LeaderStatus is a led partition's replication as metrics report it.
type LeaderStatus struct {
	Replicas, ISR, MinISR int
	// MaxLagOffsets is the largest follower lag in offsets (the leader's
	// log end minus the follower's), the whole log for one that has not
	// fetched yet.
	MaxLagOffsets int64
	// MaxLagTime is the longest time any follower has not been caught
	// up with the leader's log end (what replica.lag.time.max.ms is
	// compared with).
	MaxLagTime time.Duration
}

// Status is the partition's replication as its leader sees it; false
// when it is not led here with MakeLeader.
func (p *Partition) Status() (LeaderStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &p.lead
	if !l.active {
		return LeaderStatus{}, false
	}
	s := LeaderStatus{Replicas: len(l.replicas), ISR: len(l.isr), MinISR: l.minISR}
	leo := p.Log.LogEndOffset()
	now := time.Now()
	for _, f := range l.followers {
		if f.leo < leo {
			s.MaxLagTime = max(s.MaxLagTime, now.Sub(f.lastCaughtUp))
		}
		lag := leo
		if f.leo >= 0 {
			lag = leo - f.leo
		}
		s.MaxLagOffsets = max(s.MaxLagOffsets, lag)
	}
	return s, true
}

// ReplicationWait is an append to wait on before an acks=all answer.
type ReplicationWait struct {
	Target      int64 // the high watermark that covers the append
	LeaderEpoch int32
	Gen         uint64 // the log's truncation generation at the append
}

// WaitFor returns what an acks=all produce of the offsets below target
// waits for, and whether it must wait at all (the high watermark may
// already be past them: a partition that is its own ISR).
func (p *Partition) WaitFor(target int64) (ReplicationWait, bool) {
	if p.Log.HighWatermark() >= target {
		return ReplicationWait{}, false
	}
	return ReplicationWait{Target: target, LeaderEpoch: p.leaderEpoch.Load(), Gen: p.Log.TruncationGen()}, true
}

// StopWaits makes every acks=all wait on the partition, now and later,
// fail with ErrNotLeader: the broker is stopping, and the client retries
// on the partition's next leader.
func (p *Partition) StopWaits() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lead.stopped = true
	p.wakeLocked()
}

// WaitReplicated waits until the high watermark covers w.Target (Kafka's
// DelayedProduce with checkEnoughReplicasReachOffset), or deadline. It
// fails with ErrNotLeader when the leadership it was appended in ended or
// the log was truncated below it, ErrNotEnoughReplicasAfterAppend when the
// ISR is below min.insync.replicas, ErrReplicationTimeout at the deadline.
func (p *Partition) WaitReplicated(w ReplicationWait, deadline time.Time) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		switch {
		case p.closed || p.fenced || p.lead.stopped || p.follow.active || p.leaderEpoch.Load() != w.LeaderEpoch || p.Log.TruncationGen() != w.Gen:
			p.mu.Unlock()
			return ErrNotLeader
		case p.Log.HighWatermark() >= w.Target:
			p.mu.Unlock()
			return nil
		case p.lead.active && len(p.maximalISRLocked()) < p.lead.minISR:
			p.mu.Unlock()
			return ErrNotEnoughReplicasAfterAppend
		}
		if p.lead.hwMoved == nil {
			p.lead.hwMoved = make(chan struct{})
		}
		ch := p.lead.hwMoved
		p.mu.Unlock()
		d := time.Until(deadline)
		if d <= 0 {
			return fmt.Errorf("%w: high watermark short of offset %d", ErrReplicationTimeout, w.Target-1)
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ch:
		case <-timer.C:
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ReadReplica is what the leader knows of an in-sync follower that a
// consumer could be sent to read from (KIP-392, Kafka's ReplicaView).
type ReadReplica struct {
	ID           int32
	LogEndOffset int64 // as of its last fetch
	LastCaughtUp time.Time
}

// ReadReplicas returns the followers of the committed ISR whose log end
// offset, as of their last fetch, is at least offset: those a consumer at
// offset may be sent to (Kafka's ReplicaManager.findPreferredReadReplica
// leaves out the followers outside the ISR, which may lag without bound,
// and those that lack the offset). nil when the partition is not led here.
func (p *Partition) ReadReplicas(offset int64) []ReadReplica {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := &p.lead
	if !l.active {
		return nil
	}
	var rs []ReadReplica
	for _, id := range l.isr {
		f := l.followers[id]
		if id == l.self || f == nil || f.leo < offset {
			continue
		}
		rs = append(rs, ReadReplica{ID: id, LogEndOffset: f.leo, LastCaughtUp: f.lastCaughtUp})
	}
	return rs
}
