package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupCommands lists, describes, resets and deletes a group that has
// committed offsets but no members; testdata/group.golden holds the
// transcript.
func TestGroupCommands(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)
	s.ok("", "group", "list")
	s.ok("", "topic", "create", "orders", "--partitions", "2")
	s.ok("", "topic", "create", "audit", "--partitions", "1")
	s.ok("a\nb\nc\nd\n", "produce", "orders", "--partition", "0")
	s.ok("e\nf\n", "produce", "orders", "--partition", "1")
	s.ok("x\n", "produce", "audit")
	s.ok("", "consume", "orders", "--group", "billing", "--from-beginning", "--max", "6")
	s.ok("", "consume", "audit", "--group", "billing", "--from-beginning", "--max", "1")
	s.ok("more\n", "produce", "orders", "--partition", "1")

	s.ok("", "group", "list")
	s.ok("", "group", "list", "--json")
	s.ok("", "group", "describe", "billing")
	s.ok("", "group", "describe", "billing", "--json")
	s.fails(`group "nope" does not exist (list groups with `+"`strata group list`)", "", "group", "describe", "nope")

	// Dry run: shows the plan and commits nothing.
	s.ok("", "group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest")
	s.ok("", "group", "describe", "billing")
	s.ok("", "group", "reset-offsets", "billing", "--topic", "orders:1", "--to-offset", "1", "--execute")
	s.ok("", "group", "reset-offsets", "billing", "--topic", "orders:0", "--to-offset", "99", "--execute", "--json")
	s.ok("", "group", "reset-offsets", "billing", "--topic", "audit", "--to-earliest", "--execute")
	s.ok("", "group", "describe", "billing")
	s.ok("", "group", "reset-offsets", "billing", "--topic", "orders", "--topic", "audit", "--to-latest", "--execute")
	// A group that does not exist yet is created, as with Kafka's tool.
	s.ok("", "group", "reset-offsets", "fresh", "--topic", "audit", "--to-earliest", "--execute")
	s.ok("", "group", "describe", "billing", "fresh")

	s.fails("give exactly one of --to-earliest, --to-latest and --to-offset N", "", "group", "reset-offsets", "billing", "--topic", "orders")
	s.fails("give exactly one of", "", "group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--to-latest")
	s.fails("give the topics to reset with --topic", "", "group", "reset-offsets", "billing", "--to-earliest")
	s.fails(`topic "nope" does not exist`, "", "group", "reset-offsets", "billing", "--topic", "nope", "--to-earliest")
	s.fails(`topic "orders" has partitions 0 to 1`, "", "group", "reset-offsets", "billing", "--topic", "orders:5", "--to-earliest")
	s.fails(`"x" is not a partition number`, "", "group", "reset-offsets", "billing", "--topic", "orders:x", "--to-earliest")
	s.fails("--to-offset -1: must be 0 or more", "", "group", "reset-offsets", "billing", "--topic", "orders", "--to-offset", "-1")

	s.ok("", "group", "delete", "billing")
	s.ok("", "group", "delete", "fresh", "--json")
	s.fails(`group "billing" does not exist`, "", "group", "delete", "billing")
	s.ok("", "group", "list")
	s.check("group.golden")
}

// TestGroupActiveMembers describes running classic and KIP-848 consumer
// groups, and checks that reset-offsets and delete refuse while they have
// members; testdata/group_active.golden holds the transcript.
func TestGroupActiveMembers(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)
	s.ok("", "topic", "create", "orders", "--partitions", "3")
	s.ok("a\nb\n", "produce", "orders", "--partition", "0")
	s.ok("c\n", "produce", "orders", "--partition", "2")

	// Members that never commit, so the committed offsets are known.
	startMember(t, addr, "classic-g", "classic-member")
	startMember(t, addr, "kip848-g", "kip848-member", kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	adm := testAdmin(t, addr)
	waitFor(t, "both groups to assign all partitions", func() bool {
		descs, _, err := describeGroups(context.Background(), adm, []string{"classic-g", "kip848-g"})
		if err != nil || len(descs) != 2 {
			return false
		}
		for _, d := range descs {
			if d.State != "Stable" || len(d.Members) != 1 || len(d.Members[0].Assignment) != 1 || len(d.Members[0].Assignment[0].Partitions) != 3 {
				return false
			}
		}
		return true
	})

	s.ok("", "group", "list")
	s.ok("", "group", "describe", "classic-g")
	s.ok("", "group", "describe", "kip848-g", "--json")
	s.fails(`group "classic-g" has 1 active member (state Stable); offsets can only be reset while it has none: stop its consumers first`,
		"", "group", "reset-offsets", "classic-g", "--topic", "orders", "--to-earliest")
	s.fails(`group "kip848-g" has 1 active member`, "", "group", "reset-offsets", "kip848-g", "--topic", "orders", "--to-earliest", "--execute")
	s.fails(`group "classic-g" has active members; stop its consumers first`, "", "group", "delete", "classic-g")
	s.check("group_active.golden")
}

// startMember runs a group consumer of "orders" until the test ends.
func startMember(t *testing.T, addr, group, clientID string, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(clientID),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
}

func testAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestGroupDescribeJSONFields pins the JSON field names scripts rely on.
func TestGroupDescribeJSONFields(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "t", "--partitions", "1")
	mustCLI(t, addr, "1\n2\n", "produce", "t")
	mustCLI(t, addr, "", "consume", "t", "--group", "g", "--from-beginning", "--max", "1")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, addr, "", "group", "describe", "g", "--json")), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"group", "state", "type", "protocol_type", "protocol", "coordinator", "members", "offsets", "total_lag"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("group describe --json: no %q in %v", k, raw[0])
		}
	}
	off := raw[0]["offsets"].([]any)[0].(map[string]any)
	for _, k := range []string{"topic", "partition", "committed_offset", "log_end_offset", "lag", "member_id"} {
		if _, ok := off[k]; !ok {
			t.Errorf("group describe --json offsets: no %q in %v", k, off)
		}
	}
	if !strings.Contains(mustCLI(t, addr, "", "group", "list", "--json"), `"group": "g"`) {
		t.Error("group list --json: no group g")
	}
}
