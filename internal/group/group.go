package group

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka names them in
// DescribeGroups and ListGroups.
type State int8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string { return stateNames[s] }

// topicPartition names a partition whose offset a group committed.
type topicPartition struct {
	topic     string
	partition int32
}

// committed is one committed offset, as OffsetCommitValue stores it.
type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	expireMs    int64 // -1: none (the request gave no retention time)
	// order is the record's place among the partition's records (its
	// offset when replayed; Coordinator.next when written): a
	// transaction's COMMIT applies its offset only over an older one.
	order int64
}

// member is one member of a group.
type member struct {
	id                         string
	instanceID                 *string
	clientID, clientHost       string
	sessionTimeout, rebalTime  time.Duration
	protocolType               string
	protocols                  []kmsg.JoinGroupRequestProtocol
	assignment                 []byte
	join                       *waitingJoin // awaiting the join phase's end
	sync                       *waitingSync // awaiting the leader's assignment
	deadline                   time.Time    // session expiry
	timer                      Timer
	newMember                  bool // joined during the current rebalance
	heartbeatSinceJoinComplete bool
}

type waitingJoin struct {
	version int16
	done    func(*kmsg.JoinGroupResponse)
}

type waitingSync struct {
	version int16
	done    func(*kmsg.SyncGroupResponse)
}

// metadata returns the member's metadata for a protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin carries the protocols the member
// joined with, in which case Kafka does not rebalance for it.
func (m *member) sameProtocols(protocols []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

// group is one group's state; mu guards everything below it.
type group struct {
	c         *Coordinator
	id        string
	partition int32

	mu           sync.Mutex
	state        State
	stateTime    time.Time // when the state last changed (currentStateTimestamp)
	protocolType string    // "" for groups that only commit offsets
	protocol     string    // selected; "" when none
	generation   int32
	leader       string
	members      map[string]*member
	order        []string          // member ids in join order
	static       map[string]string // group.instance.id -> member id
	pending      map[string]Timer  // KIP-394 member ids given out, not yet joined

	// The join phase's timer, and for the first rebalance of an empty
	// group, the initial delay (group.initial.rebalance.delay.ms) and
	// what remains of the rebalance timeout after it.
	joinTimer      Timer
	joinSeq        int // invalidates a fired timer that lost the race for mu
	initialDelay   bool
	delayRemaining time.Duration
	newMemberAdded bool

	// Members of the generation that have not synced yet, and the timer
	// (the rebalance timeout) after which they are removed.
	pendingSync map[string]bool
	syncTimer   Timer
	syncSeq     int

	offsets map[topicPartition]committed
	// txn holds the offsets of TxnOffsetCommit by producer id, pending
	// until the transaction's marker (txn.go).
	txn map[int64]*txnOffsets

	// consumer is set while the group is a KIP-848 consumer group
	// (consumer.go); the classic fields above are then unused.
	consumer *consumerState
	// cwritten is the consumer records the log holds for the group, by
	// key (consumer_store.go): what persistConsumer diffs against.
	cwritten map[string][]byte
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:         c,
		id:        id,
		partition: PartitionFor(id, c.cfg.Partitions),
		state:     Empty,
		stateTime: c.clock.Now(),
		members:   map[string]*member{},
		static:    map[string]string{},
		pending:   map[string]Timer{},
		offsets:   map[topicPartition]committed{},
		txn:       map[int64]*txnOffsets{},
	}
}

func (g *group) transition(s State) {
	g.state = s
	g.stateTime = g.c.clock.Now()
}

func (g *group) stopTimers() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
			m.timer = nil
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			if m.timer != nil {
				m.timer.Stop()
				m.timer = nil
			}
		}
	}
}

// isStaticMember reports whether m holds its instance id's slot.
func (g *group) isStaticMember(m *member) bool {
	return m.instanceID != nil && g.static[*m.instanceID] == m.id
}

// allJoined reports whether every member has sent its JoinGroup for this
// rebalance and no member id handed out is still unused (Kafka's
// hasAllMembersJoined).
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// maxRebalanceTimeout is how long the join phase waits for members.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalTime)
	}
	return d
}

// supportsProtocols reports whether a member with these protocols may join:
// an Empty group takes any; otherwise the type must match and at least one
// protocol must be one every member supports.
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if g.state == Empty {
		// Not "no members": a rebalance whose members all left still
		// has the group's protocol type, as in Kafka.
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.allSupport(p.Name, "") {
			return true
		}
	}
	return false
}

// allSupport reports whether every member (but skip) lists the protocol.
func (g *group) allSupport(protocol, skip string) bool {
	for id, m := range g.members {
		if id != skip && !slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == protocol }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol of the generation as Kafka does: among
// the protocols every member supports, each member votes for the first in
// its own preference order, and the most votes win (ties go to the
// earliest-joined member's preference).
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	var candidates []string
	for _, id := range g.order {
		m := g.members[id]
		for _, p := range m.protocols {
			if g.allSupport(p.Name, "") {
				if votes[p.Name] == 0 {
					candidates = append(candidates, p.Name)
				}
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, name := range candidates {
		if best == "" || votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

// addMember adds a member (joining now) and rebalances.
func (g *group) addMember(m *member) {
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	m.newMember = true
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.scheduleExpiry(m)
	g.maybePrepareRebalance("member " + m.id + " joined")
}

// removeMember removes a member (left, expired or never synced) and moves
// the group on: a rebalance for the others, or the end of a join phase that
// was waiting for it.
func (g *group) removeMember(m *member, reason string) {
	g.dropMember(m, reason)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance("member " + m.id + " removed: " + reason)
	case PreparingRebalance:
		g.tryCompleteJoin()
	}
}

// dropMember forgets a member, failing its waiting requests with
// UNKNOWN_MEMBER_ID, without changing the group's state.
func (g *group) dropMember(m *member, reason string) {
	g.answerJoin(m, kerr.UnknownMemberID.Code)
	g.answerSync(m, kerr.UnknownMemberID.Code)
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	delete(g.members, m.id)
	g.order = slices.DeleteFunc(g.order, func(id string) bool { return id == m.id })
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	g.c.logger.Info("group member removed", "group", g.id, "member", m.id, "reason", reason)
}

// maybePrepareRebalance starts a rebalance unless one is in its join
// phase, in which case it may now be complete.
func (g *group) maybePrepareRebalance(reason string) {
	switch g.state {
	case Empty, Stable, CompletingRebalance:
		g.prepareRebalance(reason)
	case PreparingRebalance:
		g.tryCompleteJoin()
	}
}

// prepareRebalance enters PreparingRebalance: members must rejoin within
// the rebalance timeout. Members waiting for an assignment of the
// generation that is being abandoned get REBALANCE_IN_PROGRESS.
func (g *group) prepareRebalance(reason string) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				g.answerSync(m, kerr.RebalanceInProgress.Code)
				g.scheduleExpiry(m) // as Kafka's propagateAssignment
			}
		}
	}
	g.stopSyncTimer()
	g.pendingSync = nil
	timeout := g.maxRebalanceTimeout()
	delay := timeout
	g.initialDelay = g.state == Empty && g.c.cfg.InitialRebalanceDelay > 0
	if g.initialDelay {
		delay = min(g.c.cfg.InitialRebalanceDelay, timeout)
		g.delayRemaining = max(timeout-delay, 0)
		g.newMemberAdded = false
	}
	g.c.logger.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "reason", reason)
	g.transition(PreparingRebalance)
	g.armJoinTimer(delay)
	g.tryCompleteJoin()
}

func (g *group) armJoinTimer(d time.Duration) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	g.joinSeq++
	seq := g.joinSeq
	g.joinTimer = g.c.clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.joinSeq != seq || g.state != PreparingRebalance {
			return
		}
		g.onJoinDeadline()
	})
}

func (g *group) onJoinDeadline() {
	if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
		// Members are still arriving: wait another initial delay, up
		// to the rebalance timeout (Kafka's InitialDelayedJoin).
		d := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= d
		g.newMemberAdded = false
		g.armJoinTimer(d)
		return
	}
	g.completeJoin()
}

// tryCompleteJoin ends the join phase early once every member rejoined,
// except during the initial delay, which always runs its course.
func (g *group) tryCompleteJoin() {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin()
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed, the generation advances, a protocol is chosen, and every
// joined member gets its JoinGroup response, the leader with the member
// list to assign from.
func (g *group) completeJoin() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinSeq++
	g.initialDelay = false
	for _, id := range slices.Clone(g.order) {
		m := g.members[id]
		if m.join == nil && !g.isStaticMember(m) {
			g.dropMember(m, "did not rejoin within the rebalance timeout")
		}
	}
	// A leader that did not rejoin (a static member away) hands over to
	// one that did.
	if m := g.members[g.leader]; m == nil || m.join == nil {
		for _, id := range g.order {
			if g.members[id].join != nil {
				g.leader = id
				break
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(Empty)
		if err := g.store(); err != nil {
			g.c.logger.Error("store group metadata", "group", g.id, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance)
	g.c.logger.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocol, "members", len(g.members), "leader", g.leader)
	g.pendingSync = map[string]bool{}
	for _, id := range g.order {
		m := g.members[id]
		g.pendingSync[id] = true
		m.newMember = false
		m.heartbeatSinceJoinComplete = false
		if m.join == nil {
			continue
		}
		w := m.join
		m.join = nil
		w.done(g.joinResponse(m, w.version, false))
		g.scheduleExpiry(m)
	}
	g.armSyncTimer(g.maxRebalanceTimeout())
}

// joinResponse is the successful JoinGroup response for m: the leader gets
// every member's metadata for the chosen protocol.
func (g *group) joinResponse(m *member, version int16, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.SkipAssignment = skipAssignment
	if m.id == g.leader {
		for _, id := range g.order {
			o := g.members[id]
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = o.instanceID
			jm.ProtocolMetadata = o.metadata(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// answerJoin fails m's waiting JoinGroup, if any, with code.
func (g *group) answerJoin(m *member, code int16) {
	if m.join == nil {
		return
	}
	w := m.join
	m.join = nil
	w.done(joinError(w.version, m.id, code))
}

// answerSync fails m's waiting SyncGroup, if any, with code.
func (g *group) answerSync(m *member, code int16) {
	if m.sync == nil {
		return
	}
	w := m.sync
	m.sync = nil
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = w.version
	resp.ErrorCode = code
	w.done(resp)
}

func joinError(version int16, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}

func (g *group) armSyncTimer(d time.Duration) {
	g.stopSyncTimer()
	seq := g.syncSeq
	g.syncTimer = g.c.clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.syncSeq != seq || g.state == Dead {
			return
		}
		g.syncTimer = nil
		// Members that joined but never asked for their assignment
		// are gone (Kafka's pending-sync expiry).
		var gone []string
		for _, id := range slices.Clone(g.order) {
			if g.pendingSync[id] {
				gone = append(gone, id)
				g.dropMember(g.members[id], "did not sync within the rebalance timeout")
			}
		}
		if len(gone) > 0 && (g.state == Stable || g.state == CompletingRebalance) {
			g.prepareRebalance(fmt.Sprintf("members %v did not sync", gone))
		}
	})
}

func (g *group) stopSyncTimer() {
	g.syncSeq++
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

// scheduleExpiry restarts m's session: it is removed unless a heartbeat,
// join or sync arrives within its session timeout.
func (g *group) scheduleExpiry(m *member) {
	m.deadline = g.c.clock.Now().Add(m.sessionTimeout)
	if m.timer != nil {
		return // the running timer rechecks the deadline when it fires
	}
	g.armExpiry(m, m.sessionTimeout)
}

func (g *group) armExpiry(m *member, d time.Duration) {
	m.timer = g.c.clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.members[m.id] != m || g.state == Dead {
			return
		}
		m.timer = nil
		now := g.c.clock.Now()
		if m.join != nil || m.sync != nil {
			// A member waiting on the coordinator is alive (Kafka's
			// hasSatisfiedHeartbeat for awaiting members).
			m.deadline = now.Add(m.sessionTimeout)
		}
		if now.Before(m.deadline) {
			g.armExpiry(m, m.deadline.Sub(now))
			return
		}
		g.removeMember(m, "session timeout expired")
	})
}

// subscribedTopics returns the topics the members subscribe to, decoded
// from their consumer-protocol metadata; ok is false when the group does
// not use the consumer protocol or a subscription does not decode.
func (g *group) subscribedTopics() (map[string]bool, bool) {
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil, false
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
