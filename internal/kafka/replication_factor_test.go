package kafka

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/group"
)

// quorumHandler is node 1 of a cluster as its active controller sees it:
// a controller in quorum mode (a client of the quorum, never used: the
// local metadata log makes this node the controller) and brokers 1 to n
// registered unfenced, those in fenced fenced.
func quorumHandler(t *testing.T, n int32, fenced []int32, props ...config.Property) *Handler {
	t.Helper()
	return quorumHandlerWith(t, n, fenced, nil, props...)
}

// quorumHandlerWith is quorumHandler with the controller's Config changed
// by modify.
func quorumHandlerWith(t *testing.T, n int32, fenced []int32, modify func(*controller.Config), props ...config.Property) *Handler {
	t.Helper()
	dir := t.TempDir()
	var h *Handler
	cfg := Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig(), BrokerConfigs: props}
	h = newTestHandlerWith(t, dir, cfg, func(meta *cluster.Store) *controller.Controller {
		ccfg := controller.Config{NodeID: 1, Store: meta, DefaultReplicationFactor: 2,
			Client: controller.NewClient(1, map[int32]string{}, func() int32 { return 1 }, nil)}
		if modify != nil {
			modify(&ccfg)
		}
		return controller.New(ccfg)
	})
	if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "self", Port: 9092}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		var recs []records.Record
		for id := int32(2); id <= n; id++ {
			recs = append(recs, &records.RegisterBroker{BrokerID: id, IncarnationID: records.UUID{byte(id)}, BrokerEpoch: im.EndOffset,
				Fenced: slices.Contains(fenced, id), EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "other", Port: uint16(9092 + id)}}})
		}
		return recs, nil
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

func createTopic(t *testing.T, h *Handler, validate bool, name string, partitions int32, rf int16, assign ...[]int32) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.ValidateOnly = 7, validate
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i, a := range assign {
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: a})
	}
	req.Topics = append(req.Topics, rt)
	return roundTrip[*kmsg.CreateTopicsResponse](t, h, req).Topics[0]
}

func replicaCounts(t *testing.T, h *Handler, name string) []int {
	t.Helper()
	var out []int
	for _, p := range h.meta.Image().Topic(name).PartitionStates {
		r := slices.Clone(p.Replicas)
		slices.Sort(r)
		if len(slices.Compact(r)) != len(p.Replicas) || !slices.Equal(p.ISR, p.Replicas) && name != "fenced" || p.Leader != p.ISR[0] {
			t.Fatalf("%s: partition %+v", name, p)
		}
		out = append(out, len(p.Replicas))
	}
	return out
}

// TestReplicationFactorQuorum: with three usable brokers, topics take any
// factor up to three, reported as placed; more is
// INVALID_REPLICATION_FACTOR, validated or not.
func TestReplicationFactorQuorum(t *testing.T) {
	h := quorumHandler(t, 4, []int32{4})
	st := createTopic(t, h, false, "three", 3, 3)
	mustCode(t, "rf 3", st.ErrorCode, 0)
	if st.ReplicationFactor != 3 || !slices.Equal(replicaCounts(t, h, "three"), []int{3, 3, 3}) {
		t.Fatalf("rf 3: answered %d, placed %v", st.ReplicationFactor, replicaCounts(t, h, "three"))
	}
	st = createTopic(t, h, false, "default", 2, -1)
	mustCode(t, "rf -1", st.ErrorCode, 0)
	if st.ReplicationFactor != 2 || !slices.Equal(replicaCounts(t, h, "default"), []int{2, 2}) {
		t.Fatalf("rf -1 (default.replication.factor 2): answered %d", st.ReplicationFactor)
	}
	st = createTopic(t, h, false, "four", 1, 4)
	mustCode(t, "rf 4: broker 4 is fenced", st.ErrorCode, kerr.InvalidReplicationFactor.Code)
	if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "only 3 broker(s)") {
		t.Fatalf("rf 4: message %v", st.ErrorMessage)
	}
	st = createTopic(t, h, true, "four", 1, 4)
	mustCode(t, "rf 4 validated", st.ErrorCode, kerr.InvalidReplicationFactor.Code)
	st = createTopic(t, h, true, "two", 1, 2)
	mustCode(t, "rf 2 validated", st.ErrorCode, 0)
	if st.ReplicationFactor != 2 || h.meta.Image().Topic("two") != nil {
		t.Fatalf("rf 2 validated: answered %d, created %v", st.ReplicationFactor, h.meta.Image().Topic("two") != nil)
	}
	for _, rf := range []int16{0, -2} {
		st = createTopic(t, h, false, "bad", 1, rf)
		mustCode(t, "rf 0 or -2", st.ErrorCode, kerr.InvalidReplicationFactor.Code)
	}
	st = createTopic(t, h, false, "manual", -1, -1, []int32{1, 2}, []int32{3, 1})
	mustCode(t, "assignment", st.ErrorCode, 0)
	if st.ReplicationFactor != 2 || !slices.Equal(h.meta.Image().Topic("manual").PartitionStates[1].Replicas, []int32{3, 1}) {
		t.Fatalf("assignment: answered %d, placed %v", st.ReplicationFactor, h.meta.Image().Topic("manual").PartitionStates[1].Replicas)
	}
	// A fenced broker named by an assignment is a replica, not in the
	// ISR, and leads nothing; a partition of fenced brokers only is refused.
	mustCode(t, "assignment with a fenced broker", createTopic(t, h, false, "fenced", -1, -1, []int32{4, 1}).ErrorCode, 0)
	if p := h.meta.Image().Topic("fenced").PartitionStates[0]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.Replicas, []int32{4, 1}) {
		t.Fatalf("assignment with a fenced broker: %+v", p)
	}
	for _, assign := range [][][]int32{{{1, 2}, {3}}, {{1, 1}}, {{1, 9}}, {{4}}} {
		st = createTopic(t, h, false, "badmanual", -1, -1, assign...)
		mustCode(t, "bad assignment", st.ErrorCode, kerr.InvalidReplicaAssignment.Code)
	}

	// New partitions take the topic's factor, or an assignment of it.
	grow := func(name string, count int32, assign ...[]int32) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, a := range assign {
			rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: a})
		}
		req.Topics = append(req.Topics, rt)
		return roundTrip[*kmsg.CreatePartitionsResponse](t, h, req).Topics[0].ErrorCode
	}
	mustCode(t, "grow", grow("three", 5), 0)
	if got := replicaCounts(t, h, "three"); !slices.Equal(got, []int{3, 3, 3, 3, 3}) {
		t.Fatalf("grown: %v", got)
	}
	mustCode(t, "grow with one replica", grow("three", 6, []int32{1}), kerr.InvalidReplicaAssignment.Code)
	mustCode(t, "grow with three", grow("three", 6, []int32{2, 3, 1}), 0)
	if got := h.meta.Image().Topic("three").PartitionStates[5].Replicas; !slices.Equal(got, []int32{2, 3, 1}) {
		t.Fatalf("assigned partition: %v", got)
	}
}

// TestReplicationFactorLocal: a single node is one broker.
func TestReplicationFactorLocal(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "self", Port: 9092}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, validate := range []bool{false, true} {
		st := createTopic(t, h, validate, "two", 1, 2)
		mustCode(t, "rf 2", st.ErrorCode, kerr.InvalidReplicationFactor.Code)
		if st.ErrorMessage == nil || !strings.Contains(*st.ErrorMessage, "only 1 broker(s)") {
			t.Fatalf("rf 2: message %v", st.ErrorMessage)
		}
	}
	st := createTopic(t, h, false, "one", 1, 1)
	mustCode(t, "rf 1", st.ErrorCode, 0)
	if st.ReplicationFactor != 1 {
		t.Fatalf("rf 1 answered as %d", st.ReplicationFactor)
	}
	mustCode(t, "assignment of two", createTopic(t, h, false, "a2", -1, -1, []int32{1, 2}).ErrorCode, kerr.InvalidReplicaAssignment.Code)
	if _, err := h.offsetsTopic(); err != nil {
		t.Fatal(err)
	}
	if got := replicaCounts(t, h, group.Topic); got[0] != 1 {
		t.Fatalf("%s on a single node: %d replicas", group.Topic, got[0])
	}
}

// TestOffsetsTopicReplicationFactor: __consumer_offsets gets
// offsets.topic.replication.factor replicas, as many as there are usable
// brokers when fewer.
func TestOffsetsTopicReplicationFactor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int32
		fenced []int32
		rf     string
		want   int
	}{
		{"default 3 of 4", 4, nil, "", 3},
		{"default 3 of 2 usable", 3, []int32{3}, "", 2},
		{"2 of 4", 4, nil, "2", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var props []config.Property
			if tc.rf != "" {
				props = append(props, config.Property{Name: "offsets.topic.replication.factor", Value: &tc.rf})
			}
			h := quorumHandler(t, tc.n, tc.fenced, props...)
			if _, err := h.offsetsTopic(); err != nil {
				t.Fatal(err)
			}
			for i, n := range replicaCounts(t, h, group.Topic) {
				if n != tc.want {
					t.Fatalf("partition %d: %d replicas, want %d", i, n, tc.want)
				}
			}
		})
	}
}
