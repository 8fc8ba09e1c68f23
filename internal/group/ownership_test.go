package group

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
)

// Partition ownership: a coordinator serves the groups of the partitions of
// __consumer_offsets it loaded, as Kafka's does those it leads
// (GroupMetadataManager's ownedPartitions and loadingPartitions).

const ownTag = 7 // the clock tag of the coordinator under test

// ownHarness is a harness over real logs (so that a partition can be
// unloaded and loaded again) whose coordinator owns every partition.
func ownHarness(t *testing.T) (*harness, *logStorage) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	t.Cleanup(st.close)
	clk := newFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	h := &harness{t: t, clk: clk}
	h.cfg = Config{Partitions: 3, Storage: st, Clock: clk.view(ownTag), Topics: storeTopics}
	h.c = New(h.cfg)
	t.Cleanup(h.c.Close)
	for p := range h.c.Partitions() {
		if err := h.c.Load(p, st.log(p)); err != nil {
			t.Fatal(err)
		}
	}
	return h, st
}

// groupIn returns a group id of partition p (of 3), with the prefix.
func groupIn(prefix string, p int32) string {
	for i := 0; ; i++ {
		if id := fmt.Sprintf("%s%d", prefix, i); PartitionFor(id, 3) == p {
			return id
		}
	}
}

// apiCodes calls every group API for group (member and generation as
// given) and returns each one's error code by API name.
func (h *harness) apiCodes(group, member string, gen int32) map[string]int16 {
	h.t.Helper()
	c := h.c
	out := map[string]int16{}
	j := h.join(joinRequest(group, member, 5, nil))
	if j.calls != 1 {
		h.t.Fatalf("JoinGroup of %s answered %d times within the call", group, j.calls)
	}
	out["JoinGroup"] = j.resp.ErrorCode
	jn := h.join(joinRequest(group, "", 5, nil))
	if jn.calls != 1 {
		h.t.Fatalf("JoinGroup (new member) of %s answered %d times within the call", group, jn.calls)
	}
	out["JoinGroup new member"] = jn.resp.ErrorCode
	s := h.sync(group, member, gen, nil)
	if s.calls != 1 {
		h.t.Fatalf("SyncGroup of %s answered %d times within the call", group, s.calls)
	}
	out["SyncGroup"] = s.resp.ErrorCode
	out["Heartbeat"] = h.heartbeat(group, member, gen, nil)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 3
	leave.Group = group
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: member}}
	out["LeaveGroup"] = c.Leave(leave).ErrorCode
	out["OffsetCommit"] = h.commit(group, member, gen, nil, 8)
	out["OffsetCommit simple"] = h.commit(group, "", -1, nil, 8)
	_, out["OffsetFetch"] = c.FetchOffsets(group, nil)
	out["DescribeGroups"] = c.Describe(group, 5).ErrorCode
	out["DeleteGroups"] = c.DeleteGroup(group)
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = group
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	out["OffsetDelete"] = c.DeleteOffsets(del).ErrorCode
	out["ConsumerGroupHeartbeat"] = consumerHB(h.t, c, group, "cm", 0, nil).ErrorCode
	out["ConsumerGroupDescribe"] = c.DescribeConsumer(group).ErrorCode
	return out
}

func listed(t *testing.T, c *Coordinator) ([]string, error) {
	t.Helper()
	gs, err := c.List(nil, nil)
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.Group)
	}
	slices.Sort(ids)
	return ids, err
}

// TestNotCoordinatorOfPartitionNotLoaded: once a partition is unloaded,
// every API answers NOT_COORDINATOR for its groups (known or not), and
// creates nothing; COORDINATOR_LOAD_IN_PROGRESS while it loads. Groups of
// other partitions are served all along; ListGroups lists only them.
func TestNotCoordinatorOfPartitionNotLoaded(t *testing.T) {
	h, st := ownHarness(t)
	gone, kept := groupIn("gone", 1), groupIn("kept", 2)
	ids, gen := h.stable(gone, nil, nil)
	wantCode(t, "commit", h.commit(gone, ids[0], gen, nil, 8), 0)
	h.stable(kept, nil)
	if got, err := listed(t, h.c); err != nil || !slices.Equal(got, []string{gone, kept}) {
		t.Fatalf("ListGroups: %v %v", got, err)
	}
	records := countRecords(t, st.log(1))

	h.c.Unload(1)
	if h.c.Loaded(1) || !h.c.Loaded(2) {
		t.Fatalf("Loaded: 1 %v, 2 %v", h.c.Loaded(1), h.c.Loaded(2))
	}
	for _, g := range []string{gone, groupIn("never", 1)} {
		for api, code := range h.apiCodes(g, ids[1], gen) {
			wantCode(t, g+" "+api, code, kerr.NotCoordinator.Code)
		}
	}
	if got, err := listed(t, h.c); err != nil || !slices.Equal(got, []string{kept}) {
		t.Fatalf("ListGroups after the unload: %v %v", got, err)
	}
	if n := countRecords(t, st.log(1)); n != records {
		t.Fatalf("the unloaded partition took %d records", n-records)
	}
	if h.c.Count() != 1 {
		t.Fatalf("%d groups in memory, want 1", h.c.Count())
	}
	// The other partition's group carries on.
	wantCode(t, "heartbeat of the kept group", h.heartbeat(kept, h.describeMembers(kept)[0], 1, nil), 0)

	// While partition 1 loads (as Load marks it before it replays).
	h.c.mu.Lock()
	h.c.parts[1] = partLoading
	h.c.mu.Unlock()
	for api, code := range h.apiCodes(gone, ids[1], gen) {
		wantCode(t, "loading: "+api, code, kerr.CoordinatorLoadInProgress.Code)
	}
	got, err := listed(t, h.c)
	if codeFor(err) != kerr.CoordinatorLoadInProgress.Code || !slices.Equal(got, []string{kept}) {
		t.Fatalf("ListGroups while loading: %v %v", got, err)
	}
	h.c.mu.Lock()
	h.c.parts[1] = partNotOwned
	h.c.mu.Unlock()

	// Loaded again: the group is back, from the log.
	if err := h.c.Load(1, st.log(1)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "heartbeat after the load", h.heartbeat(gone, ids[1], gen, nil), 0)
	if got, err := listed(t, h.c); err != nil || !slices.Equal(got, []string{gone, kept}) {
		t.Fatalf("ListGroups after the load: %v %v", got, err)
	}
}

func (h *harness) describeMembers(group string) []string {
	var ids []string
	for _, m := range h.c.Describe(group, 5).Members {
		ids = append(ids, m.MemberID)
	}
	return ids
}

// TestUnloadAnswersWaitingMembers: members parked in JoinGroup and
// SyncGroup get NOT_COORDINATOR when the partition is unloaded (the
// client then finds the new coordinator), once; the groups' timers stop
// and nothing more is written, however long the clock runs.
func TestUnloadAnswersWaitingMembers(t *testing.T) {
	h, st := ownHarness(t)
	joining, syncing, consumer := groupIn("joining", 0), groupIn("syncing", 0), groupIn("consumer", 0)
	ids, gen := h.stable(joining, nil, nil)
	// The leader rejoins: the join phase waits for the other member.
	j := h.join(joinRequest(joining, ids[0], 5, nil))
	// Two members joined; the follower asks for its assignment, which
	// waits for the leader's SyncGroup.
	calls := []*joinCall{h.join(joinRequest(syncing, "", 3, nil)), h.join(joinRequest(syncing, "", 3, nil))}
	h.awaitJoins(calls...)
	follower := calls[0].resp
	if follower.MemberID == follower.LeaderID {
		follower = calls[1].resp
	}
	s := h.sync(syncing, follower.MemberID, follower.Generation, nil)
	// A KIP-848 member, with its session timer.
	if r := consumerHB(t, h.c, consumer, "m", 0, []int32{}); r.ErrorCode != 0 {
		t.Fatalf("ConsumerGroupHeartbeat: %s", codeName(r.ErrorCode))
	}
	if j.calls != 0 || s.calls != 0 {
		t.Fatalf("answered before the unload: join %d sync %d", j.calls, s.calls)
	}
	records := countRecords(t, st.log(0))

	h.c.Unload(0)
	if j.calls != 1 || j.resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked JoinGroup: %d answers, %+v", j.calls, j.resp)
	}
	if s.calls != 1 || s.resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("parked SyncGroup: %d answers, %+v", s.calls, s.resp)
	}
	// Only the retention check's timer is left.
	if n := h.clk.pending(ownTag); n != 1 {
		t.Fatalf("%d timers left after the unload, want 1", n)
	}
	h.clk.Advance(time.Hour)
	if j.calls != 1 || s.calls != 1 {
		t.Fatalf("answered again: join %d sync %d", j.calls, s.calls)
	}
	if n := countRecords(t, st.log(0)); n != records {
		t.Fatalf("the unloaded partition took %d records", n-records)
	}
	wantCode(t, "heartbeat", h.heartbeat(joining, ids[1], gen, nil), kerr.NotCoordinator.Code)
	h.c.Unload(0) // again: nothing to do
}

// TestUnloadLoadRestoresGroups: a partition unloaded and loaded again
// brings back its groups from the log: classic groups with their
// generation, members and assignments, KIP-848 groups with their epochs,
// and every committed offset.
func TestUnloadLoadRestoresGroups(t *testing.T) {
	h, st := ownHarness(t)
	classic, consumer, simple := groupIn("classic", 2), groupIn("consumer", 2), groupIn("simple", 2)
	ids, gen := h.stable(classic, nil, nil)
	wantCode(t, "commit", h.commit(classic, ids[1], gen, nil, 8), 0)
	a := consumerHB(t, h.c, consumer, "a", 0, []int32{})
	if a.ErrorCode != 0 {
		t.Fatalf("ConsumerGroupHeartbeat: %s", codeName(a.ErrorCode))
	}
	a = consumerHB(t, h.c, consumer, "a", a.MemberEpoch, assigned(a))
	wantCode(t, "simple commit", h.commit(simple, "", -1, nil, 8), 0)
	req := commitReq(consumer, 42, 4)
	req.MemberID, req.Generation = "a", a.MemberEpoch
	if r := h.c.Commit(req); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit of the consumer group: %+v", r.Topics)
	}
	before := snapshotAll(h.c)
	describe := h.c.DescribeConsumer(consumer)

	h.c.Unload(2)
	if h.c.Count() != 0 {
		t.Fatalf("%d groups left in memory", h.c.Count())
	}
	if err := h.c.Load(2, st.log(2)); err != nil {
		t.Fatal(err)
	}
	after := snapshotAll(h.c)
	if !slices.Equal(slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before))) {
		t.Fatalf("groups %v, before the unload %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
	}
	for id, b := range before {
		l := after[id]
		if l.state != b.state || l.generation != b.generation || l.protocolType != b.protocolType || l.protocol != b.protocol ||
			l.leader != b.leader || !slices.Equal(l.order, b.order) || !maps.Equal(l.offsets, b.offsets) {
			t.Errorf("group %s: loaded %+v, before %+v", id, l, b)
		}
		for mid, m := range b.members {
			if lm := l.members[mid]; lm == nil || string(lm.assignment) != string(m.assignment) || lm.session != m.session {
				t.Errorf("group %s member %s: loaded %+v, before %+v", id, mid, lm, m)
			}
		}
	}
	d := h.c.DescribeConsumer(consumer)
	if d.Epoch != describe.Epoch || d.AssignmentEpoch != describe.AssignmentEpoch || len(d.Members) != 1 ||
		d.Members[0].MemberEpoch != describe.Members[0].MemberEpoch || !slices.Equal(flat(d.Members[0].Assignment), flat(describe.Members[0].Assignment)) {
		t.Fatalf("ConsumerGroupDescribe: %+v, before %+v", d, describe)
	}
	// The members carry on where they were.
	wantCode(t, "heartbeat", h.heartbeat(classic, ids[0], gen, nil), 0)
	if r := consumerHB(t, h.c, consumer, "a", a.MemberEpoch, nil); r.ErrorCode != 0 || r.MemberEpoch != a.MemberEpoch {
		t.Fatalf("ConsumerGroupHeartbeat after the load: %s epoch %d, want %d", codeName(r.ErrorCode), r.MemberEpoch, a.MemberEpoch)
	}
	topics, code := h.c.FetchOffsets(classic, nil)
	if code != 0 || len(topics) != 1 || topics[0].Partitions[0].Offset != 10 {
		t.Fatalf("OffsetFetch: %s %+v", codeName(code), topics)
	}
}

// TestLoadWhileServing loads and unloads one partition again and again
// while other goroutines commit and fetch offsets of groups of the other
// partitions, which must never see an error (run with -race), and fetch
// those of the moving partition, which get them or a retriable error.
func TestLoadWhileServing(t *testing.T) {
	h, st := ownHarness(t)
	moving := groupIn("moving", 0)
	wantCode(t, "commit", h.commit(moving, "", -1, nil, 8), 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := int32(1); p < 3; p++ {
		id := groupIn("busy", p)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp := h.c.Commit(commitReq(id, int64(i), 2))
				for _, rp := range resp.Topics[0].Partitions {
					if rp.ErrorCode != 0 {
						t.Errorf("commit of %s: %s", id, codeName(rp.ErrorCode))
						return
					}
				}
				if _, code := h.c.FetchOffsets(id, nil); code != 0 {
					t.Errorf("fetch of %s: %s", id, codeName(code))
					return
				}
			}
		})
	}
	// Requests for the moving partition's group meanwhile get its
	// offsets or a retriable error.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			topics, code := h.c.FetchOffsets(moving, nil)
			switch {
			case code == 0 && len(topics) != 1:
				t.Errorf("fetch of the moving group: %+v", topics)
				return
			case code != 0 && code != kerr.NotCoordinator.Code && code != kerr.CoordinatorLoadInProgress.Code:
				t.Errorf("fetch of the moving group: %s", codeName(code))
				return
			}
		}
	})
	for range 50 {
		h.c.Unload(0)
		if err := h.c.Load(0, st.log(0)); err != nil {
			t.Error(err)
			break
		}
		if topics, code := h.c.FetchOffsets(moving, nil); code != 0 || len(topics) != 1 {
			t.Errorf("fetch of the reloaded group: %s %+v", codeName(code), topics)
			break
		}
	}
	close(stop)
	wg.Wait()
}
