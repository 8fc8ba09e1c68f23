package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-io/strata"
)

// devClusterFlags are serve's flags for an in-process development
// cluster (strata.StartCluster).
type devClusterFlags struct {
	nodes int
	dir   string
	// freePorts takes every port from the OS instead of 9092.., 19092..
	// and 9644..: hidden, for tests that must not collide.
	freePorts bool
}

// Base ports of the dev cluster: node i (from 1) adds i-1.
const (
	devKafkaPort      = 9092
	devControllerPort = 19092
	devHTTPPort       = 9644
)

func (f *devClusterFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.nodes, "dev-cluster", 0, "run N nodes in this process (a development cluster): 127.0.0.1:9092.., data in <dir>/node-N")
	cmd.Flags().StringVar(&f.dir, "dir", "", "with --dev-cluster: the data dir holding node-1..node-N (default ./strata-data)")
	cmd.Flags().BoolVar(&f.freePorts, "dev-free-ports", false, "with --dev-cluster: listen on ports the OS picks")
	cmd.Flags().MarkHidden("dev-free-ports")
}

// clusterOwned are the properties StartCluster sets on each node itself.
var clusterOwned = []string{"node.id", "listeners", "advertised.listeners", "controller.quorum.voters", "http.listener", "log.dirs", "log.dir"}

// serveDevCluster runs `strata serve --dev-cluster N` until a signal.
func serveDevCluster(cmd *cobra.Command, f devClusterFlags, configFile string, overrides []string, logger *slog.Logger) error {
	if f.nodes < 1 {
		return fmt.Errorf("--dev-cluster %d: want at least 1 node", f.nodes)
	}
	props := map[string]string{}
	if configFile != "" {
		if err := readProperties(configFile, props); err != nil {
			return err
		}
	}
	for _, kv := range overrides {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--set %q: expected key=value", kv)
		}
		props[strings.TrimSpace(k)] = v
	}
	for _, k := range clusterOwned {
		if _, ok := props[k]; ok {
			return fmt.Errorf("--dev-cluster sets %s on each node itself (data: --dir)", k)
		}
	}
	opts := strata.ClusterOptions{
		Nodes:          f.nodes,
		Dir:            f.dir,
		Properties:     props,
		Logger:         logger,
		KafkaPort:      devKafkaPort,
		ControllerPort: devControllerPort,
		HTTPPort:       devHTTPPort,
	}
	if opts.Dir == "" {
		opts.Dir = "./strata-data"
	}
	if f.freePorts {
		opts.KafkaPort, opts.ControllerPort, opts.HTTPPort = 0, 0, 0
	}
	logger.Info("starting a development cluster", "nodes", f.nodes, "dir", opts.Dir)
	c, err := strata.StartCluster(opts)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes() {
		logger.Info("strata ready", "node", n.ID(), "addr", n.Addr(), "controller_listener", n.ControllerAddr(), "http", n.HTTPAddr(), "log_dirs", n.Dir())
	}
	logger.Info("development cluster ready", "bootstrap", strings.Join(c.Bootstrap(), ","), "controller", c.Controller())
	waitForStop(cmd, logger)
	if err := c.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped cleanly")
	return nil
}

// readProperties reads a Java properties file into props, in the syntax
// config.Load reads (key=value or key: value, # and ! comments); the
// values are checked when each node applies them.
func readProperties(path string, props map[string]string) error {
	fh, err := os.Open(filepath.Clean(path))
	if err != nil {
		return err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return fmt.Errorf("%s: line %d: expected key=value, got %q", path, n, line)
		}
		props[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return sc.Err()
}
