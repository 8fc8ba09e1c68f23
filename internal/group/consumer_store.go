package group

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/wire"
)

// KIP-848 consumer groups in __consumer_offsets, with Kafka's records
// (group-coordinator/src/main/resources/common/message/ConsumerGroup*.json):
//
//	key version  record                                   key fields
//	3            ConsumerGroupMetadata                    GroupId
//	4            ConsumerGroupPartitionMetadata           GroupId
//	5            ConsumerGroupMemberMetadata              GroupId, MemberId
//	6            ConsumerGroupTargetAssignmentMetadata    GroupId
//	7            ConsumerGroupTargetAssignmentMember      GroupId, MemberId
//	8            ConsumerGroupCurrentMemberAssignment     GroupId, MemberId
//
// Each value is flexible version 0 (package wire). A null value is a
// tombstone. As Kafka's GroupMetadataManager does, the coordinator writes
// the records whose value changed after each state change (a heartbeat, a
// member expiring), and tombstones the records of members that left and,
// when the group is deleted, all of them. Replaying them restores members
// with their ids, epochs and assignments, so that after a restart members
// carry on with their epoch, as after a coordinator failover in Kafka;
// their session timers start again.
const (
	cgMetadataKey          = 3
	cgPartitionMetadataKey = 4
	cgMemberMetadataKey    = 5
	cgTargetMetadataKey    = 6
	cgTargetMemberKey      = 7
	cgCurrentAssignmentKey = 8
)

// Kafka's MemberState (modern/MemberState.java), stored in
// ConsumerGroupCurrentMemberAssignmentValue.State.
const (
	memberStable               = 0
	memberUnrevokedPartitions  = 1
	memberUnreleasedPartitions = 2
)

// leaveStaticEpoch is Kafka's LEAVE_GROUP_STATIC_MEMBER_EPOCH: a static
// member that left to restart is stored with member epoch -2, and its
// epoch before leaving as the previous epoch.
const leaveStaticEpoch = -2

func cgKey(version int16, group string, member *string) []byte {
	var w wire.Writer
	w.Int16(version)
	w.Str(group)
	if member != nil {
		w.Str(*member)
	}
	return w.B
}

// consumerRecords is the consumer group's state as records, by key: the
// group's own records and, for each member in ids (all members when ids is
// nil), its three. nil when the group is not a consumer group.
func (g *group) consumerRecords(ids map[string]bool) map[string][]byte {
	cs := g.consumer
	if cs == nil {
		return nil
	}
	out := map[string][]byte{}
	put := func(version int16, member *string, value []byte) {
		out[string(cgKey(version, g.id, member))] = value
	}

	var w wire.Writer
	w.Int16(0)
	w.Int32(cs.groupEpoch)
	w.NoTags()
	put(cgMetadataKey, nil, w.B)

	w = wire.Writer{}
	w.Int16(0)
	w.Int32(cs.groupEpoch)
	names := slices.Sorted(maps.Keys(cs.topicsSeen))
	w.CompactArrayLen(len(names))
	for _, name := range names {
		info, _ := g.c.cfg.Topics.TopicByName(name)
		w.UUID(info.ID)
		w.CompactString(name)
		w.Int32(cs.topicsSeen[name])
		w.CompactArrayLen(0) // PartitionRacks: strata has no racks
		w.NoTags()
	}
	w.NoTags()
	put(cgPartitionMetadataKey, nil, w.B)

	w = wire.Writer{}
	w.Int16(0)
	w.Int32(cs.assignmentEpoch)
	w.NoTags()
	put(cgTargetMetadataKey, nil, w.B)

	for id, m := range cs.members {
		if ids != nil && !ids[id] {
			continue
		}
		w = wire.Writer{}
		w.Int16(0)
		w.CompactNullableString(m.instanceID)
		w.CompactNullableString(m.rackID)
		w.CompactString(m.clientID)
		w.CompactString(m.clientHost)
		w.CompactArrayLen(len(m.subscribed))
		for _, t := range m.subscribed {
			w.CompactString(t)
		}
		w.CompactNullableString(m.regex)
		w.Int32(int32(m.rebalanceTimeout / time.Millisecond))
		if m.assignor != "" {
			w.CompactNullableString(&m.assignor)
		} else {
			w.CompactNullableString(nil)
		}
		w.NoTags()
		put(cgMemberMetadataKey, &id, w.B)

		w = wire.Writer{}
		w.Int16(0)
		g.c.appendTopicPartitions(&w, cs.target[id])
		w.NoTags()
		put(cgTargetMemberKey, &id, w.B)

		w = wire.Writer{}
		w.Int16(0)
		epoch, prev := m.epoch, m.prevEpoch
		if m.staticLeft {
			epoch, prev = leaveStaticEpoch, m.epoch
		}
		w.Int32(epoch)
		w.Int32(prev)
		state := int8(memberStable)
		switch {
		case len(m.pendingRevoke) > 0:
			state = memberUnrevokedPartitions
		case !maps.Equal(m.assigned, cs.target[id]):
			state = memberUnreleasedPartitions
		}
		w.Int8(state)
		g.c.appendTopicPartitions(&w, m.assigned)
		g.c.appendTopicPartitions(&w, m.pendingRevoke)
		w.NoTags()
		put(cgCurrentAssignmentKey, &id, w.B)
	}
	return out
}

// appendTopicPartitions writes partitions as Kafka's []TopicPartitions, by
// topic id, topics in name order. A topic that no longer exists has no id
// and is left out, as it can no longer be consumed.
func (c *Coordinator) appendTopicPartitions(w *wire.Writer, tps map[topicPartition]bool) {
	topics := byTopic(tps)
	names := slices.Sorted(maps.Keys(topics))
	var n int
	for _, name := range names {
		if _, ok := c.cfg.Topics.TopicByName(name); ok {
			n++
		}
	}
	w.CompactArrayLen(n)
	for _, name := range names {
		info, ok := c.cfg.Topics.TopicByName(name)
		if !ok {
			continue
		}
		w.UUID(info.ID)
		w.CompactArrayLen(len(topics[name]))
		for _, p := range topics[name] {
			w.Int32(p)
		}
		w.NoTags()
	}
}

// persistConsumer writes the consumer records that changed since the last
// write, and tombstones those that are gone (a member that left; all of
// them when the group stopped being a consumer group), as one batch. Only
// the touched members' records are looked at, unless the target changed.
// The caller holds g.mu. On error nothing is marked written, and the
// members stay touched, so the next state change writes the difference.
func (g *group) persistConsumer() error {
	cs := g.consumer
	var want map[string][]byte
	var gone []string // keys to tombstone
	switch {
	case cs == nil || cs.touchedAll:
		want = g.consumerRecords(nil)
		for k := range g.cwritten {
			if _, ok := want[k]; !ok {
				gone = append(gone, k)
			}
		}
	default:
		want = g.consumerRecords(cs.touched)
		for id := range cs.touched {
			if cs.members[id] != nil {
				continue
			}
			for _, v := range []int16{cgMemberMetadataKey, cgTargetMemberKey, cgCurrentAssignmentKey} {
				if k := string(cgKey(v, g.id, &id)); g.cwritten[k] != nil {
					gone = append(gone, k)
				}
			}
		}
	}
	var recs []record.NewRecord
	for k, v := range want {
		if old, ok := g.cwritten[k]; !ok || !bytes.Equal(old, v) {
			recs = append(recs, record.NewRecord{Key: []byte(k), Value: v})
		}
	}
	for _, k := range gone {
		recs = append(recs, record.NewRecord{Key: []byte(k)})
	}
	if len(recs) > 0 {
		slices.SortFunc(recs, func(a, b record.NewRecord) int { return bytes.Compare(a.Key, b.Key) })
		if err := g.c.append(g.partition, recs...); err != nil {
			return err
		}
	}
	if g.cwritten == nil {
		g.cwritten = map[string][]byte{}
	}
	for _, r := range recs {
		if r.Value == nil {
			delete(g.cwritten, string(r.Key))
		} else {
			g.cwritten[string(r.Key)] = r.Value
		}
	}
	if cs != nil {
		clear(cs.touched)
		cs.touchedAll = false
	}
	return nil
}

// consumerTombstones are tombstones for every consumer record the log
// holds for the group, for deleting it.
func (g *group) consumerTombstones() []record.NewRecord {
	var recs []record.NewRecord
	for _, k := range slices.Sorted(maps.Keys(g.cwritten)) {
		recs = append(recs, record.NewRecord{Key: []byte(k)})
	}
	return recs
}

// consumerLiveRecords are the consumer records the log holds, for
// compaction's rewrite.
func (g *group) consumerLiveRecords() []record.NewRecord {
	var recs []record.NewRecord
	for _, k := range slices.Sorted(maps.Keys(g.cwritten)) {
		recs = append(recs, record.NewRecord{Key: []byte(k), Value: g.cwritten[k]})
	}
	return recs
}

// loadedConsumer collects one group's consumer records during a replay.
// Topics are kept by id until the group is restored.
type loadedConsumer struct {
	raw        map[string][]byte // live records as read, by key
	meta       bool
	epoch      int32
	assignEp   int32
	topicsSeen map[string]int32
	members    map[string]*cmember // metadata only
	target     map[string][]idPartitions
	current    map[string]*loadedAssignment
}

type idPartitions struct {
	id         [16]byte
	partitions []int32
}

type loadedAssignment struct {
	epoch, prevEpoch int32
	assigned, revoke []idPartitions
}

func newLoadedConsumer() *loadedConsumer {
	return &loadedConsumer{raw: map[string][]byte{}, members: map[string]*cmember{}, target: map[string][]idPartitions{}, current: map[string]*loadedAssignment{}}
}

// replayConsumer applies one KIP-848 record. A value of a version this
// broker does not know is skipped with a warning (and its older value, if
// any, dropped), so that records a newer Kafka or strata wrote do not stop
// the load; the member it described then rejoins.
func (c *Coordinator) replayConsumer(version int16, r *record.Record, get func(string) *loaded) error {
	kr := wire.NewReader(r.Key[2:])
	groupID := kr.Str()
	var memberID string
	if version == cgMemberMetadataKey || version == cgTargetMemberKey || version == cgCurrentAssignmentKey {
		memberID = kr.Str()
	}
	if kr.Err() != nil {
		return fmt.Errorf("consumer group record key (version %d): %w", version, kr.Err())
	}
	ld := get(groupID)
	if ld.consumer == nil {
		ld.consumer = newLoadedConsumer()
	}
	lc := ld.consumer
	key := string(r.Key)
	if r.Value == nil {
		lc.drop(version, key, memberID)
		return nil
	}
	vr := wire.NewReader(r.Value)
	if v := vr.Int16(); vr.Err() == nil && v != 0 {
		c.logger.Warn("skipping consumer group record of an unknown value version", "group", groupID, "key_version", version, "value_version", v)
		lc.drop(version, key, memberID)
		return nil
	}
	switch version {
	case cgMetadataKey:
		lc.epoch = vr.Int32()
		lc.meta = true
	case cgPartitionMetadataKey:
		vr.Int32() // the group epoch the metadata was taken at
		seen := map[string]int32{}
		for range vr.CompactArrayLen() {
			vr.UUID()
			name := vr.CompactString()
			seen[name] = vr.Int32()
			for range vr.CompactArrayLen() { // PartitionRacks
				vr.Int32()
				vr.CompactStrings()
				vr.SkipTags()
			}
			vr.SkipTags()
		}
		lc.topicsSeen = seen
	case cgTargetMetadataKey:
		lc.assignEp = vr.Int32()
	case cgMemberMetadataKey:
		m := &cmember{id: memberID}
		m.instanceID = vr.CompactNullableString()
		m.rackID = vr.CompactNullableString()
		m.clientID = vr.CompactString()
		m.clientHost = vr.CompactString()
		m.subscribed = vr.CompactStrings()
		slices.Sort(m.subscribed)
		m.regex = vr.CompactNullableString()
		m.rebalanceTimeout = time.Duration(vr.Int32()) * time.Millisecond
		if a := vr.CompactNullableString(); a != nil {
			m.assignor = *a
		}
		lc.members[memberID] = m
	case cgTargetMemberKey:
		lc.target[memberID] = readIDPartitions(vr)
	case cgCurrentAssignmentKey:
		a := &loadedAssignment{epoch: vr.Int32(), prevEpoch: vr.Int32()}
		vr.Int8() // State: recomputed from the partitions
		a.assigned = readIDPartitions(vr)
		a.revoke = readIDPartitions(vr)
		lc.current[memberID] = a
	}
	if vr.Err() != nil {
		return fmt.Errorf("consumer group %s record (key version %d): %w", groupID, version, vr.Err())
	}
	// Tagged fields a later version added are skipped on read, not
	// checked: the record is kept as it was written.
	lc.raw[key] = slices.Clone(r.Value)
	return nil
}

// drop forgets a record: a tombstone, or a value that cannot be read.
func (lc *loadedConsumer) drop(version int16, key, memberID string) {
	delete(lc.raw, key)
	switch version {
	case cgMetadataKey:
		lc.meta = false
	case cgPartitionMetadataKey:
		lc.topicsSeen = nil
	case cgTargetMetadataKey:
		lc.assignEp = 0
	case cgMemberMetadataKey:
		delete(lc.members, memberID)
	case cgTargetMemberKey:
		delete(lc.target, memberID)
	case cgCurrentAssignmentKey:
		delete(lc.current, memberID)
	}
}

func readIDPartitions(r *wire.Reader) []idPartitions {
	var out []idPartitions
	for range r.CompactArrayLen() {
		t := idPartitions{id: r.UUID(), partitions: r.CompactInt32s()}
		r.SkipTags()
		out = append(out, t)
	}
	return out
}

// resolve turns partitions by topic id into partitions by name, dropping
// topics that no longer exist.
func (c *Coordinator) resolve(ts []idPartitions) map[topicPartition]bool {
	out := map[topicPartition]bool{}
	for _, t := range ts {
		info, ok := c.cfg.Topics.TopicByID(t.id)
		if !ok {
			continue
		}
		for _, p := range t.partitions {
			out[topicPartition{info.Name, p}] = true
		}
	}
	return out
}

// restoreConsumer makes the group the consumer group its records describe.
// Each member's session starts now (group.consumer.session.timeout.ms): a
// member that does not heartbeat within it is removed, as after a
// coordinator failover in Kafka.
func (g *group) restoreConsumer(lc *loadedConsumer) {
	cs := newConsumerState()
	cs.groupEpoch, cs.assignmentEpoch = lc.epoch, lc.assignEp
	if lc.topicsSeen != nil {
		cs.topicsSeen = lc.topicsSeen
	}
	now := g.c.clock.Now()
	for id, m := range lc.members {
		m.assigned, m.pendingRevoke = map[topicPartition]bool{}, map[topicPartition]bool{}
		if a := lc.current[id]; a != nil {
			m.epoch, m.prevEpoch = a.epoch, a.prevEpoch
			if a.epoch == leaveStaticEpoch {
				m.staticLeft = true
				m.epoch = a.prevEpoch
			}
			m.assigned, m.pendingRevoke = g.c.resolve(a.assigned), g.c.resolve(a.revoke)
		}
		if len(m.pendingRevoke) > 0 {
			m.revokeDeadline = now.Add(m.rebalanceTimeout)
		}
		cs.members[id] = m
		if t, ok := lc.target[id]; ok {
			cs.target[id] = g.c.resolve(t)
		}
	}
	g.consumer = cs
	g.protocolType = "consumer"
	g.cwritten = lc.raw
	for _, m := range cs.members {
		g.scheduleConsumerExpiry(m)
	}
	g.c.logger.Info("restored consumer group", "group", g.id, "epoch", cs.groupEpoch, "members", len(cs.members),
		"member_ids", strings.Join(slices.Sorted(maps.Keys(cs.members)), ","))
}
