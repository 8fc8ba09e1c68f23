package main

// strata cluster rebalance: even out the replicas per broker with
// partition reassignments (KIP-455), as a plan that `topic move --plan`
// and kafka-reassign-partitions.sh take, executed on request.

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// assignment is one partition's replicas.
type assignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// planRebalance returns the moves that even out the number of replicas
// per broker: while the most loaded broker holds at least two more than
// the least loaded one, a replica of the first partition (by topic and
// partition) that has the first and not the second moves there, in the
// same place of the replica list, so that as few preferred leaders move
// as the counts allow. Replicas on brokers not in brokers (gone or
// fenced) are left alone. The moves come back by topic and partition,
// each with its whole target replica list; parts is not changed.
func planRebalance(brokers []int32, parts []assignment) []assignment {
	if len(brokers) < 2 {
		return nil
	}
	count := map[int32]int{}
	for _, b := range brokers {
		count[b] = 0
	}
	target := make([][]int32, len(parts))
	for i, p := range parts {
		target[i] = slices.Clone(p.Replicas)
		for _, r := range p.Replicas {
			if _, ok := count[r]; ok {
				count[r]++
			}
		}
	}
	ids := slices.Sorted(slices.Values(brokers))
	moved := map[int]bool{}
	for range len(parts) * len(brokers) { // each step lowers the spread; bounded anyway
		hi, lo := ids[0], ids[0]
		for _, b := range ids {
			if count[b] > count[hi] {
				hi = b
			}
			if count[b] < count[lo] {
				lo = b
			}
		}
		if count[hi]-count[lo] < 2 {
			break
		}
		// The least loaded broker first, then the next: the first that
		// some partition on hi lacks.
		los := slices.Clone(ids)
		slices.SortStableFunc(los, func(a, b int32) int { return cmp.Compare(count[a], count[b]) })
		found := false
		for _, lo := range los {
			if count[hi]-count[lo] < 2 || found {
				break
			}
			for i := range parts {
				at := slices.Index(target[i], hi)
				if at < 0 || slices.Contains(target[i], lo) {
					continue
				}
				target[i][at] = lo
				count[hi]--
				count[lo]++
				moved[i], found = true, true
				break
			}
		}
		if !found {
			break // not reached: hi holds more partitions than lo, so one lacks lo
		}
	}
	var out []assignment
	for i, p := range parts {
		if moved[i] && !slices.Equal(target[i], p.Replicas) {
			out = append(out, assignment{Topic: p.Topic, Partition: p.Partition, Replicas: target[i]})
		}
	}
	return out
}

func clusterRebalanceCmd() *cobra.Command {
	var execute, wait bool
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Even out replicas across brokers (a dry run unless --execute)",
		Long: `Plan partition moves that leave every broker within one replica of the
others: a replica moves from the most loaded broker to the least loaded one
that lacks the partition, keeping its place in the replica list. Fenced
brokers get nothing, and partitions already being moved are left alone.

Without --execute it only prints the plan (--json prints it in
kafka-reassign-partitions.sh's format, for ` + "`strata topic move --plan`" + `).

  strata cluster rebalance
  strata cluster rebalance --execute --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			md, err := adm.Metadata(ctx)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			set := kadm.TopicsSet{}
			for _, t := range md.Topics {
				for p := range t.Partitions {
					set.Add(t.Topic, p)
				}
			}
			moving := kadm.ListPartitionReassignmentsResponses{}
			if len(set) > 0 {
				if moving, err = adm.ListPartitionReassignments(ctx, set); err != nil {
					return fmt.Errorf("list reassignments: %w", err)
				}
			}
			var brokers []int32
			for _, b := range md.Brokers {
				brokers = append(brokers, b.NodeID)
			}
			var parts []assignment
			for _, t := range md.Topics.Sorted() {
				for _, p := range t.Partitions.Sorted() {
					if _, ok := moving[t.Topic][p.Partition]; ok || p.Err != nil {
						continue
					}
					parts = append(parts, assignment{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas})
				}
			}
			slices.SortFunc(parts, func(a, b assignment) int {
				return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
			})
			plan := planRebalance(brokers, parts)
			before := map[string][]int32{}
			for _, p := range parts {
				before[fmt.Sprintf("%s-%d", p.Topic, p.Partition)] = p.Replicas
			}
			if execute && len(plan) > 0 {
				var req kadm.AlterPartitionAssignmentsReq
				for _, m := range plan {
					req.Assign(m.Topic, m.Partition, m.Replicas)
				}
				resp, err := adm.AlterPartitionAssignments(ctx, req)
				if err != nil {
					return fmt.Errorf("reassign partitions: %w", err)
				}
				var errs []error
				moved := kadm.TopicsSet{}
				for _, r := range resp.Sorted() {
					if r.Err != nil {
						errs = append(errs, moveErr(r.Topic, r.Partition, r.Err, r.ErrMessage))
						continue
					}
					moved.Add(r.Topic, r.Partition)
				}
				if err := joinErrs(errs); err != nil {
					return err
				}
				if wait {
					if err := waitMoved(cmd, adm, moved); err != nil {
						return err
					}
				}
			}
			if jsonOutput(cmd) {
				type kafkaPlan struct {
					Version    int          `json:"version"`
					Partitions []assignment `json:"partitions"`
				}
				return printJSON(cmd.OutOrStdout(), kafkaPlan{Version: 1, Partitions: append([]assignment{}, plan...)})
			}
			w := cmd.OutOrStdout()
			if len(plan) == 0 {
				fmt.Fprintln(w, "Balanced: every broker is within one replica of the others; nothing to move.")
				return nil
			}
			var tr [][]string
			for _, m := range plan {
				tr = append(tr, []string{m.Topic, strconv.Itoa(int(m.Partition)), int32List(before[fmt.Sprintf("%s-%d", m.Topic, m.Partition)]), int32List(m.Replicas)})
			}
			if err := table(w, []string{"TOPIC", "PARTITION", "REPLICAS", "TARGET-REPLICAS"}, tr); err != nil {
				return err
			}
			switch {
			case !execute:
				fmt.Fprintln(w, "\nDry run: pass --execute to start these moves.")
			case wait:
				fmt.Fprintf(w, "\n%d moves done.\n", len(plan))
			default:
				fmt.Fprintf(w, "\n%d moves started; follow them with `strata topic reassignments`.\n", len(plan))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&execute, "execute", false, "start the moves (without it, only print the plan)")
	cmd.Flags().BoolVar(&wait, "wait", false, "with --execute, wait until the moves are complete")
	return cmd
}
