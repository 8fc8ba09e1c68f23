package strata_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/strata-io/strata"
)

// TestOAuthBearerStart: a broker with OAUTHBEARER enabled needs a JWKS it
// can read, or unsecured mode asked for by name; otherwise it does not
// start, with a message naming the property. With a JWKS file, franz-go's
// OAUTHBEARER client with an ES256-signed token produces through a
// SASL_PLAINTEXT listener, and one signed by another key is refused.
func TestOAuthBearerStart(t *testing.T) {
	start := func(kv ...string) error {
		props := map[string]string{"sasl.enabled.mechanisms": "SCRAM-SHA-512,OAUTHBEARER"}
		for i := 0; i+1 < len(kv); i += 2 {
			props[kv[i]] = kv[i+1]
		}
		b, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: props})
		if err == nil {
			b.Close()
		}
		return err
	}
	if err := start(); err == nil || !strings.Contains(err.Error(), "sasl.oauthbearer.jwks.endpoint.url") {
		t.Fatalf("start without a JWKS: %v", err)
	}
	if err := start("sasl.oauthbearer.jwks.endpoint.url", "file:"+filepath.Join(t.TempDir(), "nope.json")); err == nil || !strings.Contains(err.Error(), "OAUTHBEARER") {
		t.Fatalf("start with a missing JWKS file: %v", err)
	}
	if err := start("strata.sasl.oauthbearer.unsecured.enable", "true"); err != nil {
		t.Fatalf("start in unsecured mode: %v", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Use: "sig"}}})
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, set, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms": "OAUTHBEARER",
		"sasl.oauthbearer.jwks.endpoint.url":                   "file://" + jwks,
		"sasl.oauthbearer.expected.audience":                   "strata",
	})
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	token := func(key *ecdsa.PrivateKey) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(map[string]any{"sub": "svc", "aud": []string{"strata"}, "exp": time.Now().Add(time.Hour).Unix()})
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		return tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, addr, kgo.SASL(oauth.Auth{Token: token(other)}.AsMechanism()), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err := bad.Ping(ctx); err == nil {
		t.Error("a token signed by a key not in the JWKS was accepted")
	}
	cl := newClient(t, addr, kgo.SASL(oauth.Auth{Token: token(key)}.AsMechanism()), kgo.DefaultProduceTopic("oauth"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce with a signed token: %v", err)
	}
}
