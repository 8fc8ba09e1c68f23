package main

import (
	"net"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/kafka"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

// saslBroker serves a broker's handler on a SASL_PLAINTEXT listener of its
// own (written before strata.Start served SASL listeners; it also keeps
// the PLAIN user in kafka.Config), with one PLAIN user, admin/admin-secret,
// and returns its address.
func saslBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	metaCfg := log.DefaultConfig()
	b, err := broker.Open(broker.Config{LogDirs: []string{dir}, Internal: map[log.TopicPartition]log.Config{cluster.MetadataTopic: metaCfg}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ml, err := b.Internal(cluster.MetadataTopic, metaCfg)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := cluster.Open(ml, cluster.Options{NodeID: 1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := kafka.New(kafka.Config{NodeID: 1, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port),
		NumPartitions: 1, TopicDefaults: broker.DefaultTopicConfig(),
		SASL: kafka.SASLConfig{PlainUsers: map[string]string{"admin": "admin-secret"}}}, b, meta)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	srv := server.New(h, server.Config{Listener: server.ProtocolSASLPlaintext, Protocol: server.ProtocolSASLPlaintext})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// The client commands authenticate with --sasl-*: the PLAIN admin creates
// a SCRAM user, who then works with SCRAM; a wrong password or a missing
// mechanism fails with a clear message.
func TestCLISASL(t *testing.T) {
	addr := saslBroker(t)
	admin := []string{"--sasl-mechanism", "PLAIN", "--sasl-user", "admin", "--sasl-password", "admin-secret"}
	mustCLI(t, addr, "", append([]string{"user", "create", "alice", "--password", "a-pass", "--mechanism", "SCRAM-SHA-512"}, admin...)...)
	t.Setenv(saslPasswordEnv, "a-pass")
	out := mustCLI(t, addr, "", "user", "list", "--sasl-mechanism", "scram-sha-512", "--sasl-user", "alice")
	if !strings.Contains(out, "alice  SCRAM-SHA-512  4096") {
		t.Fatalf("user list: %q", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "list", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "--sasl-password", "wrong"}, "refused the SASL authentication"},
		{[]string{"user", "list", "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice"}, "refused the SASL authentication"},
		{[]string{"user", "list", "--sasl-mechanism", "GSSAPI", "--sasl-user", "alice"}, "unknown --sasl-mechanism"},
		{[]string{"user", "list", "--sasl-user", "alice"}, "need --sasl-mechanism"},
		// No SASL at all: the broker closes the connection, and franz-go
		// says what that usually means.
		{[]string{"user", "list"}, "is SASL missing"},
	} {
		_, _, err := runCLI(t, addr, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
