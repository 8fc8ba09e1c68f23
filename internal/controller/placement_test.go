package controller

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/cluster"
)

func ids(n int) []BrokerInfo {
	var out []BrokerInfo
	for i := range n {
		out = append(out, BrokerInfo{ID: int32(i)})
	}
	return out
}

func racked(m map[int32]string) []BrokerInfo {
	var out []BrokerInfo
	for id, r := range m {
		out = append(out, BrokerInfo{ID: id, Rack: r})
	}
	return out
}

func sortedInfos(bs []BrokerInfo) []BrokerInfo {
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b BrokerInfo) int { return int(a.ID - b.ID) })
	return bs
}

// TestPlaceKafkaVectors checks place against the assignments Kafka's own
// tests expect with a fixed start index (AdminUtilsTest's
// testReplicaAssignment, AdminRackAwareTest's
// testGetRackAlternatedBrokerListAndAssignReplicasToBrokers).
func TestPlaceKafkaVectors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		brokers    []BrokerInfo
		count, rf  int
		start      int
		startPart  int32
		want       [][]int32
		wantRacked []int32
	}{
		{
			name: "no racks", brokers: ids(5), count: 10, rf: 3,
			want: [][]int32{{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1}, {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}},
		},
		{
			name: "no racks, from partition 5", brokers: ids(5), count: 5, rf: 3, startPart: 5,
			want: [][]int32{{0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}},
		},
		{
			name:    "racks",
			brokers: racked(map[int32]string{0: "rack1", 1: "rack3", 2: "rack3", 3: "rack2", 4: "rack2", 5: "rack1"}),
			count:   7, rf: 3,
			wantRacked: []int32{0, 3, 1, 5, 4, 2},
			want:       [][]int32{{0, 3, 1}, {3, 1, 5}, {1, 5, 4}, {5, 4, 2}, {4, 2, 0}, {2, 0, 3}, {0, 4, 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sorted := sortedInfos(tc.brokers)
			if tc.wantRacked != nil {
				alt, _ := rackAlternated(sorted)
				var got []int32
				for _, b := range alt {
					got = append(got, b.ID)
				}
				if !reflect.DeepEqual(got, tc.wantRacked) {
					t.Fatalf("rack-alternated list %v, want %v", got, tc.wantRacked)
				}
			}
			got := place(sorted, tc.startPart, int32(tc.count), tc.rf, tc.start, tc.start)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// checkPlacement checks what every placement must hold and returns the
// leader count and replica count of each broker.
func checkPlacement(t *testing.T, brokers []BrokerInfo, got [][]int32, count int, rf int16) (leaders, replicas map[int32]int) {
	t.Helper()
	rack := map[int32]string{}
	racks := map[string]bool{}
	for _, b := range brokers {
		rack[b.ID] = b.Rack
		racks[b.Rack] = true
	}
	if len(got) != count {
		t.Fatalf("%d partitions, want %d", len(got), count)
	}
	leaders, replicas = map[int32]int{}, map[int32]int{}
	for p, rs := range got {
		if len(rs) != int(rf) {
			t.Fatalf("partition %d: %v, want %d replicas", p, rs, rf)
		}
		seen := map[int32]bool{}
		spanned := map[string]bool{}
		for _, id := range rs {
			if _, ok := rack[id]; !ok || seen[id] {
				t.Fatalf("partition %d: %v: unknown or repeated broker %d", p, rs, id)
			}
			seen[id] = true
			spanned[rack[id]] = true
			replicas[id]++
		}
		if want := min(int(rf), len(racks)); len(spanned) != want {
			t.Fatalf("partition %d: %v spans %d racks, want %d", p, rs, len(spanned), want)
		}
		leaders[rs[0]]++
	}
	return leaders, replicas
}

// spread returns max-min of the counts over all brokers.
func spread(brokers []BrokerInfo, counts map[int32]int) int {
	lo, hi := counts[brokers[0].ID], counts[brokers[0].ID]
	for _, b := range brokers {
		lo, hi = min(lo, counts[b.ID]), max(hi, counts[b.ID])
	}
	return hi - lo
}

func TestPlaceReplicas(t *testing.T) {
	sixOnThree := racked(map[int32]string{0: "a", 1: "b", 2: "b", 3: "c", 4: "c", 5: "a"})
	for _, tc := range []struct {
		name    string
		brokers []BrokerInfo
		count   int
		rf      int16
		// evenReplicas: every broker holds as many replicas, which holds
		// when the partitions wrap around the brokers a whole number of
		// times.
		evenReplicas bool
	}{
		{name: "one broker", brokers: ids(1), count: 4, rf: 1, evenReplicas: true},
		{name: "3 brokers rf 3", brokers: ids(3), count: 9, rf: 3, evenReplicas: true},
		{name: "5 brokers rf 2", brokers: ids(5), count: 7, rf: 2},
		{name: "6 brokers 3 racks rf 3", brokers: sixOnThree, count: 6, rf: 3, evenReplicas: true},
		{name: "6 brokers 3 racks rf 3, 13 partitions", brokers: sixOnThree, count: 13, rf: 3},
		{name: "6 brokers 3 racks rf 2", brokers: sixOnThree, count: 12, rf: 2, evenReplicas: true},
		{name: "uneven racks", brokers: racked(map[int32]string{0: "a", 1: "a", 2: "b", 3: "c", 4: "c", 5: "a"}), count: 12, rf: 3},
		{name: "rf above racks", brokers: racked(map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}), count: 8, rf: 3},
		{name: "rf = brokers, racks", brokers: racked(map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}), count: 8, rf: 4, evenReplicas: true},
		// A broker without a rack is in rack "" of its own.
		{name: "some without rack", brokers: racked(map[int32]string{1: "a", 2: "", 3: "b", 4: ""}), count: 8, rf: 3},
		{name: "sparse ids", brokers: []BrokerInfo{{ID: 7}, {ID: 100}, {ID: 3}, {ID: 42}}, count: 8, rf: 3, evenReplicas: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(50) {
				got, err := PlaceReplicas(tc.brokers, 0, int32(tc.count), tc.rf, rand.New(rand.NewPCG(seed, 1)))
				if err != nil {
					t.Fatal(err)
				}
				leaders, replicas := checkPlacement(t, tc.brokers, got, tc.count, tc.rf)
				if s := spread(tc.brokers, leaders); s > 1 {
					t.Fatalf("seed %d: leaders %v not balanced: %v", seed, leaders, got)
				}
				if s := spread(tc.brokers, replicas); tc.evenReplicas && s != 0 {
					t.Fatalf("seed %d: replicas %v not even: %v", seed, replicas, got)
				}
			}
		})
	}
}

func TestPlaceReplicasDeterministic(t *testing.T) {
	brokers := racked(map[int32]string{0: "a", 1: "b", 2: "b", 3: "c", 4: "c", 5: "a"})
	first, err := PlaceReplicas(brokers, 0, 20, 3, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	// The order brokers are given in does not matter, only the seed.
	for range 10 {
		shuffled := slices.Clone(brokers)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := PlaceReplicas(shuffled, 0, 20, 3, rand.New(rand.NewPCG(7, 7)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("same seed, other result:\n%v\n%v", first, again)
		}
	}
	// Different seeds start the leaders at different brokers.
	starts := map[int32]bool{}
	for seed := range uint64(30) {
		got, err := PlaceReplicas(brokers, 0, 1, 3, rand.New(rand.NewPCG(seed, 0)))
		if err != nil {
			t.Fatal(err)
		}
		starts[got[0][0]] = true
	}
	if len(starts) < 3 {
		t.Fatalf("leaders of partition 0 over 30 seeds: %v", starts)
	}
}

// TestPlaceReplicasExpansion: placing partitions 5.. alone gives what
// placing 0.. would have given them with the same start and shift, as
// Kafka's CreatePartitions relies on.
func TestPlaceReplicasExpansion(t *testing.T) {
	brokers := sortedInfos(racked(map[int32]string{0: "a", 1: "b", 2: "b", 3: "c", 4: "c", 5: "a"}))
	all := place(brokers, 0, 12, 3, 4, 2)
	tail := place(brokers, 5, 7, 3, 4, 2)
	if !reflect.DeepEqual(all[5:], tail) {
		t.Fatalf("%v\n%v", all[5:], tail)
	}
}

func TestPlaceReplicasErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []BrokerInfo
		rf      int16
		msg     string
	}{
		{name: "rf 0", brokers: ids(3), rf: 0, msg: "replication factor must be positive"},
		{name: "rf -1", brokers: ids(3), rf: -1, msg: "Invalid replication factor -1"},
		{name: "rf above brokers", brokers: ids(1), rf: 3,
			msg: "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered"},
		{name: "no brokers", brokers: nil, rf: 1, msg: "only 0 broker(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlaceReplicas(tc.brokers, 0, 3, tc.rf, rand.New(rand.NewPCG(1, 1)))
			if !errors.Is(err, ErrInvalidReplicationFactor) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, %v; want %q", got, err, tc.msg)
			}
		})
	}
	if got, err := PlaceReplicas(ids(3), 0, 0, 3, rand.New(rand.NewPCG(1, 1))); err != nil || len(got) != 0 {
		t.Fatalf("count 0: %v, %v", got, err)
	}
	if got, err := PlaceReplicas(ids(3), 0, 2, 3, nil); err != nil || len(got) != 2 {
		t.Fatalf("nil rnd: %v, %v", got, err)
	}
}

func TestValidateAssignment(t *testing.T) {
	registered := func(id int32) bool { return id >= 1 && id <= 4 }
	for _, tc := range []struct {
		name   string
		assign [][]int32
		msg    string // "" for valid
	}{
		{name: "valid", assign: [][]int32{{1, 2, 3}, {2, 3, 4}, {4, 1, 2}}},
		{name: "one replica", assign: [][]int32{{4}}},
		{name: "no partitions", assign: nil, msg: "includes no partitions"},
		{name: "empty replicas", assign: [][]int32{{1, 2}, {}}, msg: "partition 1 includes an empty replica list"},
		{name: "duplicate", assign: [][]int32{{1, 2, 1}}, msg: "includes the broker 1 more than once"},
		{name: "unregistered", assign: [][]int32{{1, 2}, {3, 9}}, msg: "includes broker 9, but no such broker is registered"},
		{name: "unequal rf", assign: [][]int32{{1, 2}, {1, 2, 3}}, msg: "a partition with 3 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAssignment(tc.assign, registered)
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidReplicaAssignment) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestUsableBrokers(t *testing.T) {
	rack := "r1"
	im := &cluster.Image{Brokers: map[int32]*cluster.Broker{
		3: {ID: 3, Rack: &rack},
		1: {ID: 1},
		2: {ID: 2, Fenced: true},
		4: {ID: 4, InControlledShutdown: true},
		0: {ID: 0},
	}}
	want := []BrokerInfo{{ID: 0}, {ID: 1}, {ID: 3, Rack: "r1"}}
	if got := UsableBrokers(im); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
