package main

import (
	"encoding/json"
	"testing"
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
	s.check("topic_move.golden")
}
