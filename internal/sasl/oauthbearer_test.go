package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// fakeValidator accepts tokens "good<principal>" that expire at exp.
type fakeValidator struct{ exp time.Time }

func (f fakeValidator) Validate(tok string) (Token, error) {
	p, ok := strings.CutPrefix(tok, "good")
	if !ok || p == "" {
		return Token{}, errors.New("not a good token")
	}
	return Token{Principal: p, Expiry: f.exp}, nil
}

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		authzid string
		token   string
		ok      bool
	}{
		{"n,,\x01auth=Bearer abc.def.ghi\x01\x01", "", "abc.def.ghi", true},
		{"n,a=alice,\x01auth=Bearer t\x01\x01", "alice", "t", true},
		{"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01", "a,b=c", "t", true},
		{"n,,\x01auth=bearer t\x01\x01", "", "t", true},
		{"n,,\x01auth=Bearer  t\x01\x01", "", "t", true},
		{"n,,\x01traceId=x y\x01auth=Bearer t\x01logicalCluster=lkc-1\x01\x01", "", "t", true},
		{"n,,\x01auth=Bearer t\x01", "", "", false},                      // no final ^A
		{"n,,\x01\x01", "", "", false},                                   // no auth
		{"y,,\x01auth=Bearer t\x01\x01", "", "", false},                  // channel binding flag
		{"p=tls-unique,,\x01auth=Bearer t\x01\x01", "", "", false},       // channel binding
		{"n,x=alice,\x01auth=Bearer t\x01\x01", "", "", false},           // not a=
		{"n,a=a=b,\x01auth=Bearer t\x01\x01", "", "", false},             // bad escape
		{"n,,\x01auth=Basic t\x01\x01", "", "", false},                   // not bearer
		{"n,,\x01auth=Bearer t!t\x01\x01", "", "", false},                // token characters
		{"n,,\x01auth=Bearer \x01\x01", "", "", false},                   // empty token
		{"n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "", "", false}, // auth twice
		{"n,,\x01k1=v\x01auth=Bearer t\x01\x01", "", "", false},          // key not letters
		{"n,,\x01k=\x01auth=Bearer t\x01\x01", "", "", false},            // empty value
		{"n,,\x01k=\x00\x01auth=Bearer t\x01\x01", "", "", false},        // value control character
		{"n,,\x01auth=Bearer t\x01\x01junk", "", "", false},              // after the end
		{"n,,auth=Bearer t\x01\x01", "", "", false},                      // no leading ^A
		{"", "", "", false},
	} {
		authzid, token, err := ParseOAuthBearer([]byte(tc.msg))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.msg, err)
			continue
		}
		if err != nil && !errors.Is(err, ErrAuthenticationFailed) {
			t.Errorf("%q: err %v is not ErrAuthenticationFailed", tc.msg, err)
		}
		if authzid != tc.authzid || token != tc.token {
			t.Errorf("%q: authzid %q token %q, want %q %q", tc.msg, authzid, token, tc.authzid, tc.token)
		}
	}
}

// TestOAuthBearerFranzInitial: the initial response franz-go's client
// sends (with an authzid and extensions) parses, and is what
// OAuthBearerInitial builds.
func TestOAuthBearerFranzInitial(t *testing.T) {
	mech := oauth.Auth{Zid: "alice", Token: "aaa.bbb.ccc", Extensions: map[string]string{"traceId": "123"}}.AsMechanism()
	_, msg, err := mech.Authenticate(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	authzid, token, err := ParseOAuthBearer(msg)
	if err != nil || authzid != "alice" || token != "aaa.bbb.ccc" {
		t.Fatalf("franz-go's initial response %q: %q %q %v", msg, authzid, token, err)
	}
	if got := OAuthBearerInitial("alice", "aaa.bbb.ccc", "traceId", "123"); string(got) != string(msg) {
		t.Fatalf("OAuthBearerInitial %q, franz-go %q", got, msg)
	}
}

func TestOAuthBearerServer(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	ms := New(Config{OAuthBearer: fakeValidator{exp: exp}})
	if !Supported(OAuthBearer) {
		t.Fatal("OAUTHBEARER not supported")
	}

	s, _ := ms.NewServer(OAuthBearer)
	resp, done, err := s.Step(OAuthBearerInitial("alice", "goodalice"))
	if err != nil || !done || len(resp) != 0 || s.User() != "alice" {
		t.Fatalf("good token: %q %v %v user %q", resp, done, err, s.User())
	}
	if e := s.(Expiring).Expiry(); !e.Equal(exp) {
		t.Fatalf("expiry %v, want %v", e, exp)
	}
	if _, _, err := s.Step([]byte("\x01")); err == nil {
		t.Fatal("step after completion succeeded")
	}

	// An invalid token: the JSON error as a challenge, then the client's
	// ^A, then failure (RFC 7628 section 3.2.2, Kafka's OAuthBearerSaslServer).
	s, _ = ms.NewServer(OAuthBearer)
	resp, done, err = s.Step(OAuthBearerInitial("", "bad"))
	if err != nil || done || string(resp) != `{"status":"invalid_token"}` {
		t.Fatalf("bad token: %q %v %v", resp, done, err)
	}
	if r := s.(Rejecting).Rejection(); r != "not a good token" {
		t.Fatalf("rejection %q", r)
	}
	_, done, err = s.Step([]byte{0x01})
	// The client is told invalid_token, never why.
	if done || !errors.Is(err, ErrAuthenticationFailed) || strings.Contains(err.Error(), "not a good token") || !strings.HasSuffix(err.Error(), `{"status":"invalid_token"}`) || s.User() != "" {
		t.Fatalf("^A after the error: %v %v", done, err)
	}

	// Anything but ^A after the error fails too.
	s, _ = ms.NewServer(OAuthBearer)
	s.Step(OAuthBearerInitial("", "bad"))
	if _, _, err := s.Step(OAuthBearerInitial("", "goodalice")); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("second token after the error: %v", err)
	}

	// An authzid that is not the token's principal.
	s, _ = ms.NewServer(OAuthBearer)
	if _, _, err := s.Step(OAuthBearerInitial("bob", "goodalice")); !errors.Is(err, ErrAuthenticationFailed) || !strings.Contains(err.Error(), "authorization id") {
		t.Fatalf("authzid bob, token of alice: %v", err)
	}

	// Without a validator every token fails.
	s, _ = New(Config{}).NewServer(OAuthBearer)
	if _, _, err := s.Step(OAuthBearerInitial("", "goodalice")); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("no validator: %v", err)
	}
}

// FuzzOAuthBearer feeds arbitrary initial responses to the parser and
// the OAUTHBEARER server. Invariants: no panic; a parse error wraps
// ErrAuthenticationFailed; a parsed token is non-empty and made of
// base64url characters and dots; an exchange completes only with a token
// the validator accepts, for its principal. The seed corpus is in
// testdata/fuzz/FuzzOAuthBearer.
func FuzzOAuthBearer(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer goodalice\x01\x01"))
	f.Add([]byte("n,a=alice,\x01auth=Bearer eyJhbGciOiJub25lIn0.e30.\x01k=v\x01\x01"))
	f.Add([]byte("n,,\x01auth=Bearer bad\x01\x01"))
	ms := New(Config{OAuthBearer: fakeValidator{exp: time.Now().Add(time.Hour)}})
	f.Fuzz(func(t *testing.T, msg []byte) {
		authzid, token, err := ParseOAuthBearer(msg)
		if err != nil {
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Fatalf("error %v is not ErrAuthenticationFailed", err)
			}
		} else if !validTokenChars(token) {
			t.Fatalf("parsed token %q has characters a JWS has not", token)
		}
		s, _ := ms.NewServer(OAuthBearer)
		_, done, serr := s.Step(msg)
		if done {
			if err != nil || !strings.HasPrefix(token, "good") || s.User() != strings.TrimPrefix(token, "good") || (authzid != "" && authzid != s.User()) {
				t.Fatalf("%q authenticated %q (token %q authzid %q, parse error %v)", msg, s.User(), token, authzid, err)
			}
		}
		if serr != nil && !errors.Is(serr, ErrAuthenticationFailed) {
			t.Fatalf("step error %v is not ErrAuthenticationFailed", serr)
		}
	})
}
