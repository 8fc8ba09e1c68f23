package main

// strata cluster: the cluster as a broker's metadata describes it, the job
// of Kafka's kafka-cluster cluster-id and kafka-broker-api-versions' broker
// list (rpk cluster info).

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { commands = append(commands, clusterCmd) }

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster: its id, controller and brokers",
		Args:  cobra.NoArgs,
		// Runnable, so that an unknown subcommand is an error
		// rather than help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(clusterInfoCmd())
	return cmd
}

// clusterInfo is the JSON of `cluster info`.
type clusterInfo struct {
	ClusterID  string       `json:"cluster_id"`
	Controller int32        `json:"controller"`
	Brokers    []brokerInfo `json:"brokers"`
}

type brokerInfo struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
}

func clusterInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, the controller and every broker (id, address, rack)",
		Long: `Show the cluster id, the id of the controller and one line per live
broker with its advertised address and rack, from a Metadata request to
--bootstrap. The controller id is the one the broker reports to clients.

  strata cluster info --bootstrap broker1:9092`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			m, err := adm.BrokerMetadata(cmd.Context())
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			info := describeCluster(m)
			if jsonOutput(cmd) {
				return printJSON(cmd.OutOrStdout(), info)
			}
			return printClusterInfo(cmd.OutOrStdout(), info)
		},
	}
}

func describeCluster(m kadm.Metadata) clusterInfo {
	info := clusterInfo{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []brokerInfo{}}
	for _, b := range m.Brokers { // kadm sorts them by id
		info.Brokers = append(info.Brokers, brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return info
}

func printClusterInfo(w io.Writer, info clusterInfo) error {
	id, controller := info.ClusterID, "none"
	if id == "" {
		id = "-"
	}
	if info.Controller >= 0 {
		controller = strconv.Itoa(int(info.Controller))
	}
	if err := table(w, []string{"CLUSTER", id}, [][]string{
		{"CONTROLLER", controller},
		{"BROKERS", strconv.Itoa(len(info.Brokers))},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, b := range info.Brokers {
		rack := "-"
		if b.Rack != nil {
			rack = *b.Rack
		}
		rows = append(rows, []string{strconv.Itoa(int(b.ID)), net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack})
	}
	return table(w, []string{"BROKER", "ADDRESS", "RACK"}, rows)
}
