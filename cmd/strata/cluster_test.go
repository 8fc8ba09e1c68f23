package main

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestClusterInfo runs `cluster info` against an embedded broker, which
// lists itself, node 1, as the only broker and the controller, and
// compares the output with testdata/cluster.golden.
func TestClusterInfo(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)

	// JSON outside the golden file: it holds the broker's random port.
	out := mustCLI(t, addr, "", "cluster", "info", "--json")
	var info clusterInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.ClusterID == "" || info.Controller != 1 || len(info.Brokers) != 1 {
		t.Fatalf("cluster info --json: %+v", info)
	}
	if b := info.Brokers[0]; b.ID != 1 || b.Rack != nil || net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) != addr {
		t.Fatalf("broker %+v, want node 1 at %s without a rack", b, addr)
	}
	s.ok("", "cluster", "info")
	s.fails(`unknown command "nope" for "strata cluster"`, "", "cluster", "nope")

	// The cluster id differs per data dir; a same-length tag keeps the
	// table aligned.
	tag := "CLUSTER-ID" + strings.Repeat("X", max(0, len(info.ClusterID)-len("CLUSTER-ID")))
	checkGolden(t, "cluster.golden", strings.ReplaceAll(normalizeCLI(s.b.String(), addr), info.ClusterID, tag))
}

// TestClusterViews prints what a single broker cannot show yet: several
// brokers with racks, no controller, a leaderless partition, replicas not
// in id order and offline replicas.
func TestClusterViews(t *testing.T) {
	rack := "rack-b"
	var b strings.Builder
	err := printClusterInfo(&b, clusterInfo{ClusterID: "", Controller: -1, Brokers: []brokerInfo{
		{ID: 1, Host: "10.0.0.1", Port: 9092},
		{ID: 2, Host: "broker-2.example", Port: 19092, Rack: &rack},
		{ID: 3, Host: "::1", Port: 9092},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	err = printTopicDescription(&b, topicDescription{Name: "t", Partitions: []partitionDetail{
		{Partition: 0, Leader: 3, LeaderEpoch: 4, Replicas: []int32{3, 1, 2}, ISR: []int32{1, 3}, Offline: []int32{2}},
		{Partition: 1, Leader: -1, LeaderEpoch: 7, Replicas: []int32{2, 3, 1}, ISR: []int32{2}, Offline: []int32{1, 2}},
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "cluster_views.golden", b.String())
}
