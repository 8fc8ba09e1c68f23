package main

// strata cluster: the cluster as a broker's metadata describes it, the job
// of Kafka's kafka-cluster cluster-id and kafka-broker-api-versions' broker
// list (rpk cluster info).

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, clusterCmd) }

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster: its id, controller and brokers; rebalance replicas",
		Args:  cobra.NoArgs,
		// Runnable, so that an unknown subcommand is an error
		// rather than help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(clusterInfoCmd(), clusterRebalanceCmd())
	return cmd
}

// clusterInfo is the JSON of `cluster info`.
type clusterInfo struct {
	ClusterID  string `json:"cluster_id"`
	Controller int32  `json:"controller"`
	// MetadataOffset is the active controller's metadata log offset,
	// -1 when no controller answered DescribeQuorum.
	MetadataOffset int64        `json:"metadata_offset"`
	Brokers        []brokerInfo `json:"brokers"`
}

type brokerInfo struct {
	ID     int32   `json:"id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack"`
	Fenced bool    `json:"fenced"`
	// Voter is whether the broker is a voter of the controller quorum.
	Voter bool `json:"voter"`
	// MetadataOffset is the metadata offset the broker last reported to
	// the controller in a heartbeat, -1 if unknown.
	MetadataOffset int64 `json:"metadata_offset"`
}

func clusterInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, the controller and every broker (address, rack, fenced, metadata offset)",
		Long: `Show the cluster id, the id of the active controller and its metadata
offset, and one line per registered broker: its advertised address, rack,
whether it is fenced, whether it votes in the controller quorum, and the
metadata offset its last heartbeat reported (how far it has applied the
metadata log). From DescribeCluster (with fenced brokers) and
DescribeQuorum sent to --bootstrap, which forwards the latter to the
active controller.

  strata cluster info --bootstrap broker1:9092`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			info, err := describeCluster(cmd.Context(), cl)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(cmd.OutOrStdout(), info)
			}
			return printClusterInfo(cmd.OutOrStdout(), info)
		},
	}
}

func describeCluster(ctx context.Context, cl *kgo.Client) (clusterInfo, error) {
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeFencedBrokers = true
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return clusterInfo{}, fmt.Errorf("describe cluster: %w", err)
	}
	if err := kerr.ErrorForCode(dresp.ErrorCode); err != nil {
		return clusterInfo{}, fmt.Errorf("describe cluster: %w", err)
	}
	info := clusterInfo{ClusterID: dresp.ClusterID, Controller: dresp.ControllerID, MetadataOffset: -1, Brokers: []brokerInfo{}}
	for _, b := range dresp.Brokers {
		info.Brokers = append(info.Brokers, brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: b.IsFenced, MetadataOffset: -1})
	}
	slices.SortFunc(info.Brokers, func(a, b brokerInfo) int { return cmp.Compare(a.ID, b.ID) })

	qreq := kmsg.NewPtrDescribeQuorumRequest()
	qt := kmsg.NewDescribeQuorumRequestTopic()
	qt.Topic = "__cluster_metadata"
	qt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}
	qreq.Topics = append(qreq.Topics, qt)
	// Sent to a broker, not to "the controller": strata forwards it.
	// Without an answer the offsets stay unknown.
	if qresp, err := qreq.RequestWith(ctx, cl.Broker(int(dresp.Brokers[0].NodeID))); err == nil && qresp.ErrorCode == 0 && len(qresp.Topics) == 1 && len(qresp.Topics[0].Partitions) == 1 {
		p := qresp.Topics[0].Partitions[0]
		offsets := map[int32]int64{}
		voters := map[int32]bool{}
		for _, v := range p.CurrentVoters {
			offsets[v.ReplicaID], voters[v.ReplicaID] = v.LogEndOffset, true
			if v.ReplicaID == p.LeaderID {
				info.MetadataOffset = v.LogEndOffset
			}
		}
		for _, o := range p.Observers {
			offsets[o.ReplicaID] = o.LogEndOffset
		}
		for i := range info.Brokers {
			b := &info.Brokers[i]
			if off, ok := offsets[b.ID]; ok {
				b.MetadataOffset = off
			}
			b.Voter = voters[b.ID]
		}
	}
	return info, nil
}

func printClusterInfo(w io.Writer, info clusterInfo) error {
	id, controller, offset := info.ClusterID, "none", "-"
	if id == "" {
		id = "-"
	}
	if info.Controller >= 0 {
		controller = strconv.Itoa(int(info.Controller))
	}
	if info.MetadataOffset >= 0 {
		offset = strconv.FormatInt(info.MetadataOffset, 10)
	}
	if err := table(w, []string{"CLUSTER", id}, [][]string{
		{"CONTROLLER", controller},
		{"METADATA OFFSET", offset},
		{"BROKERS", strconv.Itoa(len(info.Brokers))},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, b := range info.Brokers {
		rack, state, off := "-", "live", "-"
		if b.Rack != nil {
			rack = *b.Rack
		}
		if b.Fenced {
			state = "fenced"
		}
		if b.MetadataOffset >= 0 {
			off = strconv.FormatInt(b.MetadataOffset, 10)
		}
		voter := "no"
		if b.Voter {
			voter = "yes"
		}
		rows = append(rows, []string{strconv.Itoa(int(b.ID)), net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack, state, voter, off})
	}
	return table(w, []string{"BROKER", "ADDRESS", "RACK", "STATE", "VOTER", "METADATA OFFSET"}, rows)
}
