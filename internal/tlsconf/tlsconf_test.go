package tlsconf

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

func TestMapper(t *testing.T) {
	for _, tc := range []struct {
		rules, dn, want string
		err             error
	}{
		{"", "CN=alice,OU=eng,O=acme", "CN=alice,OU=eng,O=acme", nil},
		{"DEFAULT", "CN=alice,OU=eng,O=acme", "CN=alice,OU=eng,O=acme", nil},
		// Kafka's documented examples (security.html, SSL principal mapping).
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=kafka-svc,OU=ServiceUsers,O=Unknown", "kafka-svc", nil},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "CN=adminUser,OU=Admin,O=Unknown", "CN=adminUser,OU=Admin,O=Unknown", nil},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L`, "CN=AdminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin", nil},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/U`, "CN=AdminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "ADMINUSER@ADMIN", nil},
		// A group followed by a word character: Java's $1_x is group 1.
		{`RULE:^CN=(.*?),.*$/$1_svc/`, "CN=bob,O=acme", "bob_svc", nil},
		// An escaped slash in the replacement.
		{`RULE:^CN=(.*?),.*$/svc\/$1/`, "CN=bob,O=acme", "svc/bob", nil},
		// The pattern must match the whole DN.
		{`RULE:CN=bob/x/`, "CN=bob,O=acme", "", ErrNoMatchingRule},
		{` RULE:^CN=(.*?),.*$/$1/L , DEFAULT`, "CN=BOB,O=acme", "bob", nil},
	} {
		m, err := ParseRules(tc.rules)
		if err != nil {
			t.Fatalf("%q: %v", tc.rules, err)
		}
		got, err := m.Name(tc.dn)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("rules %q, dn %q: %q, %v; want %q, %v", tc.rules, tc.dn, got, err, tc.want, tc.err)
		}
	}
	for _, bad := range []string{"RULE:x", "NOPE", "RULE:(/x/", "RULE:a/b/Q"} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("rules %q accepted", bad)
		}
	}
}

func TestSubjectDN(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	l := ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}, Country: []string{"FR"}}})
	// Java's X500Principal.getName(): most specific first.
	if got, want := SubjectDN(l.Cert), "CN=alice,OU=eng,O=acme,C=FR"; got != want {
		t.Errorf("SubjectDN = %q, want %q", got, want)
	}
}

func props(kv ...string) map[string]string {
	m := map[string]string{"ssl.keystore.type": "PEM", "ssl.truststore.type": "PEM", "ssl.client.auth": "none",
		"ssl.enabled.protocols": "TLSv1.2,TLSv1.3", "ssl.protocol": "TLSv1.3", "ssl.principal.mapping.rules": "DEFAULT",
		"ssl.endpoint.identification.algorithm": "https"}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	good := ca.Issue(t, "broker", tlstest.Options{})
	expired := ca.Issue(t, "old", tlstest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	ks := tlstest.WriteFile(t, dir, "ks.pem", good.KeyStore())
	for _, tc := range []struct {
		name  string
		props map[string]string
		want  string
	}{
		{"no keystore", props(), "no key store"},
		{"missing file", props("ssl.keystore.location", filepath.Join(dir, "nope")), "no such file"},
		{"jks", props("ssl.keystore.location", ks, "ssl.keystore.type", "JKS"), "PEM stores only"},
		{"expired", props("ssl.keystore.location", tlstest.WriteFile(t, dir, "old.pem", expired.KeyStore())), "not now"},
		{"client auth without truststore", props("ssl.keystore.location", ks, "ssl.client.auth", "required"), "trust store"},
		{"bad client auth", props("ssl.keystore.location", ks, "ssl.client.auth", "maybe"), "ssl.client.auth"},
		{"bad protocol", props("ssl.keystore.location", ks, "ssl.enabled.protocols", "TLSv1.1"), "TLSv1.1"},
		{"bad suite", props("ssl.keystore.location", ks, "ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_SHA"), "ssl.cipher.suites"},
		{"mismatched key", props("ssl.keystore.certificate.chain", string(good.CertPEM), "ssl.keystore.key", string(expired.KeyPEM)), "private key does not match"},
	} {
		_, err := New("SSL", tc.props, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// Inline PEM works as the file does.
	if _, err := New("SSL", props("ssl.keystore.certificate.chain", string(good.CertPEM), "ssl.keystore.key", string(good.KeyPEM)), nil); err != nil {
		t.Fatal(err)
	}
}

func TestVersions(t *testing.T) {
	for _, tc := range []struct {
		protocol, enabled string
		lo, hi            uint16
	}{
		{"TLSv1.3", "TLSv1.2,TLSv1.3", tls.VersionTLS12, tls.VersionTLS13},
		{"TLSv1.2", "TLSv1.2,TLSv1.3", tls.VersionTLS12, tls.VersionTLS12},
		{"TLSv1.3", "TLSv1.3", tls.VersionTLS13, tls.VersionTLS13},
		{"TLS", "TLSv1.2", tls.VersionTLS12, tls.VersionTLS12},
	} {
		lo, hi, err := versions(tc.protocol, tc.enabled)
		if err != nil || lo != tc.lo || hi != tc.hi {
			t.Errorf("versions(%s, %s) = %x, %x, %v", tc.protocol, tc.enabled, lo, hi, err)
		}
	}
	if _, _, err := versions("TLSv1.2", "TLSv1.3"); err == nil {
		t.Error("TLSv1.2 with only TLSv1.3 enabled accepted")
	}
}

// TestEncryptedKey reads keys that openssl encrypted, as Kafka users make
// them (openssl pkcs8 -topk8).
func TestEncryptedKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	l := ca.Issue(t, "broker", tlstest.Options{})
	plain := tlstest.WriteFile(t, dir, "key.pem", l.KeyPEM)
	for _, args := range [][]string{
		{"-v2", "aes-256-cbc"},
		{"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"},
		{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512"},
	} {
		enc := filepath.Join(dir, "enc.pem")
		cmd := exec.Command("openssl", append([]string{"pkcs8", "-topk8", "-in", plain, "-out", enc, "-passout", "pass:s3cret"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		b, _ := os.ReadFile(enc)
		if !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
			t.Fatalf("openssl wrote %s", b)
		}
		ks := tlstest.WriteFile(t, dir, "ks.pem", append(b, l.CertPEM...))
		if _, err := New("SSL", props("ssl.keystore.location", ks, "ssl.key.password", "s3cret"), nil); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if _, err := New("SSL", props("ssl.keystore.location", ks, "ssl.key.password", "wrong"), nil); err == nil {
			t.Errorf("%v: wrong password accepted", args)
		}
		if _, err := New("SSL", props("ssl.keystore.location", ks), nil); err == nil || !strings.Contains(err.Error(), "ssl.key.password") {
			t.Errorf("%v: no password: %v", args, err)
		}
	}
}

// handshake runs a TLS handshake between s's server config and a client
// config, returning the server side's state.
func handshake(t *testing.T, s *Source, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		cl := tls.Client(c, client)
		err = cl.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refused certificate
			// when it reads.
			cl.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			cl.Read(make([]byte, 1))
		}
		errc <- err
	}()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	srv := tls.Server(a, s.ServerConfig())
	err = srv.Handshake()
	a.Close()
	<-errc
	return srv.ConnectionState(), err
}

func TestClientAuthAndReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	server := ca.Issue(t, "broker", tlstest.Options{})
	ks := tlstest.WriteFile(t, dir, "ks.pem", server.KeyStore())
	ts := tlstest.WriteFile(t, dir, "ts.pem", ca.PEM)
	s, err := New("SSL", props("ssl.keystore.location", ks, "ssl.truststore.location", ts, "ssl.client.auth", "required",
		"ssl.principal.mapping.rules", `RULE:^CN=(.*?),OU=eng,.*$/$1/L,DEFAULT`), nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}}})
	bob := ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "bob", Organization: []string{"acme"}}})
	client := func(l *tlstest.Leaf) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if l != nil {
			c.Certificates = []tls.Certificate{l.TLSCertificate(t)}
		}
		return c
	}
	for _, tc := range []struct {
		leaf *tlstest.Leaf
		want string
	}{{alice, "User:alice"}, {bob, "User:CN=bob,O=acme"}} {
		cs, err := handshake(t, s, client(tc.leaf))
		if err != nil {
			t.Fatal(err)
		}
		if p, err := s.Principal(cs); p != tc.want || err != nil {
			t.Errorf("principal %q, %v; want %q", p, err, tc.want)
		}
	}
	if _, err := handshake(t, s, client(nil)); err == nil {
		t.Error("a client without a certificate was accepted with ssl.client.auth=required")
	}
	expired := ca.Issue(t, "late", tlstest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if _, err := handshake(t, s, client(expired)); err == nil {
		t.Error("an expired client certificate was accepted")
	}
	other := tlstest.NewCA(t, "other")
	if _, err := handshake(t, s, client(other.Issue(t, "mallory", tlstest.Options{}))); err == nil {
		t.Error("a certificate of another CA was accepted")
	}

	// Reload: a new key store (new serial) and a trust store that adds
	// the other CA are used by the next handshakes.
	now := time.Now()
	s.now = func() time.Time { return now }
	server2 := ca.Issue(t, "broker", tlstest.Options{Serial: 4242})
	os.WriteFile(ks, server2.KeyStore(), 0o600)
	os.WriteFile(ts, append(append([]byte{}, ca.PEM...), other.PEM...), 0o600)
	// Different mtimes even on a coarse clock.
	later := now.Add(time.Minute)
	os.Chtimes(ks, later, later)
	os.Chtimes(ts, later, later)
	now = now.Add(2 * recheckEvery)
	var got int64
	cfg := client(other.Issue(t, "mallory", tlstest.Options{}))
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { got = cs.PeerCertificates[0].SerialNumber.Int64(); return nil }
	if _, err := handshake(t, s, cfg); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if got != 4242 {
		t.Errorf("server certificate serial %d after reload, want 4242", got)
	}
	// A broken file keeps the stores in use.
	os.WriteFile(ks, []byte("garbage"), 0o600)
	now = now.Add(2 * recheckEvery)
	if _, err := handshake(t, s, client(alice)); err != nil {
		t.Fatalf("after a broken reload: %v", err)
	}
}

func TestClientConfig(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	ks := tlstest.WriteFile(t, dir, "ks.pem", ca.Issue(t, "broker", tlstest.Options{Hosts: []string{"broker1"}}).KeyStore())
	ts := tlstest.WriteFile(t, dir, "ts.pem", ca.PEM)
	s, err := New("SSL", props("ssl.keystore.location", ks, "ssl.truststore.location", ts), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The certificate names broker1, not 127.0.0.1.
	if _, err := handshake(t, s, s.ClientConfig("127.0.0.1")); err == nil {
		t.Error("host name not checked")
	}
	if _, err := handshake(t, s, s.ClientConfig("broker1")); err != nil {
		t.Error(err)
	}
	s2, err := New("SSL", props("ssl.keystore.location", ks, "ssl.truststore.location", ts, "ssl.endpoint.identification.algorithm", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, s, s2.ClientConfig("127.0.0.1")); err != nil {
		t.Errorf("without endpoint identification: %v", err)
	}
	other := tlstest.NewCA(t, "other")
	s3, _ := New("SSL", props("ssl.keystore.location", ks, "ssl.truststore.certificates", string(other.PEM), "ssl.endpoint.identification.algorithm", ""), nil)
	if _, err := handshake(t, s, s3.ClientConfig("127.0.0.1")); err == nil {
		t.Error("an untrusted broker certificate was accepted without endpoint identification")
	}
}
