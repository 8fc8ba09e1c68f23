package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// store is a Lookup over credentials made from passwords.
type store map[string][]Credential

func (s store) add(t testing.TB, user, password string, m Scram, iterations int) {
	t.Helper()
	salt := NewSalt()
	salted, err := SaltedPassword(m, password, salt, iterations)
	if err != nil {
		t.Fatal(err)
	}
	s[user] = append(s[user], NewCredential(m, salt, salted, int32(iterations)))
}

func (s store) lookup(user string) []Credential { return s[user] }

// TestRFC7677 replays the SCRAM-SHA-256 exchange of RFC 7677 section 3,
// with the RFC's salt, iterations and server nonce.
func TestRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, err := SaltedPassword(SHA256, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cred := NewCredential(SHA256, salt, salted, 4096)
	old := serverNonce
	serverNonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }
	defer func() { serverNonce = old }()

	ms := New(Config{Lookup: func(u string) []Credential {
		if u == "user" {
			return []Credential{cred}
		}
		return nil
	}})
	s, _ := ms.NewServer(ScramSHA256)
	resp, done, err := s.Step([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done {
		t.Fatalf("client-first: %v %v", done, err)
	}
	if want := "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"; string(resp) != want {
		t.Fatalf("server-first %q, want %q", resp, want)
	}
	resp, done, err = s.Step([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done {
		t.Fatalf("client-final: %v %v", done, err)
	}
	if want := "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="; string(resp) != want {
		t.Fatalf("server-final %q, want %q", resp, want)
	}
	if s.User() != "user" {
		t.Fatalf("user %q", s.User())
	}
	if !cred.CheckPassword("pencil") || cred.CheckPassword("pencil2") {
		t.Fatal("CheckPassword")
	}
}

// TestSaltedPasswordLengths: SaltedPassword is the hash's size (RFC 7677's
// vector above covers SHA-256's value; SHA-512 has no RFC vector, so
// TestFranzClients checks it against franz-go's client).
func TestSaltedPasswordLengths(t *testing.T) {
	for _, m := range []Scram{SHA256, SHA512} {
		b, err := SaltedPassword(m, "p", []byte("salt"), 4096)
		if err != nil || len(b) != m.hash()().Size() {
			t.Fatalf("%s: %d bytes, %v", m, len(b), err)
		}
	}
}

func runClient(t *testing.T, ms *Mechanisms, name string, start func() (func([]byte) (bool, []byte, error), []byte, error)) (string, error) {
	t.Helper()
	srv, ok := ms.NewServer(name)
	if !ok {
		t.Fatalf("no server for %s", name)
	}
	challenge, msg, err := start()
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, done, err := srv.Step(msg)
		if err != nil {
			return "", err
		}
		clientDone, next, cerr := challenge(resp)
		if cerr != nil {
			t.Fatalf("client: %v", cerr)
		}
		if done {
			if !clientDone && len(next) != 0 {
				t.Fatalf("client wants more after server done")
			}
			return srv.User(), nil
		}
		msg = next
	}
}

func TestFranzClients(t *testing.T) {
	st := store{}
	st.add(t, "alice", "secret", SHA256, 4096)
	st.add(t, "alice", "secret", SHA512, 8192)
	st.add(t, "bob,=x", "pw", SHA512, 4096)
	ms := New(Config{Lookup: st.lookup, PlainUsers: map[string]string{"carol": "c-pass"}})
	ctx := context.Background()

	scramCase := func(name, user, pass string) (string, error) {
		a := scram.Auth{User: user, Pass: pass}
		mech := a.AsSha256Mechanism()
		if name == ScramSHA512 {
			mech = a.AsSha512Mechanism()
		}
		return runClient(t, ms, name, func() (func([]byte) (bool, []byte, error), []byte, error) {
			sess, first, err := mech.Authenticate(ctx, "host")
			if err != nil {
				return nil, nil, err
			}
			return sess.Challenge, first, nil
		})
	}
	plainCase := func(user, pass string) (string, error) {
		mech := plain.Auth{User: user, Pass: pass}.AsMechanism()
		return runClient(t, ms, Plain, func() (func([]byte) (bool, []byte, error), []byte, error) {
			sess, first, err := mech.Authenticate(ctx, "host")
			if err != nil {
				return nil, nil, err
			}
			return sess.Challenge, first, nil
		})
	}
	for _, tc := range []struct {
		desc string
		run  func() (string, error)
		user string // "" expects failure
	}{
		{"scram-256 ok", func() (string, error) { return scramCase(ScramSHA256, "alice", "secret") }, "alice"},
		{"scram-512 ok", func() (string, error) { return scramCase(ScramSHA512, "alice", "secret") }, "alice"},
		{"scram-512 escaped name", func() (string, error) { return scramCase(ScramSHA512, "bob,=x", "pw") }, "bob,=x"},
		{"scram-256 wrong password", func() (string, error) { return scramCase(ScramSHA256, "alice", "nope") }, ""},
		{"scram-256 no such mechanism for user", func() (string, error) { return scramCase(ScramSHA256, "bob,=x", "pw") }, ""},
		{"scram unknown user", func() (string, error) { return scramCase(ScramSHA256, "mallory", "x") }, ""},
		{"plain scram credential", func() (string, error) { return plainCase("alice", "secret") }, "alice"},
		{"plain configured user", func() (string, error) { return plainCase("carol", "c-pass") }, "carol"},
		{"plain wrong password", func() (string, error) { return plainCase("alice", "nope") }, ""},
		{"plain unknown user", func() (string, error) { return plainCase("mallory", "x") }, ""},
	} {
		user, err := tc.run()
		if tc.user == "" {
			if !errors.Is(err, ErrAuthenticationFailed) {
				t.Errorf("%s: err %v, want authentication failed", tc.desc, err)
			}
			continue
		}
		if err != nil || user != tc.user {
			t.Errorf("%s: user %q err %v", tc.desc, user, err)
		}
	}
}

// TestUnknownUserLooksKnown: an unknown user gets a server-first message
// of the same shape, with a salt that is the same at every attempt.
func TestUnknownUserLooksKnown(t *testing.T) {
	ms := New(Config{})
	first := func() string {
		s, _ := ms.NewServer(ScramSHA256)
		resp, _, err := s.Step([]byte("n,,n=ghost,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(resp)
	}
	a, b := first(), first()
	salt := func(s string) string { _, after, _ := strings.Cut(s, ",s="); return after }
	if salt(a) != salt(b) {
		t.Fatalf("fake salt changes: %q %q", a, b)
	}
}

func TestPlainMalformed(t *testing.T) {
	ms := New(Config{PlainUsers: map[string]string{"u": "p"}})
	for _, msg := range []string{"", "u\x00p", "\x00\x00p", "\x00u\x00", "x\x00u\x00p", "\x00u\x00p\x00"} {
		s, _ := ms.NewServer(Plain)
		if _, _, err := s.Step([]byte(msg)); !errors.Is(err, ErrAuthenticationFailed) {
			t.Errorf("%q: %v", msg, err)
		}
	}
	s, _ := ms.NewServer(Plain)
	if _, done, err := s.Step([]byte("u\x00u\x00p")); err != nil || !done || s.User() != "u" {
		t.Fatalf("authzid = authcid: %v %v", done, err)
	}
}

func TestScramMalformed(t *testing.T) {
	ms := New(Config{})
	for _, msg := range []string{"", "n,,", "p=tls-unique,,n=u,r=x", "n,,n=u", "n,,n=u=2X,r=a", "n,,m=x,n=u,r=a", "n,a=other,n=u,r=a", "n,,n=,r=a", "n,,n=u,r="} {
		s, _ := ms.NewServer(ScramSHA512)
		if _, _, err := s.Step([]byte(msg)); !errors.Is(err, ErrAuthenticationFailed) {
			t.Errorf("%q: %v", msg, err)
		}
	}
}

func TestParsePlainJAAS(t *testing.T) {
	users, err := ParsePlainJAAS(`org.apache.kafka.common.security.plain.PlainLoginModule required
		username="admin" password="admin-secret"
		user_admin="admin-secret" user_alice="al\"ice;=" user_bob=bare;`)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users["admin"] != "admin-secret" || users["alice"] != `al"ice;=` || users["bob"] != "bare" {
		t.Fatalf("%q", users)
	}
	for _, bad := range []string{
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_a="x"`,
		`org.apache.kafka.common.security.plain.PlainLoginModule always user_a="x";`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_a="x;`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_a;`,
		`org.apache.kafka.common.security.scram.ScramLoginModule required user_a="x";`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_="x";`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_a=;`,
		`org.apache.kafka.common.security.plain.PlainLoginModule required user_a="x" "secret";`,
	} {
		if _, err := ParsePlainJAAS(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestLibrdkafkaFinalNonce: librdkafka's client-final nonce is its own
// nonce followed by the server-first nonce (which already starts with it).
// Kafka accepts a final nonce that ends with the server's, and so must
// strata; a nonce that does not end with it is still refused.
func TestLibrdkafkaFinalNonce(t *testing.T) {
	st := store{}
	st.add(t, "alice", "pw", SHA256, 4096)
	ms := New(Config{Lookup: st.lookup})
	final := func(doubled, tamper bool) error {
		s, _ := ms.NewServer(ScramSHA256)
		const cnonce = "Xw9N{<e\\QLo[V`nFF"
		clientFirstBare := "n=alice,r=" + cnonce
		sf, _, err := s.Step([]byte("n,," + clientFirstBare))
		if err != nil {
			t.Fatal(err)
		}
		var nonce, saltB64 string
		var iter int
		for _, a := range strings.Split(string(sf), ",") {
			switch {
			case strings.HasPrefix(a, "r="):
				nonce = a[2:]
			case strings.HasPrefix(a, "s="):
				saltB64 = a[2:]
			case strings.HasPrefix(a, "i="):
				fmt.Sscan(a[2:], &iter)
			}
		}
		if doubled {
			nonce = cnonce + nonce
		}
		if tamper {
			nonce += "x"
		}
		salt, _ := base64.StdEncoding.DecodeString(saltB64)
		salted, _ := SaltedPassword(SHA256, "pw", salt, iter)
		withoutProof := "c=biws,r=" + nonce
		clientKey := hmacSum(SHA256, salted, []byte("Client Key"))
		sig := hmacSum(SHA256, hashSum(SHA256, clientKey), []byte(clientFirstBare+","+string(sf)+","+withoutProof))
		proof := make([]byte, len(clientKey))
		for i := range proof {
			proof[i] = clientKey[i] ^ sig[i]
		}
		_, _, err = s.Step([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
		return err
	}
	if err := final(false, false); err != nil {
		t.Fatalf("RFC nonce: %v", err)
	}
	if err := final(true, false); err != nil {
		t.Fatalf("librdkafka's nonce: %v", err)
	}
	if err := final(true, true); err == nil {
		t.Fatal("a nonce that does not end with the server's was accepted")
	}
}

func TestParseLoginJAAS(t *testing.T) {
	for _, tc := range []struct {
		in              string
		user, pass, err string
	}{
		{`org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="p w\"x";`, "broker", `p w"x`, ""},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username=broker password=pw user_broker="pw" user_a="b";`, "broker", "pw", ""},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required user_broker="pw";`, "", "", "no username"},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="broker";`, "", "", "no password"},
		{`com.example.Login required username="a" password="b";`, "", "", "login module"},
		{``, "", "", "empty"},
		{`org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b"`, "", "", "';'"},
	} {
		u, p, err := ParseLoginJAAS(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("%q: %q %q %v, want %q %q", tc.in, u, p, err, tc.user, tc.pass)
		}
	}
}
