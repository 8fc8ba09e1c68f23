package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// bootstrap returns the --bootstrap addresses.
func bootstrap(cmd *cobra.Command) []string {
	v, _ := cmd.Flags().GetString("bootstrap")
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// jsonOutput reports whether --json was given.
func jsonOutput(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

// newClient connects a franz-go client to --bootstrap and checks that a
// broker answers, so that a wrong address fails at once with a clear
// message instead of retrying forever.
func newClient(cmd *cobra.Command, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := bootstrap(cmd)
	auth, err := saslOpt(cmd)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		opts = append(opts, auth)
	}
	tlsDial, err := tlsOpt(cmd)
	if err != nil {
		return nil, err
	}
	if tlsDial != nil {
		opts = append(opts, tlsDial)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(cmd.Context()); err != nil {
		cl.Close()
		return nil, unreachable(seeds, err)
	}
	return cl, nil
}

// newAdmin returns an admin client over newClient.
func newAdmin(cmd *cobra.Command) (*kadm.Client, func(), error) {
	cl, err := newClient(cmd)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// unreachable explains a failed connection and what to do about it.
func unreachable(seeds []string, err error) error {
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("broker at %s refused the SASL authentication (%v); check --sasl-user and --sasl-password", strings.Join(seeds, ","), err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("broker at %s does not enable this --sasl-mechanism (%v)", strings.Join(seeds, ","), err)
	}
	if msg := err.Error(); strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ") {
		return fmt.Errorf("TLS with the broker at %s failed (%v); check --tls-truststore (the CA of the broker's certificate) and, on a listener with ssl.client.auth, --tls-cert and --tls-key", strings.Join(seeds, ","), err)
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach a broker at %s (%v); is it running? Start one with `strata serve`, or pass --bootstrap host:port", strings.Join(seeds, ","), err)
	}
	return fmt.Errorf("broker at %s: %w", strings.Join(seeds, ","), err)
}

// table writes aligned columns: a header row, then rows.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
