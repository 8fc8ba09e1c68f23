package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTopicCommands runs every topic subcommand against an embedded broker
// and compares tables, JSON and error messages with testdata/topic.golden.
func TestTopicCommands(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)

	s.ok("", "topic", "list")
	s.ok("", "topic", "create", "orders", "--partitions", "3", "--replicas", "1", "--config", "retention.ms=3600000", "--config", "max.message.bytes=2000000")
	s.ok("", "topic", "create", "events", "audit")
	s.fails(`topic "orders" already exists`, "", "topic", "create", "orders")
	s.fails("--partitions 0: must be at least 1", "", "topic", "create", "x", "--partitions", "0")
	s.fails(`--config "retention.ms": expected key=value`, "", "topic", "create", "x", "--config", "retention.ms")
	s.fails("replicate the partition 3 time(s)", "", "topic", "create", "x", "--replicas", "3")
	s.fails(`retention.ms="soon"`, "", "topic", "create", "x", "--config", "retention.ms=soon")

	s.ok("", "topic", "list")
	out := s.ok("", "topic", "list", "--json")
	var listed []topicSummary
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("topic list --json: %v, %d topics", err, len(listed))
	}

	s.ok("a\nb\nc\n", "produce", "orders", "--partition", "1")
	s.ok("", "topic", "describe", "orders")
	s.ok("", "topic", "describe", "orders", "--json")
	// Every default, but not in the golden file: the list grows with
	// the broker's topic configs.
	all := mustCLI(t, addr, "", "topic", "describe", "events", "--all-configs")
	for _, want := range []string{"retention.ms  ", "604800000", "DEFAULT_CONFIG", "cleanup.policy"} {
		if !strings.Contains(all, want) {
			t.Errorf("topic describe --all-configs: no %q in\n%s", want, all)
		}
	}
	s.fails(`topic "nope" does not exist (list topics with `+"`strata topic list`)", "", "topic", "describe", "orders", "nope")

	s.ok("", "topic", "alter-config", "orders", "--set", "retention.ms=60000", "--delete", "max.message.bytes")
	s.ok("", "topic", "alter-config", "orders", "--set", "segment.ms=3600000", "--json")
	s.fails("nothing to change", "", "topic", "alter-config", "orders")
	s.fails(`unknown topic config name "bogus"`, "", "topic", "alter-config", "orders", "--set", "bogus=1")
	s.fails(`topic "nope" does not exist`, "", "topic", "alter-config", "nope", "--set", "retention.ms=1")
	s.ok("", "topic", "describe", "orders")

	s.ok("", "topic", "add-partitions", "orders", "--total", "5")
	s.ok("", "topic", "add-partitions", "events", "--total", "2", "--json")
	s.fails(`topic "orders" already has 5 partitions`, "", "topic", "add-partitions", "orders", "--total", "4")
	s.fails("--total 0", "", "topic", "add-partitions", "orders")
	s.fails(`topic "nope" does not exist`, "", "topic", "add-partitions", "nope", "--total", "2")

	s.ok("", "topic", "delete", "events")
	s.ok("", "topic", "delete", "audit", "--json")
	s.fails(`topic "events" does not exist`, "", "topic", "delete", "events")
	s.fails("give at least one topic name", "", "topic", "delete")
	s.ok("", "topic", "list")
	s.check("topic.golden")
}
