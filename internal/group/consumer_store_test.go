package group

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/wire"
)

// staticTopics resolves a fixed set of topics.
type staticTopics map[string]TopicInfo

func (s staticTopics) TopicByName(name string) (TopicInfo, bool) { t, ok := s[name]; return t, ok }
func (s staticTopics) TopicByID(id [16]byte) (TopicInfo, bool) {
	for _, t := range s {
		if t.ID == id {
			return t, true
		}
	}
	return TopicInfo{}, false
}
func (s staticTopics) AllTopics() []TopicInfo { return slices.Collect(maps.Values(s)) }

var storeTopics = staticTopics{"t": {Name: "t", ID: [16]byte{1, 2, 3}, Partitions: 4}}

// consumerHB sends one KIP-848 heartbeat; owned nil leaves Topics out.
func consumerHB(t *testing.T, c *Coordinator, group, member string, epoch int32, owned []int32) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"t"}
		inst := "instance-" + member
		req.InstanceID = &inst
	}
	if owned != nil {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: storeTopics["t"].ID, Partitions: owned}}
		if epoch == 0 {
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
	}
	return c.ConsumerHeartbeat(req, Client{ID: "client-" + member, Host: "10.0.0.1"})
}

func assigned(resp *kmsg.ConsumerGroupHeartbeatResponse) []int32 {
	var ps []int32
	if resp.Assignment != nil {
		for _, at := range resp.Assignment.Topics {
			ps = append(ps, at.Partitions...)
		}
	}
	slices.Sort(ps)
	return ps
}

func flat(a kmsg.Assignment) []int32 {
	var ps []int32
	for _, tp := range a.TopicPartitions {
		ps = append(ps, tp.Partitions...)
	}
	return ps
}

// countRecords counts the records of a log.
func countRecords(t *testing.T, l *log.Log) int {
	t.Helper()
	var n int
	if err := l.Scan(0, func(b record.Batch) error { n += int(b.RecordCount()); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsumerGroupRecordsReplay drives a KIP-848 group to a state with a
// revocation pending, restarts the coordinator on the same log (after a
// compaction, too), and checks that ConsumerGroupDescribe is the same and
// the members carry on with their epochs; then that the group's deletion
// tombstones every record.
func TestConsumerGroupRecordsReplay(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	cfg := Config{Partitions: 1, Storage: st, Topics: storeTopics, Clock: clock, CompactAfterRecords: 1 << 20}
	c := newOwning(cfg)

	a := consumerHB(t, c, "g", "a", 0, []int32{})
	if a.ErrorCode != 0 || !slices.Equal(assigned(a), []int32{0, 1, 2, 3}) {
		t.Fatalf("a joins: %+v", a)
	}
	consumerHB(t, c, "g", "a", a.MemberEpoch, []int32{0, 1, 2, 3})
	b := consumerHB(t, c, "g", "b", 0, []int32{})
	if b.ErrorCode != 0 || len(assigned(b)) != 0 {
		t.Fatalf("b joins: %+v", b)
	}
	// a learns it must give up two partitions but has not yet: the
	// pending revocation is part of the state that must survive.
	a2 := consumerHB(t, c, "g", "a", a.MemberEpoch, []int32{0, 1, 2, 3})
	if a2.ErrorCode != 0 || len(assigned(a2)) != 2 {
		t.Fatalf("a is asked to revoke: %+v", a2)
	}
	want := c.DescribeConsumer("g")
	if len(want.Members) != 2 {
		t.Fatalf("describe: %+v", want)
	}
	c.Close()

	reload := func(what string) *Coordinator {
		t.Helper()
		c := New(cfg)
		if err := c.Load(0, st.log(0)); err != nil {
			t.Fatalf("%s: load: %v", what, err)
		}
		got := c.DescribeConsumer("g")
		if got.ErrorCode != 0 || got.Epoch != want.Epoch || got.AssignmentEpoch != want.AssignmentEpoch || got.State != want.State || len(got.Members) != len(want.Members) {
			t.Fatalf("%s: group %+v, want %+v", what, got, want)
		}
		for i, m := range got.Members {
			w := want.Members[i]
			if m.MemberID != w.MemberID || m.MemberEpoch != w.MemberEpoch || m.ClientID != w.ClientID || *m.InstanceID != *w.InstanceID ||
				!slices.Equal(m.SubscribedTopics, w.SubscribedTopics) ||
				!slices.Equal(flat(m.Assignment), flat(w.Assignment)) || !slices.Equal(flat(m.TargetAssignment), flat(w.TargetAssignment)) {
				t.Fatalf("%s: member %+v, want %+v", what, m, w)
			}
		}
		return c
	}
	c = reload("restart")
	// The pending revocation survived: a may not take b's partitions
	// until it reports them gone, and then keeps its epoch's successor.
	n := countRecords(t, st.log(0))
	a3 := consumerHB(t, c, "g", "a", a.MemberEpoch, []int32{0, 1, 2, 3})
	if a3.ErrorCode != 0 || a3.MemberEpoch != a.MemberEpoch {
		t.Fatalf("a heartbeats after the restart, still owning all: %+v", a3)
	}
	// Nothing changed: nothing is written.
	if m := countRecords(t, st.log(0)); m != n {
		t.Fatalf("a heartbeat that changed nothing wrote %d records", m-n)
	}
	c.Close()

	c = reload("second restart")
	if !c.compacting[0].CompareAndSwap(false, true) {
		t.Fatal("a compaction is running")
	}
	if err := c.compact(st, 0); err != nil {
		t.Fatal(err)
	}
	c.compacting[0].Store(false)
	// Group metadata, partition metadata and target metadata, and three
	// records per member.
	if n := countRecords(t, st.log(0)); n != 3+2*3 {
		t.Fatalf("%d records after compaction, want 9", n)
	}
	c.Close()

	c = reload("restart after compaction")
	a4 := consumerHB(t, c, "g", "a", a.MemberEpoch, []int32{0, 1})
	if a4.ErrorCode != 0 || a4.MemberEpoch <= a.MemberEpoch {
		t.Fatalf("a reports the revocation after the restarts: %+v", a4)
	}
	b2 := consumerHB(t, c, "g", "b", b.MemberEpoch, []int32{})
	if b2.ErrorCode != 0 || !slices.Equal(assigned(b2), []int32{2, 3}) {
		t.Fatalf("b gets the revoked partitions: %+v", b2)
	}
	// Both leave: the group holds nothing and is deleted with its
	// records.
	for _, m := range []*kmsg.ConsumerGroupHeartbeatResponse{a4, b2} {
		if r := consumerHB(t, c, "g", *m.MemberID, -1, nil); r.ErrorCode != 0 {
			t.Fatalf("leave: %+v", r)
		}
	}
	c.Close()
	c = New(cfg)
	defer c.Close()
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatal(err)
	}
	if d := c.DescribeConsumer("g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("deleted group after a restart: %+v", d)
	}
}

// TestConsumerGroupSessionRestartsAfterLoad checks that a restored member
// gets a whole session from the load, and is removed (and its removal
// written) when it does not come back.
func TestConsumerGroupSessionRestartsAfterLoad(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	cfg := Config{Partitions: 1, Storage: st, Topics: storeTopics, Clock: clock, ConsumerSessionTimeout: 10 * time.Second}
	c := newOwning(cfg)
	a := consumerHB(t, c, "g", "a", 0, []int32{})
	c.Close()
	clock.Advance(time.Hour) // the broker was down a long time

	c = New(cfg)
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(9 * time.Second)
	if r := consumerHB(t, c, "g", "a", a.MemberEpoch, nil); r.ErrorCode != 0 || r.MemberEpoch != a.MemberEpoch {
		t.Fatalf("heartbeat within the session after the load: %+v", r)
	}
	clock.Advance(11 * time.Second)
	if d := c.DescribeConsumer("g"); len(d.Members) != 0 {
		t.Fatalf("member still there after its session: %+v", d.Members)
	}
	c.Close()
	c = New(cfg)
	defer c.Close()
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatal(err)
	}
	if d := c.DescribeConsumer("g"); d.ErrorCode != 0 || len(d.Members) != 0 {
		t.Fatalf("expired member came back after a restart: %+v", d)
	}
}

// TestConsumerGroupRecordsUnknownVersions checks that records of a value
// version this broker does not know, and key versions beyond KIP-848's
// (share and streams groups), do not stop the load, and that the classic
// records written before consumer groups were persisted still load.
func TestConsumerGroupRecordsUnknownVersions(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	cfg := Config{Partitions: 1, Storage: st, Topics: storeTopics, Clock: clock}
	c := newOwning(cfg)
	a := consumerHB(t, c, "g", "a", 0, []int32{})
	if a.ErrorCode != 0 {
		t.Fatal(a)
	}
	member := "a"
	// A newer value version of a's assignment; a share group's record
	// (key 10); and a classic GroupMetadata record of a consumer-type
	// group with no members, as compaction wrote them before.
	future := wire.Writer{}
	future.Int16(1)
	future.Int32(99)
	old := kmsg.NewGroupMetadataValue()
	old.Version = 3
	old.ProtocolType = "consumer"
	old.Generation = 0
	if err := c.append(0,
		record.NewRecord{Key: cgKey(cgCurrentAssignmentKey, "g", &member), Value: future.B},
		record.NewRecord{Key: cgKey(10, "s", nil), Value: []byte{0, 0, 1}},
		record.NewRecord{Key: groupKey("old"), Value: old.AppendTo(nil)},
	); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = New(cfg)
	defer c.Close()
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatalf("load: %v", err)
	}
	d := c.DescribeConsumer("g")
	if d.ErrorCode != 0 || len(d.Members) != 1 || d.Members[0].MemberEpoch != 0 || len(d.Members[0].Assignment.TopicPartitions) != 0 {
		t.Fatalf("member whose assignment record was unreadable: %+v", d)
	}
	if od := c.Describe("old", 5); od.State != Empty.String() || od.ProtocolType != "consumer" {
		t.Fatalf("classic record of before: %+v", od)
	}
}

// TestConsumerGroupDeleteTombstones deletes an empty consumer group that
// committed offsets (DeleteGroups): its KIP-848 records are tombstoned with
// its offsets, so a restart does not bring it back.
func TestConsumerGroupDeleteTombstones(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	cfg := Config{Partitions: 1, Storage: st, Topics: storeTopics, Clock: clock}
	c := newOwning(cfg)
	a := consumerHB(t, c, "g", "a", 0, []int32{})
	req := commitReq("g", 7, 1)
	req.Version = 9
	req.Generation, req.MemberID = a.MemberEpoch, *a.MemberID
	if code := c.Commit(req).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if r := consumerHB(t, c, "g", "a", -1, nil); r.ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	// The group stays (it has an offset), empty, with its records.
	c.Close()
	c = New(cfg)
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatal(err)
	}
	if d := c.DescribeConsumer("g"); d.ErrorCode != 0 || d.State != cgEmpty {
		t.Fatalf("empty group after a restart: %+v", d)
	}
	if code := c.DeleteGroup("g"); code != 0 {
		t.Fatalf("delete: %d", code)
	}
	c.Close()
	c = New(cfg)
	defer c.Close()
	if err := c.Load(0, st.log(0)); err != nil {
		t.Fatal(err)
	}
	if d := c.DescribeConsumer("g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("deleted group after a restart: %+v", d)
	}
	if got, _ := c.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("offsets of the deleted group: %+v", got)
	}
}

// FuzzReplayConsumerRecord feeds arbitrary keys and values of the KIP-848
// record types to the replay. Invariants: it never panics nor hangs, and
// a record it accepts is kept byte for byte (compaction rewrites it as
// read).
func FuzzReplayConsumerRecord(f *testing.F) {
	c := newOwning(Config{Partitions: 1, Topics: storeTopics, Clock: newFakeClock(time.Unix(0, 0))})
	defer c.Close()
	member := "m"
	g := newGroup(c, "g")
	g.consumer = newConsumerState()
	m := &cmember{id: member, subscribed: []string{"t"}, assigned: map[topicPartition]bool{{"t", 1}: true}, pendingRevoke: map[topicPartition]bool{{"t", 2}: true}, epoch: 3, prevEpoch: 2}
	g.consumer.members[member] = m
	g.consumer.target[member] = map[topicPartition]bool{{"t", 1}: true}
	g.consumer.topicsSeen["t"] = 4
	for k, v := range g.consumerRecords(nil) {
		f.Add([]byte(k), v)
	}
	f.Add(cgKey(cgMemberMetadataKey, "g", &member), []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if len(key) < 2 {
			return
		}
		v := int16(key[0])<<8 | int16(key[1])
		if v < cgMetadataKey || v > cgCurrentAssignmentKey {
			return
		}
		found := map[string]*loaded{}
		get := func(id string) *loaded {
			if found[id] == nil {
				found[id] = &loaded{offsets: map[topicPartition]committed{}}
			}
			return found[id]
		}
		if err := c.replayConsumer(v, &record.Record{Key: key, Value: value}, get); err != nil {
			return
		}
		for _, ld := range found {
			if got, ok := ld.consumer.raw[string(key)]; ok && string(got) != string(value) {
				t.Fatalf("record kept as %x, read %x", got, value)
			}
		}
	})
}
