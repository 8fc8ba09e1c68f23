package kafka

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	ssasl "github.com/strata-io/strata/internal/sasl"
	soauth "github.com/strata-io/strata/internal/sasl/oauth"
	"github.com/strata-io/strata/internal/server"
)

// oauthFixture is an identity provider for tests: an RSA key in a JWKS
// file, and another key that is not in it.
type oauthFixture struct {
	key, stranger *rsa.PrivateKey
	jwksURL       string
}

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, set, 0o600); err != nil {
		t.Fatal(err)
	}
	return &oauthFixture{key: key, stranger: stranger, jwksURL: "file:" + p}
}

func (f *oauthFixture) validator(t *testing.T) ssasl.TokenValidator {
	t.Helper()
	v, err := soauth.New(soauth.Config{JWKSURL: f.jwksURL, ClockSkew: 30 * time.Second, Audience: []string{"strata"}, Issuer: "test-idp"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// token signs a token for sub that expires in exp (negative: expired).
func (f *oauthFixture) token(t *testing.T, key *rsa.PrivateKey, sub string, exp time.Duration) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"sub": sub, "iss": "test-idp", "aud": "strata", "iat": now.Unix(), "exp": now.Add(exp).Unix()})
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// principalLog records the principal of every "authenticated" log line,
// and "rejected" for each rejected credential.
type principalLog struct {
	mu         *sync.Mutex
	principals *[]string
}

func newPrincipalLog() principalLog {
	return principalLog{mu: &sync.Mutex{}, principals: new([]string)}
}

func (p principalLog) Enabled(context.Context, slog.Level) bool { return true }
func (p principalLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p principalLog) WithGroup(string) slog.Handler            { return p }
func (p principalLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "rejected SASL credential" {
		p.mu.Lock()
		*p.principals = append(*p.principals, "rejected")
		p.mu.Unlock()
	}
	if r.Message == "authenticated" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "principal" {
				p.mu.Lock()
				*p.principals = append(*p.principals, a.Value.String())
				p.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (p principalLog) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), *p.principals...)
}

// TestOAuthBearerFranz: franz-go's OAUTHBEARER client with a signed token
// produces, as User:<sub>; an expired token, or one signed by a key not in
// the JWKS, does not authenticate. (franz-go's client gives up on the
// invalid_token challenge itself, without the ^A that would make the
// broker answer SASL_AUTHENTICATION_FAILED; TestOAuthBearerInvalidToken
// checks that exchange on the wire.)
func TestOAuthBearerFranz(t *testing.T) {
	f := newOAuthFixture(t)
	plog := newPrincipalLog()
	_, addr := startSASLWith(t, Config{Logger: slog.New(plog), SASL: SASLConfig{
		EnabledMechanisms: []string{ssasl.OAuthBearer},
		OAuthBearer:       f.validator(t),
	}}, server.ProtocolSASLPlaintext)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl := saslClient(t, addr, oauth.Auth{Token: f.token(t, f.key, "svc-orders", time.Hour)}.AsMechanism())
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := plog.all()
	if len(got) == 0 {
		t.Fatal("no authentication logged")
	}
	for _, p := range got {
		if p != "User:svc-orders" {
			t.Fatalf("principal %q, want User:svc-orders", p)
		}
	}

	for name, tok := range map[string]string{
		"expired":        f.token(t, f.key, "svc-orders", -time.Hour),
		"wrong signer":   f.token(t, f.stranger, "svc-orders", time.Hour),
		"not even a JWT": "abc",
	} {
		if err := saslClient(t, addr, oauth.Auth{Token: tok}.AsMechanism()).Ping(ctx); err == nil {
			t.Errorf("%s: authenticated", name)
		}
	}
	// Each bad token is rejected with a log line saying why (franz-go
	// closes without the ^A, so there is no failure to log).
	after := plog.all()
	if n := len(after) - len(got); n != 3 || after[len(after)-1] != "rejected" {
		t.Fatalf("log after the bad tokens: %q", after[len(got):])
	}
}

// TestOAuthBearerInvalidToken: on the wire, an expired or wrongly signed
// token is answered with the invalid_token challenge and no error; the
// client's ^A then gets SASL_AUTHENTICATION_FAILED, after
// connection.failed.authentication.delay.ms, and the connection is closed
// (RFC 7628 section 3.2.2, as Kafka's OAuthBearerSaslServer and Java
// client do it).
func TestOAuthBearerInvalidToken(t *testing.T) {
	const delay = 200 * time.Millisecond
	f := newOAuthFixture(t)
	_, addr := startSASL(t, SASLConfig{
		EnabledMechanisms:         []string{ssasl.OAuthBearer, ssasl.Plain},
		OAuthBearer:               f.validator(t),
		FailedAuthenticationDelay: delay,
	})
	for name, tok := range map[string]string{
		"expired":      f.token(t, f.key, "alice", -time.Hour),
		"wrong signer": f.token(t, f.stranger, "alice", time.Hour),
	} {
		c := dialRaw(t, addr)
		mustCode(t, name+": handshake", c.handshake(ssasl.OAuthBearer).ErrorCode, 0)
		resp := c.authenticate(2, ssasl.OAuthBearerInitial("", tok))
		mustCode(t, name+": token", resp.ErrorCode, 0)
		if string(resp.SASLAuthBytes) != `{"status":"invalid_token"}` {
			t.Fatalf("%s: challenge %q", name, resp.SASLAuthBytes)
		}
		start := time.Now()
		resp = c.authenticate(2, []byte{0x01})
		if took := time.Since(start); took < delay {
			t.Fatalf("%s: failure answered after %v, before the delay", name, took)
		}
		mustCode(t, name+": ^A", resp.ErrorCode, kerr.SaslAuthenticationFailed.Code)
		if resp.ErrorMessage == nil || *resp.ErrorMessage != `{"status":"invalid_token"}` {
			t.Fatalf("%s: message %v, want the JSON status alone (as Kafka)", name, resp.ErrorMessage)
		}
		c.expectClosed(name + ": after failure")
	}

	// An authzid that is not the token's subject fails at once.
	c := dialRaw(t, addr)
	mustCode(t, "handshake", c.handshake(ssasl.OAuthBearer).ErrorCode, 0)
	resp := c.authenticate(2, ssasl.OAuthBearerInitial("bob", f.token(t, f.key, "alice", time.Hour)))
	mustCode(t, "authzid bob", resp.ErrorCode, kerr.SaslAuthenticationFailed.Code)
	c.expectClosed("after authzid mismatch")
}

// TestOAuthBearerSessionLifetime: with connections.max.reauth.ms the
// session lifetime is cut to the token's remaining life (KIP-368, as
// Kafka's ReauthInfo); without it there is none; a request after the
// token's end without re-authentication closes the connection.
func TestOAuthBearerSessionLifetime(t *testing.T) {
	f := newOAuthFixture(t)
	cfg := SASLConfig{EnabledMechanisms: []string{ssasl.OAuthBearer}, OAuthBearer: f.validator(t), MaxReauth: time.Hour}
	_, addr := startSASL(t, cfg)
	c := dialRaw(t, addr)
	mustCode(t, "handshake", c.handshake(ssasl.OAuthBearer).ErrorCode, 0)
	resp := c.authenticate(1, ssasl.OAuthBearerInitial("", f.token(t, f.key, "alice", 2*time.Second)))
	mustCode(t, "authenticate", resp.ErrorCode, 0)
	// exp has second precision: between 1 s and 2 s are left.
	if l := resp.SessionLifetimeMillis; l <= 0 || l > 2000 {
		t.Fatalf("session lifetime %d ms, want at most the token's 2 s", l)
	}
	c.do(metadataReq())
	time.Sleep(time.Duration(resp.SessionLifetimeMillis)*time.Millisecond + 100*time.Millisecond)
	c.send(metadataReq())
	c.expectClosed("after the token's end")

	// A token outliving connections.max.reauth.ms gets the configured
	// lifetime.
	resp = loginOAuth(t, dialRaw(t, addr), f.token(t, f.key, "alice", 3*time.Hour))
	if resp.SessionLifetimeMillis != time.Hour.Milliseconds() {
		t.Fatalf("session lifetime %d ms, want connections.max.reauth.ms", resp.SessionLifetimeMillis)
	}

	// Without connections.max.reauth.ms: no lifetime, as Kafka.
	cfg.MaxReauth = 0
	_, addr = startSASL(t, cfg)
	resp = loginOAuth(t, dialRaw(t, addr), f.token(t, f.key, "alice", time.Minute))
	if resp.SessionLifetimeMillis != 0 {
		t.Fatalf("session lifetime %d ms without connections.max.reauth.ms", resp.SessionLifetimeMillis)
	}
}

func loginOAuth(t *testing.T, c *rawConn, tok string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	mustCode(t, "handshake", c.handshake(ssasl.OAuthBearer).ErrorCode, 0)
	resp := c.authenticate(1, ssasl.OAuthBearerInitial("", tok))
	mustCode(t, "authenticate", resp.ErrorCode, 0)
	return resp
}

// TestOAuthBearerReauthenticationFranz: with tokens that live 3 s and
// connections.max.reauth.ms of an hour, the session lifetime is the
// token's, and franz-go re-authenticates with a fresh token before it
// ends (KIP-368), so producing goes on past the first token's exp.
func TestOAuthBearerReauthenticationFranz(t *testing.T) {
	f := newOAuthFixture(t)
	var reauths atomic.Int32
	logger := slog.New(countHandler{msg: "authenticated", attr: "reauthentication", n: &reauths})
	_, addr := startSASLWith(t, Config{Logger: logger, SASL: SASLConfig{
		EnabledMechanisms: []string{ssasl.OAuthBearer},
		OAuthBearer:       f.validator(t),
		MaxReauth:         time.Hour,
	}}, server.ProtocolSASLPlaintext)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := saslClient(t, addr, oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		return oauth.Auth{Token: f.token(t, f.key, "svc", 3*time.Second)}, nil
	}))
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if reauths.Load() == 0 {
		t.Fatal("the client never re-authenticated within its token's life")
	}
}
