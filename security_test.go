package strata_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

// Principals authenticated by SASL (SCRAM) and by a client certificate
// (mutual TLS, mapped by ssl.principal.mapping.rules) are the ones the
// ACLs name: each gets exactly what its ACLs allow, on real listeners
// with real clients.
func TestAuthenticatedPrincipalsAreAuthorized(t *testing.T) {
	f := newTLSFixture(t)
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners":                      "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
		"inter.broker.listener.name":     "PLAINTEXT",
		"ssl.keystore.location":          f.keyStore,
		"ssl.truststore.location":        f.trust,
		"ssl.client.auth":                "required",
		"ssl.principal.mapping.rules":    `RULE:^CN=([^,]*).*$/$1/,DEFAULT`,
		"sasl.enabled.mechanisms":        "SCRAM-SHA-256",
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                    "User:ANONYMOUS", // the PLAINTEXT listener, for set-up
		"allow.everyone.if.no.acl.found": "false",
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.ListenerAddr("PLAINTEXT")))
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-pw"},
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-pw"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"open", "closed"} {
		if r, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	acls := kadm.NewACLs().Allow("User:alice").Topics("open").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	rs, err := adm.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	acls = kadm.NewACLs().Allow("User:carol").Topics("open").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	rs2, err := adm.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(rs, rs2...) {
		if r.Err != nil {
			t.Fatalf("create ACL: %v", r.Err)
		}
	}

	scramUser := func(user, pass, topic string) *kgo.Client {
		return newClient(t, b.ListenerAddr("SASL_PLAINTEXT"), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()),
			kgo.DefaultProduceTopic(topic), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(10*time.Second))
	}
	if err := scramUser("alice", "alice-pw", "open").ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("alice to open (WRITE allowed): %v", err)
	}
	if err := scramUser("alice", "alice-pw", "closed").ProduceSync(ctx, &kgo.Record{Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice to closed: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := scramUser("bob", "bob-pw", "open").ProduceSync(ctx, &kgo.Record{Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob to open (no ACL): %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// carol's certificate maps to User:carol, who may describe "open"
	// only: listing every topic shows her that one.
	carol := f.ca.Issue(t, "carol", tlstest.Options{})
	cl := newClient(t, b.ListenerAddr("SSL"), kgo.DialTLSConfig(f.clientTLS(t, carol)))
	md, err := kadm.NewClient(cl).Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := md.Topics.Names(); !slices.Equal(names, []string{"open"}) {
		t.Fatalf("carol sees topics %v, want [open]", names)
	}
	// The anonymous super user sees both.
	md, err = adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := md.Topics.Names(); !slices.Contains(names, "closed") || !slices.Contains(names, "open") {
		t.Fatalf("the super user sees %v", names)
	}
}
