package group

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// Transactional offset commits (KIP-98, KIP-447), as Kafka's
// OffsetMetadataManager keeps them: TxnOffsetCommit writes the offsets to
// the group's __consumer_offsets partition as one transactional batch of
// the producer, and keeps them pending, per group and producer id, out of
// OffsetFetch's sight. When the transaction coordinator's marker is written
// to the partition, CompleteTxn applies them (COMMIT) or drops them
// (ABORT). Loading a partition replays the same: transactional offset
// records are pending until their producer's control batch.
//
// A COMMIT applies a pending offset only over an older committed one
// (committed.order): an OffsetCommit written after the transactional one
// wins, as in Kafka.

// txnOffsets is one producer's pending offsets in a group.
type txnOffsets struct {
	epoch   int16 // of the last TxnOffsetCommit, for compaction's rewrite
	offsets map[topicPartition]committed
	// rewritten: a compaction wrote these offsets again, as a new
	// transactional batch of the producer, possibly after the marker
	// that ends the transaction (written before CompleteTxn is called):
	// CompleteTxn then settles the partitions in the log (settle).
	rewritten bool
}

// addPendingOffset records o as pending for producer pid.
func addPendingOffset(txn map[int64]*txnOffsets, pid int64, epoch int16, tp topicPartition, o committed) {
	t := txn[pid]
	if t == nil {
		t = &txnOffsets{offsets: map[topicPartition]committed{}}
		txn[pid] = t
	}
	t.epoch = epoch
	t.offsets[tp] = o
}

// dropPendingOffset removes tp from every producer's pending offsets: an
// offset tombstone (OffsetDelete, DeleteGroups) deletes them too, as
// Kafka's replay of a tombstone does.
func dropPendingOffset(txn map[int64]*txnOffsets, tp topicPartition) {
	for pid, t := range txn {
		delete(t.offsets, tp)
		if len(t.offsets) == 0 {
			delete(txn, pid)
		}
	}
}

// completeTxnOffsets ends producer pid's transaction in one group: on
// commit its pending offsets replace older committed ones; either way they
// are no longer pending. It reports whether the group had any.
func completeTxnOffsets(offsets map[topicPartition]committed, txn map[int64]*txnOffsets, pid int64, commit bool) bool {
	t := txn[pid]
	if t == nil {
		return false
	}
	delete(txn, pid)
	if commit {
		for tp, o := range t.offsets {
			if cur, ok := offsets[tp]; !ok || o.order > cur.order {
				offsets[tp] = o
			}
		}
	}
	return true
}

// hasPendingOffset reports whether a transaction holds an offset of tp
// for the group, for OffsetFetch's require_stable and for expiration.
func (g *group) hasPendingOffset(tp topicPartition) bool {
	for _, t := range g.txn {
		if _, ok := t.offsets[tp]; ok {
			return true
		}
	}
	return false
}

// Control record types of Kafka's EndTransactionMarker key.
const (
	markerAbort  = 0
	markerCommit = 1
)

// parseTxnMarker reads a control record's key: version int16, type int16,
// as Kafka's ControlRecordType.parse (a later version is read as version
// 0). ok is false for a control record that is not a transaction marker
// (Kafka's other control types, such as KRaft's, are not written here).
func parseTxnMarker(key []byte) (commit, ok bool, err error) {
	if len(key) < 4 {
		return false, false, fmt.Errorf("control record key of %d bytes", len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return false, false, fmt.Errorf("control record key version %d", v)
	}
	switch int16(binary.BigEndian.Uint16(key[2:])) {
	case markerAbort:
		return false, true, nil
	case markerCommit:
		return true, true, nil
	}
	return false, false, nil
}

// TxnCommit handles a TxnOffsetCommit (v0-4) as Kafka's
// GroupCoordinator: the group's checks (NOT_COORDINATOR,
// COORDINATOR_LOAD_IN_PROGRESS, and from v3 the member and generation of a
// classic group or the member epoch of a consumer group), each partition's
// (UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE), then the offsets
// are written as one transactional batch of the request's producer and
// kept pending until CompleteTxn.
func (c *Coordinator) TxnCommit(req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	defer func() {
		for i, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}()
	// Unknown partitions are answered first, as Kafka's KafkaApis does
	// before it asks the coordinator (which it does not when none is
	// left).
	valid := 0
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			if c.cfg.PartitionExists(t.Topic, p.Partition) {
				valid++
			} else {
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			}
		}
	}
	if valid == 0 {
		return resp
	}
	failAll := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
	}
	if req.Group == "" {
		failAll(kerr.InvalidGroupID.Code)
		return resp
	}
	if req.ProducerID < 0 {
		// No transaction can hold it (Kafka cannot build a
		// transactional batch without a producer id).
		failAll(kerr.InvalidProducerIDMapping.Code)
		return resp
	}
	generation, memberID, instanceID := req.Generation, req.MemberID, req.InstanceID
	if req.Version < 3 {
		generation, memberID, instanceID = -1, "", nil
	}
	g, err := c.lockGroup(req.Group, generation < 0)
	if err != nil {
		failAll(codeFor(err))
		return resp
	}
	if g == nil {
		failAll(kerr.IllegalGeneration.Code)
		return resp
	}
	defer g.mu.Unlock()
	defer g.removeIfUnused()
	var code int16
	if g.consumer != nil {
		code = g.checkConsumerTxnCommit(memberID, generation, instanceID)
	} else {
		code = g.checkTxnCommit(generation, memberID, instanceID)
	}
	if code != 0 {
		failAll(code)
		return resp
	}
	now := c.nowMs()
	var tps []topicPartition
	var offs []committed
	var recs []record.NewRecord
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case codes[i][j] != 0: // unknown partition
				continue
			case len(meta) > c.cfg.MaxMetadataSize:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := committed{offset: p.Offset, leaderEpoch: -1, metadata: meta, commitMs: now, expireMs: -1}
			if req.Version >= 2 {
				o.leaderEpoch = p.LeaderEpoch
			}
			tp := topicPartition{t.Topic, p.Partition}
			tps = append(tps, tp)
			offs = append(offs, o)
			recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
		}
	}
	if len(recs) == 0 {
		return resp
	}
	first, err := c.appendBatch(g.partition, txnBuildOptions(req.ProducerID, req.ProducerEpoch), recs...)
	if err != nil {
		c.logger.Error("store transactional offsets", "group", g.id, "producer_id", req.ProducerID, "err", err)
		failAll(codeFor(err))
		return resp
	}
	for k, tp := range tps {
		o := offs[k]
		o.order = first + int64(k)
		addPendingOffset(g.txn, req.ProducerID, req.ProducerEpoch, tp, o)
	}
	c.mu.Lock()
	c.noteTxnLocked(g.partition, req.ProducerID, g.id)
	c.mu.Unlock()
	return resp
}

// noteTxnLocked records that producer pid has pending offsets in group
// id of partition p. The caller holds c.mu.
func (c *Coordinator) noteTxnLocked(p int32, pid int64, id string) {
	if c.txnGroups[p] == nil {
		c.txnGroups[p] = map[int64]map[string]struct{}{}
	}
	if c.txnGroups[p][pid] == nil {
		c.txnGroups[p][pid] = map[string]struct{}{}
	}
	c.txnGroups[p][pid][id] = struct{}{}
}

// producerIDPos is where a v2 record batch holds its producer id.
const producerIDPos = 43

// buildBatch is record.Build, except that a transactional batch of
// producer id 0 keeps it: Build reads 0 as no producer, but Kafka's
// producer ids start at 0.
func buildBatch(opts record.BuildOptions, recs ...record.NewRecord) (record.Batch, error) {
	zero := opts.Transactional && opts.ProducerID == 0
	if zero {
		opts.ProducerID = 1
	}
	b, err := record.Build(opts, recs...)
	if err != nil || !zero {
		return b, err
	}
	binary.BigEndian.PutUint64(b[producerIDPos:], 0)
	b.UpdateCRC()
	return b, b.Validate()
}

// txnBuildOptions builds a producer's transactional batch. It carries no
// sequence number (-1): the partition then checks only the producer's
// epoch, as Kafka checks a coordinator's append.
func txnBuildOptions(pid int64, epoch int16) record.BuildOptions {
	return record.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true}
}

// checkTxnCommit is ClassicGroup.validateOffsetCommit for a transactional
// commit: without a generation an empty group takes it, and so does any
// group when no member either (TxnOffsetCommit v0-2 have none); a member
// and generation, when given, must be current. Unlike OffsetCommit, a
// group completing a rebalance takes it.
func (g *group) checkTxnCommit(generation int32, memberID string, instanceID *string) int16 {
	if generation < 0 && g.state == Empty {
		return 0
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.checkMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	}
	return 0
}

// checkConsumerTxnCommit is ConsumerGroup.validateOffsetCommit for a
// transactional commit to a KIP-848 group: without member id, epoch and
// instance id it is not checked; otherwise the member must exist
// (UNKNOWN_MEMBER_ID) and the epoch be its own (a stale one is
// ILLEGAL_GENERATION, as Kafka maps STALE_MEMBER_EPOCH for this API).
func (g *group) checkConsumerTxnCommit(memberID string, epoch int32, instanceID *string) int16 {
	if epoch < 0 && len(g.consumer.members) == 0 {
		return 0
	}
	if epoch < 0 && memberID == "" && instanceID == nil {
		return 0
	}
	m := g.consumer.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// CompleteTxn ends producer producerID's transaction in the groups of
// partition of __consumer_offsets, once its marker (COMMIT when commit) is
// written to that partition: the producer's pending offsets become the
// groups' committed offsets, or are dropped. The marker is in the log, so
// a later Load replays the same outcome; a partition not loaded here is
// left to that. A partition being loaded is waited for, since its replay
// may have read the log before the marker. The epoch is not checked here:
// the partition checked it when it took the marker. The caller holds no
// lock of the partition: a compaction of it may be appending (LOCKS.md).
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, producerEpoch int16, commit bool) {
	if partition < 0 || partition >= c.cfg.Partitions {
		return
	}
	// Load holds partMu for its whole replay; compaction for its
	// rewrite of pending offsets.
	c.partMu[partition].Lock()
	defer c.partMu[partition].Unlock()
	c.mu.Lock()
	if c.parts[partition] != partLoaded || c.closed {
		c.mu.Unlock()
		return
	}
	var gs []*group
	for id := range c.txnGroups[partition][producerID] {
		if g := c.groups[id]; g != nil {
			gs = append(gs, g)
		}
	}
	delete(c.txnGroups[partition], producerID)
	c.mu.Unlock()
	n := 0
	for _, g := range gs {
		g.mu.Lock()
		t := g.txn[producerID]
		if g.state != Dead && completeTxnOffsets(g.offsets, g.txn, producerID, commit) {
			n++
			if t.rewritten {
				c.settle(g, t)
			}
		}
		g.mu.Unlock()
	}
	if n > 0 {
		c.logger.Debug("completed transactional offsets", "partition", partition, "producer_id", producerID,
			"producer_epoch", producerEpoch, "commit", commit, "groups", n)
	}
}

// settle writes, after a transaction whose pending offsets a compaction
// rewrote, the outcome of each of its partitions as plain records: a
// tombstone, which drops a pending offset left in the log after the
// marker (so that a replay does not keep it pending, nor apply it at the
// producer's next COMMIT), then the committed offset again, if any. A
// partition another producer also has pending is only committed again (a
// tombstone would drop that producer's offset too): if the rewrite landed
// after the marker, a replay then keeps this producer's offset of it
// pending until its next marker, a limit of compacting by rewrite that
// Kafka's log compaction does not have (it needs two producers with open
// transactions on one partition of one group, and a compaction between a
// marker and CompleteTxn).
// The caller holds g.mu. A failure is logged: memory is right, and the
// next compaction rewrites the log from it.
func (c *Coordinator) settle(g *group, t *txnOffsets) {
	type write struct {
		tp  topicPartition
		idx int // of its record
	}
	var recs []record.NewRecord
	var writes []write
	for tp := range t.offsets {
		if !g.hasPendingOffset(tp) {
			recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp)})
		}
		if o, ok := g.offsets[tp]; ok {
			writes = append(writes, write{tp, len(recs)})
			recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
		}
	}
	if len(recs) == 0 {
		return
	}
	first, err := c.appendBatch(g.partition, record.BuildOptions{}, recs...)
	if err != nil {
		c.logger.Error("settle transactional offsets after a compaction", "group", g.id, "err", err)
		return
	}
	for _, w := range writes {
		o := g.offsets[w.tp]
		o.order = first + int64(w.idx)
		g.offsets[w.tp] = o
	}
}

// PendingTxnOffsets is how many partitions of a group hold an offset of an
// open transaction, for tools and tests.
func (c *Coordinator) PendingTxnOffsets(groupID string) (int, error) {
	g, err := c.lockGroup(groupID, false)
	if err != nil || g == nil {
		return 0, err
	}
	defer g.mu.Unlock()
	n := 0
	for _, t := range g.txn {
		n += len(t.offsets)
	}
	return n, nil
}

// pendingOnly is the partitions with a pending transactional offset and no
// committed one.
func (g *group) pendingOnly() map[topicPartition]bool {
	out := map[topicPartition]bool{}
	for _, t := range g.txn {
		for tp := range t.offsets {
			if _, ok := g.offsets[tp]; !ok {
				out[tp] = true
			}
		}
	}
	return out
}
