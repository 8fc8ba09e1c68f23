package main

// strata txn: list and describe the transactions of transactional
// producers, the jobs of kafka-transactions.sh list/describe.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, txnCmd) }

func txnCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "List and describe transactions",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(txnListCmd(), txnDescribeCmd())
	return cmd
}

// listedTxn is a row of `txn list`.
type listedTxn struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func txnListCmd() *cobra.Command {
	var states []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids and their transactions' states, on every broker",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := kmsg.NewPtrListTransactionsRequest()
			req.StateFilters = states
			var rows []listedTxn
			var errs []error
			for _, sh := range cl.RequestSharded(cmd.Context(), req) {
				if sh.Err != nil {
					errs = append(errs, fmt.Errorf("list transactions on broker %d: %w", sh.Meta.NodeID, sh.Err))
					continue
				}
				resp := sh.Resp.(*kmsg.ListTransactionsResponse)
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("list transactions on broker %d: %s", sh.Meta.NodeID, kafkaErrText(err, "")))
					continue
				}
				if len(resp.UnknownStateFilters) > 0 {
					errs = append(errs, fmt.Errorf("unknown states %s (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, PrepareEpochFence)", strings.Join(resp.UnknownStateFilters, ", ")))
				}
				for _, s := range resp.TransactionStates {
					rows = append(rows, listedTxn{TransactionalID: s.TransactionalID, ProducerID: s.ProducerID, State: s.TransactionState, Coordinator: sh.Meta.NodeID})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].TransactionalID < rows[j].TransactionalID })
			switch {
			case jsonOutput(cmd):
				if rows == nil {
					rows = []listedTxn{}
				}
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			case len(rows) == 0 && len(errs) == 0:
				fmt.Fprintln(cmd.ErrOrStderr(), "No transactional ids.")
			case len(rows) > 0:
				var tr [][]string
				for _, r := range rows {
					tr = append(tr, []string{r.TransactionalID, strconv.FormatInt(r.ProducerID, 10), r.State, strconv.Itoa(int(r.Coordinator))})
				}
				if err := table(cmd.OutOrStdout(), []string{"TRANSACTIONAL-ID", "PRODUCER-ID", "STATE", "COORDINATOR"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only transactions in these states (Ongoing, PrepareCommit, ...)")
	return cmd
}

// txnDescription is the JSON of `txn describe`.
type txnDescription struct {
	TransactionalID string            `json:"transactional_id"`
	State           string            `json:"state"`
	ProducerID      int64             `json:"producer_id"`
	ProducerEpoch   int16             `json:"producer_epoch"`
	TimeoutMs       int32             `json:"timeout_ms"`
	StartTimestamp  *int64            `json:"start_timestamp_ms"`
	Partitions      []topicPartitions `json:"partitions"`
}

func txnDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show transactions: state, producer id and epoch, timeout, start and partitions",
		Args:  needNames("transactional id", "strata txn describe my-txn"),
		RunE: func(cmd *cobra.Command, ids []string) error {
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = ids
			kresp, err := cl.Request(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("describe transactions: %w", err)
			}
			resp := kresp.(*kmsg.DescribeTransactionsResponse)
			var out []txnDescription
			var errs []error
			for _, s := range resp.TransactionStates {
				if err := kerr.ErrorForCode(s.ErrorCode); err != nil {
					if s.ErrorCode == kerr.TransactionalIDNotFound.Code {
						errs = append(errs, fmt.Errorf("transactional id %q does not exist (list them with `strata txn list`)", s.TransactionalID))
					} else {
						errs = append(errs, fmt.Errorf("transactional id %q: %s", s.TransactionalID, kafkaErrText(err, "")))
					}
					continue
				}
				d := txnDescription{TransactionalID: s.TransactionalID, State: s.State, ProducerID: s.ProducerID,
					ProducerEpoch: s.ProducerEpoch, TimeoutMs: s.TimeoutMillis, Partitions: []topicPartitions{}}
				if s.StartTimestamp >= 0 {
					ts := s.StartTimestamp
					d.StartTimestamp = &ts
				}
				for _, t := range s.Topics {
					d.Partitions = append(d.Partitions, topicPartitions{Topic: t.Topic, Partitions: t.Partitions})
				}
				out = append(out, d)
			}
			if jsonOutput(cmd) {
				if out == nil {
					out = []txnDescription{}
				}
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
				return joinErrs(errs)
			}
			w := cmd.OutOrStdout()
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(w)
				}
				start := "-"
				if d.StartTimestamp != nil {
					start = time.UnixMilli(*d.StartTimestamp).UTC().Format(time.RFC3339)
				}
				rows := [][]string{
					{"TRANSACTIONAL-ID", d.TransactionalID},
					{"STATE", d.State},
					{"PRODUCER-ID", strconv.FormatInt(d.ProducerID, 10)},
					{"PRODUCER-EPOCH", strconv.Itoa(int(d.ProducerEpoch))},
					{"TIMEOUT", (time.Duration(d.TimeoutMs) * time.Millisecond).String()},
					{"STARTED", start},
				}
				var parts []string
				for _, tp := range d.Partitions {
					for _, p := range tp.Partitions {
						parts = append(parts, fmt.Sprintf("%s-%d", tp.Topic, p))
					}
				}
				rows = append(rows, []string{"PARTITIONS", dash(strings.Join(parts, ","))})
				for _, r := range rows {
					fmt.Fprintf(w, "%-17s %s\n", r[0], r[1])
				}
			}
			return joinErrs(errs)
		},
	}
}
