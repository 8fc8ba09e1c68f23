package main

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { commands = append(commands, userCmd) }

// userCmd manages SASL/SCRAM users: credentials in the cluster's metadata
// (AlterUserScramCredentials, DescribeUserScramCredentials), as Kafka's
// kafka-configs.sh --entity-type users --alter --add-config
// 'SCRAM-SHA-256=[password=...]' does. The password is salted here; the
// broker never sees it.
func userCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete SASL/SCRAM users",
		Args:  cobra.NoArgs,
		// Runnable, so that an unknown subcommand is an error
		// rather than help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(userCreateCmd(), userDeleteCmd(), userListCmd())
	return cmd
}

func parseMechanism(s string) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512":
		return kadm.ScramSha512, nil
	}
	return 0, fmt.Errorf("unknown mechanism %q: use SCRAM-SHA-256 or SCRAM-SHA-512", s)
}

// userErr explains a per-user error of the broker.
func userErr(user string, err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.ResourceNotFound):
		return fmt.Errorf("user %q has no such credential (list users with `strata user list`)", user)
	case errors.Is(err, kerr.UnacceptableCredential):
		return fmt.Errorf("user %q: credential refused: %s", user, kafkaErrText(err, brokerMsg))
	}
	return fmt.Errorf("user %q: %s", user, kafkaErrText(err, brokerMsg))
}

func userCreateCmd() *cobra.Command {
	var password, mechanism string
	var iterations int32
	cmd := &cobra.Command{
		Use:     "create NAME",
		Aliases: []string{"add", "set-password"},
		Short:   "Create a SCRAM user, or set its password for one mechanism",
		Long: "Create a SCRAM user, or replace its password for one mechanism. The password is salted and " +
			"hashed here (PBKDF2); the cluster stores only the salt and derived keys. " +
			"--password - reads the password from the first line of standard input.",
		Args: needName("user name", "strata user create alice --password secret"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mech, err := parseMechanism(mechanism)
			if err != nil {
				return err
			}
			if password == "-" {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("reading the password from standard input: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if password == "" {
				return errors.New("give a password with --password (or --password - to read it from standard input)")
			}
			if iterations < 4096 || iterations > 16384 {
				return fmt.Errorf("--iterations %d: must be between 4096 and 16384", iterations)
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			name := args[0]
			res, err := adm.AlterUserSCRAMs(cmd.Context(), nil, []kadm.UpsertSCRAM{{User: name, Mechanism: mech, Iterations: iterations, Password: password}})
			if err != nil {
				return fmt.Errorf("create user: %w", err)
			}
			if r := res[name]; r.Err != nil {
				return userErr(name, r.Err, r.ErrMessage)
			}
			return printStatuses(cmd, "USER", []nameStatus{{name, "created " + mech.String()}})
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "the user's password (- reads it from standard input)")
	cmd.Flags().StringVar(&mechanism, "mechanism", "SCRAM-SHA-256", "SCRAM-SHA-256 or SCRAM-SHA-512")
	cmd.Flags().Int32Var(&iterations, "iterations", 4096, "PBKDF2 iterations, 4096 to 16384")
	return cmd
}

func userDeleteCmd() *cobra.Command {
	var mechanism string
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a SCRAM user's credentials (every mechanism, or --mechanism)",
		Args:    needName("user name", "strata user delete alice"),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			name := args[0]
			var mechs []kadm.ScramMechanism
			if mechanism != "" {
				m, err := parseMechanism(mechanism)
				if err != nil {
					return err
				}
				mechs = append(mechs, m)
			} else {
				d, err := adm.DescribeUserSCRAMs(cmd.Context(), name)
				if err != nil {
					return fmt.Errorf("describe user: %w", err)
				}
				if r := d[name]; r.Err != nil {
					return userErr(name, r.Err, r.ErrMessage)
				}
				for _, ci := range d[name].CredInfos {
					mechs = append(mechs, ci.Mechanism)
				}
			}
			// One request per mechanism: the broker refuses a user named
			// twice in one request (DUPLICATE_RESOURCE), as Kafka does.
			var rows []nameStatus
			for _, m := range mechs {
				res, err := adm.AlterUserSCRAMs(cmd.Context(), []kadm.DeleteSCRAM{{User: name, Mechanism: m}}, nil)
				if err != nil {
					return fmt.Errorf("delete user: %w", err)
				}
				if r := res[name]; r.Err != nil {
					return userErr(name, r.Err, r.ErrMessage)
				}
				rows = append(rows, nameStatus{name, "deleted " + m.String()})
			}
			return printStatuses(cmd, "USER", rows)
		},
	}
	cmd.Flags().StringVar(&mechanism, "mechanism", "", "delete only this mechanism's credential (SCRAM-SHA-256 or SCRAM-SHA-512)")
	return cmd
}

// userSummary is a row of `user list`.
type userSummary struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func userListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List SCRAM users with their mechanisms and iterations",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := adm.DescribeUserSCRAMs(cmd.Context())
			if err != nil {
				return fmt.Errorf("list users: %w", err)
			}
			rows := []userSummary{}
			var errs []error
			for _, u := range d.Sorted() {
				if u.Err != nil {
					errs = append(errs, userErr(u.User, u.Err, u.ErrMessage))
					continue
				}
				for _, ci := range u.CredInfos {
					rows = append(rows, userSummary{u.User, ci.Mechanism.String(), ci.Iterations})
				}
			}
			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
				return joinErrs(errs)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No SCRAM users; create one with `strata user create NAME --password ...`.")
				return joinErrs(errs)
			}
			var tr [][]string
			for _, r := range rows {
				tr = append(tr, []string{r.User, r.Mechanism, strconv.Itoa(int(r.Iterations))})
			}
			if err := table(cmd.OutOrStdout(), []string{"USER", "MECHANISM", "ITERATIONS"}, tr); err != nil {
				return err
			}
			return joinErrs(errs)
		},
	}
}
