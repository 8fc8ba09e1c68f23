package controller

import (
	"testing"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

func all(*cluster.Topic) bool { return true }

// TestUncleanFence: with unclean elections allowed, fencing the last usable
// ISR member elects the first usable replica outside it, alone in the ISR
// and RECOVERING; without, the partition is left leaderless.
func TestUncleanFence(t *testing.T) {
	im := testImage(3, []int32{2}, []part{
		{replicas: []int32{1, 2, 3}, isr: []int32{1}, leader: 1},     // 0: 2 is fenced, 3 elected
		{replicas: []int32{1, 3}, isr: []int32{1, 3}, leader: 1},     // 1: clean: 3 is in the ISR
		{replicas: []int32{1, 2}, isr: []int32{1}, leader: 1},        // 2: no usable replica
		{replicas: []int32{3, 1}, isr: []int32{3, 1}, leader: 3},     // 3: 1 leaves the ISR only
		{replicas: []int32{2, 1, 3}, isr: []int32{2, 1}, leader: -1}, // 4: leaderless, 1 leaves: 3
	})
	want := "a/0 leader=3 isr=[3] (other fields set)\n" +
		"a/1 leader=3 isr=[3]\n" +
		"a/2 leader=-1 isr=-\n" +
		"a/3 leader=- isr=[3]\n" +
		"a/4 leader=3 isr=[3] (other fields set)\n"
	if got := show(im, FenceChanges(im, 1, all)); got != want {
		t.Errorf("unclean:\n%s\nwant:\n%s", got, want)
	}
	if got := show(im, ControlledShutdownChanges(im, 1, all)); got != want {
		t.Errorf("controlled shutdown, unclean:\n%s\nwant:\n%s", got, want)
	}
	want = "a/0 leader=-1 isr=-\n" +
		"a/1 leader=3 isr=[3]\n" +
		"a/2 leader=-1 isr=-\n" +
		"a/3 leader=- isr=[3]\n" +
		"a/4 leader=- isr=[2]\n"
	if got := show(im, FenceChanges(im, 1, nil)); got != want {
		t.Errorf("clean:\n%s\nwant:\n%s", got, want)
	}
	recs := FenceChanges(im, 1, all)
	if pc := recs[0].(*records.PartitionChange); pc.LeaderRecoveryState != 1 || pc.Replicas != nil {
		t.Errorf("unclean change %+v, want RECOVERING", pc)
	}
}

// TestUncleanUnfence: a broker that comes back outside the ISR of a
// leaderless partition leads it if unclean elections are allowed.
func TestUncleanUnfence(t *testing.T) {
	im := testImage(3, []int32{1, 2}, []part{
		{replicas: []int32{1, 2}, isr: []int32{1}, leader: -1}, // 0: 2 comes back outside the ISR
		{replicas: []int32{2, 1}, isr: []int32{2}, leader: -1}, // 1: 2 comes back in the ISR: clean
		{replicas: []int32{1, 3}, isr: []int32{1}, leader: -1}, // 2: 3 was usable all along
	})
	want := "a/0 leader=2 isr=[2] (other fields set)\n" +
		"a/1 leader=2 isr=-\n" +
		"a/2 leader=3 isr=[3] (other fields set)\n"
	if got := show(im, UnfenceChanges(im, 2, all)); got != want {
		t.Errorf("unclean:\n%s\nwant:\n%s", got, want)
	}
	if got := show(im, UnfenceChanges(im, 2, nil)); got != "a/1 leader=2 isr=-\n" {
		t.Errorf("clean:\n%s", got)
	}
	only := func(t *cluster.Topic) bool { return false }
	if got := show(im, UnfenceChanges(im, 2, only)); got != "a/1 leader=2 isr=-\n" {
		t.Errorf("unclean for no topic:\n%s", got)
	}
	if got := show(im, UncleanChanges(im, all)); got != "a/2 leader=3 isr=[3] (other fields set)\n" {
		t.Errorf("UncleanChanges:\n%s", got)
	}
	if got := UncleanChanges(im, nil); got != nil {
		t.Errorf("UncleanChanges without unclean: %v", got)
	}
}

// TestUncleanConfig: a topic's unclean.leader.election.enable wins over the
// cluster-wide dynamic default, which wins over the static property.
func TestUncleanConfig(t *testing.T) {
	im := testImage(1, nil, []part{{replicas: []int32{1}, isr: []int32{1}, leader: 1}}, []part{{replicas: []int32{1}, isr: []int32{1}, leader: 1}})
	im.OtherConfigs = map[cluster.ConfigResource]map[string]string{}
	a, b := im.Topics["a"], im.Topics["b"]
	a.Configs = map[string]string{UncleanLeaderElectionConfig: "TRUE"}
	off := New(Config{})
	on := New(Config{UncleanLeaderElection: true})
	if u := off.Unclean(im); !u(a) || u(b) {
		t.Errorf("static false: a %v b %v, want true false", u(a), u(b))
	}
	if u := on.Unclean(im); !u(a) || !u(b) {
		t.Errorf("static true: a %v b %v", u(a), u(b))
	}
	im.OtherConfigs[cluster.ConfigResource{Type: records.ResourceBroker}] = map[string]string{UncleanLeaderElectionConfig: "false"}
	a.Configs[UncleanLeaderElectionConfig] = "true"
	if u := on.Unclean(im); !u(a) || u(b) {
		t.Errorf("cluster default false over static true: a %v b %v", u(a), u(b))
	}
}
