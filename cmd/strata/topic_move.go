package main

// strata topic move and strata topic reassignments: partition
// reassignment (KIP-455), the job of Kafka's kafka-reassign-partitions,
// over kadm's AlterPartitionAssignments and ListPartitionReassignments.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() {
	topicSubcommands = append(topicSubcommands, topicMoveCmd, topicReassignmentsCmd)
}

// reassignPlan is kafka-reassign-partitions.sh's JSON plan (its
// --reassignment-json-file): {"version":1,"partitions":[{"topic":"t",
// "partition":0,"replicas":[1,2]}]}. log_dirs is accepted and ignored
// (strata has one log dir per partition's node).
type reassignPlan struct {
	Version    int `json:"version"`
	Partitions []struct {
		Topic     string   `json:"topic"`
		Partition *int32   `json:"partition"`
		Replicas  []int32  `json:"replicas"`
		LogDirs   []string `json:"log_dirs,omitempty"`
	} `json:"partitions"`
}

// moveResult is a row of `topic move`.
type moveResult struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"` // nil: cancelled
	Status    string  `json:"status"`
}

func topicMoveCmd() *cobra.Command {
	var (
		partitions []int
		replicas   string
		plan       string
		cancel     bool
		wait       bool
	)
	cmd := &cobra.Command{
		Use:   "move [TOPIC]",
		Short: "Move partitions to other brokers (partition reassignment)",
		Long: `Move partitions to the given brokers (Kafka's partition reassignment,
KIP-455). The new replicas copy the partition from its leader while it
keeps serving; once they are in sync the old ones are removed and delete
their files, and the leader moves if its broker was removed. The first
broker listed is the preferred leader. See progress with
` + "`strata topic reassignments`" + `.

  strata topic move orders --partition 0 --replicas 2,3,1
  strata topic move orders --partition 0 --cancel
  strata topic move --plan reassign.json --wait

A plan is kafka-reassign-partitions.sh's JSON ("-" reads it from stdin):

  {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,1]}]}`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := moveRequest(cmd, args, partitions, replicas, plan, cancel)
			if err != nil {
				return err
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			resp, err := adm.AlterPartitionAssignments(ctx, req)
			if err != nil {
				return fmt.Errorf("reassign partitions: %w", err)
			}
			rows := []moveResult{}
			var errs []error
			moved := kadm.TopicsSet{}
			for _, r := range resp.Sorted() {
				if r.Err != nil {
					errs = append(errs, moveErr(r.Topic, r.Partition, r.Err, r.ErrMessage))
					continue
				}
				target := req[r.Topic][r.Partition]
				status := "started"
				if target == nil {
					status = "cancelled"
				} else {
					moved.Add(r.Topic, r.Partition)
				}
				rows = append(rows, moveResult{Topic: r.Topic, Partition: r.Partition, Replicas: target, Status: status})
			}
			if wait && len(moved) > 0 {
				if err := waitMoved(cmd, adm, moved); err != nil {
					return err
				}
				for i := range rows {
					if rows[i].Status == "started" {
						rows[i].Status = "done"
					}
				}
			}
			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			} else if len(rows) > 0 {
				var tr [][]string
				for _, r := range rows {
					tr = append(tr, []string{r.Topic, strconv.Itoa(int(r.Partition)), int32List(r.Replicas), r.Status})
				}
				if err := table(cmd.OutOrStdout(), []string{"TOPIC", "PARTITION", "TARGET-REPLICAS", "STATUS"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().IntSliceVar(&partitions, "partition", nil, "the partition to move (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&replicas, "replicas", "", "the brokers to hold the partition, preferred leader first, e.g. 2,3,1")
	cmd.Flags().StringVar(&plan, "plan", "", `a reassignment plan file in kafka-reassign-partitions.sh's JSON, "-" for stdin`)
	cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel the reassignment in progress of the partitions instead")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the moves are complete")
	return cmd
}

// moveRequest builds the reassignment from the flags or the plan.
func moveRequest(cmd *cobra.Command, args []string, partitions []int, replicas, plan string, cancel bool) (kadm.AlterPartitionAssignmentsReq, error) {
	var req kadm.AlterPartitionAssignmentsReq
	if plan != "" {
		if len(args) > 0 || len(partitions) > 0 || replicas != "" {
			return nil, errors.New("--plan names the topics, partitions and replicas: give no TOPIC, --partition or --replicas with it")
		}
		var r io.Reader = cmd.InOrStdin()
		if plan != "-" {
			f, err := os.Open(plan)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			r = f
		}
		var p reassignPlan
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("--plan %s: %w (expected {\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2]}]})", plan, err)
		}
		if len(p.Partitions) == 0 {
			return nil, fmt.Errorf("--plan %s: no partitions", plan)
		}
		for i, pp := range p.Partitions {
			if pp.Topic == "" || pp.Partition == nil {
				return nil, fmt.Errorf("--plan %s: entry %d needs a topic and a partition", plan, i)
			}
			target := pp.Replicas
			if cancel {
				target = nil
			} else if len(target) == 0 {
				return nil, fmt.Errorf("--plan %s: %s-%d has no replicas", plan, pp.Topic, *pp.Partition)
			}
			req.Assign(pp.Topic, *pp.Partition, target)
		}
		return req, nil
	}
	if len(args) != 1 {
		return nil, errors.New("give exactly one topic name, e.g. `strata topic move orders --partition 0 --replicas 2,3`, or a --plan file")
	}
	if len(partitions) == 0 {
		return nil, errors.New("give the partition to move with --partition, e.g. --partition 0")
	}
	var target []int32
	switch {
	case cancel && replicas != "":
		return nil, errors.New("give --replicas or --cancel, not both")
	case !cancel && replicas == "":
		return nil, errors.New("give the new replicas with --replicas, e.g. --replicas 2,3,1 (or --cancel)")
	case !cancel:
		for _, s := range strings.Split(replicas, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("--replicas %q: expected broker ids separated by commas, e.g. 2,3,1", replicas)
			}
			target = append(target, int32(id))
		}
	}
	for _, p := range partitions {
		if p < 0 || p > 1<<31-1 {
			return nil, fmt.Errorf("--partition %d: not a partition number", p)
		}
		req.Assign(args[0], int32(p), target)
	}
	return req, nil
}

// moveErr explains a partition's reassignment error.
func moveErr(topic string, p int32, err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("partition %s-%d does not exist (see `strata topic describe %s`)", topic, p, topic)
	case errors.Is(err, kerr.NoReassignmentInProgress):
		return fmt.Errorf("partition %s-%d is not being moved; nothing to cancel", topic, p)
	case errors.Is(err, kerr.InvalidReplicaAssignment):
		return fmt.Errorf("partition %s-%d: %s; list the brokers with `strata cluster info`", topic, p, kafkaErrText(err, brokerMsg))
	}
	return fmt.Errorf("partition %s-%d: %s", topic, p, kafkaErrText(err, brokerMsg))
}

// waitMoved polls until none of moved is being reassigned.
func waitMoved(cmd *cobra.Command, adm *kadm.Client, moved kadm.TopicsSet) error {
	for {
		rs, err := adm.ListPartitionReassignments(cmd.Context(), moved)
		if err != nil {
			return fmt.Errorf("list reassignments: %w", err)
		}
		n := 0
		rs.Each(func(kadm.ListPartitionReassignmentsResponse) { n++ })
		if n == 0 {
			return nil
		}
		select {
		case <-cmd.Context().Done():
			return cmd.Context().Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// reassignment is a row of `topic reassignments`.
type reassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

func topicReassignmentsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reassignments [TOPIC...]",
		Short: "List partition moves in progress",
		Long: `List the partitions being moved (` + "`strata topic move`" + `), of every topic or
of the topics given: their replicas now (the target ones first, then those
being removed), and the replicas being added and removed.

  strata topic reassignments`,
		RunE: func(cmd *cobra.Command, names []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			meta, err := adm.ListTopicsWithInternal(ctx, names...)
			if err != nil {
				return fmt.Errorf("describe topics: %w", err)
			}
			set := kadm.TopicsSet{}
			var errs []error
			for _, name := range names {
				if t, ok := meta[name]; !ok || t.Err != nil {
					errs = append(errs, topicErr(name, kerr.UnknownTopicOrPartition, ""))
				}
			}
			for name, t := range meta {
				if t.Err != nil {
					continue
				}
				for p := range t.Partitions {
					set.Add(name, p)
				}
			}
			rows := []reassignment{}
			if len(set) > 0 {
				rs, err := adm.ListPartitionReassignments(ctx, set)
				if err != nil {
					return fmt.Errorf("list reassignments: %w", err)
				}
				for _, r := range rs.Sorted() {
					rows = append(rows, reassignment{Topic: r.Topic, Partition: r.Partition, Replicas: nonNil(r.Replicas),
						Adding: nonNil(r.AddingReplicas), Removing: nonNil(r.RemovingReplicas)})
				}
			}
			sort.SliceStable(rows, func(i, j int) bool {
				return rows[i].Topic < rows[j].Topic || rows[i].Topic == rows[j].Topic && rows[i].Partition < rows[j].Partition
			})
			switch {
			case jsonOutput(cmd):
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			case len(rows) == 0:
				if len(errs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "No partitions are being moved.")
				}
			default:
				var tr [][]string
				for _, r := range rows {
					tr = append(tr, []string{r.Topic, strconv.Itoa(int(r.Partition)), int32List(r.Replicas), int32List(r.Adding), int32List(r.Removing)})
				}
				if err := table(cmd.OutOrStdout(), []string{"TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}
