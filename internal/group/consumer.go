package group

// KIP-848 consumer groups: members send ConsumerGroupHeartbeat with their
// subscription and owned partitions; the coordinator computes a target
// assignment with a server-side assignor (uniform or range) and moves each
// member toward it, revoking before it assigns, so that no partition is
// ever owned by two members at once.
//
// The group's epochs, members and assignments are written to
// __consumer_offsets with Kafka's records after every change
// (consumer_store.go), so members keep their epoch across a restart.

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicInfo describes a topic for KIP-848 assignments, which name topics
// by id.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Topics resolves topics for the consumer-group protocol.
type Topics interface {
	TopicByName(name string) (TopicInfo, bool)
	TopicByID(id [16]byte) (TopicInfo, bool)
	// AllTopics lists the topics a regex subscription is matched against.
	AllTopics() []TopicInfo
}

// Server-side assignors, as Kafka names them.
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

// Consumer-group states as ConsumerGroupDescribe and ListGroups name them.
const (
	cgEmpty       = "Empty"
	cgReconciling = "Reconciling"
	cgStable      = "Stable"
)

// consumerState is a KIP-848 group's state, kept on the group while it is
// a consumer group.
type consumerState struct {
	groupEpoch      int32
	assignmentEpoch int32
	members         map[string]*cmember
	// target is the assignment of assignmentEpoch, per member.
	target map[string]map[topicPartition]bool
	// topicsSeen is the partition count of every subscribed topic when
	// the target was computed: a change bumps the group epoch.
	topicsSeen map[string]int32
	// touched names the members whose records may have changed since
	// they were last written (touchedAll: every member's), so that a
	// heartbeat encodes its own member's records, not the whole group's
	// (consumer_store.go).
	touched    map[string]bool
	touchedAll bool
}

func (cs *consumerState) touch(id string) { cs.touched[id] = true }

// cmember is one KIP-848 member.
type cmember struct {
	id, clientID, clientHost string
	instanceID, rackID       *string
	epoch, prevEpoch         int32
	rebalanceTimeout         time.Duration
	subscribed               []string
	regex                    *string
	assignor                 string
	assigned                 map[topicPartition]bool // what the member may own
	pendingRevoke            map[topicPartition]bool // what it must give up first
	revokeDeadline           time.Time
	staticLeft               bool // left with epoch -2: its assignment waits for it
	sent                     string
	deadline                 time.Time
	timer                    Timer
}

func (m *cmember) state(target int32) string {
	if len(m.pendingRevoke) > 0 || m.epoch != target {
		return cgReconciling
	}
	return cgStable
}

func newConsumerState() *consumerState {
	return &consumerState{members: map[string]*cmember{}, target: map[string]map[topicPartition]bool{}, topicsSeen: map[string]int32{}, touched: map[string]bool{}}
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat.
func (c *Coordinator) ConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, cl Client) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	if msg := validateHeartbeat(req); msg != "" {
		return fail(kerr.InvalidRequest.Code, msg)
	}
	if a := req.ServerAssignor; a != nil && *a != assignorUniform && *a != assignorRange {
		return fail(kerr.UnsupportedAssignor.Code, fmt.Sprintf("assignor %q is not one of uniform, range", *a))
	}
	g, err := c.lockGroup(req.Group, req.MemberEpoch == 0)
	if err != nil {
		return fail(codeFor(err), "")
	}
	if g == nil {
		// Kafka says GROUP_ID_NOT_FOUND. The group is gone (deleted,
		// or its records lost): UNKNOWN_MEMBER_ID makes every client
		// rejoin with epoch 0, where some treat GROUP_ID_NOT_FOUND as
		// fatal.
		return fail(kerr.UnknownMemberID.Code, "")
	}
	defer g.mu.Unlock()
	defer g.removeIfUnused()
	resp = g.consumerHeartbeat(req, cl, resp, fail)
	// As Kafka's coordinator, the records of the change are written
	// before the response: a member must not act on an epoch or
	// assignment a restart would take back.
	if err := g.persistConsumer(); err != nil {
		c.logger.Error("store consumer group", "group", g.id, "err", err)
		if resp.ErrorCode == 0 {
			resp.Assignment = nil
			if resp.MemberID != nil && g.consumer != nil {
				if m := g.consumer.members[*resp.MemberID]; m != nil {
					m.sent = "" // send the assignment again
				}
			}
			return fail(codeFor(err), "")
		}
	}
	return resp
}

// consumerHeartbeat applies a heartbeat to the locked group.
func (g *group) consumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, cl Client, resp *kmsg.ConsumerGroupHeartbeatResponse,
	fail func(int16, string) *kmsg.ConsumerGroupHeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	c := g.c
	if g.consumer == nil {
		if len(g.members) > 0 || len(g.pending) > 0 || g.state != Empty {
			return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("group %s is a classic group with members", g.id))
		}
		g.consumer = newConsumerState()
		g.protocolType = "consumer"
	}
	cs := g.consumer
	startEpoch := cs.groupEpoch
	memberID := req.MemberID
	switch req.MemberEpoch {
	case -1, -2:
		m := cs.members[memberID]
		if m == nil {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		if req.MemberEpoch == -2 && m.instanceID != nil {
			// A static member leaving for a restart: its partitions
			// wait for it until its session timeout.
			m.staticLeft = true
			cs.touch(m.id)
			g.scheduleConsumerExpiry(m)
		} else {
			g.removeConsumerMember(m, "left the group")
		}
		resp.MemberID, resp.MemberEpoch = &memberID, req.MemberEpoch
		return resp
	case 0:
		if memberID == "" {
			memberID = newConsumerMemberID() // v0: the coordinator names members
		}
		code, msg := g.joinConsumer(memberID, req, cl)
		if code != 0 {
			return fail(code, msg)
		}
	default:
		m := cs.members[memberID]
		if m == nil || m.staticLeft {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		if req.MemberEpoch != m.epoch {
			owned := c.ownedPartitions(req.Topics)
			if req.MemberEpoch > m.epoch || req.MemberEpoch != m.prevEpoch || req.Topics == nil || !subset(owned, m.assigned) {
				return fail(kerr.FencedMemberEpoch.Code, fmt.Sprintf("member epoch %d, expected %d", req.MemberEpoch, m.epoch))
			}
		}
		g.updateConsumerMember(m, req, cl)
	}
	m := cs.members[memberID]
	g.scheduleConsumerExpiry(m)
	g.maybeComputeTarget(cs.groupEpoch > startEpoch)
	g.reconcile(m, req.Topics != nil, c.ownedPartitions(req.Topics))
	resp.MemberID, resp.MemberEpoch = &memberID, m.epoch
	_, heartbeat := c.consumerTimeouts(g.id)
	resp.HeartbeatIntervalMillis = int32(heartbeat / time.Millisecond)
	// The assignment goes out when it changed, and on every full
	// request (join, or owned partitions reported), as Kafka sends it.
	if a := c.assignmentKey(m.assigned); a != m.sent || req.Topics != nil || req.MemberEpoch == 0 {
		m.sent = a
		resp.Assignment = c.heartbeatAssignment(m.assigned)
	}
	return resp
}

// validateHeartbeat applies Kafka's request checks; "" means valid.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) string {
	switch {
	case req.Group == "":
		return "GroupId can't be empty."
	case req.MemberEpoch < -2:
		return "MemberEpoch is invalid."
	case req.Version >= 1 && req.MemberID == "":
		return "MemberId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return "InstanceId can't be empty."
	case req.RackID != nil && *req.RackID == "":
		return "RackId can't be empty."
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis == -1:
		return "RebalanceTimeoutMs must be provided in first request."
	case req.MemberEpoch == 0 && len(req.Topics) > 0:
		return "TopicPartitions must be empty when (re-)joining."
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
	case req.SubscribedTopicRegex != nil:
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return "SubscribedTopicRegex is not a valid regular expression: " + err.Error()
		}
	}
	return ""
}

func newConsumerMemberID() string {
	var u [16]byte
	rand.Read(u[:])
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// joinConsumer adds a member joining with epoch 0 (a member that rejoins
// after being fenced starts over).
func (g *group) joinConsumer(id string, req *kmsg.ConsumerGroupHeartbeatRequest, cl Client) (int16, string) {
	cs := g.consumer
	if old := cs.members[id]; old != nil {
		g.dropConsumerMember(old)
	}
	var inherit *cmember
	if req.InstanceID != nil {
		for _, o := range cs.members {
			if o.instanceID != nil && *o.instanceID == *req.InstanceID {
				if !o.staticLeft {
					return kerr.UnreleasedInstanceID.Code, fmt.Sprintf("static member %s is still in the group", *req.InstanceID)
				}
				inherit = o
			}
		}
	}
	if inherit == nil && len(cs.members) >= g.c.cfg.MaxGroupSize {
		return kerr.GroupMaxSizeReached.Code, ""
	}
	m := &cmember{id: id, assigned: map[topicPartition]bool{}, pendingRevoke: map[topicPartition]bool{}}
	if inherit != nil {
		// KIP-848 static membership: the new member takes the old
		// one's place, assignment and epoch; the group does not
		// rebalance.
		m.assigned, m.pendingRevoke, m.epoch, m.prevEpoch = inherit.assigned, inherit.pendingRevoke, inherit.epoch, inherit.prevEpoch
		cs.target[id] = cs.target[inherit.id]
		delete(cs.target, inherit.id)
		if inherit.timer != nil {
			inherit.timer.Stop()
		}
		delete(cs.members, inherit.id)
		cs.touch(inherit.id)
	}
	cs.members[id] = m
	cs.touch(id)
	if !g.updateConsumerMember(m, req, cl) && inherit == nil {
		cs.groupEpoch++ // a new member with an empty subscription
	}
	g.c.logger.Info("consumer group member joined", "group", g.id, "member", id, "static", inherit != nil)
	return 0, ""
}

// updateConsumerMember takes what a heartbeat says about the member; a new
// subscription bumps the group epoch (and returns true).
func (g *group) updateConsumerMember(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest, cl Client) bool {
	g.consumer.touch(m.id)
	m.clientID, m.clientHost = cl.ID, cl.Host
	if req.InstanceID != nil {
		m.instanceID = req.InstanceID
	}
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.ServerAssignor != nil {
		m.assignor = *req.ServerAssignor
	}
	changed := false
	if req.SubscribedTopicNames != nil {
		names := slices.Sorted(slices.Values(req.SubscribedTopicNames))
		names = slices.Compact(names)
		if !slices.Equal(names, m.subscribed) {
			m.subscribed, changed = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && (m.regex == nil || *m.regex != *req.SubscribedTopicRegex) {
		r := *req.SubscribedTopicRegex
		m.regex, changed = &r, true
	}
	if changed {
		g.consumer.groupEpoch++
	}
	return changed
}

// ownedPartitions converts the partitions a member reports owning.
func (c *Coordinator) ownedPartitions(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) map[topicPartition]bool {
	owned := map[topicPartition]bool{}
	for _, t := range topics {
		info, ok := c.cfg.Topics.TopicByID(t.TopicID)
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			owned[topicPartition{info.Name, p}] = true
		}
	}
	return owned
}

func subset(a, b map[topicPartition]bool) bool {
	for tp := range a {
		if !b[tp] {
			return false
		}
	}
	return true
}

// subscribedTopics returns the topics a member subscribes to, by name and
// by regex (matched against the whole name, as Kafka's RE2/J matches).
func (c *Coordinator) memberTopics(m *cmember) []string {
	topics := slices.Clone(m.subscribed)
	if m.regex != nil {
		re, err := regexp.Compile("^(?:" + *m.regex + ")$")
		if err == nil {
			for _, t := range c.cfg.Topics.AllTopics() {
				if re.MatchString(t.Name) {
					topics = append(topics, t.Name)
				}
			}
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// maybeComputeTarget computes a new target assignment when the group epoch
// moved past the assignment's, or a subscribed topic changed.
func (g *group) maybeComputeTarget(bumped bool) {
	cs := g.consumer
	seen := map[string]int32{}
	subs := map[string][]string{}
	for id, m := range cs.members {
		for _, t := range g.c.memberTopics(m) {
			info, ok := g.c.cfg.Topics.TopicByName(t)
			if !ok {
				continue
			}
			seen[t] = info.Partitions
			subs[id] = append(subs[id], t)
		}
	}
	if !maps.Equal(seen, cs.topicsSeen) {
		cs.topicsSeen = seen
		if !bumped {
			cs.groupEpoch++
		}
	}
	if cs.groupEpoch <= cs.assignmentEpoch {
		return
	}
	assign := uniformAssign
	if g.consumerAssignor() == assignorRange {
		assign = rangeAssign
	}
	cs.target = assign(subs, seen, cs.target)
	cs.assignmentEpoch = cs.groupEpoch
	cs.touchedAll = true // every member's target, and so its state
	g.c.logger.Info("consumer group assignment", "group", g.id, "epoch", cs.assignmentEpoch, "members", len(cs.members), "assignor", g.consumerAssignor())
}

// consumerAssignor is the assignor most members ask for (uniform when none
// does), as Kafka picks it.
func (g *group) consumerAssignor() string {
	votes := map[string]int{}
	for _, m := range g.consumer.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	if votes[assignorRange] > votes[assignorUniform] {
		return assignorRange
	}
	return assignorUniform
}

// reconcile moves a member toward its target: first it must give up what
// the target takes away (its epoch stays until it reports them gone); then
// it gets the target's partitions that no other member still holds, and
// the target's epoch.
func (g *group) reconcile(m *cmember, reported bool, owned map[topicPartition]bool) {
	cs := g.consumer
	cs.touch(m.id)
	if len(m.pendingRevoke) > 0 {
		if !reported {
			return
		}
		for tp := range m.pendingRevoke {
			if owned[tp] {
				return // not revoked yet
			}
		}
		m.pendingRevoke = map[topicPartition]bool{}
	}
	target := cs.target[m.id]
	revoke := map[topicPartition]bool{}
	for tp := range m.assigned {
		if !target[tp] {
			revoke[tp] = true
		}
	}
	if len(revoke) > 0 {
		for tp := range revoke {
			delete(m.assigned, tp)
		}
		m.pendingRevoke = revoke
		m.revokeDeadline = g.c.clock.Now().Add(m.rebalanceTimeout)
		return
	}
	held := map[topicPartition]bool{}
	for id, o := range cs.members {
		if id == m.id {
			continue
		}
		for tp := range o.assigned {
			held[tp] = true
		}
		for tp := range o.pendingRevoke {
			held[tp] = true
		}
	}
	for tp := range target {
		if !held[tp] {
			m.assigned[tp] = true
		}
	}
	if m.epoch != cs.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cs.assignmentEpoch
	}
}

// heartbeatAssignment encodes partitions by topic id.
func (c *Coordinator) heartbeatAssignment(tps map[topicPartition]bool) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for name, ps := range byTopic(tps) {
		info, ok := c.cfg.Topics.TopicByName(name)
		if !ok {
			continue
		}
		at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		at.TopicID, at.Partitions = info.ID, ps
		a.Topics = append(a.Topics, at)
	}
	slices.SortFunc(a.Topics, func(x, y kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic) int {
		return strings.Compare(string(x.TopicID[:]), string(y.TopicID[:]))
	})
	return &a
}

func (c *Coordinator) assignmentKey(tps map[topicPartition]bool) string {
	keys := make([]string, 0, len(tps))
	for tp := range tps {
		keys = append(keys, fmt.Sprintf("%s/%d", tp.topic, tp.partition))
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func byTopic(tps map[topicPartition]bool) map[string][]int32 {
	out := map[string][]int32{}
	for tp := range tps {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// scheduleConsumerExpiry restarts the member's session
// (group.consumer.session.timeout.ms); the timer also fences a member that
// does not revoke within its rebalance timeout.
func (g *group) scheduleConsumerExpiry(m *cmember) {
	session, _ := g.c.consumerTimeouts(g.id)
	m.deadline = g.c.clock.Now().Add(session)
	if m.timer != nil {
		return
	}
	g.armConsumerExpiry(m, session)
}

// consumerTimeouts returns a KIP-848 group's session timeout and heartbeat
// interval: its group configs (consumer.session.timeout.ms,
// consumer.heartbeat.interval.ms) where set, else the broker's, as Kafka's
// GroupMetadataManager reads them for each heartbeat.
func (c *Coordinator) consumerTimeouts(groupID string) (session, heartbeat time.Duration) {
	session, heartbeat = c.cfg.ConsumerSessionTimeout, c.cfg.ConsumerHeartbeatInterval
	if c.cfg.GroupConfigs == nil {
		return session, heartbeat
	}
	if s, h, ok := c.cfg.GroupConfigs(groupID); ok {
		if s > 0 {
			session = s
		}
		if h > 0 {
			heartbeat = h
		}
	}
	return session, heartbeat
}

func (g *group) armConsumerExpiry(m *cmember, d time.Duration) {
	m.timer = g.c.clock.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.consumer == nil || g.consumer.members[m.id] != m || g.state == Dead {
			return
		}
		m.timer = nil
		now := g.c.clock.Now()
		switch {
		case !now.Before(m.deadline):
			g.removeConsumerMember(m, "session timeout expired")
			g.persistRemoval()
		case len(m.pendingRevoke) > 0 && !now.Before(m.revokeDeadline):
			g.removeConsumerMember(m, "did not revoke its partitions within the rebalance timeout")
			g.persistRemoval()
		default:
			next := m.deadline
			if len(m.pendingRevoke) > 0 && m.revokeDeadline.Before(next) {
				next = m.revokeDeadline
			}
			g.armConsumerExpiry(m, next.Sub(now))
		}
	})
}

// persistRemoval writes a member's removal by a timer. A failed write is
// logged: the next heartbeat's write carries the difference.
func (g *group) persistRemoval() {
	if err := g.persistConsumer(); err != nil {
		g.c.logger.Error("store consumer group", "group", g.id, "err", err)
	}
}

// removeConsumerMember removes a member; the others rebalance.
func (g *group) removeConsumerMember(m *cmember, reason string) {
	g.dropConsumerMember(m)
	g.consumer.groupEpoch++
	g.c.logger.Info("consumer group member removed", "group", g.id, "member", m.id, "reason", reason)
}

func (g *group) dropConsumerMember(m *cmember) {
	g.consumer.touch(m.id)
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	delete(g.consumer.members, m.id)
	delete(g.consumer.target, m.id)
}

// consumerStateName is the group's state for ListGroups and describes.
func (g *group) consumerStateName() string {
	cs := g.consumer
	if len(cs.members) == 0 {
		return cgEmpty
	}
	for _, m := range cs.members {
		if m.state(cs.assignmentEpoch) != cgStable {
			return cgReconciling
		}
	}
	return cgStable
}

// checkConsumerCommit validates an OffsetCommit or OffsetFetch against a
// consumer group: an admin commit (epoch < 0, no member id) needs an empty
// group; a member's must carry its current epoch, or its previous one for
// partitions it still holds (the heartbeat response with the new epoch may
// not have reached it yet).
func (g *group) checkConsumerCommit(memberID string, epoch int32, version int16, tps []topicPartition) int16 {
	cs := g.consumer
	if epoch < 0 && memberID == "" {
		if len(cs.members) > 0 {
			return kerr.UnknownMemberID.Code
		}
		return 0
	}
	m := cs.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	stale := kerr.StaleMemberEpoch.Code
	if version < 9 {
		stale = kerr.IllegalGeneration.Code
	}
	if epoch == m.epoch {
		return 0
	}
	if epoch == m.prevEpoch {
		for _, tp := range tps {
			if !m.assigned[tp] && !m.pendingRevoke[tp] {
				return stale
			}
		}
		return 0
	}
	return stale
}

// DescribeConsumer describes a KIP-848 group (ConsumerGroupDescribe).
func (c *Coordinator) DescribeConsumer(groupID string) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = groupID
	d.AuthorizedOperations = -2147483648
	notFound := func(msg string) kmsg.ConsumerGroupDescribeResponseGroup {
		d.ErrorCode, d.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
		return d
	}
	g, err := c.lockGroup(groupID, false)
	if err != nil {
		d.ErrorCode = codeFor(err)
		return d
	}
	if g == nil {
		return notFound("group " + groupID + " not found")
	}
	defer g.mu.Unlock()
	if g.consumer == nil {
		return notFound("group " + groupID + " is not a consumer group")
	}
	cs := g.consumer
	d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName = g.consumerStateName(), cs.groupEpoch, cs.assignmentEpoch, g.consumerAssignor()
	ids := slices.Sorted(maps.Keys(cs.members))
	for _, id := range ids {
		m := cs.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID, dm.MemberEpoch = m.id, m.instanceID, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics, dm.SubscribedTopicRegex = slices.Clone(m.subscribed), m.regex
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		dm.Assignment = c.describeAssignment(m.assigned)
		dm.TargetAssignment = c.describeAssignment(cs.target[m.id])
		dm.MemberType = 1 // consumer (KIP-1099); classic members are not mixed in
		d.Members = append(d.Members, dm)
	}
	return d
}

func (c *Coordinator) describeAssignment(tps map[topicPartition]bool) kmsg.Assignment {
	a := kmsg.NewAssignment()
	a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	topics := byTopic(tps)
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		at := kmsg.NewAssignmentTopicPartition()
		at.Topic, at.Partitions = name, topics[name]
		if info, ok := c.cfg.Topics.TopicByName(name); ok {
			at.TopicID = info.ID
		}
		a.TopicPartitions = append(a.TopicPartitions, at)
	}
	return a
}

// uniformAssign spreads every subscribed partition over the members that
// subscribe to it, as evenly as their subscriptions allow, keeping each
// partition with its previous owner while that owner is not above its
// share (Kafka's uniform assignor is likewise sticky and balanced).
func uniformAssign(subs map[string][]string, partitions map[string]int32, prev map[string]map[topicPartition]bool) map[string]map[topicPartition]bool {
	out := map[string]map[topicPartition]bool{}
	var all []topicPartition
	subscribers := map[string][]string{}
	for id, topics := range subs {
		out[id] = map[topicPartition]bool{}
		for _, t := range topics {
			subscribers[t] = append(subscribers[t], id)
		}
	}
	for t, n := range partitions {
		if len(subscribers[t]) == 0 {
			continue
		}
		slices.Sort(subscribers[t])
		for p := range n {
			all = append(all, topicPartition{t, p})
		}
	}
	slices.SortFunc(all, func(a, b topicPartition) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	if len(subs) == 0 {
		return out
	}
	quota := (len(all) + len(subs) - 1) / len(subs)
	var unassigned []topicPartition
	for _, tp := range all {
		kept := false
		for id, ps := range prev {
			if ps[tp] && out[id] != nil && slices.Contains(subs[id], tp.topic) && len(out[id]) < quota {
				out[id][tp] = true
				kept = true
				break
			}
		}
		if !kept {
			unassigned = append(unassigned, tp)
		}
	}
	for _, tp := range unassigned {
		best := ""
		for _, id := range subscribers[tp.topic] {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		out[best][tp] = true
	}
	return out
}

// rangeAssign gives each member of a topic's subscribers a contiguous range
// of its partitions, members in id order, the first ones one extra when
// the count does not divide (the range assignor).
func rangeAssign(subs map[string][]string, partitions map[string]int32, _ map[string]map[topicPartition]bool) map[string]map[topicPartition]bool {
	out := map[string]map[topicPartition]bool{}
	subscribers := map[string][]string{}
	for id, topics := range subs {
		out[id] = map[topicPartition]bool{}
		for _, t := range topics {
			subscribers[t] = append(subscribers[t], id)
		}
	}
	for t, ids := range subscribers {
		slices.Sort(ids)
		n := int(partitions[t])
		per, extra := n/len(ids), n%len(ids)
		p := 0
		for i, id := range ids {
			k := per
			if i < extra {
				k++
			}
			for range k {
				out[id][topicPartition{t, int32(p)}] = true
				p++
			}
		}
	}
	return out
}

// consumerSubscriptions is every topic a member subscribes to.
func (g *group) consumerSubscriptions() map[string]bool {
	topics := map[string]bool{}
	for _, m := range g.consumer.members {
		for _, t := range g.c.memberTopics(m) {
			topics[t] = true
		}
	}
	return topics
}
