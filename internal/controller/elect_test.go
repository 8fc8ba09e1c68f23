package controller

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// part is a partition as the tests write it: replicas, ISR, leader.
type part struct {
	replicas, isr []int32
	leader        int32
}

// testImage builds an image with brokers 1..n, those in fenced fenced,
// and topics named "a", "b", ... holding parts, topic id {index+1}.
func testImage(n int32, fenced []int32, topics ...[]part) *cluster.Image {
	im := &cluster.Image{Topics: map[string]*cluster.Topic{}, ByID: map[cluster.TopicID]*cluster.Topic{}, Brokers: map[int32]*cluster.Broker{}}
	for id := int32(1); id <= n; id++ {
		im.Brokers[id] = &cluster.Broker{ID: id}
	}
	for _, id := range fenced {
		im.Brokers[id].Fenced = true
	}
	// Added in reverse so that map order cannot pass for name order.
	for i := len(topics) - 1; i >= 0; i-- {
		t := &cluster.Topic{Name: string(rune('a' + i)), ID: cluster.TopicID{byte(i + 1)}}
		for _, p := range topics[i] {
			t.PartitionStates = append(t.PartitionStates, &cluster.Partition{Replicas: p.replicas, ISR: p.isr, Leader: p.leader, LeaderEpoch: 5, PartitionEpoch: 9})
		}
		t.Partitions = int32(len(t.PartitionStates))
		im.Topics[t.Name], im.ByID[t.ID] = t, t
	}
	return im
}

// show prints changes as "topic/partition leader=L isr=[...]", "-" for
// unchanged, one per line.
func show(im *cluster.Image, recs []records.Record) string {
	var b strings.Builder
	for _, r := range recs {
		pc := r.(*records.PartitionChange)
		leader, isr := "-", "-"
		if pc.Leader != records.LeaderUnchanged {
			leader = fmt.Sprint(pc.Leader)
		}
		if pc.Isr != nil {
			isr = fmt.Sprint(pc.Isr)
		}
		if pc.Replicas != nil || pc.AddingReplicas != nil || pc.RemovingReplicas != nil || pc.LeaderRecoveryState != -1 {
			isr += " (other fields set)"
		}
		fmt.Fprintf(&b, "%s/%d leader=%s isr=%s\n", im.ByID[cluster.TopicID(pc.TopicID)].Name, pc.PartitionID, leader, isr)
	}
	return b.String()
}

func TestRemoveFromISR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fenced []int32
		topics [][]part
		broker int32
		want   string
	}{
		{
			name:   "leader moves to the first ISR replica",
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1}}},
			broker: 1,
			want:   "a/0 leader=2 isr=[2 3]\n",
		},
		{
			name: "replica order, not ISR order",
			topics: [][]part{{
				{replicas: []int32{1, 3, 2}, isr: []int32{2, 1, 3}, leader: 1},
			}},
			broker: 1,
			want:   "a/0 leader=3 isr=[2 3]\n",
		},
		{
			name:   "fenced ISR member skipped",
			fenced: []int32{2},
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1}}},
			broker: 1,
			want:   "a/0 leader=3 isr=[2 3]\n",
		},
		{
			name:   "follower leaves the ISR, leader stays",
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1}}},
			broker: 3,
			want:   "a/0 leader=- isr=[1 2]\n",
		},
		{
			name:   "last ISR member keeps its place, no leader",
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1}, leader: 1}}},
			broker: 1,
			want:   "a/0 leader=-1 isr=-\n",
		},
		{
			name:   "no usable ISR member left",
			fenced: []int32{2},
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1, 2}, leader: 1}}},
			broker: 1,
			want:   "a/0 leader=-1 isr=[2]\n",
		},
		{
			name:   "leaderless, last ISR member: nothing",
			topics: [][]part{{{replicas: []int32{1, 2}, isr: []int32{1}, leader: -1}}},
			broker: 1,
			want:   "",
		},
		{
			// PartitionChangeBuilder elects whenever the leader is not in
			// the new ISR.
			name:   "leaderless, ISR shrinks to a usable member: elected",
			topics: [][]part{{{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: -1}}},
			broker: 1,
			want:   "a/0 leader=2 isr=[2]\n",
		},
		{
			name:   "not a replica: nothing",
			topics: [][]part{{{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1}}},
			broker: 3,
			want:   "",
		},
		{
			name:   "out of the ISR already: nothing",
			topics: [][]part{{{replicas: []int32{1, 2, 3}, isr: []int32{1, 2}, leader: 1}}},
			broker: 3,
			want:   "",
		},
		{
			name: "sorted by topic, then partition",
			topics: [][]part{
				{
					{replicas: []int32{2, 3}, isr: []int32{2, 3}, leader: 2},
					{replicas: []int32{3, 1}, isr: []int32{3, 1}, leader: 3},
					{replicas: []int32{3, 2}, isr: []int32{3, 2}, leader: 3},
				},
				{
					{replicas: []int32{3}, isr: []int32{3}, leader: 3},
					{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1},
				},
			},
			broker: 3,
			want:   "a/0 leader=- isr=[2]\na/1 leader=1 isr=[1]\na/2 leader=2 isr=[2]\nb/0 leader=-1 isr=-\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := testImage(4, tc.fenced, tc.topics...)
			if got := show(im, FenceChanges(im, tc.broker, nil)); got != tc.want {
				t.Errorf("FenceChanges:\n%s\nwant:\n%s", got, tc.want)
			}
			if got := show(im, ControlledShutdownChanges(im, tc.broker, nil)); got != tc.want {
				t.Errorf("ControlledShutdownChanges:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestUnfenceChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fenced []int32
		topics [][]part
		broker int32
		want   string
	}{
		{
			name:   "leaderless partition gets its last ISR member back",
			fenced: []int32{1},
			topics: [][]part{{
				{replicas: []int32{2, 1}, isr: []int32{1}, leader: -1},
				{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 2},
				{replicas: []int32{2, 3}, isr: []int32{3}, leader: -1},
			}},
			broker: 1,
			want:   "a/0 leader=1 isr=-\n",
		},
		{
			name:   "a broker fenced in the image still counts as usable",
			fenced: []int32{1, 2},
			topics: [][]part{{{replicas: []int32{2, 1}, isr: []int32{2, 1}, leader: -1}}},
			broker: 1,
			want:   "a/0 leader=1 isr=-\n",
		},
		{
			name:   "not in the ISR: no unclean election",
			topics: [][]part{{{replicas: []int32{1, 2}, isr: []int32{2}, leader: -1}}},
			broker: 1,
			want:   "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := testImage(4, tc.fenced, tc.topics...)
			if got := show(im, UnfenceChanges(im, tc.broker, nil)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestFenceUnfenceRoundTrip: the last ISR member, fenced and unfenced,
// leads again once the changes are applied.
func TestFenceUnfenceRoundTrip(t *testing.T) {
	im := testImage(2, nil, []part{{replicas: []int32{1, 2}, isr: []int32{1}, leader: 1}})
	recs := FenceChanges(im, 1, nil)
	if len(recs) != 1 {
		t.Fatalf("%s", show(im, recs))
	}
	pc := recs[0].(*records.PartitionChange)
	if pc.Leader != records.NoLeader || pc.Isr != nil {
		t.Fatalf("%s", show(im, recs))
	}
	im.Topics["a"].PartitionStates[0].Leader = records.NoLeader
	im.Brokers[1].Fenced = true
	if got := show(im, UnfenceChanges(im, 1, nil)); got != "a/0 leader=1 isr=-\n" {
		t.Fatal(got)
	}
}

func TestPreferredLeader(t *testing.T) {
	im := testImage(3, []int32{3}, []part{
		{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 2}, // 0: elect 1
		{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1}, // 1: not needed
		{replicas: []int32{1, 2}, isr: []int32{2}, leader: 2},    // 2: 1 not in ISR
		{replicas: []int32{3, 2}, isr: []int32{3, 2}, leader: 2}, // 3: 3 fenced
		{replicas: []int32{1, 2}, isr: []int32{1}, leader: -1},   // 4: leaderless, elect 1
	})
	id := cluster.TopicID{1}
	for _, tc := range []struct {
		topic     cluster.TopicID
		partition int32
		leader    int32
		code      int16
	}{
		{id, 0, 1, 0},
		{id, 1, 0, kerr.ElectionNotNeeded.Code},
		{id, 2, 0, kerr.PreferredLeaderNotAvailable.Code},
		{id, 3, 0, kerr.PreferredLeaderNotAvailable.Code},
		{id, 4, 1, 0},
		{id, 5, 0, kerr.UnknownTopicOrPartition.Code},
		{id, -1, 0, kerr.UnknownTopicOrPartition.Code},
		{cluster.TopicID{7}, 0, 0, kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.topic, tc.partition), func(t *testing.T) {
			rec, code := PreferredLeader(im, tc.topic, tc.partition)
			if code != tc.code {
				t.Fatalf("code %d, want %d", code, tc.code)
			}
			if code != 0 {
				if rec != nil {
					t.Fatalf("record %+v with code %d", rec, code)
				}
				return
			}
			want := records.NewPartitionChange(records.UUID(tc.topic), tc.partition)
			want.Leader = tc.leader
			if !reflect.DeepEqual(rec, want) {
				t.Fatalf("got %+v, want %+v", rec, want)
			}
		})
	}
	// A preferred replica in controlled shutdown is not available either.
	im.Brokers[1].InControlledShutdown = true
	if _, code := PreferredLeader(im, id, 0); code != kerr.PreferredLeaderNotAvailable.Code {
		t.Fatalf("code %d", code)
	}
}

func TestUncleanLeader(t *testing.T) {
	im := testImage(3, []int32{3}, []part{
		{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 2},     // 0: has a leader
		{replicas: []int32{3, 2, 1}, isr: []int32{3, 1}, leader: -1}, // 1: clean: 1, in the ISR
		{replicas: []int32{3, 2, 1}, isr: []int32{3}, leader: -1},    // 2: unclean: 2, first usable
		{replicas: []int32{3}, isr: []int32{3}, leader: -1},          // 3: none usable
	})
	id := cluster.TopicID{1}
	for _, tc := range []struct {
		topic     cluster.TopicID
		partition int32
		leader    int32
		isr       []int32
		recovery  int8
		code      int16
	}{
		{id, 0, 0, nil, -1, kerr.ElectionNotNeeded.Code},
		{id, 1, 1, nil, -1, 0},
		{id, 2, 2, []int32{2}, 1, 0},
		{id, 3, 0, nil, -1, kerr.EligibleLeadersNotAvailable.Code},
		{id, 4, 0, nil, -1, kerr.UnknownTopicOrPartition.Code},
		{cluster.TopicID{7}, 0, 0, nil, -1, kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.topic, tc.partition), func(t *testing.T) {
			rec, code := UncleanLeader(im, tc.topic, tc.partition)
			if code != tc.code {
				t.Fatalf("code %d, want %d", code, tc.code)
			}
			if code != 0 {
				if rec != nil {
					t.Fatalf("record %+v with code %d", rec, code)
				}
				return
			}
			want := records.NewPartitionChange(records.UUID(tc.topic), tc.partition)
			want.Leader, want.Isr, want.LeaderRecoveryState = tc.leader, tc.isr, tc.recovery
			if !reflect.DeepEqual(rec, want) {
				t.Fatalf("got %+v, want %+v", rec, want)
			}
		})
	}
	// A replica in controlled shutdown is not eligible either.
	im.Brokers[2].InControlledShutdown = true
	if _, code := UncleanLeader(im, id, 2); code != 0 {
		t.Fatalf("code %d: 1 is still usable", code)
	}
	im.Brokers[1].InControlledShutdown = true
	if _, code := UncleanLeader(im, id, 2); code != kerr.EligibleLeadersNotAvailable.Code {
		t.Fatalf("code %d", code)
	}
}
