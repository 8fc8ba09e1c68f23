package group

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The state machine test: simulated clients, static and dynamic, of every
// JoinGroup version, drive random sequences of JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch and DescribeGroups,
// clock advances, storage failures, offset expiry, DeleteGroups and
// coordinator failovers (Close, then Load from the log) against a
// Coordinator on a fake clock. Clients react to answers as Kafka's do:
// rejoin on REBALANCE_IN_PROGRESS and ILLEGAL_GENERATION, rejoin without an
// id on UNKNOWN_MEMBER_ID, take the id of MEMBER_ID_REQUIRED, and the
// leader assigns the partitions among the members its JoinGroup response
// lists; some crash, pause or send stale generations.
//
// Checked throughout:
//   - every JoinGroup and SyncGroup callback is called exactly once, and no
//     request is left waiting unless the group holds it (Close answers all);
//   - every code is the one Kafka's coordinator returns in the group's state
//     before the request (reference_test.go), and waiting requests end in
//     codes Kafka ends them with;
//   - a Stable group's assignments hold each partition exactly once;
//   - generations never go back; the JoinGroup responses of one generation
//     agree on leader, protocol type and protocol; a leader gets the members;
//   - a member that stops heartbeating is removed once its session timeout
//     passes after the coordinator last heard from it (as Kafka counts it,
//     which includes answering its SyncGroup), never before; KIP-394 member
//     ids are kept for a session timeout;
//   - committed offsets are what the commits stored, minus what Kafka's
//     retention rules expire;
//   - after everyone leaves, the group is Empty;
//   - Load of the log yields the same offsets, and the same generation,
//     leader, members and assignments for Stable groups (also after a
//     failover);
//   - group bookkeeping (member order, static ids, leader, time spent
//     rebalancing) is consistent.
//
// Choices come from a seeded math/rand (TestStateMachine: STATEMACHINE_SEED=n
// reruns one seed, STATEMACHINE_SEEDS=n runs seeds 0 to n-1,
// STATEMACHINE_STEPS=m sets the steps per seed, STATEMACHINE_TRACE=1 keeps the
// whole history for the failure message) or from fuzz input
// (FuzzStateMachine). Member ids are random and map iteration order varies,
// so a seed replays the same requests but timers due at the same instant may
// fire in another order.

const (
	smTopic      = "t" // the topic the groups assign and commit
	smPartitions = 12
	smMissing    = "missing" // a topic that does not exist
	smRetention  = time.Hour
	smMaxMeta    = 32
	smInitDelay  = 3 * time.Second
)

// chooser makes the simulation's choices.
type chooser interface {
	intn(n int) int // in [0, n)
	exhausted() bool
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return c.r.IntN(n)
}
func (randChooser) exhausted() bool { return false }

// byteChooser takes choices from fuzz input; past its end every choice is
// 0 and the run stops at the end of the step.
type byteChooser struct {
	data []byte
	pos  int
}

func (c *byteChooser) intn(n int) int {
	if n <= 1 {
		return 0
	}
	v := 0
	if c.pos < len(c.data) {
		v = int(c.data[c.pos])
		c.pos++
	}
	if n > 256 && c.pos < len(c.data) {
		v = v<<8 | int(c.data[c.pos])
		c.pos++
	}
	return v % n
}

func (c *byteChooser) exhausted() bool { return c.pos >= len(c.data) }

type phase int

const (
	phOut     phase = iota // not taking part: left, fenced, crashed, gave up
	phIdle                 // about to (re)join
	phJoining              // JoinGroup in flight
	phJoined               // has a generation, must SyncGroup
	phSyncing              // SyncGroup in flight
	phStable               // has its assignment
)

var phaseNames = [...]string{"out", "idle", "joining", "joined", "syncing", "stable"}

func (p phase) String() string { return phaseNames[p] }

// client is one simulated consumer process.
type client struct {
	k         int
	group     string
	clientID  string
	instance  *string
	joinV     int16
	session   time.Duration
	rebalance time.Duration
	protoType string
	protocols []string
	topics    []string

	inc        int // bumped when the process restarts: older answers go nowhere
	phase      phase
	memberID   string
	generation int32
	protocol   string
	leaderID   string
	members    []kmsg.JoinGroupResponseMember
	skip       bool
	assigned   []int32
	pausedTill time.Time
	lastSent   time.Time // the last JoinGroup, SyncGroup or Heartbeat
	join, sync *request  // in flight
}

func (c *client) String() string {
	return fmt.Sprintf("%s[%s gen=%d id=%s]", c.clientID, c.phase, c.generation, c.memberID)
}

func (c *client) syncV() int16 {
	switch {
	case c.joinV < 4:
		return min(c.joinV, 2)
	case c.joinV < 7:
		return 3
	}
	return 5
}

func (c *client) hbV() int16 {
	if c.joinV < 4 {
		return min(c.joinV, 2)
	}
	return 4
}

func (c *client) leaveV() int16 {
	if c.joinV < 4 {
		return min(c.joinV, 2)
	}
	if c.joinV >= 8 {
		return 5
	}
	return 3
}

func (c *client) commitV(ch chooser) int16 {
	switch {
	case c.instance != nil:
		return []int16{7, 8, 9}[ch.intn(3)]
	case c.joinV < 4:
		return []int16{1, 2, 3, 5}[ch.intn(4)]
	}
	return []int16{6, 7, 8, 9}[ch.intn(4)]
}

func (c *client) joinProtocols() []kmsg.JoinGroupRequestProtocol {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = c.topics
	b := md.AppendTo(nil)
	var out []kmsg.JoinGroupRequestProtocol
	for _, name := range c.protocols {
		out = append(out, kmsg.JoinGroupRequestProtocol{Name: name, Metadata: b})
	}
	return out
}

// request is a JoinGroup or SyncGroup, whose answer is a callback.
type request struct {
	id         int
	kind       string // "join" or "sync"
	c          *client
	inc        int
	epoch      int
	immediate  bool // answered within the call
	calls      int
	answeredAt time.Time
	jreq       *kmsg.JoinGroupRequest
	sreq       *kmsg.SyncGroupRequest
	jresp      *kmsg.JoinGroupResponse
	sresp      *kmsg.SyncGroupResponse
}

type logEvent struct {
	msg   string
	attrs map[string]string
}

// event is an answer or a log line, in the order they happened.
type event struct {
	at  time.Time
	req *request
	log *logEvent
}

// captureHandler turns the coordinator's log lines into events.
type captureHandler struct{ s *sim }

func (h captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	e := &logEvent{msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value.String()
		return true
	})
	h.s.events = append(h.s.events, event{at: h.s.clk.Now(), log: e})
	return nil
}
func (h captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h captureHandler) WithGroup(string) slog.Handler      { return h }

// gtrack is what the test remembers of one incarnation of a group in one
// coordinator epoch.
type gtrack struct {
	maxGen  int32
	joins   map[int32]joinInfo // generation -> what its join responses said
	covered string             // the Stable generation and members last checked
}

type joinInfo struct {
	leader       *client
	protocol     string
	protocolType string
}

type sim struct {
	t   testing.TB
	ch  chooser
	clk *fakeClock
	st  *memStorage
	cfg Config
	c   *Coordinator

	epoch     int // bumped by each failover to a coordinator loaded from storage
	groups    []string
	clients   []*client
	reqs      []*request
	firstOpen int // reqs before it are all answered
	events    []event
	errs      []string

	offsets   map[string]map[topicPartition]committed // committed, as the test saw it
	deadline  map[string]time.Time                    // member id -> session deadline (Kafka's)
	pendingDL map[string]time.Time                    // KIP-394 member id -> its expiry
	tracks    map[string]*gtrack
	replay    *replayLogs
	leaving   map[string]bool // member ids a LeaveGroup of this step names

	nstep int
	start time.Time
	trace []string
	stats map[string]int // what the run exercised
}

func newSim(t testing.TB, ch chooser) *sim {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &sim{
		t:         t,
		ch:        ch,
		clk:       newFakeClock(start),
		st:        newMemStorage(),
		offsets:   map[string]map[topicPartition]committed{},
		deadline:  map[string]time.Time{},
		pendingDL: map[string]time.Time{},
		tracks:    map[string]*gtrack{},
		leaving:   map[string]bool{},
		replay:    newReplayLogs(t),
		stats:     map[string]int{},
		start:     start,
		epoch:     1,
	}
	s.cfg = Config{
		Partitions:             3,
		MinSessionTimeout:      6 * time.Second,
		MaxSessionTimeout:      5 * time.Minute,
		OffsetsRetention:       smRetention,
		RetentionCheckInterval: 100 * 365 * 24 * time.Hour, // the test calls ExpireOffsets
		MaxMetadataSize:        smMaxMeta,
		Storage:                s.st,
		PartitionExists: func(topic string, p int32) bool {
			return topic != smMissing && p >= 0 && p < smPartitions
		},
		Logger: slog.New(captureHandler{s}),
	}
	if ch.intn(2) == 0 {
		s.cfg.NoInitialRebalanceDelay = true
	} else {
		s.cfg.InitialRebalanceDelay = smInitDelay
	}
	s.groups = []string{"alpha"}
	if ch.intn(3) == 0 {
		s.groups = append(s.groups, "beta")
	}
	n := 2 + ch.intn(7)
	for k := range n {
		s.clients = append(s.clients, s.newClient(k))
	}
	s.c = newOwning(s.config())
	s.tracef("config: initial delay %v, groups %v", s.cfg.InitialRebalanceDelay, s.groups)
	for _, c := range s.clients {
		s.tracef("client %s: group %s instance %v join v%d session %v rebalance %v %s %v", c.clientID, c.group, deref(c.instance), c.joinV, c.session, c.rebalance, c.protoType, c.protocols)
	}
	return s
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// config is the coordinator's Config in the current epoch.
func (s *sim) config() Config {
	cfg := s.cfg
	cfg.Clock = s.clk.view(s.epoch)
	return cfg
}

func (s *sim) newClient(k int) *client {
	ch := s.ch
	c := &client{
		k:          k,
		group:      s.groups[k%len(s.groups)],
		clientID:   fmt.Sprintf("client-%d", k),
		generation: -1,
		protoType:  "consumer",
		topics:     []string{smTopic},
		phase:      phIdle,
	}
	switch ch.intn(3) {
	case 0:
		inst := fmt.Sprintf("inst-%d", k)
		c.instance = &inst
		c.joinV = int16(5 + ch.intn(5))
	case 1:
		c.joinV = int16(4 + ch.intn(6))
	default:
		c.joinV = int16(ch.intn(4))
	}
	c.session = []time.Duration{6 * time.Second, 10 * time.Second, 30 * time.Second}[ch.intn(3)]
	c.rebalance = []time.Duration{c.session, 20 * time.Second, 60 * time.Second}[ch.intn(3)]
	if c.joinV == 0 {
		c.rebalance = c.session
	}
	c.protocols = [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin"}}[ch.intn(3)]
	if ch.intn(10) == 0 {
		c.protoType = "connect"
	}
	if ch.intn(4) == 0 {
		c.phase = phOut // starts later
	}
	return c
}

// owner is the client a member id belongs to: ids are the client id or
// instance id, a dash and a UUID.
func (s *sim) owner(memberID string) *client {
	if len(memberID) < 38 {
		return nil
	}
	prefix := memberID[:len(memberID)-37]
	i := strings.LastIndexByte(prefix, '-')
	k, err := strconv.Atoi(prefix[i+1:])
	if err != nil || k < 0 || k >= len(s.clients) {
		return nil
	}
	return s.clients[k]
}

func (s *sim) tracef(format string, args ...any) {
	s.traceAt(s.clk.Now(), format, args...)
}

// traceAt traces what happened at t (an answer or log line handled later).
func (s *sim) traceAt(t time.Time, format string, args ...any) {
	line := fmt.Sprintf("%4d +%-9v ", s.nstep, t.Sub(s.start)) + fmt.Sprintf(format, args...)
	s.trace = append(s.trace, line)
	if len(s.trace) > 120 && os.Getenv("STATEMACHINE_TRACE") == "" {
		s.trace = s.trace[len(s.trace)-100:]
	}
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d at +%v (epoch %d): %s\nrecent history:\n%s", s.nstep, s.clk.Now().Sub(s.start), s.epoch,
		fmt.Sprintf(format, args...), strings.Join(s.trace, "\n"))
}

// errorf records a failure seen inside a callback, where the test must
// not stop (the coordinator holds a lock); step reports it.
func (s *sim) errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func codeName(code int16) string {
	if code == 0 {
		return "OK"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return strconv.Itoa(int(code))
}

func (s *sim) snap(id string) *groupSnap { return s.snapOf(id, true) }

// snapLite is snap without offsets, protocols and assignments.
func (s *sim) snapLite(id string) *groupSnap { return s.snapOf(id, false) }

func (s *sim) snapOf(id string, full bool) *groupSnap {
	s.c.mu.Lock()
	g := s.c.groups[id]
	s.c.mu.Unlock()
	if g == nil {
		return absentGroup(id)
	}
	return snapshotOf(g, full)
}

func (s *sim) storageFails() bool {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.failing || s.st.failN > 0
}

func (s *sim) newRequest(kind string, c *client) *request {
	r := &request{id: len(s.reqs), kind: kind, c: c, inc: c.inc, epoch: s.epoch}
	s.reqs = append(s.reqs, r)
	return r
}

func (s *sim) joinDone(r *request) func(*kmsg.JoinGroupResponse) {
	return func(resp *kmsg.JoinGroupResponse) {
		r.calls++
		if r.calls > 1 {
			s.errorf("JoinGroup %d of %s answered %d times", r.id, r.c.clientID, r.calls)
			return
		}
		if resp == nil {
			s.errorf("JoinGroup %d answered with nil", r.id)
			return
		}
		r.jresp, r.answeredAt = resp, s.clk.Now()
		s.events = append(s.events, event{at: r.answeredAt, req: r})
	}
}

func (s *sim) syncDone(r *request) func(*kmsg.SyncGroupResponse) {
	return func(resp *kmsg.SyncGroupResponse) {
		r.calls++
		if r.calls > 1 {
			s.errorf("SyncGroup %d of %s answered %d times", r.id, r.c.clientID, r.calls)
			return
		}
		if resp == nil {
			s.errorf("SyncGroup %d answered with nil", r.id)
			return
		}
		r.sresp, r.answeredAt = resp, s.clk.Now()
		s.events = append(s.events, event{at: r.answeredAt, req: r})
	}
}

// refresh notes that the coordinator heard from a member at t: Kafka
// reschedules its session expiry.
func (s *sim) refresh(memberID string, t time.Time) {
	if o := s.owner(memberID); o != nil {
		s.deadline[memberID] = t.Add(o.session)
	}
}

// ---- the run ----

func runSim(t testing.TB, ch chooser, steps int) map[string]int {
	s := newSim(t, ch)
	for s.nstep < steps && !ch.exhausted() {
		s.step()
	}
	s.finish()
	return s.stats
}

func (s *sim) step() {
	s.nstep++
	switch k := s.ch.intn(100); {
	case k < 20:
		s.advance()
	case k < 78:
		s.clientStep(s.clients[s.ch.intn(len(s.clients))])
	case k < 81:
		s.adminCommit()
	case k < 84:
		s.observe()
	case k < 86:
		s.expire()
	case k < 88:
		s.deleteGroup()
	case k < 91:
		s.storageFault()
	case k < 93:
		s.everyoneLeaves(s.groups[s.ch.intn(len(s.groups))])
	case k < 95:
		s.loadCheck()
	case k < 96:
		if s.ch.intn(2) == 0 {
			s.failover()
		} else {
			s.resign()
		}
	default:
		s.advanceToDeadline()
	}
	// A failing storage recovers soon, so that groups make progress.
	if s.storageFails() && s.ch.intn(3) == 0 {
		s.st.setFailing(false)
		s.st.failNext(0)
		s.tracef("storage recovers")
	}
	s.settle()
}

// settle fires due timers, handles answers and log lines, and checks the
// invariants.
func (s *sim) settle() {
	s.clk.Advance(0)
	s.processEvents()
	clear(s.leaving)
	s.check()
}

func (s *sim) finish() {
	s.tracef("close coordinator")
	s.c.Close()
	s.processEvents()
	if n := s.clk.pending(s.epoch); n != 0 {
		s.fail("%d timers left after Close", n)
	}
	for _, r := range s.reqs {
		if r.calls != 1 {
			s.fail("%s %d of %s answered %d times", r.kind, r.id, r.c.clientID, r.calls)
		}
	}
}

func (s *sim) processEvents() {
	for len(s.events) > 0 {
		e := s.events[0]
		s.events = s.events[1:]
		if e.req != nil {
			s.onAnswer(e.req, e.at)
		} else {
			s.onLog(e.log, e.at)
		}
	}
	if len(s.errs) > 0 {
		s.fail("%s", strings.Join(s.errs, "\n"))
	}
}

func (s *sim) onLog(e *logEvent, at time.Time) {
	switch e.msg {
	case "group member removed":
		id, reason := e.attrs["member"], e.attrs["reason"]
		s.traceAt(at, "  removed %s: %s", id, reason)
		switch {
		case reason == "session timeout expired":
			s.stats["session expiry"]++
			if dl, ok := s.deadline[id]; ok && at.Before(dl) {
				s.errorf("member %s removed for its session at +%v, before its deadline +%v", id, at.Sub(s.start), dl.Sub(s.start))
			}
		case strings.HasPrefix(reason, "left the group"):
			if !s.leaving[id] {
				s.errorf("member %s left without a LeaveGroup", id)
			}
		case reason == "did not rejoin within the rebalance timeout", reason == "did not sync within the rebalance timeout":
			s.stats[reason]++
		default:
			s.errorf("member %s removed for an unknown reason %q", id, reason)
		}
		delete(s.deadline, id)
	case "static member rejoined":
		s.stats["static replaced"]++
		s.traceAt(at, "  static %s replaced %s by %s", e.attrs["instance"], e.attrs["old"], e.attrs["new"])
		delete(s.deadline, e.attrs["old"])
	case "group rebalanced":
		s.traceAt(at, "  group %s generation %s: %s members, leader %s, protocol %s", e.attrs["group"], e.attrs["generation"], e.attrs["members"], e.attrs["leader"], e.attrs["protocol"])
	case "preparing to rebalance group":
		s.traceAt(at, "  group %s rebalances: %s", e.attrs["group"], e.attrs["reason"])
	}
}

// onAnswer checks an answered JoinGroup or SyncGroup and makes its client
// react.
func (s *sim) onAnswer(r *request, at time.Time) {
	c := s.clients[r.c.k]
	current := r.inc == c.inc && (c.join == r || c.sync == r)
	switch r.kind {
	case "join":
		resp := r.jresp
		code := resp.ErrorCode
		s.stats["join "+codeName(resp.ErrorCode)]++
		s.traceAt(at, "  join %d of %s answered %s gen=%d member=%s leader=%s (%d members)", r.id, c.clientID, codeName(code), resp.Generation, resp.MemberID, resp.LeaderID, len(resp.Members))
		if !r.immediate {
			switch code {
			case 0, kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code, kerr.NotCoordinator.Code:
			default:
				s.errorf("JoinGroup %d waited and got %s", r.id, codeName(code))
			}
		}
		if code == 0 {
			s.checkJoinResponse(r)
			s.refresh(resp.MemberID, at)
		}
		if !current {
			return
		}
		c.join = nil
		switch code {
		case 0:
			c.memberID, c.generation = resp.MemberID, resp.Generation
			c.protocol = ""
			if resp.Protocol != nil {
				c.protocol = *resp.Protocol
			}
			c.leaderID, c.members, c.skip = resp.LeaderID, resp.Members, resp.SkipAssignment
			c.phase = phJoined
		case kerr.MemberIDRequired.Code:
			c.memberID = resp.MemberID
			c.phase = phIdle
			s.pendingDL[resp.MemberID] = at.Add(c.session)
		case kerr.UnknownMemberID.Code:
			c.memberID, c.generation = "", -1
			c.phase = phIdle
		case kerr.FencedInstanceID.Code, kerr.InconsistentGroupProtocol.Code:
			c.phase = phOut // fatal for the client
			c.inc++
		default:
			c.phase = phIdle // retriable: join again
		}
	case "sync":
		resp := r.sresp
		code := resp.ErrorCode
		s.stats["sync "+codeName(code)]++
		s.traceAt(at, "  sync %d of %s answered %s", r.id, c.clientID, codeName(code))
		if !r.immediate {
			switch code {
			case 0, kerr.RebalanceInProgress.Code, kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code,
				kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
			default:
				s.errorf("SyncGroup %d waited and got %s", r.id, codeName(code))
			}
			switch code {
			case 0, kerr.RebalanceInProgress.Code, kerr.CoordinatorNotAvailable.Code:
				// Kafka reschedules the session of every member whose
				// sync it answers (propagateAssignment).
				s.refresh(r.sreq.MemberID, at)
			}
		}
		var parts []int32
		if code == 0 {
			if r.sreq.Version >= 5 && deref(resp.Protocol) != deref(r.sreq.Protocol) {
				s.errorf("SyncGroup %d answered protocol %v, asked %v", r.id, deref(resp.Protocol), deref(r.sreq.Protocol))
			}
			var err error
			if parts, err = decodeAssignment(resp.MemberAssignment); err != nil {
				s.errorf("SyncGroup %d: assignment: %v", r.id, err)
			}
		}
		if !current {
			return
		}
		c.sync = nil
		switch code {
		case 0:
			c.assigned = parts
			c.phase = phStable
		case kerr.UnknownMemberID.Code:
			c.memberID, c.generation = "", -1
			c.phase = phIdle
		case kerr.FencedInstanceID.Code:
			c.phase = phOut
			c.inc++
		default:
			c.phase = phIdle
		}
	}
}

// checkJoinResponse checks a successful JoinGroup response, and that the
// responses of one generation agree.
func (s *sim) checkJoinResponse(r *request) {
	resp := r.jresp
	if resp.MemberID == "" || resp.Generation < 1 || resp.LeaderID == "" || resp.Protocol == nil || *resp.Protocol == "" || resp.ProtocolType == nil {
		s.errorf("JoinGroup %d: incomplete success: %+v", r.id, resp)
		return
	}
	if *resp.ProtocolType != r.jreq.ProtocolType {
		s.errorf("JoinGroup %d: protocol type %q, asked %q", r.id, *resp.ProtocolType, r.jreq.ProtocolType)
	}
	if !slices.ContainsFunc(r.jreq.Protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == *resp.Protocol }) {
		s.errorf("JoinGroup %d: protocol %q is not one it offered", r.id, *resp.Protocol)
	}
	if resp.LeaderID == resp.MemberID && len(resp.Members) > 0 {
		ids := map[string]bool{}
		for _, m := range resp.Members {
			if ids[m.MemberID] {
				s.errorf("JoinGroup %d: member %s listed twice", r.id, m.MemberID)
			}
			ids[m.MemberID] = true
		}
		if !ids[resp.MemberID] {
			s.errorf("JoinGroup %d: the leader is not among the members it is given", r.id)
		}
	} else if resp.LeaderID != resp.MemberID && len(resp.Members) > 0 {
		s.errorf("JoinGroup %d: a follower was given the members", r.id)
	} else if resp.LeaderID == resp.MemberID && len(resp.Members) == 0 {
		// Kafka gives a static leader that rejoins a Stable group the
		// members with SkipAssignment (v9+) or names the previous
		// leader id (before v9).
		s.errorf("JoinGroup %d: the leader was given no members to assign", r.id)
	}
	if resp.SkipAssignment && (resp.LeaderID != resp.MemberID || r.jreq.Version < 9) {
		s.errorf("JoinGroup %d: SkipAssignment for a v%d member that does not lead", r.id, r.jreq.Version)
	}
	if r.epoch != s.epoch {
		return
	}
	tr := s.track(r.c.group)
	info := joinInfo{leader: s.owner(resp.LeaderID), protocol: *resp.Protocol, protocolType: *resp.ProtocolType}
	if prev, ok := tr.joins[resp.Generation]; ok {
		if prev != info {
			s.errorf("JoinGroup %d: generation %d has leader %v protocol %s/%s, an earlier response said %v %s/%s",
				r.id, resp.Generation, info.leader, info.protocolType, info.protocol, prev.leader, prev.protocolType, prev.protocol)
		}
	} else {
		tr.joins[resp.Generation] = info
	}
	tr.maxGen = max(tr.maxGen, resp.Generation)
}

func (s *sim) track(group string) *gtrack {
	tr := s.tracks[group]
	if tr == nil {
		tr = &gtrack{joins: map[int32]joinInfo{}}
		s.tracks[group] = tr
	}
	return tr
}

// ---- clock ----

// Clock advances: while "frozen" no client says anything (a network
// partition, a stop-the-world pause), otherwise the clients go on as real
// ones do in the background: heartbeat every third of their session,
// rejoin and sync when told to.
var (
	frozenAdvances = []time.Duration{
		0, time.Millisecond, 100 * time.Millisecond, time.Second, 3 * time.Second, 6 * time.Second,
		10 * time.Second, 30 * time.Second, 61 * time.Second, 5 * time.Minute, 61 * time.Minute,
	}
	liveAdvances = []time.Duration{
		100 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second,
		10 * time.Second, 20 * time.Second, 30 * time.Second, 61 * time.Second,
	}
)

func (s *sim) advance() {
	if s.ch.intn(3) == 0 {
		d := frozenAdvances[s.ch.intn(len(frozenAdvances))]
		s.tracef("advance %v, all clients silent", d)
		s.clk.Advance(d)
		return
	}
	d := liveAdvances[s.ch.intn(len(liveAdvances))]
	s.tracef("advance %v", d)
	end := s.clk.Now().Add(d)
	for s.clk.Now().Before(end) {
		s.clk.Advance(min(end.Sub(s.clk.Now()), time.Second))
		s.processEvents()
		clear(s.leaving)
		for _, c := range s.clients {
			s.autopilot(c)
		}
		s.settle()
	}
}

// autopilot is what a client's background thread does.
func (s *sim) autopilot(c *client) {
	now := s.clk.Now()
	if c.phase == phOut || now.Before(c.pausedTill) {
		return
	}
	switch c.phase {
	case phIdle:
		s.join(c, 0)
	case phJoined:
		s.syncGroup(c, 0)
	case phSyncing, phStable:
		if now.Sub(c.lastSent) >= c.session/3 {
			s.heartbeat(c, 0)
		}
	}
}

// advanceToDeadline moves the clock to a member's session deadline, or
// just before it.
func (s *sim) advanceToDeadline() {
	now := s.clk.Now()
	var dls []time.Time
	for _, dl := range s.deadline {
		if dl.After(now) {
			dls = append(dls, dl)
		}
	}
	if len(dls) == 0 {
		s.advance()
		return
	}
	slices.SortFunc(dls, func(a, b time.Time) int { return a.Compare(b) })
	dl := dls[s.ch.intn(len(dls))]
	if s.ch.intn(2) == 0 {
		dl = dl.Add(-time.Millisecond)
	}
	s.tracef("advance to +%v", dl.Sub(s.start))
	s.clk.Advance(dl.Sub(now))
}

// ---- clients ----

func (s *sim) clientStep(c *client) {
	if c.phase == phOut {
		if s.ch.intn(3) == 0 {
			s.restart(c)
		}
		return
	}
	if s.clk.Now().Before(c.pausedTill) {
		return // silent
	}
	switch r := s.ch.intn(100); {
	case r < 60:
		s.natural(c)
	case r < 68:
		s.commit(c)
	case r < 70:
		s.fetch(c.group, s.ch.intn(2) == 0)
	case r < 73:
		if c.memberID != "" || c.instance != nil {
			s.leave(c)
		}
	case r < 75:
		s.tracef("%s crashes", c)
		c.phase = phOut
		c.inc++
		c.memberID, c.generation, c.join, c.sync = "", -1, nil, nil
	case r < 77:
		c.pausedTill = s.clk.Now().Add(time.Duration(1+s.ch.intn(3)) * c.session / 2)
		s.tracef("%s pauses until +%v", c, c.pausedTill.Sub(s.start))
	case r < 82:
		s.stale(c)
	case r < 85:
		if c.phase == phStable || c.phase == phJoined {
			if s.ch.intn(2) == 0 {
				// A subscription change: the metadata differs.
				if len(c.topics) == 1 {
					c.topics = []string{smTopic, "u"}
				} else {
					c.topics = []string{smTopic}
				}
			}
			s.join(c, 0)
		}
	case r < 87:
		if c.phase == phIdle || c.phase == phStable {
			s.join(c, 1+s.ch.intn(2)) // invalid: session timeout or group id
		}
	case r < 91:
		s.heartbeat(c, 0)
	case r < 93:
		s.restart(c)
	default:
		s.describe(c.group)
	}
}

// restart is the client process starting again, with no member id (a
// static member keeps its instance id).
func (s *sim) restart(c *client) {
	c.inc++
	c.phase = phIdle
	c.memberID, c.generation, c.assigned, c.join, c.sync = "", -1, nil, nil, nil
	c.pausedTill = time.Time{}
	s.tracef("%s starts", c)
	s.join(c, 0)
}

func (s *sim) natural(c *client) {
	switch c.phase {
	case phIdle:
		s.join(c, 0)
	case phJoined:
		if c.memberID == c.leaderID && s.ch.intn(5) == 0 {
			s.tracef("%s (leader) is slow to assign", c)
			s.heartbeat(c, 0)
			return
		}
		s.syncGroup(c, 0)
	case phSyncing, phStable:
		s.heartbeat(c, 0)
	}
}

// stale sends a request with a generation the group is not at.
func (s *sim) stale(c *client) {
	if c.memberID == "" || c.generation < 0 {
		return
	}
	off := []int32{-1, 1}[s.ch.intn(2)]
	switch s.ch.intn(3) {
	case 0:
		s.heartbeat(c, off)
	case 1:
		if c.phase != phJoining && c.phase != phSyncing {
			s.syncGroup(c, off)
		}
	default:
		s.commitAt(c, c.generation+off)
	}
}

// join sends a JoinGroup; invalid 1 is a bad session timeout, 2 an empty
// group id.
func (s *sim) join(c *client, invalid int) {
	if c.join != nil || c.sync != nil {
		return // one request at a time
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = c.joinV
	req.Group = c.group
	req.SessionTimeoutMillis = int32(c.session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(c.rebalance / time.Millisecond)
	if c.joinV == 0 {
		req.RebalanceTimeoutMillis = -1
	}
	req.MemberID = c.memberID
	req.InstanceID = c.instance
	req.ProtocolType = c.protoType
	req.Protocols = c.joinProtocols()
	switch invalid {
	case 1:
		req.SessionTimeoutMillis = []int32{1000, int32(s.cfg.MaxSessionTimeout/time.Millisecond) + 1}[s.ch.intn(2)]
	case 2:
		req.Group = ""
	}
	pre := s.snap(req.Group)
	exp := pre.refJoin(req, s.cfg)
	fails := s.storageFails()
	r := s.newRequest("join", c)
	r.jreq = req
	s.tracef("%s joins v%d member=%q (%s, expect %s%s)", c, req.Version, req.MemberID, pre.state, codeName(exp.code), map[bool]string{true: " at once"}[exp.immediate])
	if req.MemberID != "" && !pre.pending[req.MemberID] && pre.members[req.MemberID] == nil && pre.exists {
		// A KIP-394 id must be remembered for the session timeout.
		if dl, ok := s.pendingDL[req.MemberID]; ok && s.clk.Now().Before(dl) {
			s.fail("member id %s handed out with MEMBER_ID_REQUIRED was forgotten before +%v", req.MemberID, dl.Sub(s.start))
		}
	}
	if invalid == 0 {
		c.join = r
		c.phase = phJoining
		c.lastSent = s.clk.Now()
	}
	s.c.Join(req, Client{ID: c.clientID, Host: "10.0.0." + strconv.Itoa(c.k)}, s.joinDone(r))
	r.immediate = r.calls > 0
	var got int16 = -1
	if r.immediate {
		got = r.jresp.ErrorCode
	}
	switch {
	case exp.code != 0:
		if got != exp.code {
			s.fail("JoinGroup of %s: got %s (answered at once: %v), Kafka answers %s", c, codeName(got), r.immediate, codeName(exp.code))
		}
	case exp.memberIDRequired:
		if got != kerr.MemberIDRequired.Code || r.jresp.MemberID == "" {
			s.fail("JoinGroup v%d of %s without member id: got %s, want MEMBER_ID_REQUIRED with an id", req.Version, c, codeName(got))
		}
	default:
		if exp.immediate && !r.immediate {
			s.fail("JoinGroup of %s should be answered at once (group %s)", c, pre.state)
		}
		if r.immediate && got != 0 && !(fails && exp.replaces != "" && got == kerr.CoordinatorNotAvailable.Code) {
			s.fail("JoinGroup of %s: got %s, Kafka accepts it", c, codeName(got))
		}
		if exp.known {
			s.refresh(req.MemberID, s.clk.Now())
			delete(s.pendingDL, req.MemberID) // a member now
		}
	}
	if invalid != 0 && !r.immediate {
		s.fail("invalid JoinGroup left waiting")
	}
}

// assignmentFor is the leader's assignment: the partitions round-robin
// over the members it was given, in order.
func assignmentFor(members []kmsg.JoinGroupResponseMember) []kmsg.SyncGroupRequestGroupAssignment {
	n := len(members)
	if n == 0 {
		return nil
	}
	parts := make([][]int32, n)
	for p := range smPartitions {
		parts[p%n] = append(parts[p%n], int32(p))
	}
	var out []kmsg.SyncGroupRequestGroupAssignment
	for i, m := range members {
		a := kmsg.NewConsumerMemberAssignment()
		t := kmsg.NewConsumerMemberAssignmentTopic()
		t.Topic, t.Partitions = smTopic, parts[i]
		a.Topics = append(a.Topics, t)
		out = append(out, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: a.AppendTo(nil)})
	}
	return out
}

func decodeAssignment(b []byte) ([]int32, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil, err
	}
	var out []int32
	for _, t := range a.Topics {
		if t.Topic != smTopic {
			return nil, fmt.Errorf("topic %q", t.Topic)
		}
		out = append(out, t.Partitions...)
	}
	return out, nil
}

func (s *sim) syncGroup(c *client, genOff int32) {
	if c.join != nil || c.sync != nil || c.memberID == "" {
		return
	}
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = c.syncV()
	req.Group = c.group
	req.Generation = c.generation + genOff
	req.MemberID = c.memberID
	if req.Version >= 3 {
		req.InstanceID = c.instance
	}
	if req.Version >= 5 {
		pt, p := c.protoType, c.protocol
		req.ProtocolType, req.Protocol = &pt, &p
	}
	if c.memberID == c.leaderID && !c.skip {
		req.GroupAssignment = assignmentFor(c.members)
	}
	pre := s.snapLite(req.Group)
	exp := pre.refSync(req)
	fails := s.storageFails()
	r := s.newRequest("sync", c)
	r.sreq = req
	s.tracef("%s syncs gen %d (%s, expect %s, %d assignments)", c, req.Generation, pre.state, codeName(exp.code), len(req.GroupAssignment))
	c.sync = r
	c.phase = phSyncing
	c.lastSent = s.clk.Now()
	s.c.Sync(req, s.syncDone(r))
	r.immediate = r.calls > 0
	var got int16 = -1
	if r.immediate {
		got = r.sresp.ErrorCode
	}
	switch {
	case exp.code != 0:
		if got != exp.code {
			s.fail("SyncGroup of %s: got %s (at once: %v), Kafka answers %s", c, codeName(got), r.immediate, codeName(exp.code))
		}
	case exp.immediate:
		want := int16(0)
		if exp.leader && fails {
			want = kerr.CoordinatorNotAvailable.Code
		}
		if got != want {
			s.fail("SyncGroup of %s: got %s (at once: %v), want %s at once", c, codeName(got), r.immediate, codeName(want))
		}
	case exp.wait:
		if r.immediate {
			s.fail("SyncGroup of follower %s answered %s at once; it must wait for the leader", c, codeName(got))
		}
	}
	if exp.valid() {
		s.refresh(req.MemberID, s.clk.Now())
	}
}

func (s *sim) heartbeat(c *client, genOff int32) {
	if c.memberID == "" || c.generation < 0 || c.phase == phJoining || c.phase == phIdle {
		return
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = c.hbV()
	req.Group = c.group
	req.Generation = c.generation + genOff
	req.MemberID = c.memberID
	if req.Version >= 3 {
		req.InstanceID = c.instance
	}
	pre := s.snapLite(req.Group)
	want := pre.refHeartbeat(req)
	c.lastSent = s.clk.Now()
	got := s.c.Heartbeat(req)
	s.stats["heartbeat "+codeName(got)]++
	if got != 0 || genOff != 0 {
		s.tracef("%s heartbeats gen %d: %s", c, req.Generation, codeName(got))
	}
	if got != want {
		s.fail("Heartbeat of %s (group %s gen %d): got %s, Kafka answers %s", c, pre.state, pre.generation, codeName(got), codeName(want))
	}
	if got == 0 || got == kerr.RebalanceInProgress.Code {
		s.refresh(req.MemberID, s.clk.Now())
	}
	if c.phase != phSyncing {
		s.react(c, got)
	}
}

// react is a client's answer to a group error on a heartbeat or commit.
func (s *sim) react(c *client, code int16) {
	switch code {
	case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
		if c.phase == phStable || c.phase == phJoined {
			c.phase = phIdle
		}
	case kerr.UnknownMemberID.Code:
		if c.phase != phJoining && c.phase != phSyncing {
			c.memberID, c.generation = "", -1
			c.phase = phIdle
		}
	case kerr.FencedInstanceID.Code:
		if c.phase != phJoining && c.phase != phSyncing {
			c.phase = phOut
			c.inc++
		}
	}
}

// leave sends a LeaveGroup for c: by member id, or for a static member
// sometimes by instance id alone (as an admin does).
func (s *sim) leave(c *client) {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = c.leaveV()
	req.Group = c.group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = c.memberID
	if req.Version >= 3 {
		lm.InstanceID = c.instance
		if c.instance != nil && s.ch.intn(3) == 0 {
			lm.MemberID = ""
		}
		reason := "test"
		lm.Reason = &reason
		req.Members = []kmsg.LeaveGroupRequestMember{lm}
	} else {
		req.MemberID = c.memberID
	}
	s.tracef("%s leaves v%d (member %q)", c, req.Version, lm.MemberID)
	s.checkLeave(req)
	c.phase = phOut
	c.inc++
	c.memberID, c.generation, c.join, c.sync = "", -1, nil, nil
}

func (s *sim) checkLeave(req *kmsg.LeaveGroupRequest) {
	pre := s.snapLite(req.Group)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	var want []int16
	for _, lm := range leaving {
		id := lm.MemberID
		if id == "" && lm.InstanceID != nil {
			id = pre.static[*lm.InstanceID]
		}
		s.leaving[id] = true
		want = append(want, pre.refLeave(lm))
	}
	resp := s.c.Leave(req)
	if len(resp.Members) != len(want) {
		s.fail("LeaveGroup: %d member answers for %d members", len(resp.Members), len(want))
	}
	for i, m := range resp.Members {
		s.stats["leave "+codeName(m.ErrorCode)]++
		if m.ErrorCode != want[i] {
			s.fail("LeaveGroup of %q: got %s, Kafka answers %s", leaving[i].MemberID, codeName(m.ErrorCode), codeName(want[i]))
		}
	}
	wantTop := int16(0)
	if req.Version < 3 {
		wantTop = want[0]
	}
	if resp.ErrorCode != wantTop {
		s.fail("LeaveGroup v%d: top-level %s, want %s", req.Version, codeName(resp.ErrorCode), codeName(wantTop))
	}
}

// ---- offsets ----

func (s *sim) commit(c *client) {
	if c.memberID == "" {
		return
	}
	s.commitAt(c, c.generation)
}

func (s *sim) commitAt(c *client, generation int32) {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = c.commitV(s.ch)
	req.Group = c.group
	req.Generation = generation
	req.MemberID = c.memberID
	if req.Version >= 7 {
		req.InstanceID = c.instance
	}
	s.fillCommit(req, c.assigned)
	s.tracef("%s commits v%d gen %d", c, req.Version, generation)
	code := s.doCommit(req)
	if code != 0 && code != kerr.CoordinatorNotAvailable.Code {
		s.react(c, code)
	}
}

// fillCommit adds partitions to a commit: the client's own, others, and
// sometimes one that does not exist or metadata that is too large.
func (s *sim) fillCommit(req *kmsg.OffsetCommitRequest, own []int32) {
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = smTopic
	n := 1 + s.ch.intn(3)
	for i := range n {
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		if i < len(own) {
			p.Partition = own[i]
		} else {
			p.Partition = int32(s.ch.intn(smPartitions))
		}
		if slices.ContainsFunc(t.Partitions, func(q kmsg.OffsetCommitRequestTopicPartition) bool { return q.Partition == p.Partition }) {
			continue
		}
		p.Offset = int64(s.ch.intn(1000))
		p.LeaderEpoch = int32(s.ch.intn(3))
		switch s.ch.intn(8) {
		case 0:
			big := strings.Repeat("m", smMaxMeta+1)
			p.Metadata = &big
		case 1:
		default:
			m := "md" + strconv.Itoa(s.ch.intn(10))
			p.Metadata = &m
		}
		p.Timestamp = -1
		if req.Version == 1 && s.ch.intn(2) == 0 {
			p.Timestamp = s.clk.Now().UnixMilli() - int64(s.ch.intn(3))*int64(time.Hour/time.Millisecond)
		}
		t.Partitions = append(t.Partitions, p)
	}
	req.Topics = append(req.Topics, t)
	if s.ch.intn(6) == 0 {
		m := kmsg.NewOffsetCommitRequestTopic()
		m.Topic = smMissing
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset = 1
		m.Partitions = append(m.Partitions, p)
		req.Topics = append(req.Topics, m)
	}
	req.RetentionTimeMillis = -1
	if req.Version >= 2 && req.Version <= 4 && s.ch.intn(2) == 0 {
		req.RetentionTimeMillis = []int64{30 * 60 * 1000, 2 * 3600 * 1000}[s.ch.intn(2)]
	}
}

// doCommit sends an OffsetCommit, checks every partition's code against
// Kafka's and keeps the test's copy of the offsets. It returns the group
// error, if any.
func (s *sim) doCommit(req *kmsg.OffsetCommitRequest) int16 {
	pre := s.snapLite(req.Group)
	groupCode, _ := pre.refCommitGroup(req)
	fails := s.storageFails()
	now := s.clk.Now().UnixMilli()
	resp := s.c.Commit(req)
	if len(resp.Topics) != len(req.Topics) {
		s.fail("OffsetCommit: %d topics answered for %d", len(resp.Topics), len(req.Topics))
	}
	var stored []topicPartition
	for i, t := range req.Topics {
		rt := resp.Topics[i]
		if rt.Topic != t.Topic || len(rt.Partitions) != len(t.Partitions) {
			s.fail("OffsetCommit: topic %d answered as %s with %d partitions", i, rt.Topic, len(rt.Partitions))
		}
		for j, p := range t.Partitions {
			got := rt.Partitions[j].ErrorCode
			want := groupCode
			if want == 0 {
				switch {
				case t.Topic == smMissing:
					want = kerr.UnknownTopicOrPartition.Code
				case p.Metadata != nil && len(*p.Metadata) > smMaxMeta:
					want = kerr.OffsetMetadataTooLarge.Code
				case fails:
					want = kerr.CoordinatorNotAvailable.Code
				}
			} else if t.Topic == smMissing && got == kerr.UnknownTopicOrPartition.Code {
				// Kafka's KafkaApis answers unknown topics before the
				// coordinator validates the group.
				want = got
			}
			s.stats["commit "+codeName(got)]++
			if got != want {
				s.fail("OffsetCommit v%d (group %s gen %d, request gen %d member %q) of %s-%d: got %s, Kafka answers %s",
					req.Version, pre.state, pre.generation, req.Generation, req.MemberID, t.Topic, p.Partition, codeName(got), codeName(want))
			}
			if got == 0 {
				tp := topicPartition{t.Topic, p.Partition}
				if s.offsets[req.Group] == nil {
					s.offsets[req.Group] = map[topicPartition]committed{}
				}
				s.offsets[req.Group][tp] = committedFor(req, p, now)
				stored = append(stored, tp)
			}
		}
	}
	if groupCode == 0 && req.MemberID != "" && pre.members[req.MemberID] != nil {
		s.refresh(req.MemberID, s.clk.Now())
	}
	s.tracef("  commit: group code %s, stored %v", codeName(groupCode), stored)
	return groupCode
}

// adminCommit is a commit without a generation (a simple consumer or an
// admin tool), or one to a group that may not exist.
func (s *sim) adminCommit() {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = int16(s.ch.intn(10))
	req.Group = s.groups[s.ch.intn(len(s.groups))]
	if s.ch.intn(4) == 0 {
		req.Group = "solo"
	}
	req.Generation = -1
	if s.ch.intn(4) == 0 {
		req.Generation = int32(s.ch.intn(3))
	}
	s.fillCommit(req, nil)
	s.tracef("admin commits v%d to %s gen %d", req.Version, req.Group, req.Generation)
	s.doCommit(req)
}

func (s *sim) fetch(group string, all bool) {
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if !all {
		t := kmsg.NewOffsetFetchRequestGroupTopic()
		t.Topic = smTopic
		for p := range smPartitions {
			t.Partitions = append(t.Partitions, int32(p))
		}
		topics = append(topics, t)
	}
	got, code := s.c.FetchOffsets(group, topics)
	if code != 0 {
		s.fail("OffsetFetch of %s: %s", group, codeName(code))
	}
	want := s.offsets[group]
	seen := 0
	for _, t := range got {
		for _, p := range t.Partitions {
			o, ok := want[topicPartition{t.Topic, p.Partition}]
			if !ok {
				if p.Offset != -1 {
					s.fail("OffsetFetch of %s: %s-%d at %d, never committed", group, t.Topic, p.Partition, p.Offset)
				}
				continue
			}
			seen++
			if p.Offset != o.offset || p.LeaderEpoch != o.leaderEpoch || p.Metadata == nil || *p.Metadata != o.metadata {
				s.fail("OffsetFetch of %s: %s-%d = %d/%d/%q, committed %+v", group, t.Topic, p.Partition, p.Offset, p.LeaderEpoch, deref(p.Metadata), o)
			}
		}
	}
	wantSeen := len(want)
	if !all {
		wantSeen = 0
		for tp := range want {
			if tp.topic == smTopic {
				wantSeen++
			}
		}
	}
	if seen != wantSeen {
		s.fail("OffsetFetch of %s (all %v): %d offsets, %d committed", group, all, seen, wantSeen)
	}
}

func (s *sim) describe(group string) {
	pre := s.snap(group)
	v := int16(s.ch.intn(7))
	d := s.c.Describe(group, v)
	if !pre.exists {
		wantCode := int16(0)
		if v >= 6 {
			wantCode = kerr.GroupIDNotFound.Code
		}
		if d.State != "Dead" || d.ErrorCode != wantCode {
			s.fail("DescribeGroups v%d of unknown %s: %s %s", v, group, d.State, codeName(d.ErrorCode))
		}
		return
	}
	if d.ErrorCode != 0 || d.State != pre.state.String() || d.ProtocolType != pre.protocolType {
		s.fail("DescribeGroups of %s: %s %s %q, group is %s %q", group, codeName(d.ErrorCode), d.State, d.ProtocolType, pre.state, pre.protocolType)
	}
	var ids []string
	for _, m := range d.Members {
		ids = append(ids, m.MemberID)
		pm := pre.members[m.MemberID]
		if pre.state == Stable && pm != nil && string(m.MemberAssignment) != string(pm.assignment) {
			s.fail("DescribeGroups of %s: member %s assignment differs", group, m.MemberID)
		}
	}
	if !slices.Equal(ids, pre.order) {
		s.fail("DescribeGroups of %s: members %v, group has %v", group, ids, pre.order)
	}
}

func (s *sim) observe() {
	group := s.groups[s.ch.intn(len(s.groups))]
	if s.ch.intn(5) == 0 {
		group = "solo"
	}
	if s.ch.intn(2) == 0 {
		s.describe(group)
	} else {
		s.fetch(group, s.ch.intn(2) == 0)
	}
}

// expire runs ExpireOffsets and checks that exactly the offsets Kafka
// would drop are gone.
func (s *sim) expire() {
	pre := snapshotAll(s.c)
	now := s.clk.Now().UnixMilli()
	s.st.mu.Lock()
	failing, failN := s.st.failing, s.st.failN
	s.st.mu.Unlock()
	type outcome struct {
		gone    []topicPartition
		deleted bool
	}
	want := map[string]outcome{}
	for _, id := range slices.Sorted(maps.Keys(pre)) {
		gone, deleted := pre[id].refExpire(now, smRetention)
		if len(gone) == 0 && !deleted {
			continue
		}
		if failing || failN > 0 {
			if failN > 0 {
				failN--
			}
			continue // the write fails: nothing changes
		}
		want[id] = outcome{gone, deleted}
	}
	s.stats["expire groups"] += len(want)
	s.tracef("expire offsets: %v", want)
	s.c.ExpireOffsets()
	for id, o := range want {
		for _, tp := range o.gone {
			delete(s.offsets[id], tp)
		}
		if o.deleted {
			if s.snap(id).exists {
				s.fail("ExpireOffsets kept group %s, empty and without offsets", id)
			}
			delete(s.offsets, id)
		}
	}
}

func (s *sim) deleteGroup() {
	id := s.groups[s.ch.intn(len(s.groups))]
	if s.ch.intn(4) == 0 {
		id = "solo"
	}
	pre := s.snap(id)
	fails := s.storageFails()
	got := s.c.DeleteGroup(id)
	s.stats["delete group "+codeName(got)]++
	s.tracef("delete group %s (%s): %s", id, pre.state, codeName(got))
	var want int16
	switch {
	case !pre.exists:
		want = kerr.GroupIDNotFound.Code
	case pre.state != Empty:
		want = kerr.NonEmptyGroup.Code
	case len(pre.pending) > 0 && got == kerr.NonEmptyGroup.Code:
		// Kafka deletes an Empty group even with KIP-394 ids out; the
		// coordinator keeps it. See the report.
		want = got
	case fails:
		want = kerr.CoordinatorNotAvailable.Code
	}
	if got != want {
		s.fail("DeleteGroups of %s (%s): got %s, Kafka answers %s", id, pre.state, codeName(got), codeName(want))
	}
	if got == 0 {
		delete(s.offsets, id)
		if s.snap(id).exists {
			s.fail("group %s still there after DeleteGroups", id)
		}
	}
}

func (s *sim) storageFault() {
	switch s.ch.intn(3) {
	case 0:
		s.st.setFailing(true)
		s.tracef("storage fails")
	default:
		n := 1 + s.ch.intn(2)
		s.st.failNext(n)
		s.tracef("storage fails the next %d appends", n)
	}
}

// everyoneLeaves makes every member of a group leave; the group must end
// Empty.
func (s *sim) everyoneLeaves(group string) {
	s.tracef("everyone leaves %s", group)
	for _, c := range s.clients {
		if c.group == group && c.phase != phOut && (c.memberID != "" || c.instance != nil) {
			s.leave(c)
		}
	}
	// Members the clients lost track of (crashed processes, joins still
	// waiting for their member id), and member ids handed out, leave by
	// an admin's batch.
	pre := s.snap(group)
	ids := append(slices.Clone(pre.order), slices.Sorted(maps.Keys(pre.pending))...)
	if len(ids) > 0 {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = 5
		req.Group = group
		for _, id := range ids {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = id
			req.Members = append(req.Members, lm)
		}
		s.checkLeave(req)
	}
	for _, c := range s.clients {
		if c.group == group {
			c.phase = phOut
			c.inc++
			c.memberID, c.generation, c.join, c.sync = "", -1, nil, nil
		}
	}
	s.settle()
	// The initial rebalance delay runs its course.
	for i := 0; s.snap(group).state == PreparingRebalance && i < 10; i++ {
		s.clk.Advance(s.cfg.InitialRebalanceDelay / 2)
		s.settle()
	}
	post := s.snap(group)
	if post.exists && (post.state != Empty || len(post.members) > 0 || len(post.pending) > 0 || post.leader != "" || post.protocol != "") {
		s.fail("after everyone left, group %s is %s with %d members, %d pending, leader %q, protocol %q",
			group, post.state, len(post.members), len(post.pending), post.leader, post.protocol)
	}
}

// ---- load ----

// loadCheck replays the storage into a new coordinator and compares it
// with the live one.
func (s *sim) loadCheck() {
	live := snapshotAll(s.c)
	cfg := s.config()
	cfg.Clock = s.clk.view(1000 + s.epoch)
	lc := s.replay.load(s.st, cfg)
	loaded := snapshotAll(lc)
	lc.Close()
	if n := s.clk.pending(1000 + s.epoch); n != 0 {
		s.fail("a loaded coordinator left %d timers after Close", n)
	}
	s.compareLoaded(live, loaded)
	s.stats["load check"]++
	s.tracef("load check: %d groups", len(loaded))
}

func (s *sim) compareLoaded(live, loaded map[string]*groupSnap) {
	s.st.mu.Lock()
	storeFailed := s.st.failed > 0
	s.st.mu.Unlock()
	for id := range loaded {
		if live[id] == nil {
			s.fail("Load found group %s, which the coordinator does not have", id)
		}
	}
	for id, g := range live {
		l := loaded[id]
		var lo map[topicPartition]committed
		if l != nil {
			lo = l.offsets
		}
		if !maps.Equal(g.offsets, lo) && (len(g.offsets) > 0 || len(lo) > 0) {
			s.fail("Load of %s: offsets %v, the coordinator has %v", id, lo, g.offsets)
		}
		switch {
		case g.state == Stable:
			if l == nil || l.state != Stable || l.generation != g.generation || l.protocolType != g.protocolType ||
				l.protocol != g.protocol || l.leader != g.leader || !slices.Equal(l.order, g.order) {
				desc := "nothing"
				if l != nil {
					desc = fmt.Sprintf("%s gen %d %s/%s leader %s members %v", l.state, l.generation, l.protocolType, l.protocol, l.leader, l.order)
				}
				s.fail("Load of Stable %s (gen %d %s/%s leader %s members %v) gave %s", id, g.generation, g.protocolType, g.protocol, g.leader, g.order, desc)
			}
			for mid, m := range g.members {
				lm := l.members[mid]
				if deref(lm.instanceID) != deref(m.instanceID) || lm.session != m.session || lm.rebalance != m.rebalance ||
					string(lm.assignment) != string(m.assignment) || lm.clientID != m.clientID || lm.clientHost != m.clientHost ||
					string(l.metadata(lm, l.protocol)) != string(g.metadata(m, g.protocol)) {
					s.fail("Load of %s: member %s differs: %+v, live %+v", id, mid, lm, m)
				}
			}
		case g.state == Empty && g.generation > 0 && !storeFailed:
			if l == nil || l.state != Empty || l.generation != g.generation || l.protocolType != g.protocolType {
				s.fail("Load of Empty %s gen %d: got %+v", id, g.generation, l)
			}
		case l != nil && !storeFailed:
			if l.generation > g.generation {
				s.fail("Load of %s: generation %d ahead of the coordinator's %d", id, l.generation, g.generation)
			}
		}
	}
}

// failover closes the coordinator, as when the broker stops, and goes on
// with one loaded from the storage.
func (s *sim) failover() {
	s.stats["failover"]++
	s.tracef("failover")
	live := snapshotAll(s.c)
	s.c.Close()
	s.processEvents()
	if n := s.clk.pending(s.epoch); n != 0 {
		s.fail("%d timers left after Close", n)
	}
	for _, r := range s.reqs {
		if r.epoch == s.epoch && r.calls != 1 {
			s.fail("%s %d of %s answered %d times by Close", r.kind, r.id, r.c.clientID, r.calls)
		}
	}
	s.epoch++
	s.c = s.replay.load(s.st, s.config())
	loaded := snapshotAll(s.c)
	s.compareLoaded(live, loaded)
	clear(s.tracks)
	clear(s.deadline)
	clear(s.pendingDL) // KIP-394 member ids are not persisted, in Kafka either
	now := s.clk.Now()
	for _, g := range loaded {
		for id := range g.members {
			s.refresh(id, now)
		}
	}
}

// resign unloads every partition, as when other brokers become their
// leaders, then loads them again from the storage, as when this one leads
// them again: the same coordinator goes on.
func (s *sim) resign() {
	s.stats["resign"]++
	s.tracef("resign and lead again")
	live := snapshotAll(s.c)
	for p := range s.c.Partitions() {
		s.c.Unload(p)
	}
	s.processEvents()
	if n := s.clk.pending(s.epoch); n != 1 {
		s.fail("%d timers left after every partition was unloaded, want the retention check's", n)
	}
	for _, r := range s.reqs {
		if r.epoch == s.epoch && r.calls != 1 {
			s.fail("%s %d of %s answered %d times by the unload", r.kind, r.id, r.c.clientID, r.calls)
		}
	}
	if n := s.c.Count(); n != 0 {
		s.fail("%d groups left after every partition was unloaded", n)
	}
	s.replay.loadInto(s.c, s.st)
	loaded := snapshotAll(s.c)
	s.compareLoaded(live, loaded)
	clear(s.tracks)
	clear(s.deadline)
	clear(s.pendingDL)
	now := s.clk.Now()
	for _, g := range loaded {
		for id := range g.members {
			s.refresh(id, now)
		}
	}
}

// ---- invariants ----

func (s *sim) check() {
	now := s.clk.Now()
	waiting := 0
	for _, r := range s.reqs[s.firstOpen:] {
		if r.epoch == s.epoch && r.calls == 0 {
			waiting++
		}
	}
	for s.firstOpen < len(s.reqs) && s.reqs[s.firstOpen].calls > 0 {
		s.firstOpen++
	}
	present := map[string]bool{}
	parked := 0
	for _, g := range s.c.groupsSnapshot() {
		present[g.id] = true
		parked += s.checkGroup(g, now)
	}
	for _, id := range slices.Sorted(maps.Keys(s.tracks)) {
		if !present[id] {
			delete(s.tracks, id) // a later group of that id starts over
		}
	}
	for id, o := range s.offsets {
		if !present[id] && len(o) > 0 {
			s.fail("group %s is gone with its offsets %v", id, o)
		}
	}
	if parked != waiting {
		s.fail("%d requests unanswered but %d waiting in groups: a callback was lost", waiting, parked)
	}
	for id, dl := range s.pendingDL {
		if !now.Before(dl) {
			delete(s.pendingDL, id)
		}
	}
}

// lazyWhere names a group in a failure message, formatted only then.
type lazyWhere struct{ g *group }

func (w lazyWhere) String() string {
	return fmt.Sprintf("group %s (%s gen %d)", w.g.id, w.g.state, w.g.generation)
}

// checkGroup checks one group's invariants, reading it in place under its
// lock, and returns how many requests wait in it.
func (s *sim) checkGroup(g *group, now time.Time) (parked int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := g.id
	where := lazyWhere{g}
	if g.state == Dead {
		s.fail("%s: a Dead group is still registered", where)
	}
	tr := s.track(id)
	if g.generation < tr.maxGen {
		s.fail("%s: generation went back from %d", where, tr.maxGen)
	}
	tr.maxGen = g.generation
	// The model has no record order (committed.order).
	sameOffset := func(a, b committed) bool { a.order, b.order = 0, 0; return a == b }
	if !maps.EqualFunc(g.offsets, s.offsets[id], sameOffset) && (len(g.offsets) > 0 || len(s.offsets[id]) > 0) {
		s.fail("%s: offsets %v, committed %v", where, g.offsets, s.offsets[id])
	}
	// Membership bookkeeping.
	if len(g.order) != len(g.members) {
		s.fail("%s: order %v but %d members", where, g.order, len(g.members))
	}
	for _, mid := range g.order {
		m := g.members[mid]
		if m == nil || m.id != mid {
			s.fail("%s: %s in order, not a member", where, mid)
		}
		if m.instanceID != nil && g.static[*m.instanceID] != mid {
			s.fail("%s: static member %s not mapped from %s", where, mid, *m.instanceID)
		}
		if m.join != nil {
			parked++
			if g.state != PreparingRebalance {
				s.fail("%s: %s waits in JoinGroup", where, mid)
			}
		}
		if m.sync != nil {
			parked++
			if g.state != CompletingRebalance {
				s.fail("%s: %s waits in SyncGroup", where, mid)
			}
		}
		// Session: a member that is not waiting is gone once its
		// session timeout passed since the coordinator last heard from
		// it (Kafka's heartbeat expiry).
		if m.join == nil && m.sync == nil {
			if dl, ok := s.deadline[mid]; !ok {
				s.refresh(mid, now)
			} else if !now.Before(dl) {
				s.fail("%s: member %s is still there at its session deadline +%v", where, mid, dl.Sub(s.start))
			}
		}
	}
	for inst, mid := range g.static {
		if m := g.members[mid]; m == nil || deref(m.instanceID) != inst {
			s.fail("%s: instance %s maps to %s, not its member", where, inst, mid)
		}
	}
	for pid := range g.pending {
		if dl, ok := s.pendingDL[pid]; ok && !now.Before(dl) {
			s.fail("%s: member id %s is still pending at +%v, past its session", where, pid, dl.Sub(s.start))
		}
	}
	if len(g.members) > 0 && g.members[g.leader] == nil {
		s.fail("%s: leader %q is not a member", where, g.leader)
	}
	if len(g.members) == 0 && g.leader != "" {
		s.fail("%s: leader %q without members", where, g.leader)
	}
	switch g.state {
	case Empty:
		if len(g.members) > 0 || g.protocol != "" {
			s.fail("%s: %d members, protocol %q", where, len(g.members), g.protocol)
		}
	case PreparingRebalance:
		if limit := 60*time.Second + s.cfg.InitialRebalanceDelay; now.Sub(g.stateTime) > limit {
			s.fail("%s: rebalancing for %v", where, now.Sub(g.stateTime))
		}
	case CompletingRebalance:
		if now.Sub(g.stateTime) > 60*time.Second {
			s.fail("%s: waiting for SyncGroup for %v", where, now.Sub(g.stateTime))
		}
		for mid := range g.pendingSync {
			if g.members[mid] == nil {
				s.fail("%s: %s awaited in SyncGroup, not a member", where, mid)
			}
		}
	case Stable:
		if g.protocol == "" {
			s.fail("%s: Stable without a protocol", where)
		}
		// The assignments only change with the generation or the
		// members (a static member's new id).
		sig := strconv.Itoa(int(g.generation)) + strings.Join(g.order, ",")
		if tr.covered != sig {
			s.stats[fmt.Sprintf("stable with %d members", min(len(g.members), 4))]++
			s.checkCoverage(where, g)
			tr.covered = sig
		}
	}
	return parked
}

// checkCoverage: in a Stable group the members' assignments, as the
// leader made them from the members it was given, hold every partition
// once. The caller holds g.mu.
func (s *sim) checkCoverage(where fmt.Stringer, g *group) {
	seen := map[int32]string{}
	for _, mid := range g.order {
		m := g.members[mid]
		if m.assignment == nil {
			s.fail("%s: member %s has no assignment", where, mid)
		}
		parts, err := decodeAssignment(m.assignment)
		if err != nil {
			s.fail("%s: member %s: assignment %v", where, mid, err)
		}
		for _, p := range parts {
			if other, ok := seen[p]; ok {
				s.fail("%s: partition %d assigned to %s and %s", where, p, other, mid)
			}
			seen[p] = mid
		}
	}
	if len(seen) != smPartitions {
		s.fail("%s: %d of %d partitions assigned: %v", where, len(seen), smPartitions, seen)
	}
}

// ---- entry points ----

func TestStateMachine(t *testing.T) {
	seeds, steps := 40, 300
	if testing.Short() {
		seeds = 10
	}
	if v := os.Getenv("STATEMACHINE_STEPS"); v != "" {
		steps, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("STATEMACHINE_SEEDS"); v != "" {
		seeds, _ = strconv.Atoi(v)
	}
	first := 0
	if v := os.Getenv("STATEMACHINE_SEED"); v != "" {
		first, _ = strconv.Atoi(v)
		seeds = 1
	}
	total := map[string]int{}
	for seed := first; seed < first+seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			for k, v := range runSim(t, randChooser{rand.New(rand.NewPCG(uint64(seed), 0x5eed))}, steps) {
				total[k] += v
			}
		})
	}
	if testing.Verbose() {
		var lines []string
		for _, k := range slices.Sorted(maps.Keys(total)) {
			lines = append(lines, fmt.Sprintf("%-45s %d", k, total[k]))
		}
		t.Logf("exercised:\n%s", strings.Join(lines, "\n"))
	}
}

func FuzzStateMachine(f *testing.F) {
	for seed := range 4 {
		r := rand.New(rand.NewPCG(uint64(seed), 0xf022))
		b := make([]byte, 600)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runSim(t, &byteChooser{data: data}, 300)
	})
}
