package main

import "testing"

func TestUserCommands(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)
	s.ok("", "user", "list")
	s.ok("", "user", "create", "alice", "--password", "a-secret")
	s.ok("b-secret\n", "user", "create", "bob", "--password", "-", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192")
	s.ok("", "user", "create", "alice", "--password", "a-secret", "--mechanism", "scram-sha-512")
	s.ok("", "user", "list")
	s.ok("", "user", "list", "--json")
	s.fails("must be between 4096 and 16384", "", "user", "create", "carol", "--password", "x", "--iterations", "100")
	s.fails("unknown mechanism", "", "user", "create", "carol", "--password", "x", "--mechanism", "PLAIN")
	s.fails("give a password", "", "user", "create", "carol")
	s.ok("", "user", "delete", "alice", "--mechanism", "SCRAM-SHA-256")
	s.fails(`user "alice" has no such credential`, "", "user", "delete", "alice", "--mechanism", "SCRAM-SHA-256")
	s.ok("", "user", "delete", "bob")
	s.fails(`user "bob" has no such credential`, "", "user", "delete", "bob")
	s.ok("", "user", "list")
	s.check("user.golden")
}
