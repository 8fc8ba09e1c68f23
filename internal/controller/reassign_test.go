package controller

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// showReassign prints a change's fields, "-" for unchanged.
func showReassign(rec *records.PartitionChange) string {
	if rec == nil {
		return "none"
	}
	f := func(vs []int32) string {
		if vs == nil {
			return "-"
		}
		return fmt.Sprint(vs)
	}
	leader := "-"
	if rec.Leader != records.LeaderUnchanged {
		leader = fmt.Sprint(rec.Leader)
	}
	return fmt.Sprintf("replicas=%s isr=%s leader=%s adding=%s removing=%s", f(rec.Replicas), f(rec.Isr), leader, f(rec.AddingReplicas), f(rec.RemovingReplicas))
}

func TestReassign(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fenced   []int32
		p        part
		adding   []int32
		removing []int32
		target   []int32
		noRF     bool
		unclean  bool
		want     string
		err      *kerr.Error
	}{
		{
			name:   "move RF 1: the new replica is added first",
			p:      part{replicas: []int32{1}, isr: []int32{1}, leader: 1},
			target: []int32{2},
			want:   "replicas=[2 1] isr=- leader=- adding=[2] removing=[1]",
		},
		{
			name:   "RF 2 to two other brokers, in the target's order",
			p:      part{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1},
			target: []int32{4, 3},
			want:   "replicas=[4 3 1 2] isr=- leader=- adding=[3 4] removing=[1 2]",
		},
		{
			name:   "shrinking within the ISR completes at once; the leader moves",
			p:      part{replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leader: 1},
			target: []int32{3, 2},
			want:   "replicas=[3 2] isr=[2 3] leader=3 adding=- removing=-",
		},
		{
			name:   "reordering only: no reassignment, the replicas change",
			p:      part{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1},
			target: []int32{2, 1},
			want:   "replicas=[2 1] isr=- leader=- adding=- removing=-",
		},
		{
			name:   "the current assignment: nothing",
			p:      part{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1},
			target: []int32{1, 2},
			want:   "none",
		},
		{
			name:     "a new target during one starts from all the current replicas, as Kafka's",
			p:        part{replicas: []int32{2, 1}, isr: []int32{1}, leader: 1},
			adding:   []int32{2},
			removing: []int32{1},
			target:   []int32{3},
			want:     "replicas=[3 1 2] isr=- leader=- adding=[3] removing=[1 2]",
		},
		{
			name:   "removed replicas in id order, after the target",
			p:      part{replicas: []int32{3, 1, 2}, isr: []int32{3, 1, 2}, leader: 3},
			target: []int32{4},
			want:   "replicas=[4 1 2 3] isr=- leader=- adding=[4] removing=[1 2 3]",
		},
		{
			name:   "completion needs every target replica in the ISR, not only the new ones",
			p:      part{replicas: []int32{1, 2}, isr: []int32{1}, leader: 1},
			target: []int32{2},
			want:   "replicas=[2 1] isr=- leader=- adding=- removing=[1]",
		},
		{
			name:     "cancel: back to the original replicas",
			p:        part{replicas: []int32{2, 1}, isr: []int32{1, 2}, leader: 1},
			adding:   []int32{2},
			removing: []int32{1},
			want:     "replicas=[1] isr=[1] leader=- adding=[] removing=[]",
		},
		{
			name:     "cancel moves the leader off an adding replica",
			p:        part{replicas: []int32{2, 1}, isr: []int32{1, 2}, leader: 2},
			adding:   []int32{2},
			removing: []int32{1},
			want:     "replicas=[1] isr=[1] leader=1 adding=[] removing=[]",
		},
		{
			name:     "cancel that needs an unclean election: refused",
			p:        part{replicas: []int32{2, 1}, isr: []int32{2}, leader: 2},
			adding:   []int32{2},
			removing: []int32{1},
			err:      kerr.InvalidReplicaAssignment,
		},
		{
			name:     "cancel that needs an unclean election, allowed for the topic",
			p:        part{replicas: []int32{2, 1}, isr: []int32{2}, leader: 2},
			adding:   []int32{2},
			removing: []int32{1},
			unclean:  true,
			want:     "replicas=[1] isr=[1] leader=1 adding=[] removing=[]",
		},
		{name: "cancel none", p: part{replicas: []int32{1}, isr: []int32{1}, leader: 1}, err: kerr.NoReassignmentInProgress},
		{name: "empty", p: part{replicas: []int32{1}, isr: []int32{1}, leader: 1}, target: []int32{}, err: kerr.InvalidReplicaAssignment},
		{name: "duplicate", p: part{replicas: []int32{1}, isr: []int32{1}, leader: 1}, target: []int32{2, 2}, err: kerr.InvalidReplicaAssignment},
		{name: "unknown broker", p: part{replicas: []int32{1}, isr: []int32{1}, leader: 1}, target: []int32{9}, err: kerr.InvalidReplicaAssignment},
		{name: "RF change not allowed", p: part{replicas: []int32{1}, isr: []int32{1}, leader: 1}, target: []int32{1, 2}, noRF: true, err: kerr.InvalidReplicationFactor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := testImage(4, tc.fenced, []part{tc.p})
			top := im.Topics["a"]
			top.PartitionStates[0].AddingReplicas, top.PartitionStates[0].RemovingReplicas = tc.adding, tc.removing
			var unclean Unclean
			if tc.unclean {
				unclean = func(*cluster.Topic) bool { return true }
			}
			rec, err := Reassign(im, top, 0, tc.target, !tc.noRF, unclean)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := showReassign(rec); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestAlterPartitionCompletesReassignment: the ISR change that brings the
// last adding replica in completes the reassignment in the same record,
// and the removed leader hears NEW_LEADER_ELECTED.
func TestAlterPartitionCompletesReassignment(t *testing.T) {
	im := testImage(4, nil, []part{{replicas: []int32{2, 1}, isr: []int32{1}, leader: 1}})
	p := im.Topics["a"].PartitionStates[0]
	p.AddingReplicas, p.RemovingReplicas = []int32{2}, []int32{1}

	// Another ISR change that leaves an adding replica out: no completion.
	resp, recs := AlterPartitionChanges(im, alterReq(5, 9, 0, 1))
	if len(recs) != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("same ISR: %d records, code %d", len(recs), resp.Topics[0].Partitions[0].ErrorCode)
	}
	resp, recs = AlterPartitionChanges(im, alterReq(5, 9, 0, 1, 2))
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	want := "replicas=[2] isr=[2] leader=2 adding=[] removing=[]"
	if got := showReassign(recs[0].(*records.PartitionChange)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NewLeaderElected.Code {
		t.Errorf("code %d, want NEW_LEADER_ELECTED", code)
	}

	// The new replica's broker fenced: the completion waits for it, and
	// unfencing it completes.
	im.Brokers[2].Fenced = true
	p.ISR = []int32{1, 2}
	if recs := ReassignmentCompletions(im, 3); len(recs) != 0 {
		t.Fatalf("completed with no usable leader: %s", showReassign(recs[0].(*records.PartitionChange)))
	}
	recs = ReassignmentCompletions(im, 2)
	if len(recs) != 1 {
		t.Fatalf("%d records on unfencing 2", len(recs))
	}
	if got := showReassign(recs[0].(*records.PartitionChange)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
