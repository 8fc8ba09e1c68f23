package group

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file is the tests' reference for what Kafka's classic group
// coordinator answers (GroupMetadataManager / ClassicGroup in Kafka 3.7+,
// GroupCoordinator before): given a snapshot of a group taken before a
// request, the error code the request must get. It is written from Kafka's
// rules, not from this package's code, so that the state machine test
// notices where the two part.

// memberSnap and groupSnap are copies of a group's state.
type memberSnap struct {
	id           string
	instanceID   *string
	clientID     string
	clientHost   string
	session      time.Duration
	rebalance    time.Duration
	protocolType string
	protocols    []kmsg.JoinGroupRequestProtocol
	assignment   []byte
	joinWaiting  bool
	syncWaiting  bool
}

type groupSnap struct {
	id           string
	exists       bool
	state        State
	stateTime    time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	order        []string
	members      map[string]*memberSnap
	static       map[string]string
	pending      map[string]bool
	pendingSync  map[string]bool
	offsets      map[topicPartition]committed
}

// snapshot copies g; the caller must not hold g.mu.
func snapshot(g *group) *groupSnap { return snapshotOf(g, true) }

// snapshotOf copies g, without its offsets, the members' protocols and
// assignments unless full.
func snapshotOf(g *group, full bool) *groupSnap {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &groupSnap{
		id:           g.id,
		exists:       g.state != Dead,
		state:        g.state,
		stateTime:    g.stateTime,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		generation:   g.generation,
		leader:       g.leader,
		order:        slices.Clone(g.order),
		members:      map[string]*memberSnap{},
		static:       maps.Clone(g.static),
		pending:      map[string]bool{},
		pendingSync:  maps.Clone(g.pendingSync),
	}
	if full {
		s.offsets = maps.Clone(g.offsets)
	}
	for id := range g.pending {
		s.pending[id] = true
	}
	for id, m := range g.members {
		ms := &memberSnap{
			id:           m.id,
			instanceID:   m.instanceID,
			clientID:     m.clientID,
			clientHost:   m.clientHost,
			session:      m.sessionTimeout,
			rebalance:    m.rebalTime,
			protocolType: m.protocolType,
			joinWaiting:  m.join != nil,
			syncWaiting:  m.sync != nil,
		}
		if full {
			ms.protocols = cloneProtocols(m.protocols)
			ms.assignment = slices.Clone(m.assignment)
		}
		s.members[id] = ms
	}
	return s
}

// snapshotAll copies every group of c, by id.
func snapshotAll(c *Coordinator) map[string]*groupSnap {
	out := map[string]*groupSnap{}
	for _, g := range c.groupsSnapshot() {
		gs := snapshot(g)
		out[gs.id] = gs
	}
	return out
}

// absentGroup is the snapshot of a group that does not exist.
func absentGroup(id string) *groupSnap {
	return &groupSnap{id: id, state: Empty, members: map[string]*memberSnap{}, static: map[string]string{}, pending: map[string]bool{}}
}

func (gs *groupSnap) metadata(m *memberSnap, protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// validateMember is ClassicGroup.validateMember.
func (gs *groupSnap) validateMember(id string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := gs.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if cur != id {
			return kerr.FencedInstanceID.Code
		}
	}
	if gs.members[id] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

func protocolNames(ps []kmsg.JoinGroupRequestProtocol) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// supportsProtocols is ClassicGroup.supportsProtocols: an Empty group takes
// any non-empty type and protocol list; otherwise the type must be the
// group's and one protocol must be supported by every member.
func (gs *groupSnap) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if gs.state == Empty {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != gs.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range gs.members {
			if !slices.Contains(protocolNames(m.protocols), p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// protocolWinners is the set of protocols ClassicGroup.selectProtocol may
// pick for these members: each votes for its preferred protocol among
// those all support, and Kafka breaks ties arbitrarily.
func protocolWinners(members []*memberSnap) map[string]bool {
	supported := func(name string) bool {
		for _, m := range members {
			if !slices.Contains(protocolNames(m.protocols), name) {
				return false
			}
		}
		return true
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if supported(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := 0
	for _, v := range votes {
		best = max(best, v)
	}
	out := map[string]bool{}
	for name, v := range votes {
		if v == best {
			out[name] = true
		}
	}
	return out
}

// joinExpect is what a JoinGroup may get.
type joinExpect struct {
	code      int16 // the error it must get at once, if not 0
	immediate bool  // a success that must be answered within the call
	// A new dynamic member of v4+ gets MEMBER_ID_REQUIRED at once.
	memberIDRequired bool
	// The member was known (or pending): the request counts as its
	// heartbeat.
	known bool
	// A static member replaces its instance's previous member id.
	replaces string
}

// refJoin is Kafka's classicGroupJoin for a group in state gs.
func (gs *groupSnap) refJoin(req *kmsg.JoinGroupRequest, cfg Config) joinExpect {
	if req.Group == "" {
		return joinExpect{code: kerr.InvalidGroupID.Code}
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < cfg.MinSessionTimeout || session > cfg.MaxSessionTimeout {
		return joinExpect{code: kerr.InvalidSessionTimeout.Code}
	}
	if req.MemberID == "" {
		if !gs.supportsProtocols(req.ProtocolType, req.Protocols) {
			return joinExpect{code: kerr.InconsistentGroupProtocol.Code}
		}
		if req.InstanceID != nil {
			if old, ok := gs.static[*req.InstanceID]; ok {
				e := joinExpect{replaces: old}
				if gs.state == Stable {
					// No rebalance unless the protocol the group
					// would select changes.
					var ms []*memberSnap
					for _, id := range gs.order {
						m := gs.members[id]
						if id == old {
							m = &memberSnap{protocols: req.Protocols}
						}
						ms = append(ms, m)
					}
					w := protocolWinners(ms)
					e.immediate = len(w) == 1 && w[gs.protocol]
				}
				return e
			}
			return joinExpect{}
		}
		if req.Version >= 4 {
			return joinExpect{memberIDRequired: true}
		}
		return joinExpect{}
	}
	if !gs.exists {
		return joinExpect{code: kerr.UnknownMemberID.Code}
	}
	if !gs.supportsProtocols(req.ProtocolType, req.Protocols) {
		return joinExpect{code: kerr.InconsistentGroupProtocol.Code}
	}
	if gs.pending[req.MemberID] {
		return joinExpect{known: true}
	}
	if code := gs.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return joinExpect{code: code}
	}
	m := gs.members[req.MemberID]
	same := slices.EqualFunc(m.protocols, req.Protocols, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
	switch gs.state {
	case PreparingRebalance:
		return joinExpect{known: true}
	case CompletingRebalance:
		return joinExpect{known: true, immediate: same}
	case Stable:
		return joinExpect{known: true, immediate: same && req.MemberID != gs.leader}
	}
	return joinExpect{code: kerr.UnknownMemberID.Code}
}

// syncExpect is what a SyncGroup may get: an error at once, the current
// assignment at once (Stable), the end of the rebalance (the leader), or a
// wait for the leader.
type syncExpect struct {
	code      int16
	immediate bool // answered within the call (code 0, or a store error for the leader)
	leader    bool // the leader's assignment completes the rebalance
	wait      bool
}

func (e syncExpect) valid() bool { return e.code == 0 }

// refSync is Kafka's classicGroupSync.
func (gs *groupSnap) refSync(req *kmsg.SyncGroupRequest) syncExpect {
	if req.Group == "" {
		return syncExpect{code: kerr.InvalidGroupID.Code}
	}
	if !gs.exists {
		return syncExpect{code: kerr.UnknownMemberID.Code}
	}
	if code := gs.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return syncExpect{code: code}
	}
	if req.Generation != gs.generation {
		return syncExpect{code: kerr.IllegalGeneration.Code}
	}
	inconsistent := func(r *string, g string) bool { return r != nil && g != "" && *r != g }
	if inconsistent(req.ProtocolType, gs.protocolType) || inconsistent(req.Protocol, gs.protocol) {
		return syncExpect{code: kerr.InconsistentGroupProtocol.Code}
	}
	switch gs.state {
	case Empty:
		return syncExpect{code: kerr.UnknownMemberID.Code}
	case PreparingRebalance:
		return syncExpect{code: kerr.RebalanceInProgress.Code}
	case CompletingRebalance:
		if req.MemberID == gs.leader {
			return syncExpect{immediate: true, leader: true}
		}
		return syncExpect{wait: true}
	}
	return syncExpect{immediate: true}
}

// refHeartbeat is Kafka's classicGroupHeartbeat.
func (gs *groupSnap) refHeartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if !gs.exists {
		return kerr.UnknownMemberID.Code
	}
	if code := gs.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != gs.generation {
		return kerr.IllegalGeneration.Code
	}
	switch gs.state {
	case Empty:
		return kerr.UnknownMemberID.Code
	case PreparingRebalance:
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// refCommitGroup is the group-level outcome of an OffsetCommit (Kafka's
// OffsetMetadataManager.commitOffset and ClassicGroup.validateOffsetCommit):
// the code every partition gets, or 0. created: the commit creates the
// group (a "simple" commit, without a generation).
func (gs *groupSnap) refCommitGroup(req *kmsg.OffsetCommitRequest) (code int16, created bool) {
	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, ""
	}
	if !gs.exists {
		if generation < 0 {
			return 0, true
		}
		if req.Version >= 9 {
			return kerr.GroupIDNotFound.Code, false
		}
		return kerr.IllegalGeneration.Code, false
	}
	if generation < 0 && gs.state == Empty {
		return 0, false
	}
	if generation >= 0 || memberID != "" || req.InstanceID != nil {
		if code := gs.validateMember(memberID, req.InstanceID); code != 0 {
			return code, false
		}
		if generation != gs.generation {
			return kerr.IllegalGeneration.Code, false
		}
	} else if gs.state != Empty {
		return kerr.UnknownMemberID.Code, false
	}
	if gs.state == CompletingRebalance {
		return kerr.RebalanceInProgress.Code, false
	}
	return 0, false
}

// committedFor is the offset a successful commit of p stores, as Kafka's
// KafkaApis builds OffsetAndMetadata.
func committedFor(req *kmsg.OffsetCommitRequest, p kmsg.OffsetCommitRequestTopicPartition, nowMs int64) committed {
	o := committed{offset: p.Offset, leaderEpoch: -1, commitMs: nowMs, expireMs: -1}
	if p.Metadata != nil {
		o.metadata = *p.Metadata
	}
	if req.Version >= 6 {
		o.leaderEpoch = p.LeaderEpoch
	}
	if req.Version == 1 && p.Timestamp >= 0 {
		o.commitMs = p.Timestamp
	}
	if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
		o.expireMs = nowMs + req.RetentionTimeMillis
	}
	return o
}

// refLeave is Kafka's per-member LeaveGroup outcome; it updates gs as
// the coordinator would (members of one request leave in order).
func (gs *groupSnap) refLeave(lm kmsg.LeaveGroupRequestMember) int16 {
	if !gs.exists {
		return kerr.UnknownMemberID.Code
	}
	id := lm.MemberID
	switch {
	case id == "":
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		cur, ok := gs.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		id = cur
	case gs.pending[id]:
		delete(gs.pending, id)
		return 0
	default:
		if code := gs.validateMember(id, lm.InstanceID); code != 0 {
			return code
		}
	}
	if m := gs.members[id]; m != nil && m.instanceID != nil {
		delete(gs.static, *m.instanceID)
	}
	delete(gs.members, id)
	gs.order = slices.DeleteFunc(gs.order, func(s string) bool { return s == id })
	return 0
}

// refExpire is the offsets GroupMetadata.removeExpiredOffsets drops at
// now, and whether the group is then deleted (an Empty group left without
// offsets). The coordinator here keeps an Empty group that has KIP-394
// member ids out, which Kafka would delete; see the report.
func (gs *groupSnap) refExpire(now int64, retention time.Duration) (gone []topicPartition, deleted bool) {
	var base func(committed) int64
	var subscribed map[string]bool
	switch {
	case gs.protocolType == "":
		base = func(o committed) int64 { return o.commitMs }
	case gs.state == Empty:
		became := gs.stateTime.UnixMilli()
		base = func(committed) int64 { return became }
	case gs.state == Stable && gs.protocolType == "consumer":
		subscribed = map[string]bool{}
		for _, m := range gs.members {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(gs.metadata(m, gs.protocol)); err != nil {
				return nil, false
			}
			for _, t := range md.Topics {
				subscribed[t] = true
			}
		}
		base = func(o committed) int64 { return o.commitMs }
	default:
		return nil, false
	}
	for tp, o := range gs.offsets {
		if subscribed[tp.topic] {
			continue
		}
		expired := now-base(o) >= retention.Milliseconds()
		if o.expireMs >= 0 {
			expired = now >= o.expireMs
		}
		if expired {
			gone = append(gone, tp)
		}
	}
	deleted = gs.state == Empty && len(gs.members) == 0 && len(gs.pending) == 0 && len(gone) == len(gs.offsets)
	return gone, deleted
}
