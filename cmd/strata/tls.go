package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// addTLSFlags adds the flags with which the client commands connect to an
// SSL or SASL_SSL listener, named as rpk names them.
func addTLSFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.Bool("tls-enabled", false, "connect over TLS (an SSL or SASL_SSL listener); implied by the other --tls-* flags")
	f.String("tls-truststore", "", "PEM file of the CA certificates the broker's certificate is checked against (default: the system's)")
	f.String("tls-cert", "", "PEM client certificate, for a listener with ssl.client.auth (mutual TLS)")
	f.String("tls-key", "", "PEM private key of --tls-cert")
}

// tlsOpt returns the client option of the --tls-* flags, nil when none is
// set.
func tlsOpt(cmd *cobra.Command) (kgo.Opt, error) {
	enabled, _ := cmd.Flags().GetBool("tls-enabled")
	ca, _ := cmd.Flags().GetString("tls-truststore")
	cert, _ := cmd.Flags().GetString("tls-cert")
	key, _ := cmd.Flags().GetString("tls-key")
	if !enabled && ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-truststore: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-truststore %s holds no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	// kgo sets ServerName from each broker's host when it dials.
	return kgo.DialTLSConfig(cfg), nil
}
