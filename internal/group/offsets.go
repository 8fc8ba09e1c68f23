package group

import (
	"cmp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// Commit handles an OffsetCommit. Offsets are written to the group's
// __consumer_offsets partition as one batch before they are visible to
// OffsetFetch.
func (c *Coordinator) Commit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	defer func() {
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}()
	failAll := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, ""
	}
	g, err := c.lockGroup(req.Group, generation < 0)
	if err != nil {
		failAll(codeFor(err))
		return resp
	}
	if g == nil {
		if req.Version >= 9 {
			failAll(kerr.GroupIDNotFound.Code)
		} else {
			failAll(kerr.IllegalGeneration.Code)
		}
		return resp
	}
	defer g.mu.Unlock()
	defer g.removeIfUnused()
	code := int16(0)
	if g.consumer != nil {
		var tps []topicPartition
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, topicPartition{t.Topic, p.Partition})
			}
		}
		code = g.checkConsumerCommit(memberID, generation, req.Version, tps)
	} else {
		code = g.checkCommit(generation, memberID, req.InstanceID)
	}
	if code != 0 {
		failAll(code)
		return resp
	}
	now := c.nowMs()
	type pending struct {
		tp topicPartition
		o  committed
	}
	var writes []pending
	var recs []record.NewRecord
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case !c.cfg.PartitionExists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			case len(meta) > c.cfg.MaxMetadataSize:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := committed{offset: p.Offset, leaderEpoch: -1, metadata: meta, commitMs: now, expireMs: -1}
			if req.Version >= 6 {
				o.leaderEpoch = p.LeaderEpoch
			}
			if req.Version == 1 && p.Timestamp >= 0 {
				o.commitMs = p.Timestamp
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
				o.expireMs = now + req.RetentionTimeMillis
			}
			tp := topicPartition{t.Topic, p.Partition}
			writes = append(writes, pending{tp, o})
			recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
		}
	}
	if m := g.members[memberID]; m != nil {
		g.scheduleExpiry(m)
	}
	if len(recs) == 0 {
		return resp
	}
	first, err := c.appendBatch(g.partition, record.BuildOptions{}, recs...)
	if err != nil {
		c.logger.Error("store offsets", "group", g.id, "err", err)
		code := codeFor(err)
		for i, t := range req.Topics {
			for j := range t.Partitions {
				if codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
		return resp
	}
	for i, w := range writes {
		w.o.order = first + int64(i)
		g.offsets[w.tp] = w.o
	}
	return resp
}

// checkCommit is Kafka's ClassicGroup.validateOffsetCommit: a commit with
// no generation is a "simple" commit, accepted only while the group has no
// members; otherwise the member and generation must be current, and not
// between JoinGroup and SyncGroup.
func (g *group) checkCommit(generation int32, memberID string, instanceID *string) int16 {
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
	} else if g.state != Empty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// FetchOffsets returns a group's committed offsets for the given topics,
// or for every partition with an offset when topics is nil. Partitions
// without one get offset -1, as Kafka answers. The code is the group's.
func (c *Coordinator) FetchOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	return c.FetchOffsetsAs(groupID, nil, -1, topics)
}

// FetchOffsetsAs is FetchOffsets for a member (OffsetFetch v9, KIP-848):
// in a consumer group, a member id must name a member and the epoch be
// its current one (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH), as Kafka's
// ConsumerGroup.validateOffsetFetch checks. A null (or empty) member id
// with a negative epoch is an admin or legacy fetch and is not checked;
// nor is a fetch from a classic group (ClassicGroup.validateOffsetFetch).
func (c *Coordinator) FetchOffsetsAs(groupID string, memberID *string, memberEpoch int32, topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	return c.FetchOffsetsStable(groupID, memberID, memberEpoch, topics, false)
}

// FetchOffsetsStable is FetchOffsetsAs with OffsetFetch's require_stable
// (v7+, KIP-447): a partition for which an open transaction of the group
// holds an offset answers UNSTABLE_OFFSET_COMMIT (offset -1), as Kafka's
// fetchOffsets does, and the client asks again once the transaction ends.
// Without it, such a partition answers its committed offset.
func (c *Coordinator) FetchOffsetsStable(groupID string, memberID *string, memberEpoch int32, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	g, err := c.lockGroup(groupID, false)
	if err != nil {
		return nil, codeFor(err)
	}
	var offsets map[topicPartition]committed
	if g != nil {
		defer g.mu.Unlock()
		offsets = g.offsets
		id := ""
		if memberID != nil {
			id = *memberID
		}
		if g.consumer != nil && (id != "" || memberEpoch >= 0) {
			m := g.consumer.members[id]
			switch {
			case m == nil:
				return nil, kerr.UnknownMemberID.Code
			case memberEpoch != m.epoch:
				return nil, kerr.StaleMemberEpoch.Code
			}
		}
	}
	part := func(topic string, p int32, o committed, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		meta := ""
		switch {
		case requireStable && g != nil && g.hasPendingOffset(topicPartition{topic, p}):
			rp.ErrorCode = kerr.UnstableOffsetCommit.Code
		case ok:
			rp.Offset, rp.LeaderEpoch, meta = o.offset, o.leaderEpoch, o.metadata
		}
		rp.Metadata = &meta
		return rp
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if topics == nil {
		byTopic := map[string][]kmsg.OffsetFetchResponseGroupTopicPartition{}
		for tp, o := range offsets {
			byTopic[tp.topic] = append(byTopic[tp.topic], part(tp.topic, tp.partition, o, true))
		}
		for t, ps := range byTopic {
			slices.SortFunc(ps, func(a, b kmsg.OffsetFetchResponseGroupTopicPartition) int {
				return cmp.Compare(a.Partition, b.Partition)
			})
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.Partitions = t, ps
			out = append(out, rt)
		}
		slices.SortFunc(out, func(a, b kmsg.OffsetFetchResponseGroupTopic) int { return strings.Compare(a.Topic, b.Topic) })
		return out, 0
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			o, ok := offsets[topicPartition{t.Topic, p}]
			rt.Partitions = append(rt.Partitions, part(t.Topic, p, o, ok))
		}
		out = append(out, rt)
	}
	return out, 0
}

// Describe returns one group as DescribeGroups reports it. Members carry
// their metadata and assignment only while the group is Stable, as in
// Kafka. An unknown group is Dead, with GROUP_ID_NOT_FOUND from v6
// (KIP-1043).
func (c *Coordinator) Describe(groupID string, version int16) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = groupID
	d.AuthorizedOperations = -2147483648
	g, err := c.lockGroup(groupID, false)
	if err != nil {
		d.ErrorCode = codeFor(err)
		return d
	}
	if g == nil {
		d.State = Dead.String()
		if version >= 6 {
			d.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + groupID + " not found"
			d.ErrorMessage = &msg
		}
		return d
	}
	defer g.mu.Unlock()
	if g.consumer != nil {
		// Kafka: "Group X is not a classic group."
		d.State = Dead.String()
		if version >= 6 {
			msg := "group " + groupID + " is a consumer group (KIP-848): use ConsumerGroupDescribe"
			d.ErrorCode, d.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
		}
		return d
	}
	d.State = g.state.String()
	d.ProtocolType = g.protocolType
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, id := range g.order {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID = m.id, m.instanceID
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		if g.state == Stable {
			dm.ProtocolMetadata = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// List returns the groups of the partitions loaded here, filtered by
// state and type names (matched without regard to case, as Kafka parses
// them; empty filters match all). While a partition is loading the groups
// come with COORDINATOR_LOAD_IN_PROGRESS (errLoading), as Kafka's
// handleListGroups answers.
func (c *Coordinator) List(states, types []string) ([]kmsg.ListGroupsResponseGroup, error) {
	c.mu.Lock()
	closed := c.closed
	var err error
	if slices.Contains(c.parts, partLoading) {
		err = errLoading
	}
	c.mu.Unlock()
	if closed {
		return nil, errNotCoordinator
	}
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	var out []kmsg.ListGroupsResponseGroup
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		state, ptype, stateName, kind := g.state, g.protocolType, g.state.String(), "classic"
		if g.consumer != nil {
			stateName, kind = g.consumerStateName(), "consumer"
		}
		g.mu.Unlock()
		if state == Dead || !match(states, stateName) || !match(types, kind) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, ptype, stateName, kind
		out = append(out, lg)
	}
	return out, err
}

// DeleteGroup deletes an empty group and its offsets (DeleteGroups):
// GROUP_ID_NOT_FOUND when there is none, NON_EMPTY_GROUP while it has
// members.
func (c *Coordinator) DeleteGroup(groupID string) int16 {
	g, err := c.lockGroup(groupID, false)
	if err != nil {
		return codeFor(err)
	}
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	defer g.mu.Unlock()
	if g.state != Empty || len(g.pending) > 0 || g.consumer != nil && len(g.consumer.members) > 0 {
		return kerr.NonEmptyGroup.Code
	}
	recs := []record.NewRecord{}
	for tp := range g.offsets {
		recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp)})
	}
	// Pending transactional offsets go too (Kafka's deleteAllOffsets),
	// one tombstone per partition: a later COMMIT finds none.
	for tp := range g.pendingOnly() {
		recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp)})
	}
	recs = append(recs, record.NewRecord{Key: groupKey(g.id)})
	recs = append(recs, g.consumerTombstones()...)
	if err := c.append(g.partition, recs...); err != nil {
		c.logger.Error("delete group", "group", g.id, "err", err)
		return codeFor(err)
	}
	g.cwritten = nil
	c.removeLocked(g)
	c.logger.Info("deleted group", "group", groupID)
	return 0
}

// DeleteOffsets handles an OffsetDelete: the offsets of an empty group, or
// of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g, err := c.lockGroup(req.Group, false)
	if err != nil {
		resp.ErrorCode = codeFor(err)
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	defer g.mu.Unlock()
	var subscribed map[string]bool
	if g.consumer != nil {
		subscribed = g.consumerSubscriptions()
	} else if g.state != Empty {
		topics, ok := g.subscribedTopics()
		if !ok {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
		subscribed = topics
	}
	var recs []record.NewRecord
	var gone []topicPartition
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			tp := topicPartition{t.Topic, p.Partition}
			switch {
			case subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case !c.cfg.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				// A tombstone deletes a pending transactional
				// offset too, as in Kafka.
				if _, ok := g.offsets[tp]; ok || g.hasPendingOffset(tp) {
					recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp)})
					gone = append(gone, tp)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) > 0 {
		if err := c.append(g.partition, recs...); err != nil {
			c.logger.Error("delete offsets", "group", g.id, "err", err)
			resp.ErrorCode, resp.Topics = codeFor(err), nil
			return resp
		}
	}
	for _, tp := range gone {
		delete(g.offsets, tp)
		dropPendingOffset(g.txn, tp)
	}
	return resp
}

// ExpireOffsets removes offsets past offsets.retention.minutes, as Kafka's
// removeExpiredOffsets: all of an empty group's offsets once it has been
// empty that long; a stable consumer group's offsets of topics it no
// longer subscribes to, by commit time; a group without a protocol
// (offsets only), each by commit time. An empty group left with no
// offsets is deleted. It runs every offsets.retention.check.interval.ms.
func (c *Coordinator) ExpireOffsets() {
	now := c.clock.Now()
	retention := c.cfg.OffsetsRetention.Milliseconds()
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		if g.state != Dead {
			c.expire(g, now.UnixMilli(), retention)
		}
		g.mu.Unlock()
	}
}

func (c *Coordinator) expire(g *group, now, retention int64) {
	var base func(o committed) int64
	var subscribed map[string]bool
	switch {
	case g.consumer != nil && len(g.consumer.members) > 0:
		subscribed = g.consumerSubscriptions()
		base = func(o committed) int64 { return o.commitMs }
	case g.protocolType == "":
		base = func(o committed) int64 { return o.commitMs }
	case g.state == Empty:
		became := g.stateTime.UnixMilli()
		base = func(committed) int64 { return became }
	case g.state == Stable:
		topics, ok := g.subscribedTopics()
		if !ok {
			return
		}
		subscribed = topics
		base = func(o committed) int64 { return o.commitMs }
	default:
		return
	}
	var recs []record.NewRecord
	var gone []topicPartition
	for tp, o := range g.offsets {
		if subscribed[tp.topic] || g.hasPendingOffset(tp) {
			// Kafka expires no offset an open transaction will
			// replace.
			continue
		}
		expired := now-base(o) >= retention
		if o.expireMs >= 0 {
			expired = now >= o.expireMs
		}
		if expired {
			recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp)})
			gone = append(gone, tp)
		}
	}
	deleteGroup := g.state == Empty && len(g.members) == 0 && (g.consumer == nil || len(g.consumer.members) == 0) && len(g.pending) == 0 && len(gone) == len(g.offsets) &&
		len(g.txn) == 0 // not while a transaction holds offsets of the group, as Kafka
	if deleteGroup {
		recs = append(recs, record.NewRecord{Key: groupKey(g.id)})
		recs = append(recs, g.consumerTombstones()...)
	}
	if len(recs) == 0 {
		return
	}
	if err := c.append(g.partition, recs...); err != nil {
		c.logger.Error("expire offsets", "group", g.id, "err", err)
		return
	}
	for _, tp := range gone {
		delete(g.offsets, tp)
	}
	c.logger.Info("expired offsets", "group", g.id, "partitions", len(gone), "group_deleted", deleteGroup)
	if deleteGroup {
		g.cwritten = nil
		c.removeLocked(g)
	}
}
