package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Focused tests of the error codes Kafka's classic group coordinator
// returns (GroupMetadataManager, ClassicGroup), and of the fixes the state
// machine test led to.

type harness struct {
	t   *testing.T
	clk *fakeClock
	st  *memStorage
	cfg Config
	c   *Coordinator
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	h := &harness{t: t, clk: newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), st: newMemStorage()}
	h.cfg = Config{Partitions: 3, Storage: h.st, Clock: h.clk}
	if mod != nil {
		mod(&h.cfg)
	}
	h.c = newOwning(h.cfg)
	t.Cleanup(h.c.Close)
	return h
}

// joinCall is a JoinGroup's answer, which may come later.
type joinCall struct {
	resp  *kmsg.JoinGroupResponse
	calls int
}

func (j *joinCall) done(r *kmsg.JoinGroupResponse) { j.resp = r; j.calls++ }

type syncCall struct {
	resp  *kmsg.SyncGroupResponse
	calls int
}

func (s *syncCall) done(r *kmsg.SyncGroupResponse) { s.resp = r; s.calls++ }

func strp(s string) *string { return &s }

func consumerProtocols(names ...string) []kmsg.JoinGroupRequestProtocol {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	var out []kmsg.JoinGroupRequestProtocol
	for _, n := range names {
		out = append(out, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: md.AppendTo(nil)})
	}
	return out
}

func joinRequest(group, memberID string, version int16, instance *string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = group
	req.MemberID = memberID
	req.InstanceID = instance
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = 20000
	req.ProtocolType = "consumer"
	req.Protocols = consumerProtocols("range")
	return req
}

func (h *harness) join(req *kmsg.JoinGroupRequest) *joinCall {
	j := &joinCall{}
	h.c.Join(req, Client{ID: "client", Host: "127.0.0.1"}, j.done)
	return j
}

// joinNow is a JoinGroup that must be answered within the call.
func (h *harness) joinNow(req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	h.t.Helper()
	j := h.join(req)
	if j.calls != 1 {
		h.t.Fatalf("JoinGroup of %q answered %d times within the call", req.MemberID, j.calls)
	}
	return j.resp
}

func (h *harness) sync(group, memberID string, generation int32, instance *string, assignments ...kmsg.SyncGroupRequestGroupAssignment) *syncCall {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, memberID, generation, instance
	req.GroupAssignment = assignments
	s := &syncCall{}
	h.c.Sync(req, s.done)
	return s
}

func (h *harness) heartbeat(group, memberID string, generation int32, instance *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, memberID, generation, instance
	return h.c.Heartbeat(req)
}

// commit commits offset 10 of t-0 and returns its code.
func (h *harness) commit(group, memberID string, generation int32, instance *string, version int16) int16 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group, req.MemberID, req.Generation, req.InstanceID = group, memberID, generation, instance
	req.RetentionTimeMillis = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = "t"
	p := kmsg.NewOffsetCommitRequestTopicPartition()
	p.Offset = 10
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp := h.c.Commit(req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		h.t.Fatalf("OffsetCommit answered %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (h *harness) state(group string) State {
	h.c.mu.Lock()
	g := h.c.groups[group]
	h.c.mu.Unlock()
	if g == nil {
		return Dead
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// stable makes a Stable group of n members (static when instances are
// given) and returns their member ids, leader first, and the generation.
func (h *harness) stable(group string, instances ...*string) ([]string, int32) {
	h.t.Helper()
	var calls []*joinCall
	for _, inst := range instances {
		v := int16(3) // no MEMBER_ID_REQUIRED
		if inst != nil {
			v = 5
		}
		calls = append(calls, h.join(joinRequest(group, "", v, inst)))
	}
	h.awaitJoins(calls...)
	var ids []string
	var gen int32
	var leaderResp *kmsg.JoinGroupResponse
	for _, j := range calls {
		if j.calls != 1 || j.resp.ErrorCode != 0 {
			h.t.Fatalf("JoinGroup: %d answers, %+v", j.calls, j.resp)
		}
		ids = append(ids, j.resp.MemberID)
		gen = j.resp.Generation
		if j.resp.MemberID == j.resp.LeaderID {
			leaderResp = j.resp
		}
	}
	// Leader first.
	for i, id := range ids {
		if id == leaderResp.LeaderID {
			ids[0], ids[i] = ids[i], ids[0]
			instances[0], instances[i] = instances[i], instances[0]
		}
	}
	var syncs []*syncCall
	for i, id := range ids[1:] {
		syncs = append(syncs, h.sync(group, id, gen, instances[i+1]))
	}
	syncs = append(syncs, h.sync(group, ids[0], gen, instances[0], assignmentFor(leaderResp.Members)...))
	for _, s := range syncs {
		if s.calls != 1 || s.resp.ErrorCode != 0 {
			h.t.Fatalf("SyncGroup: %d answers, %+v", s.calls, s.resp)
		}
	}
	if st := h.state(group); st != Stable {
		h.t.Fatalf("group is %s", st)
	}
	return ids, gen
}

// awaitJoins advances the clock until the join phase ends (the initial
// rebalance delay, extended while members arrive).
func (h *harness) awaitJoins(calls ...*joinCall) {
	h.t.Helper()
	for range 60 {
		done := true
		for _, j := range calls {
			done = done && j.calls > 0
		}
		if done {
			return
		}
		h.clk.Advance(time.Second)
	}
	h.t.Fatal("the join phase did not end")
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %s, want %s", what, codeName(got), codeName(want))
	}
}

func TestJoinGroupErrors(t *testing.T) {
	h := newHarness(t, nil)
	ids, _ := h.stable("g", nil, nil)

	for _, ms := range []int32{5999, 30*60*1000 + 1} {
		req := joinRequest("g", "", 5, nil)
		req.SessionTimeoutMillis = ms
		wantCode(t, "session timeout outside group.min/max.session.timeout.ms", h.joinNow(req).ErrorCode, kerr.InvalidSessionTimeout.Code)
	}
	wantCode(t, "empty group id", h.joinNow(joinRequest("", "", 5, nil)).ErrorCode, kerr.InvalidGroupID.Code)

	req := joinRequest("g", "", 3, nil)
	req.ProtocolType = "connect"
	wantCode(t, "another protocol type", h.joinNow(req).ErrorCode, kerr.InconsistentGroupProtocol.Code)
	req = joinRequest("g", "", 3, nil)
	req.Protocols = consumerProtocols("roundrobin")
	wantCode(t, "no protocol in common", h.joinNow(req).ErrorCode, kerr.InconsistentGroupProtocol.Code)
	// Kafka checks the protocols before the member id.
	req = joinRequest("g", "nobody", 5, nil)
	req.ProtocolType = "connect"
	wantCode(t, "unknown member with another protocol type", h.joinNow(req).ErrorCode, kerr.InconsistentGroupProtocol.Code)

	resp := h.joinNow(joinRequest("g", "", 4, nil))
	wantCode(t, "v4 without a member id", resp.ErrorCode, kerr.MemberIDRequired.Code)
	if resp.MemberID == "" {
		t.Error("MEMBER_ID_REQUIRED without a member id to come back with")
	}
	if h.state("g") != Stable {
		t.Error("MEMBER_ID_REQUIRED started a rebalance")
	}

	wantCode(t, "unknown member id", h.joinNow(joinRequest("g", "nobody", 5, nil)).ErrorCode, kerr.UnknownMemberID.Code)
	wantCode(t, "member id for a group that does not exist", h.joinNow(joinRequest("none", "nobody", 5, nil)).ErrorCode, kerr.UnknownMemberID.Code)
	if h.state("none") != Dead {
		t.Error("a failed JoinGroup left a group behind")
	}
	wantCode(t, "a member's instance id that is not mapped", h.joinNow(joinRequest("g", ids[1], 5, strp("i9"))).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestFencedStaticMember(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", strp("a"), strp("b"))
	inst := strp("b")
	old := ids[0] // member ids start with the instance id
	if old[:1] != "b" {
		old = ids[1]
	}
	// b restarts: a new member id takes its slot without a rebalance.
	resp := h.joinNow(joinRequest("g", "", 5, inst))
	if resp.ErrorCode != 0 || resp.MemberID == old || resp.Generation != gen {
		t.Fatalf("static rejoin: %+v", resp)
	}
	if h.state("g") != Stable {
		t.Fatalf("static rejoin rebalanced: %s", h.state("g"))
	}
	wantCode(t, "heartbeat of the old id", h.heartbeat("g", old, gen, inst), kerr.FencedInstanceID.Code)
	s := h.sync("g", old, gen, inst)
	wantCode(t, "sync of the old id", s.resp.ErrorCode, kerr.FencedInstanceID.Code)
	wantCode(t, "commit of the old id", h.commit("g", old, gen, inst, 7), kerr.FencedInstanceID.Code)
	wantCode(t, "join of the old id", h.joinNow(joinRequest("g", old, 5, inst)).ErrorCode, kerr.FencedInstanceID.Code)
	wantCode(t, "heartbeat of the new id", h.heartbeat("g", resp.MemberID, gen, inst), 0)
}

func TestStaleGeneration(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", nil, nil)
	wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen-1, nil), kerr.IllegalGeneration.Code)
	wantCode(t, "sync", h.sync("g", ids[1], gen+1, nil).resp.ErrorCode, kerr.IllegalGeneration.Code)
	wantCode(t, "commit", h.commit("g", ids[1], gen-1, nil, 7), kerr.IllegalGeneration.Code)
	wantCode(t, "commit v8 to a group that does not exist", h.commit("none", ids[1], gen, nil, 8), kerr.IllegalGeneration.Code)
	wantCode(t, "commit v9 to a group that does not exist", h.commit("none", ids[1], gen, nil, 9), kerr.GroupIDNotFound.Code)
	wantCode(t, "heartbeat", h.heartbeat("g", ids[1], gen, nil), 0)
	wantCode(t, "commit", h.commit("g", ids[1], gen, nil, 7), 0)
	wantCode(t, "simple commit to a group with members", h.commit("g", "", -1, nil, 7), kerr.UnknownMemberID.Code)
}

func TestRebalanceInProgress(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", nil, nil)

	// The leader rejoins: the group rebalances, the follower is told.
	j := h.join(joinRequest("g", ids[0], 5, nil))
	if j.calls != 0 || h.state("g") != PreparingRebalance {
		t.Fatalf("leader rejoin: %d answers, %s", j.calls, h.state("g"))
	}
	wantCode(t, "heartbeat during PreparingRebalance", h.heartbeat("g", ids[1], gen, nil), kerr.RebalanceInProgress.Code)
	wantCode(t, "sync during PreparingRebalance", h.sync("g", ids[1], gen, nil).resp.ErrorCode, kerr.RebalanceInProgress.Code)
	wantCode(t, "commit during PreparingRebalance", h.commit("g", ids[1], gen, nil, 7), 0)

	// The follower rejoins: the join phase ends.
	j2 := h.join(joinRequest("g", ids[1], 5, nil))
	if j.calls != 1 || j2.calls != 1 || h.state("g") != CompletingRebalance {
		t.Fatalf("rejoin: %d and %d answers, %s", j.calls, j2.calls, h.state("g"))
	}
	gen2 := j.resp.Generation
	wantCode(t, "commit during CompletingRebalance", h.commit("g", ids[1], gen2, nil, 7), kerr.RebalanceInProgress.Code)
	wantCode(t, "heartbeat during CompletingRebalance", h.heartbeat("g", ids[1], gen2, nil), 0)
	wantCode(t, "heartbeat of the old generation", h.heartbeat("g", ids[1], gen, nil), kerr.IllegalGeneration.Code)

	// A follower waits in SyncGroup; a new member makes it rejoin.
	s := h.sync("g", ids[1], gen2, nil)
	if s.calls != 0 {
		t.Fatalf("follower's SyncGroup answered before the leader's: %+v", s.resp)
	}
	h.join(joinRequest("g", "", 3, nil))
	if s.calls != 1 {
		t.Fatalf("waiting SyncGroup answered %d times", s.calls)
	}
	wantCode(t, "waiting sync when a rebalance starts", s.resp.ErrorCode, kerr.RebalanceInProgress.Code)
}

func TestGroupIDChecks(t *testing.T) {
	h := newHarness(t, nil)
	wantCode(t, "sync", h.sync("", "m", 1, nil).resp.ErrorCode, kerr.InvalidGroupID.Code)
	wantCode(t, "heartbeat", h.heartbeat("", "m", 1, nil), kerr.InvalidGroupID.Code)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.MemberID = "m"
	wantCode(t, "leave", h.c.Leave(leave).ErrorCode, kerr.InvalidGroupID.Code)
	wantCode(t, "sync to a group that does not exist", h.sync("none", "m", 1, nil).resp.ErrorCode, kerr.UnknownMemberID.Code)
	wantCode(t, "heartbeat to a group that does not exist", h.heartbeat("none", "m", 1, nil), kerr.UnknownMemberID.Code)
	leave.Group = "none"
	wantCode(t, "leave v0 of a group that does not exist", h.c.Leave(leave).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestDeleteGroupErrors(t *testing.T) {
	h := newHarness(t, nil)
	wantCode(t, "unknown group", h.c.DeleteGroup("none"), kerr.GroupIDNotFound.Code)
	ids, gen := h.stable("g", nil)
	wantCode(t, "commit", h.commit("g", ids[0], gen, nil, 7), 0)
	wantCode(t, "group with a member", h.c.DeleteGroup("g"), kerr.NonEmptyGroup.Code)

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 3
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[0]}}
	if resp := h.c.Leave(leave); resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", resp)
	}
	if h.state("g") != Empty {
		t.Fatalf("group is %s after its only member left", h.state("g"))
	}
	h.st.failNext(1)
	wantCode(t, "the log fails", h.c.DeleteGroup("g"), kerr.CoordinatorNotAvailable.Code)
	wantCode(t, "empty group", h.c.DeleteGroup("g"), 0)
	wantCode(t, "deleted group", h.c.DeleteGroup("g"), kerr.GroupIDNotFound.Code)
	got, _ := h.c.FetchOffsets("g", nil)
	if len(got) != 0 {
		t.Errorf("offsets survived DeleteGroups: %+v", got)
	}
	// The deletion is in the log too.
	lc := loadCoordinator(t, h.st, Config{Partitions: 3, Clock: newFakeClock(h.clk.Now())})
	defer lc.Close()
	if len(lc.groups) != 0 {
		t.Errorf("Load brought back %d groups", len(lc.groups))
	}
}

// TestOffsetsExpireForEmptyGroup: an empty group's offsets go
// offsets.retention.minutes after it became empty, by the periodic check,
// and the group with them.
func TestOffsetsExpireForEmptyGroup(t *testing.T) {
	const retention = 2 * time.Hour
	const check = 10 * time.Minute
	h := newHarness(t, func(c *Config) { c.OffsetsRetention, c.RetentionCheckInterval = retention, check })
	ids, gen := h.stable("g", nil)
	wantCode(t, "commit", h.commit("g", ids[0], gen, nil, 7), 0)
	// A Stable group keeps the offsets of the topics it subscribes to.
	for end := h.clk.Now().Add(retention + check); h.clk.Now().Before(end); {
		h.clk.Advance(5 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], gen, nil), 0)
	}
	got, _ := h.c.FetchOffsets("g", nil)
	if len(got) != 1 {
		t.Fatalf("a Stable group lost the offsets of its topic: %+v", got)
	}
	// The member leaves: the group is Empty from then on.
	emptySince := h.clk.Now()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g", ids[0]
	h.c.Leave(leave)
	if h.state("g") != Empty {
		t.Fatalf("group is %s", h.state("g"))
	}
	fetch := func() int64 {
		got, code := h.c.FetchOffsets("g", []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}})
		if code != 0 || len(got) != 1 || len(got[0].Partitions) != 1 {
			t.Fatalf("OffsetFetch: %s %+v", codeName(code), got)
		}
		return got[0].Partitions[0].Offset
	}
	// Checks run every 10 minutes from the start; the one before the
	// retention passes keeps the offset.
	h.clk.Advance(retention - time.Millisecond)
	h.c.ExpireOffsets()
	if fetch() != 10 || h.state("g") != Empty {
		t.Fatalf("offset gone %v after the group became empty, before the retention", h.clk.Now().Sub(emptySince))
	}
	h.clk.Advance(check)
	if got := fetch(); got != -1 {
		t.Fatalf("offset %d still there %v after the group became empty", got, h.clk.Now().Sub(emptySince))
	}
	if h.state("g") != Dead {
		t.Fatalf("an empty group without offsets is still there: %s", h.state("g"))
	}
}

// TestStaticLeaderRejoin: a static leader that restarts gets the
// previous leader id (Kafka before KIP-814), so that it does not act as a
// leader with no members; from v9 it gets the members and SkipAssignment.
func TestStaticLeaderRejoin(t *testing.T) {
	for _, v := range []int16{5, 8, 9} {
		h := newHarness(t, nil)
		ids, gen := h.stable("g", strp("a"), strp("b"))
		inst := strp(ids[0][:1])
		resp := h.joinNow(joinRequest("g", "", v, inst))
		if resp.ErrorCode != 0 || resp.Generation != gen {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if v < 9 {
			if resp.LeaderID != ids[0] || len(resp.Members) != 0 || resp.SkipAssignment {
				t.Errorf("v%d: leader %s (was %s, now %s), %d members, skip %v", v, resp.LeaderID, ids[0], resp.MemberID, len(resp.Members), resp.SkipAssignment)
			}
		} else if resp.LeaderID != resp.MemberID || len(resp.Members) != 2 || !resp.SkipAssignment {
			t.Errorf("v%d: leader %s (self %s), %d members, skip %v", v, resp.LeaderID, resp.MemberID, len(resp.Members), resp.SkipAssignment)
		}
	}
}

// TestStaticRejoinStoreFails: when the group cannot be stored with the new
// member id, Kafka undoes the replacement: the old id stays the member.
func TestStaticRejoinStoreFails(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", strp("a"))
	h.st.failNext(1)
	resp := h.joinNow(joinRequest("g", "", 5, strp("a")))
	wantCode(t, "static rejoin when the log fails", resp.ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if resp.MemberID != "" {
		t.Errorf("failed rejoin answered member id %q", resp.MemberID)
	}
	// The old member id is still the member; only its pending requests
	// were fenced.
	wantCode(t, "heartbeat of the old id", h.heartbeat("g", ids[0], gen, strp("a")), 0)
	lc := loadCoordinator(t, h.st, Config{Partitions: 3, Clock: newFakeClock(h.clk.Now())})
	defer lc.Close()
	live, loaded := snapshot(h.c.groups["g"]), snapshot(lc.groups["g"])
	if loaded.leader != live.leader || len(loaded.members) != 1 || loaded.members[ids[0]] == nil {
		t.Errorf("Load gives leader %s members %v, the coordinator %s %v", loaded.leader, loaded.order, live.leader, live.order)
	}
}

// TestSessionRestartsWithAssignment: a follower's session restarts when it
// gets its assignment (Kafka's propagateAssignment), not when it asked.
func TestSessionRestartsWithAssignment(t *testing.T) {
	h := newHarness(t, nil)
	a := h.join(joinRequest("g", "", 3, nil))
	b := h.join(joinRequest("g", "", 3, nil))
	h.awaitJoins(a, b)
	leader, follower := a.resp, b.resp
	if follower.MemberID == follower.LeaderID {
		leader, follower = follower, leader
	}
	gen := leader.Generation
	s := h.sync("g", follower.MemberID, gen, nil)
	h.clk.Advance(9 * time.Second) // the leader is slow; sessions are 10 s
	wantCode(t, "leader's heartbeat", h.heartbeat("g", leader.MemberID, gen, nil), 0)
	h.sync("g", leader.MemberID, gen, nil, assignmentFor(leader.Members)...)
	if s.calls != 1 || s.resp.ErrorCode != 0 {
		t.Fatalf("follower's SyncGroup: %d answers, %+v", s.calls, s.resp)
	}
	h.clk.Advance(9 * time.Second)
	wantCode(t, "follower's first heartbeat, 9 s after its assignment", h.heartbeat("g", follower.MemberID, gen, nil), 0)
}

// TestNoProtocolTypeChangeMidRebalance: a group whose members all left
// during its rebalance keeps its protocol type until it is Empty.
func TestNoProtocolTypeChangeMidRebalance(t *testing.T) {
	h := newHarness(t, nil)
	j := h.join(joinRequest("g", "", 3, nil)) // waits out the initial delay
	if h.state("g") != PreparingRebalance {
		t.Fatalf("group is %s", h.state("g"))
	}
	if j.calls != 0 {
		t.Fatal("join answered during the initial delay")
	}
	// The member id is only in the answer; find it in the group.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	h.c.mu.Lock()
	g := h.c.groups["g"]
	h.c.mu.Unlock()
	leave.MemberID = snapshot(g).order[0]
	h.c.Leave(leave)
	if h.state("g") != PreparingRebalance {
		t.Fatalf("group is %s", h.state("g"))
	}
	req := joinRequest("g", "", 3, nil)
	req.ProtocolType = "connect"
	wantCode(t, "another protocol type while the group rebalances", h.joinNow(req).ErrorCode, kerr.InconsistentGroupProtocol.Code)
	h.clk.Advance(h.c.cfg.InitialRebalanceDelay)
	if h.state("g") != Empty {
		t.Fatalf("group is %s", h.state("g"))
	}
	resp := h.join(req)
	h.awaitJoins(resp)
	if resp.calls != 1 || resp.resp.ErrorCode != 0 || deref(resp.resp.ProtocolType) != "connect" {
		t.Fatalf("an Empty group takes another protocol type: %+v", resp.resp)
	}
}
