package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/config"
)

func serveCmd() *cobra.Command {
	var (
		configFile string
		overrides  []string
		logFormat  string
		logLevel   string
		dev        devClusterFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker (no flags: 127.0.0.1:9092, data in ./strata-data)",
		Long: `Run a strata broker.

With no flags it listens on 127.0.0.1:9092 and keeps its data in
./strata-data. Configuration uses Kafka's broker property names, from a
properties file (--config) and/or --set overrides, applied in that order:

  strata serve --config server.properties --set num.partitions=3

SIGTERM or SIGINT stops it cleanly: in a cluster, the active controller
first moves the node's leaderships away (controlled shutdown, at most 15 s;
a second signal stops waiting), then in-flight requests finish, logs are
flushed, and the next start skips recovery.

--dev-cluster N runs N nodes in this one process, for development: a
controller quorum of N voters, node i on 127.0.0.1:9092+i-1 (controller
listener 19092+i-1, /metrics on 9644+i-1), data in ./strata-data/node-i
(or under --dir), logs tagged node=i:

  strata serve --dev-cluster 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("dev-cluster") {
				return serveDevCluster(cmd, dev, configFile, overrides, logger)
			}
			if dev.dir != "" || dev.freePorts {
				return fmt.Errorf("--dir and --dev-free-ports go with --dev-cluster (a single node's data dir: --set log.dirs=DIR)")
			}
			cfg := config.Default()
			if configFile != "" {
				if err := cfg.LoadFile(configFile); err != nil {
					return err
				}
			}
			for _, kv := range overrides {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--set %q: expected key=value", kv)
				}
				if err := cfg.Set(strings.TrimSpace(k), v); err != nil {
					return err
				}
			}
			b, err := strata.StartConfig(cfg, logger)
			if err != nil {
				return err
			}
			logger.Info("strata ready", "addr", b.Addr(), "http", b.HTTPAddr(), "log_dirs", strings.Join(cfg.LogDirs, ","))
			waitForStop(cmd, logger)
			// A second signal during shutdown stops waiting for the
			// controlled shutdown (leaderships moving away); the
			// logs are still flushed and closed.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sig)
			go func() {
				if s, ok := <-sig; ok {
					logger.Warn("second signal: not waiting for the controlled shutdown", "signal", s.String())
					b.AbortControlledShutdown()
				}
			}()
			if err := b.Close(); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			logger.Info("stopped cleanly")
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "broker properties file (Kafka's server.properties format)")
	cmd.Flags().StringArrayVar(&overrides, "set", nil, "override a property, key=value (repeatable)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	dev.register(cmd)
	return cmd
}

// waitForStop waits for SIGTERM or SIGINT, or for the command's context
// to end (tests run serve in-process).
func waitForStop(cmd *cobra.Command, logger *slog.Logger) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		logger.Info("shutting down", "signal", s.String())
	case <-cmd.Context().Done():
		logger.Info("shutting down", "reason", context.Cause(cmd.Context()).Error())
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %v", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
