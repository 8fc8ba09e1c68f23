package kafka

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

// openGroupHandler is newTestHandler that the test closes itself, to
// open the directory again (as another node, too).
func openGroupHandler(t *testing.T, dir string, node int32) (*Handler, func()) {
	t.Helper()
	metaCfg := log.DefaultConfig()
	b, err := broker.Open(broker.Config{LogDirs: []string{dir}, Internal: map[log.TopicPartition]log.Config{cluster.MetadataTopic: metaCfg}})
	if err != nil {
		t.Fatal(err)
	}
	ml, err := b.Internal(cluster.MetadataTopic, metaCfg)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	meta, err := cluster.Open(ml, cluster.Options{NodeID: node})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	cfg := Config{NodeID: node, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig(),
		Group: group.Config{Partitions: 4}}
	h, err := New(cfg, b, meta)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	var closed bool
	closeFn := func() {
		if !closed {
			closed = true
			h.Stop()
			b.Close()
		}
	}
	t.Cleanup(closeFn)
	return h, closeFn
}

// roundTrip sends req through Handle and decodes the response.
func roundTrip[R kmsg.Response](t *testing.T, h *Handler, req kmsg.Request) R {
	t.Helper()
	r := &server.Request{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 1, Body: req.AppendTo(nil)}
	resp, err := h.Handle(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer release(resp)
	kresp := req.ResponseKind()
	kresp.SetVersion(req.GetVersion())
	if err := kresp.ReadFrom(joinBytes(t, resp)); err != nil {
		t.Fatal(err)
	}
	return kresp.(R)
}

func findCoordinator(t *testing.T, h *Handler, version int16, keys ...string) []kmsg.FindCoordinatorResponseCoordinator {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = version
	if version < 4 {
		req.CoordinatorKey = keys[0]
	} else {
		req.CoordinatorKeys = keys
	}
	resp := roundTrip[*kmsg.FindCoordinatorResponse](t, h, req)
	if version < 4 {
		return []kmsg.FindCoordinatorResponseCoordinator{{Key: keys[0], NodeID: resp.NodeID, Host: resp.Host, Port: resp.Port, ErrorCode: resp.ErrorCode}}
	}
	return resp.Coordinators
}

// commitOffset commits offset of t-0 for a group without members.
func commitOffset(t *testing.T, h *Handler, groupID string, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = groupID, -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset}}}}
	resp := roundTrip[*kmsg.OffsetCommitResponse](t, h, req)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchOffset returns the group's offset of t-0 and the error code.
func fetchOffset(t *testing.T, h *Handler, groupID string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = groupID
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	resp := roundTrip[*kmsg.OffsetFetchResponse](t, h, req)
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].Offset, resp.Topics[0].Partitions[0].ErrorCode
}

func mustCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// TestSetOffsetsLeadership: resigning a partition of __consumer_offsets
// makes its groups NOT_COORDINATOR; leading it again loads them back from
// the log (created when missing). Other partitions are not touched.
func TestSetOffsetsLeadership(t *testing.T) {
	h, _ := openGroupHandler(t, t.TempDir(), 1)
	if _, err := h.createTopic(context.Background(), "t", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range findCoordinator(t, h, 4, "g") {
		if c.ErrorCode != 0 || c.NodeID != 1 || c.Host != "self" || c.Port != 9092 {
			t.Fatalf("FindCoordinator: %+v", c)
		}
	}
	for p := range int32(4) {
		if !h.groups.Loaded(p) {
			t.Fatalf("partition %d not loaded after the topic's creation", p)
		}
	}
	mustCode(t, "commit", commitOffset(t, h, "g", 42), 0)
	p := group.PartitionFor("g", 4)
	other := "h"
	for group.PartitionFor(other, 4) == p {
		other += "h"
	}
	mustCode(t, "commit of another partition's group", commitOffset(t, h, other, 7), 0)

	if err := h.setOffsetsLeadership(p, false); err != nil {
		t.Fatal(err)
	}
	if _, code := fetchOffset(t, h, "g"); code != kerr.NotCoordinator.Code {
		t.Fatalf("fetch after resigning: %v", kerr.ErrorForCode(code))
	}
	mustCode(t, "commit after resigning", commitOffset(t, h, "g", 43), kerr.NotCoordinator.Code)
	// v1 has no group-level error: the partition carries it.
	v1 := kmsg.NewPtrOffsetFetchRequest()
	v1.Version = 1
	v1.Group = "g"
	v1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	if r := roundTrip[*kmsg.OffsetFetchResponse](t, h, v1); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 ||
		r.Topics[0].Partitions[0].ErrorCode != kerr.NotCoordinator.Code || r.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("OffsetFetch v1 after resigning: %+v", r.Topics)
	}
	if off, code := fetchOffset(t, h, other); code != 0 || off != 7 {
		t.Fatalf("another partition's group: offset %d, %v", off, kerr.ErrorForCode(code))
	}
	if err := h.setOffsetsLeadership(p, true); err != nil {
		t.Fatal(err)
	}
	if off, code := fetchOffset(t, h, "g"); code != 0 || off != 42 {
		t.Fatalf("fetch after leading again: offset %d, %v", off, kerr.ErrorForCode(code))
	}
	if err := h.setOffsetsLeadership(p, true); err != nil { // again: nothing to do
		t.Fatal(err)
	}

	// A partition nothing was written to: its log is created.
	empty := int32(-1)
	for q := range int32(4) {
		if h.broker.Partition(log.TopicPartition{Topic: group.Topic, Partition: q}) == nil {
			empty = q
		}
	}
	if empty < 0 {
		t.Fatal("every partition has a log")
	}
	if err := h.setOffsetsLeadership(empty, false); err != nil {
		t.Fatal(err)
	}
	if err := h.setOffsetsLeadership(empty, true); err != nil {
		t.Fatal(err)
	}
	if !h.groups.Loaded(empty) || h.broker.Partition(log.TopicPartition{Topic: group.Topic, Partition: empty}) == nil {
		t.Fatalf("partition %d: loaded %v, log %v", empty, h.groups.Loaded(empty), h.broker.Partition(log.TopicPartition{Topic: group.Topic, Partition: empty}) != nil)
	}
}

// TestGroupsStartOnLedPartitionsOnly: at start the coordinator loads the
// partitions of __consumer_offsets this node leads, and FindCoordinator
// sends clients to the leader. The same directory opened as node 2 (node
// 1 leads every partition there) loads none and names node 1, with the
// endpoint node 1 registered.
func TestGroupsStartOnLedPartitionsOnly(t *testing.T) {
	dir := t.TempDir()
	h, closeH := openGroupHandler(t, dir, 1)
	if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "one", Port: 9001}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createTopic(context.Background(), "t", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	findCoordinator(t, h, 3, "g")
	mustCode(t, "commit", commitOffset(t, h, "g", 42), 0)
	closeH()

	h, closeH = openGroupHandler(t, dir, 1)
	for p := range int32(4) {
		if !h.groups.Loaded(p) {
			t.Fatalf("node 1: partition %d not loaded at start", p)
		}
	}
	if off, code := fetchOffset(t, h, "g"); code != 0 || off != 42 {
		t.Fatalf("node 1 after a restart: offset %d, %v", off, kerr.ErrorForCode(code))
	}
	closeH()

	h, _ = openGroupHandler(t, dir, 2)
	for p := range int32(4) {
		if h.groups.Loaded(p) {
			t.Fatalf("node 2: partition %d, led by node 1, loaded", p)
		}
	}
	if _, code := fetchOffset(t, h, "g"); code != kerr.NotCoordinator.Code {
		t.Fatalf("node 2: fetch %v", kerr.ErrorForCode(code))
	}
	for _, v := range []int16{0, 3, 4, 6} {
		cs := findCoordinator(t, h, v, "g", "other")
		if v < 4 {
			cs = append(cs, findCoordinator(t, h, v, "other")...)
		}
		for _, c := range cs {
			if c.ErrorCode != 0 || c.NodeID != 1 || c.Host != "one" || c.Port != 9001 {
				t.Fatalf("v%d: FindCoordinator of %s from node 2: %+v", v, c.Key, c)
			}
		}
	}
	groups := roundTrip[*kmsg.ListGroupsResponse](t, h, kmsg.NewPtrListGroupsRequest())
	if groups.ErrorCode != 0 || len(groups.Groups) != 0 {
		t.Fatalf("node 2: ListGroups %+v", groups)
	}
}

// TestGroupCoordinatorOfImage: the coordinator is the leader of the
// group's partition; no leader, or a leader not registered, fenced or
// without a PLAINTEXT listener, is none.
func TestGroupCoordinatorOfImage(t *testing.T) {
	h, _ := openGroupHandler(t, t.TempDir(), 1)
	if _, err := h.offsetsTopic(); err != nil {
		t.Fatal(err)
	}
	p := group.PartitionFor("g", 4)
	image := func(leader int32, brokers ...*cluster.Broker) *cluster.Image {
		im := *h.meta.Image()
		top := *im.Topic(group.Topic)
		top.PartitionStates = slices.Clone(top.PartitionStates)
		top.PartitionStates[p] = &cluster.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: leader}
		im.Topics = map[string]*cluster.Topic{group.Topic: &top}
		im.Brokers = map[int32]*cluster.Broker{}
		for _, b := range brokers {
			im.Brokers[b.ID] = b
		}
		return &im
	}
	plaintext := []records.Endpoint{{Name: "CONTROLLER", Host: "ctl", Port: 1}, {Name: "PLAINTEXT", Host: "two", Port: 9002}}
	for _, tc := range []struct {
		name     string
		im       *cluster.Image
		node     int32
		host     string
		port     int32
		notFound bool
	}{
		{name: "this node", im: image(1), node: 1, host: "self", port: 9092},
		{name: "another node", im: image(2, &cluster.Broker{ID: 2, Endpoints: plaintext}), node: 2, host: "two", port: 9002},
		{name: "no leader", im: image(-1, &cluster.Broker{ID: 2, Endpoints: plaintext}), notFound: true},
		{name: "unknown broker", im: image(3, &cluster.Broker{ID: 2, Endpoints: plaintext}), notFound: true},
		{name: "fenced", im: image(2, &cluster.Broker{ID: 2, Endpoints: plaintext, Fenced: true}), notFound: true},
		{name: "no PLAINTEXT", im: image(2, &cluster.Broker{ID: 2, Endpoints: plaintext[:1]}), notFound: true},
	} {
		node, host, port, msg := h.groupCoordinator(tc.im, "g", "PLAINTEXT")
		switch {
		case tc.notFound && (msg == "" || node != -1):
			t.Errorf("%s: %d %s:%d, want none", tc.name, node, host, port)
		case !tc.notFound && (msg != "" || node != tc.node || host != tc.host || port != tc.port):
			t.Errorf("%s: %d %s:%d %q, want %d %s:%d", tc.name, node, host, port, msg, tc.node, tc.host, tc.port)
		}
	}
}
