// Command strata is the strata broker and its tools: `strata serve` runs
// the broker; the other subcommands are Kafka clients (topics, produce,
// consume, groups, cluster info, perf) that work against any
// Kafka-compatible broker.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands are the subcommands; each file adds its own in init.
var commands []func() *cobra.Command

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}

// newRoot builds the command tree (tests build their own to run
// subcommands in-process).
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "strata: a Kafka-compatible streaming broker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("bootstrap", "127.0.0.1:9092", "broker address(es) for client commands, comma-separated")
	root.PersistentFlags().Bool("json", false, "machine-readable JSON output instead of tables")
	addSASLFlags(root)
	addTLSFlags(root)
	root.AddCommand(serveCmd())
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}
