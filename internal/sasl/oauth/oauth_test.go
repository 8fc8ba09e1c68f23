package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey // not in the JWKS
	ecKey    *ecdsa.PrivateKey
	ec384Key *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// jwksJSON is the public key set of the test keys: rsa, ec (P-256) and
// ec384, each named by its kid.
func jwksJSON(t testing.TB) []byte {
	t.Helper()
	testKeys(t)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "rsa", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "ec", Use: "sig"},
		{Key: &ec384Key.PublicKey, KeyID: "ec384", Use: "sig", Algorithm: "ES384"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJWKS(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign makes a JWS of claims with key, alg and kid in its header.
func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts.WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsigned makes a JWT with the given header and claims and an empty
// signature.
func unsigned(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

var now = time.Unix(1_800_000_000, 0)

func goodClaims() map[string]any {
	return map[string]any{
		"sub":   "alice",
		"iss":   "https://idp.example",
		"aud":   []string{"kafka", "other"},
		"iat":   now.Add(-time.Minute).Unix(),
		"nbf":   now.Add(-time.Minute).Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"scope": "produce consume",
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func newValidator(t testing.TB, cfg Config) *Validator {
	t.Helper()
	if cfg.JWKSURL == "" && !cfg.AllowUnsecured {
		cfg.JWKSURL = "file:" + writeJWKS(t, jwksJSON(t))
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 30 * time.Second
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidate(t *testing.T) {
	testKeys(t)
	v := newValidator(t, Config{Audience: []string{"kafka"}, Issuer: "https://idp.example"})
	hmacKey := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name  string
		token string
		err   string // "" for valid
	}{
		{"RS256", sign(t, rsaKey, jose.RS256, "rsa", goodClaims()), ""},
		{"RS512", sign(t, rsaKey, jose.RS512, "rsa", goodClaims()), ""},
		{"PS256", sign(t, rsaKey, jose.PS256, "rsa", goodClaims()), ""},
		{"ES256", sign(t, ecKey, jose.ES256, "ec", goodClaims()), ""},
		{"ES384", sign(t, ec384Key, jose.ES384, "ec384", goodClaims()), ""},
		{"aud string", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "aud", "kafka")), ""},
		{"exp within skew", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "exp", now.Add(-20*time.Second).Unix())), ""},
		{"expired", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "exp", now.Add(-time.Minute).Unix())), "expired"},
		{"no exp", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "exp", nil)), "no exp"},
		{"exp not a number", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "exp", "soon")), "NumericDate"},
		{"nbf in the future", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "nbf", now.Add(time.Minute).Unix())), "nbf"},
		{"iat in the future", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "iat", now.Add(time.Minute).Unix())), "iat"},
		{"nbf within skew", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "nbf", now.Add(20*time.Second).Unix())), ""},
		{"wrong audience", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "aud", []string{"other"})), "audience"},
		{"no audience", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "aud", nil)), "audience"},
		{"wrong issuer", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "iss", "https://evil.example")), "issuer"},
		{"no sub", sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "sub", nil)), "no sub"},
		{"bad signature", sign(t, rsaKey2, jose.RS256, "rsa", goodClaims()), "signature"},
		{"unknown kid", sign(t, rsaKey, jose.RS256, "nope", goodClaims()), "no key"},
		{"kid of another key type", sign(t, ecKey, jose.ES256, "rsa", goodClaims()), "does not fit"},
		{"curve not the alg's", sign(t, ecKey, jose.ES256, "ec384", goodClaims()), "does not fit"},
		{"JWK alg not the token's", sign(t, ec384Key, jose.ES384, "ec", goodClaims()), "does not fit"},
		{"HS256", sign(t, hmacKey, jose.HS256, "rsa", goodClaims()), "refused"},
		{"alg none", unsigned(map[string]any{"alg": "none"}, goodClaims()), "unsecured"},
		{"not a JWT", "abc.def", "malformed"},
		{"garbage header", "!!!.e30.", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := v.Validate(tc.token)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				if tok.Principal != "alice" || !tok.Expiry.Equal(time.Unix(goodClaims()["exp"].(int64), 0)) && tc.name != "exp within skew" {
					t.Fatalf("token %+v", tok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestValidateHMACWithPublicKeyAsSecret: the classic alg confusion, an
// HS256 token whose MAC key is the RSA public key's bytes, is refused
// before any key is looked at.
func TestValidateHMACWithPublicKeyAsSecret(t *testing.T) {
	v := newValidator(t, Config{})
	secret := jwksJSON(t)
	tok := sign(t, secret, jose.HS256, "rsa", goodClaims())
	if _, err := v.Validate(tok); err == nil {
		t.Fatal("HS256 token accepted")
	}
}

func TestValidateScopeAndSubClaim(t *testing.T) {
	testKeys(t)
	v := newValidator(t, Config{SubClaim: "client_id", ScopeClaim: "scp"})
	tok, err := v.Validate(sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "client_id", "svc-1", "scp", []string{"a", "b"})))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Principal != "svc-1" || strings.Join(tok.Scope, " ") != "a b" {
		t.Fatalf("token %+v", tok)
	}
	if _, err := v.Validate(sign(t, rsaKey, jose.RS256, "rsa", with(goodClaims(), "client_id", nil))); err == nil {
		t.Fatal("token without the principal claim accepted")
	}
}

// TestValidateNoKid: a token without kid uses the only key fitting its
// alg; with two candidates it is refused rather than guessed.
func TestValidateNoKid(t *testing.T) {
	testKeys(t)
	v := newValidator(t, Config{})
	if _, err := v.Validate(sign(t, rsaKey, jose.RS256, "", goodClaims())); err != nil {
		t.Fatalf("one RSA key, no kid: %v", err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "a"}, {Key: &rsaKey2.PublicKey, KeyID: "b"}}})
	v2 := newValidator(t, Config{JWKSURL: "file:" + writeJWKS(t, set)})
	if _, err := v2.Validate(sign(t, rsaKey, jose.RS256, "", goodClaims())); err == nil || !strings.Contains(err.Error(), "no kid") {
		t.Fatalf("two RSA keys, no kid: %v", err)
	}
}

func TestValidateUnsecured(t *testing.T) {
	v := newValidator(t, Config{AllowUnsecured: true})
	tok, err := v.Validate(unsigned(map[string]any{"alg": "none"}, goodClaims()))
	if err != nil || tok.Principal != "alice" {
		t.Fatalf("unsecured token: %+v %v", tok, err)
	}
	if _, err := v.Validate(unsigned(map[string]any{"alg": "none"}, with(goodClaims(), "exp", now.Add(-time.Hour).Unix()))); err == nil {
		t.Fatal("expired unsecured token accepted")
	}
	if _, err := v.Validate(unsigned(map[string]any{"alg": "none"}, goodClaims()) + "c2ln"); err == nil {
		t.Fatal("alg none with a signature accepted")
	}
	testKeys(t)
	if _, err := v.Validate(sign(t, rsaKey, jose.RS256, "rsa", goodClaims())); err == nil || !strings.Contains(err.Error(), "no sasl.oauthbearer.jwks.endpoint.url") {
		t.Fatalf("signed token without a JWKS: %v", err)
	}
}

func TestNewNeedsJWKSOrUnsecured(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "sasl.oauthbearer.jwks.endpoint.url") {
		t.Fatalf("New without JWKS: %v", err)
	}
	if _, err := New(Config{JWKSURL: "file:" + filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("New with a missing JWKS file succeeded")
	}
	if _, err := New(Config{JWKSURL: "file:" + writeJWKS(t, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))}); err == nil || !strings.Contains(err.Error(), "no usable") {
		t.Fatalf("New with only a symmetric key: %v", err)
	}
	if _, err := New(Config{JWKSURL: "ftp://x/jwks"}); err == nil {
		t.Fatal("New with an ftp URL succeeded")
	}
}

// TestJWKSFileRotation: a key added to the file is used at the next
// token, without waiting for the refresh interval.
func TestJWKSFileRotation(t *testing.T) {
	testKeys(t)
	one, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "one"}}})
	path := writeJWKS(t, one)
	v := newValidator(t, Config{JWKSURL: "file://" + path, Refresh: time.Hour})
	tok2 := sign(t, rsaKey2, jose.RS256, "two", goodClaims())
	if _, err := v.Validate(tok2); err == nil {
		t.Fatal("token of a key not yet in the JWKS accepted")
	}
	both, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "one"}, {Key: &rsaKey2.PublicKey, KeyID: "two"}}})
	// A key of a type go-jose does not know is skipped, not fatal.
	both = []byte(strings.Replace(string(both), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"odd"},`, 1))
	if err := os.WriteFile(path, both, 0o600); err != nil {
		t.Fatal(err)
	}
	// Make sure the stamp differs even on a coarse-grained file system.
	os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if _, err := v.Validate(tok2); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
}

// TestJWKSHTTP: an http endpoint (httptest on 127.0.0.1) is fetched at
// start, and again for an unknown kid once the backoff has passed.
func TestJWKSHTTP(t *testing.T) {
	testKeys(t)
	var mu sync.Mutex
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "one"}}})
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		w.Write(body)
	}))
	defer srv.Close()
	clock := now
	v := newValidator(t, Config{JWKSURL: srv.URL + "/jwks", Refresh: time.Hour, Now: func() time.Time { return clock }})
	if _, err := v.Validate(sign(t, rsaKey, jose.RS256, "one", goodClaims())); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	body, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey2.PublicKey, KeyID: "two"}}})
	mu.Unlock()
	tok2 := sign(t, rsaKey2, jose.RS256, "two", goodClaims())
	if _, err := v.Validate(tok2); err == nil {
		t.Fatal("unknown kid accepted within the backoff")
	}
	clock = clock.Add(missRefreshBackoff)
	if _, err := v.Validate(tok2); err != nil {
		t.Fatalf("unknown kid after the backoff: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fetches != 2 {
		t.Fatalf("%d fetches, want 2", fetches)
	}
}
