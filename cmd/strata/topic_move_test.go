package main

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// TestTopicMoveCommands runs `topic move` and `topic reassignments`
// against an embedded single broker, where the only move is to itself,
// and compares tables, JSON and error messages with
// testdata/topic_move.golden. The moves between nodes are in strata's
// TestReassignPartitions.
func TestTopicMoveCommands(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)

	s.ok("", "topic", "create", "mv", "--partitions", "2", "--replicas", "1")
	s.ok("", "topic", "reassignments")
	s.ok("", "topic", "move", "mv", "--partition", "0", "--replicas", "1", "--wait")
	s.ok("", "topic", "move", "mv", "--partition", "0,1", "--replicas", "1")
	s.fails("broker 9 is not registered", "", "topic", "move", "mv", "--partition", "0", "--replicas", "9")
	s.fails("broker 1 is listed twice", "", "topic", "move", "mv", "--partition", "0", "--replicas", "1,1")
	s.fails("partition mv-5 does not exist", "", "topic", "move", "mv", "--partition", "5", "--replicas", "1")
	s.fails("partition mv-0 is not being moved; nothing to cancel", "", "topic", "move", "mv", "--partition", "0", "--cancel")
	s.fails("give the partition to move with --partition", "", "topic", "move", "mv", "--replicas", "1")
	s.fails("give the new replicas with --replicas", "", "topic", "move", "mv", "--partition", "0")
	s.fails("give --replicas or --cancel, not both", "", "topic", "move", "mv", "--partition", "0", "--replicas", "1", "--cancel")
	s.fails(`--replicas "1,x": expected broker ids`, "", "topic", "move", "mv", "--partition", "0", "--replicas", "1,x")
	s.fails("give exactly one topic name", "", "topic", "move", "--partition", "0", "--replicas", "1")

	plan := `{"version":1,"partitions":[{"topic":"mv","partition":1,"replicas":[1],"log_dirs":["any"]}]}` + "\n"
	out := s.ok(plan, "topic", "move", "--plan", "-", "--json")
	var rows []moveResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Status != "started" {
		t.Fatalf("topic move --json: %v %+v", err, rows)
	}
	s.fails("--plan -: json: unknown field", `{"version":1,"moves":[]}`+"\n", "topic", "move", "--plan", "-")
	s.fails("entry 0 needs a topic and a partition", `{"version":1,"partitions":[{"topic":"mv","replicas":[1]}]}`+"\n", "topic", "move", "--plan", "-")
	s.fails("give no TOPIC, --partition or --replicas with it", plan, "topic", "move", "mv", "--plan", "-")

	s.ok("", "topic", "reassignments", "mv", "--json")
	s.fails(`topic "nope" does not exist`, "", "topic", "reassignments", "nope")
	s.ok("", "cluster", "rebalance")
	s.check("topic_move.golden")
}

// TestTopicMoveCluster moves a partition between the nodes of an
// in-process cluster with `topic move --wait`, and checks what
// `topic describe` and `topic reassignments` say after.
func TestTopicMoveCluster(t *testing.T) {
	c, err := strata.StartCluster(strata.ClusterOptions{Dir: t.TempDir(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "250", "broker.session.timeout.ms": "3000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr := c.Nodes()[0].Addr()
	describe := func() partitionDetail {
		t.Helper()
		var ds []topicDescription
		if err := json.Unmarshal([]byte(mustCLI(t, addr, "", "topic", "describe", "mv", "--json")), &ds); err != nil || len(ds) != 1 || len(ds[0].Partitions) != 1 {
			t.Fatalf("describe: %v %+v", err, ds)
		}
		return ds[0].Partitions[0]
	}
	mustCLI(t, addr, "", "topic", "create", "mv", "--partitions", "1", "--replicas", "1")
	// Another node's metadata may not have the topic yet.
	for i := 0; ; i++ {
		_, _, err := runCLI(t, addr, "a\nb\nc\n", "produce", "mv")
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("produce: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	from := describe().Replicas[0]
	to := from%3 + 1
	out := mustCLI(t, addr, "", "topic", "move", "mv", "--partition", "0", "--replicas", strconv.Itoa(int(to)), "--wait", "--json")
	var rows []moveResult
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Status != "done" {
		t.Fatalf("move: %v %s", err, out)
	}
	if p := describe(); !slices.Equal(p.Replicas, []int32{to}) || p.Leader != to || p.LogEndOffset == nil || *p.LogEndOffset != 3 {
		t.Fatalf("after the move: %+v", p)
	}
	if out := mustCLI(t, addr, "", "topic", "reassignments"); !strings.Contains(out, "No partitions are being moved.") {
		t.Fatalf("reassignments: %s", out)
	}
}

// TestClusterRebalance: partitions all placed on one node are spread by
// `cluster rebalance --execute --wait`, after a dry run that moves
// nothing.
func TestClusterRebalance(t *testing.T) {
	c, err := strata.StartCluster(strata.ClusterOptions{Dir: t.TempDir(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "250", "broker.session.timeout.ms": "3000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr := c.Nodes()[0].Addr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "skew", -1, -1
	for p := range int32(6) {
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: p, Replicas: []int32{1}})
	}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	// The topic reaches every node's metadata soon after the controller's.
	for i := 0; ; i++ {
		out := mustCLI(t, addr, "", "cluster", "rebalance")
		if strings.Contains(out, "Dry run") {
			break
		}
		if i == 50 {
			t.Fatalf("dry run: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Each CLI run may read metadata from another node, which may not
	// have the topic yet: the plan is asked for until it sees it too.
	for i := 0; ; i++ {
		var plan reassignPlan
		err := json.Unmarshal([]byte(mustCLI(t, addr, "", "cluster", "rebalance", "--json")), &plan)
		if err == nil && len(plan.Partitions) == 4 {
			break
		}
		if err != nil || len(plan.Partitions) != 0 || i == 50 {
			t.Fatalf("plan: %v %+v", err, plan)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The execute run too may read a node that does not have the topic
	// yet: it then finds nothing to move, and is run again.
	for i := 0; ; i++ {
		out := mustCLI(t, addr, "", "cluster", "rebalance", "--execute", "--wait")
		if strings.Contains(out, "4 moves done") {
			break
		}
		if !strings.Contains(out, "nothing to move") || i == 50 {
			t.Fatalf("execute: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := mustCLI(t, addr, "", "cluster", "rebalance"); !strings.Contains(out, "Balanced") {
		t.Fatalf("after: %s", out)
	}
}
