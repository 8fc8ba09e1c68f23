package main

import (
	"strings"
	"testing"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

// The client commands connect to an SSL listener with --tls-*: the CA
// given, and a client certificate where the listener requires one.
func TestCLITLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	b, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: map[string]string{
		"listeners":               "SSL://127.0.0.1:0",
		"ssl.keystore.location":   tlstest.WriteFile(t, dir, "broker.pem", ca.Issue(t, "broker", tlstest.Options{}).KeyStore()),
		"ssl.truststore.location": tlstest.WriteFile(t, dir, "ca.pem", ca.PEM),
		"ssl.client.auth":         "required",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	client := ca.Issue(t, "cli", tlstest.Options{})
	caFile := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	cert := tlstest.WriteFile(t, dir, "cli.crt", client.CertPEM)
	key := tlstest.WriteFile(t, dir, "cli.key", client.KeyPEM)
	tlsArgs := []string{"--tls-truststore", caFile, "--tls-cert", cert, "--tls-key", key}
	mustCLI(t, b.Addr(), "", append([]string{"topic", "create", "secure", "-p", "2"}, tlsArgs...)...)
	if out := mustCLI(t, b.Addr(), "", append([]string{"topic", "list"}, tlsArgs...)...); !strings.Contains(out, "secure") {
		t.Fatalf("topic list: %q", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "list", "--tls-truststore", caFile}, "TLS with the broker"},                               // no client certificate
		{[]string{"topic", "list", "--tls-enabled", "--tls-cert", cert, "--tls-key", key}, "check --tls-truststore"}, // CA not trusted
		{[]string{"topic", "list", "--tls-cert", cert}, "go together"},
	} {
		_, _, err := runCLI(t, b.Addr(), "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
