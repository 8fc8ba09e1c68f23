package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// saslPasswordEnv holds the SASL password when --sasl-password is not
// given, so that it stays out of shell history and process listings.
const saslPasswordEnv = "STRATA_SASL_PASSWORD"

// addSASLFlags adds the flags with which the client commands authenticate
// to a SASL_PLAINTEXT or SASL_SSL listener (rpk's --sasl-mechanism, with
// the user and password under sasl- names so that they never clash with
// `user create --password`).
func addSASLFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.String("sasl-mechanism", "", "authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	f.String("sasl-user", "", "SASL user name")
	f.String("sasl-password", "", "SASL password (default: $"+saslPasswordEnv+")")
}

// saslOpt returns the client option of the --sasl-* flags, nil without
// --sasl-mechanism.
func saslOpt(cmd *cobra.Command) (kgo.Opt, error) {
	mech, _ := cmd.Flags().GetString("sasl-mechanism")
	user, _ := cmd.Flags().GetString("sasl-user")
	pass, _ := cmd.Flags().GetString("sasl-password")
	if mech == "" {
		if user != "" || pass != "" {
			return nil, errors.New("--sasl-user and --sasl-password need --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if pass == "" {
		pass = os.Getenv(saslPasswordEnv)
	}
	if user == "" || pass == "" {
		return nil, fmt.Errorf("--sasl-mechanism %s needs --sasl-user and --sasl-password (or $%s)", mech, saslPasswordEnv)
	}
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()), nil
	case "SCRAM-SHA-256":
		return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()), nil
	case "SCRAM-SHA-512":
		return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()), nil
	}
	return nil, fmt.Errorf("unknown --sasl-mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
}
