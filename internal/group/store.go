package group

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// Record key versions in __consumer_offsets, as Kafka defines them: 0 and
// 1 are offset commits, 2 is group metadata, 3 to 8 are KIP-848 consumer
// groups (consumer_store.go). Later versions (share and streams groups)
// are skipped on load.
const (
	offsetKeyVersion = 1
	groupKeyVersion  = 2
	// Values: OffsetCommitValue v3 (leader epoch) unless the commit
	// carries an expire timestamp (v1); GroupMetadataValue v3 (static
	// members' instance ids).
	offsetValueVersion = 3
	groupValueVersion  = 3
)

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, tp.topic, tp.partition
	return k.AppendTo(nil)
}

func offsetValue(o committed) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	if o.expireMs >= 0 {
		v.Version = 1
	}
	v.Offset, v.LeaderEpoch, v.Metadata = o.offset, o.leaderEpoch, o.metadata
	v.CommitTimestamp, v.ExpireTimestamp = o.commitMs, o.expireMs
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// metadataValue is the group as a GroupMetadataValue record.
func (g *group) metadataValue() []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID = m.id, m.instanceID
		vm.ClientID, vm.ClientHost = m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalTime / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadata(g.protocol)
		vm.Assignment = m.assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// store writes the group's metadata record.
func (g *group) store() error {
	return g.c.append(g.partition, record.NewRecord{Key: groupKey(g.id), Value: g.metadataValue()})
}

// append writes records to a __consumer_offsets partition as one batch,
// so that the offsets of one commit land together or not at all.
func (c *Coordinator) append(partition int32, recs ...record.NewRecord) error {
	_, err := c.appendBatch(partition, record.BuildOptions{}, recs...)
	return err
}

// appendBatch writes records as one batch built with opts (a
// transactional batch carries its producer id and epoch) and returns the
// order (Coordinator.next) of its first record.
func (c *Coordinator) appendBatch(partition int32, opts record.BuildOptions, recs ...record.NewRecord) (int64, error) {
	if c.cfg.Storage == nil {
		return 0, fmt.Errorf("group: no storage configured")
	}
	now := c.nowMs()
	for i := range recs {
		recs[i].Timestamp = now
	}
	b, err := buildBatch(opts, recs...)
	if err != nil {
		return 0, err
	}
	if err := c.cfg.Storage.Append(partition, b); err != nil {
		return 0, err
	}
	var first int64
	if partition >= 0 && int(partition) < len(c.next) {
		first = c.next[partition].Add(int64(len(recs))) - int64(len(recs))
	}
	c.noteAppended(partition, len(recs))
	return first, nil
}

// loaded is what replaying a partition found about one group.
type loaded struct {
	meta     *kmsg.GroupMetadataValue // nil: no metadata record (or deleted)
	offsets  map[topicPartition]committed
	consumer *loadedConsumer       // KIP-848 records, if any
	txn      map[int64]*txnOffsets // pending transactional offsets, by producer id
}

// Load makes this coordinator the coordinator of partition p of
// __consumer_offsets (Kafka's onElection): it replays the partition's log
// l into the partition's groups and then serves them. While it replays,
// requests for those groups get COORDINATOR_LOAD_IN_PROGRESS; requests for
// other partitions are served meanwhile. A nil l is a partition without a
// log yet, so without groups. Loading a partition already loaded does
// nothing, as in Kafka. Load and Unload of one partition run one at a
// time, in the order they are called.
func (c *Coordinator) Load(p int32, l *log.Log) error {
	if p < 0 || p >= c.cfg.Partitions {
		return fmt.Errorf("group: load %s-%d: the topic has %d partitions", Topic, p, c.cfg.Partitions)
	}
	c.partMu[p].Lock()
	defer c.partMu[p].Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errNotCoordinator
	}
	if c.parts[p] == partLoaded {
		c.mu.Unlock()
		return nil
	}
	c.parts[p] = partLoading
	c.mu.Unlock()
	gs, n, live, end, err := c.readPartition(p, l)
	c.mu.Lock()
	if err != nil || c.closed {
		c.parts[p] = partNotOwned
		c.mu.Unlock()
		for _, g := range gs {
			g.mu.Lock()
			g.stopTimers()
			g.transition(Dead)
			g.mu.Unlock()
		}
		if err == nil {
			err = errNotCoordinator
		}
		return err
	}
	if c.compactCh != nil {
		// Before requests may append to the partition.
		c.appended[p].Store(0)
		c.live[p].Store(int64(live))
	}
	c.txnGroups[p] = nil
	for _, g := range gs {
		c.groups[g.id] = g
		for pid := range g.txn {
			c.noteTxnLocked(p, pid, g.id)
		}
	}
	c.next[p].Store(end)
	c.parts[p] = partLoaded
	c.mu.Unlock()
	if n > 0 {
		c.logger.Info("loaded consumer groups", "partition", p, "records", n, "live_records", live, "groups", len(gs))
	}
	c.noteAppended(p, n) // compacts a partition that grew large
	return nil
}

// readPartition replays partition p's log into groups, which are not yet
// visible to requests: the groups, the records read, the live records and
// the offset after the last batch.
//
// Offset commits in a transactional batch are pending until the control
// batch (COMMIT or ABORT marker) of their producer that follows, as Kafka's
// coordinator loader replays them, so that a restart or a coordinator
// failover ends in the state the live coordinator had (CompleteTxn).
func (c *Coordinator) readPartition(p int32, l *log.Log) ([]*group, int, int, int64, error) {
	if l == nil {
		return nil, 0, 0, 0, nil
	}
	found := map[string]*loaded{}
	get := func(id string) *loaded {
		if found[id] == nil {
			found[id] = &loaded{offsets: map[topicPartition]committed{}, txn: map[int64]*txnOffsets{}}
		}
		return found[id]
	}
	// The groups in which each producer has pending offsets, so that
	// a marker visits only those.
	open := map[int64]map[*loaded]bool{}
	var n int
	var end int64
	err := l.Scan(0, func(b record.Batch) error {
		end = b.NextOffset()
		if b.IsControl() {
			var derr error
			err := b.ForEachRecord(func(r *record.Record) bool {
				commit, ok, err := parseTxnMarker(r.Key)
				if err != nil {
					derr = fmt.Errorf("%s-%d offset %d: %w", Topic, p, r.Offset, err)
					return false
				}
				if ok {
					for ld := range open[b.ProducerID()] {
						completeTxnOffsets(ld.offsets, ld.txn, b.ProducerID(), commit)
					}
					delete(open, b.ProducerID())
				}
				return true
			})
			if err != nil {
				return err
			}
			return derr
		}
		txn := txnBatch{pid: -1}
		getBatch := get
		if b.IsTransactional() {
			txn = txnBatch{pid: b.ProducerID(), epoch: b.ProducerEpoch()}
			getBatch = func(id string) *loaded {
				ld := get(id)
				if open[txn.pid] == nil {
					open[txn.pid] = map[*loaded]bool{}
				}
				open[txn.pid][ld] = true
				return ld
			}
		}
		var derr error
		err := b.ForEachRecord(func(r *record.Record) bool {
			n++
			if derr = c.replay(r, txn, getBatch); derr != nil {
				derr = fmt.Errorf("%s-%d offset %d: %w", Topic, p, r.Offset, derr)
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		return derr
	})
	if err != nil {
		return nil, n, 0, 0, err
	}
	var live int
	var gs []*group
	for id, ld := range found {
		isConsumer := ld.consumer != nil && ld.consumer.meta
		if ld.meta == nil && len(ld.offsets) == 0 && !isConsumer && len(ld.txn) == 0 {
			continue
		}
		if PartitionFor(id, c.cfg.Partitions) != p {
			// Placed by another partition count: requests for it
			// would never find it here.
			c.logger.Warn("skipping group of another partition", "group", id, "partition", p)
			continue
		}
		g := newGroup(c, id)
		g.offsets = ld.offsets
		g.txn = ld.txn
		for _, t := range g.txn {
			live += len(t.offsets)
		}
		if ld.meta != nil && !isConsumer {
			g.restore(ld.meta)
			live++
		}
		if isConsumer {
			g.restoreConsumer(ld.consumer)
			live += len(g.cwritten)
		}
		live += len(g.offsets)
		gs = append(gs, g)
	}
	return gs, n, live, end, nil
}

// txnBatch is the producer of a transactional batch being replayed; pid -1
// for a batch outside a transaction.
type txnBatch struct {
	pid   int64
	epoch int16
}

// replay applies one record of __consumer_offsets.
func (c *Coordinator) replay(r *record.Record, txn txnBatch, get func(string) *loaded) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("record key of %d bytes", len(r.Key))
	}
	switch v := int16(binary.BigEndian.Uint16(r.Key)); v {
	case cgMetadataKey, cgPartitionMetadataKey, cgMemberMetadataKey, cgTargetMetadataKey, cgTargetMemberKey, cgCurrentAssignmentKey:
		return c.replayConsumer(v, r, get)
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("offset commit key: %w", err)
		}
		ld := get(k.Group)
		tp := topicPartition{k.Topic, k.Partition}
		if r.Value == nil {
			delete(ld.offsets, tp)
			dropPendingOffset(ld.txn, tp)
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil { // strings are copied
			return fmt.Errorf("offset commit value: %w", err)
		}
		o := committed{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitMs: v.CommitTimestamp, expireMs: -1}
		if v.Version >= 3 {
			o.leaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			o.expireMs = v.ExpireTimestamp
		}
		o.order = r.Offset
		if txn.pid >= 0 {
			addPendingOffset(ld.txn, txn.pid, txn.epoch, tp, o)
			return nil
		}
		ld.offsets[tp] = o
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("group metadata key: %w", err)
		}
		ld := get(k.Group)
		if r.Value == nil {
			ld.meta = nil
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		// Byte fields would alias the scan buffer, which is reused.
		if err := v.ReadFrom(slices.Clone(r.Value)); err != nil {
			return fmt.Errorf("group metadata value: %w", err)
		}
		ld.meta = v
	}
	return nil
}

// restore sets a loaded group's state from its last metadata record: with
// members it is Stable, and each member must heartbeat within its session
// timeout to stay, as after a coordinator moves in Kafka.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	if v.CurrentStateTimestamp > 0 {
		g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		m := &member{
			id:             vm.MemberID,
			instanceID:     vm.InstanceID,
			clientID:       vm.ClientID,
			clientHost:     vm.ClientHost,
			sessionTimeout: time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalTime:      time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocolType:   v.ProtocolType,
			protocols:      []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:     vm.Assignment,
		}
		if m.rebalTime <= 0 {
			m.rebalTime = m.sessionTimeout
		}
		g.members[m.id] = m
		g.order = append(g.order, m.id)
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.scheduleExpiry(m)
	}
	if len(g.members) > 0 {
		g.state = Stable
	}
}
