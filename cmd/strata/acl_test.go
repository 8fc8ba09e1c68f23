package main

import (
	"strings"
	"testing"

	"github.com/strata-io/strata"
)

// TestACLCommands: add, list (all, filtered, MATCH) and remove against a
// broker with an authorizer, where the CLI's principal (User:ANONYMOUS on
// PLAINTEXT) is a super user.
func TestACLCommands(t *testing.T) {
	b, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: map[string]string{
		"authorizer.class.name": "strata",
		"super.users":           "User:ANONYMOUS",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	addr := b.Addr()
	mustCLI(t, addr, "", "acl", "add", "--allow-principal", "User:alice", "--operation", "read", "--operation", "describe", "--topic", "orders", "--resource-pattern-type", "prefixed")
	mustCLI(t, addr, "", "acl", "add", "--deny-principal", "User:bob", "--host", "10.0.0.1", "--operation", "all", "--group", "g")
	mustCLI(t, addr, "", "acl", "add", "--allow-principal", "User:alice", "--operation", "alter", "--cluster")
	out := mustCLI(t, addr, "", "acl", "list")
	for _, want := range []string{"User:alice", "PREFIXED", "orders", "READ", "DESCRIBE", "User:bob", "10.0.0.1", "DENY", "kafka-cluster", "ALTER"} {
		if !strings.Contains(out, want) {
			t.Errorf("acl list lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 { // header + 4
		t.Errorf("acl list: %d lines:\n%s", n, out)
	}
	out = mustCLI(t, addr, "", "acl", "list", "--topic", "orders-eu", "--resource-pattern-type", "match")
	if strings.Count(out, "User:alice") != 2 || strings.Contains(out, "User:bob") {
		t.Errorf("acl list MATCH orders-eu:\n%s", out)
	}
	out = mustCLI(t, addr, "", "acl", "remove", "--allow-principal", "User:alice", "--topic", "orders", "--operation", "read")
	if !strings.Contains(out, "READ") || strings.Contains(out, "DESCRIBE") {
		t.Errorf("acl remove printed:\n%s", out)
	}
	if _, _, err := runCLI(t, addr, "", "acl", "remove"); err == nil {
		t.Error("acl remove without a filter or --all succeeded")
	}
	if _, _, err := runCLI(t, addr, "", "acl", "add", "--allow-principal", "alice", "--operation", "read", "--topic", "t"); err == nil || !strings.Contains(err.Error(), "INVALID_REQUEST") {
		t.Errorf("acl add with a principal without a type: %v", err)
	}
	mustCLI(t, addr, "", "acl", "remove", "--all")
	if out := mustCLI(t, addr, "", "acl", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after remove --all: %s", out)
	}
}
