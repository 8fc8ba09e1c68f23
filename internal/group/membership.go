package group

import (
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client is who sent a request: the client.id header and the peer host,
// which DescribeGroups reports.
type Client struct {
	ID   string
	Host string
}

// Join handles a JoinGroup. done is called exactly once, possibly later
// from another goroutine (when the join phase ends), and must not block.
func (c *Coordinator) Join(req *kmsg.JoinGroupRequest, cl Client, done func(*kmsg.JoinGroupResponse)) {
	v := req.Version
	fail := func(code int16) { done(joinError(v, req.MemberID, code)) }
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code)
		return
	}
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if v == 0 || rebalance <= 0 {
		rebalance = session // v0 has no rebalance timeout
	}
	g, err := c.lockGroup(req.Group, req.MemberID == "")
	if err != nil {
		fail(codeFor(err))
		return
	}
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	defer g.mu.Unlock()
	w := &waitingJoin{version: v, done: done}
	m := &member{
		instanceID:     req.InstanceID,
		clientID:       cl.ID,
		clientHost:     cl.Host,
		sessionTimeout: session,
		rebalTime:      rebalance,
		protocolType:   req.ProtocolType,
		protocols:      cloneProtocols(req.Protocols),
		join:           w,
	}
	if g.consumer != nil {
		if len(g.consumer.members) > 0 {
			fail(kerr.InconsistentGroupProtocol.Code)
			return
		}
		// An empty consumer group becomes classic again; its
		// KIP-848 records are tombstoned, as Kafka does on the
		// conversion, or a restart would bring it back.
		cs := g.consumer
		g.consumer = nil
		if err := g.persistConsumer(); err != nil {
			c.logger.Error("store consumer group", "group", g.id, "err", err)
			g.consumer = cs
			fail(codeFor(err))
			return
		}
	}
	if req.MemberID == "" {
		g.joinNew(m, w)
	} else {
		m.id = req.MemberID
		g.joinKnown(m, w)
	}
	g.removeIfUnused()
}

func cloneProtocols(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)}
	}
	return out
}

// newMemberID is Kafka's: the client id (or group.instance.id) and a
// random UUID.
func newMemberID(prefix string) string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// joinNew handles a JoinGroup without a member id.
func (g *group) joinNew(m *member, w *waitingJoin) {
	fail := func(code int16) { m.join = nil; w.done(joinError(w.version, "", code)) }
	if !g.supportsProtocols(m.protocolType, m.protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	if m.instanceID != nil {
		if oldID, ok := g.static[*m.instanceID]; ok {
			m.id = newMemberID(*m.instanceID)
			g.replaceStatic(g.members[oldID], m)
			return
		}
	}
	if len(g.members)+len(g.pending) >= g.c.cfg.MaxGroupSize {
		fail(kerr.GroupMaxSizeReached.Code)
		return
	}
	if m.instanceID != nil {
		m.id = newMemberID(*m.instanceID)
	} else {
		m.id = newMemberID(m.clientID)
		if w.version >= 4 {
			// KIP-394: the member must come back with its id, so
			// that a client that never sees this response does not
			// leave a phantom member behind.
			g.addPending(m.id, m.sessionTimeout)
			m.join = nil
			w.done(joinError(w.version, m.id, kerr.MemberIDRequired.Code))
			return
		}
	}
	if g.state == Empty {
		g.protocolType = m.protocolType
	}
	g.addMember(m)
}

// joinKnown handles a JoinGroup from a member that has an id.
func (g *group) joinKnown(req *member, w *waitingJoin) {
	fail := func(code int16) { w.done(joinError(w.version, req.id, code)) }
	// Kafka checks the protocols before the member id
	// (classicGroupJoinExistingMember), so an unknown or fenced member
	// the group could not take anyway gets INCONSISTENT_GROUP_PROTOCOL.
	if !g.supportsProtocols(req.protocolType, req.protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	if t, ok := g.pending[req.id]; ok {
		t.Stop()
		delete(g.pending, req.id)
		if g.state == Empty {
			g.protocolType = req.protocolType
		}
		g.addMember(req)
		return
	}
	if code := g.checkMember(req.id, req.instanceID); code != 0 {
		fail(code)
		return
	}
	m := g.members[req.id]
	update := func() {
		m.clientID, m.clientHost = req.clientID, req.clientHost
		m.sessionTimeout, m.rebalTime = req.sessionTimeout, req.rebalTime
		m.protocols = req.protocols
		m.join = w
		g.scheduleExpiry(m)
	}
	switch g.state {
	case PreparingRebalance:
		update()
		g.tryCompleteJoin()
	case CompletingRebalance:
		if m.sameProtocols(req.protocols) {
			// The member lost its JoinGroup response: send it again.
			g.scheduleExpiry(m)
			w.done(g.joinResponse(m, w.version, false))
			return
		}
		update()
		g.prepareRebalance("member " + m.id + " rejoined with new metadata")
	case Stable:
		if m.id == g.leader || !m.sameProtocols(req.protocols) {
			// The leader rejoins to reassign (a metadata change it saw).
			update()
			g.prepareRebalance("member " + m.id + " rejoined")
			return
		}
		g.scheduleExpiry(m)
		w.done(g.joinResponse(m, w.version, false))
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// replaceStatic gives a static member's slot to a new member id (KIP-345):
// the old id is fenced, the assignment carries over, and a Stable group
// does not rebalance unless the protocols changed.
func (g *group) replaceStatic(old, m *member) {
	w := m.join
	g.answerJoin(old, kerr.FencedInstanceID.Code)
	g.answerSync(old, kerr.FencedInstanceID.Code)
	if old.timer != nil {
		old.timer.Stop()
		old.timer = nil
	}
	m.assignment = old.assignment
	delete(g.members, old.id)
	g.members[m.id] = m
	g.order[slices.Index(g.order, old.id)] = m.id
	g.static[*m.instanceID] = m.id
	wasLeader := g.leader == old.id
	if wasLeader {
		g.leader = m.id
	}
	if g.pendingSync[old.id] {
		delete(g.pendingSync, old.id)
		g.pendingSync[m.id] = true
	}
	g.scheduleExpiry(m)
	g.c.logger.Info("static member rejoined", "group", g.id, "instance", *m.instanceID, "old", old.id, "new", m.id)
	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			g.prepareRebalance("static member " + *m.instanceID + " rejoined with other protocols")
			return
		}
		m.join = nil
		if err := g.store(); err != nil {
			g.c.logger.Error("store group metadata", "group", g.id, "err", err)
			// As Kafka: the replacement is undone, so the group
			// stays what the log holds, and the member rejoins
			// without an id.
			if m.timer != nil {
				m.timer.Stop()
				m.timer = nil
			}
			delete(g.members, m.id)
			g.members[old.id] = old
			g.order[slices.Index(g.order, m.id)] = old.id
			g.static[*old.instanceID] = old.id
			if wasLeader {
				g.leader = old.id
			}
			if g.pendingSync[m.id] {
				delete(g.pendingSync, m.id)
				g.pendingSync[old.id] = true
			}
			g.scheduleExpiry(old)
			w.done(joinError(w.version, "", codeFor(err)))
			return
		}
		// KIP-814: a static leader learns the members (to watch
		// metadata) but must not reassign. Before v9 Kafka names the
		// previous leader id, so that the member does not act as
		// leader with no members to assign.
		leader := m.id == g.leader && w.version >= 9
		resp := g.joinResponse(m, w.version, leader)
		if !leader {
			resp.Members = nil
			if wasLeader {
				resp.LeaderID = old.id
			}
		}
		w.done(resp)
	case CompletingRebalance:
		// The old id may already be in the leader's assignment.
		g.prepareRebalance("static member " + *m.instanceID + " rejoined during a rebalance")
	case PreparingRebalance:
		g.tryCompleteJoin()
	}
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED; it
// is forgotten if the member does not come back within its session
// timeout.
func (g *group) addPending(id string, session time.Duration) {
	var t Timer
	t = g.c.clock.AfterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.pending[id] != t {
			return
		}
		delete(g.pending, id)
		g.tryCompleteJoin()
		g.removeIfUnused()
	})
	g.pending[id] = t
}

// checkMember is Kafka's validateCurrentMember: an instance id held by
// another member id is FENCED_INSTANCE_ID, an unknown member id
// UNKNOWN_MEMBER_ID.
func (g *group) checkMember(id string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code // as Kafka: the instance id must be mapped
		}
		if cur != id {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[id] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// removeIfUnused forgets a group that a failed request created and that
// holds nothing: no members, no offsets, never a generation.
func (g *group) removeIfUnused() {
	if g.state == Empty && g.generation == 0 && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && len(g.txn) == 0 &&
		(g.consumer == nil || len(g.consumer.members) == 0) {
		if len(g.cwritten) > 0 {
			// A consumer group whose last member left without
			// committing: its records go too, or a restart would
			// bring it back.
			if err := g.c.append(g.partition, g.consumerTombstones()...); err != nil {
				g.c.logger.Error("delete consumer group", "group", g.id, "err", err)
				return
			}
			g.cwritten = nil
		}
		g.c.removeLocked(g)
	}
}

// Sync handles a SyncGroup. done is called exactly once, possibly later,
// and must not block.
func (c *Coordinator) Sync(req *kmsg.SyncGroupRequest, done func(*kmsg.SyncGroupResponse)) {
	v := req.Version
	fail := func(code int16) {
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.Version = v
		resp.ErrorCode = code
		done(resp)
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID.Code)
		return
	}
	g, err := c.lockGroup(req.Group, false)
	if err != nil {
		fail(codeFor(err))
		return
	}
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	defer g.mu.Unlock()
	if code := g.checkMember(req.MemberID, req.InstanceID); code != 0 {
		fail(code)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration.Code)
		return
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
		return
	case CompletingRebalance:
		m.sync = &waitingSync{version: v, done: done}
		delete(g.pendingSync, m.id)
		g.scheduleExpiry(m)
		if m.id == g.leader {
			g.applyAssignment(req.GroupAssignment)
		}
	case Stable:
		delete(g.pendingSync, m.id)
		g.scheduleExpiry(m)
		m.sync = &waitingSync{version: v, done: done}
		g.answerAssignment(m)
	default:
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if len(g.pendingSync) == 0 {
		g.stopSyncTimer()
	}
}

// applyAssignment takes the leader's assignment: it is stored with the
// group, then every member waiting in SyncGroup gets its part and the
// group is Stable.
func (g *group) applyAssignment(assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = []byte{}
	}
	for _, a := range assignments {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = slices.Clone(a.MemberAssignment)
		}
	}
	if err := g.store(); err != nil {
		g.c.logger.Error("store group assignment", "group", g.id, "err", err)
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				g.answerSync(m, codeFor(err))
				g.scheduleExpiry(m) // as Kafka's propagateAssignment
			}
		}
		g.prepareRebalance("storing the assignment failed")
		return
	}
	g.transition(Stable)
	for _, m := range g.members {
		if m.sync != nil {
			g.answerAssignment(m)
			// As Kafka's propagateAssignment: the session restarts
			// when the member gets its assignment, not when it asked.
			g.scheduleExpiry(m)
		}
	}
}

// answerAssignment answers m's waiting SyncGroup with its assignment.
func (g *group) answerAssignment(m *member) {
	if m.sync == nil {
		return
	}
	w := m.sync
	m.sync = nil
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = w.version
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = m.assignment
	w.done(resp)
}

// Heartbeat handles a Heartbeat and returns its error code.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g, err := c.lockGroup(req.Group, false)
	if err != nil {
		return codeFor(err)
	}
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	if code := g.checkMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case CompletingRebalance, Stable:
		// Clients may heartbeat between their JoinGroup and SyncGroup.
		g.scheduleExpiry(m)
		return 0
	case PreparingRebalance:
		g.scheduleExpiry(m)
		return kerr.RebalanceInProgress.Code
	}
	return kerr.UnknownMemberID.Code
}

// Leave handles a LeaveGroup: v0-2 name one member, v3+ a batch (KIP-345),
// each by member id or, with an empty id, by group.instance.id.
func (c *Coordinator) Leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	defer func() {
		if req.Version < 3 && resp.ErrorCode == 0 && len(resp.Members) == 1 {
			resp.ErrorCode = resp.Members[0].ErrorCode
		}
	}()
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, err := c.lockGroup(req.Group, false)
	if err != nil {
		resp.ErrorCode = codeFor(err)
		return resp
	}
	if g != nil {
		defer g.mu.Unlock()
	}
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.ErrorCode = kerr.UnknownMemberID.Code
		if g != nil {
			rm.ErrorCode = g.leave(lm)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (g *group) leave(lm kmsg.LeaveGroupRequestMember) int16 {
	id := lm.MemberID
	if id == "" {
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		cur, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		id = cur
	} else if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		g.tryCompleteJoin()
		return 0
	}
	if code := g.checkMember(id, lm.InstanceID); code != 0 {
		return code
	}
	reason := "left the group"
	if lm.Reason != nil {
		reason += ": " + *lm.Reason
	}
	g.removeMember(g.members[id], reason)
	return 0
}
