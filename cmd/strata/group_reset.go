package main

// strata group reset-offsets: kafka-consumer-groups --reset-offsets. A dry
// run unless --execute, and only for a group without members, because a
// running consumer would overwrite the new offsets with its next commit.

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// offsetReset is the --json output of `group reset-offsets`.
type offsetReset struct {
	Group    string        `json:"group"`
	Executed bool          `json:"executed"`
	Offsets  []resetOffset `json:"offsets"`
}

type resetOffset struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"current_offset"`
	NewOffset     int64  `json:"new_offset"`
}

// topicSelection is one --topic: a topic and optionally some partitions.
type topicSelection struct {
	topic      string
	partitions []int32 // nil: all
}

// parseTopicSelection parses "orders" or "orders:0,2" (Kafka's syntax).
func parseTopicSelection(s string) (topicSelection, error) {
	name, parts, hasParts := strings.Cut(s, ":")
	if name == "" {
		return topicSelection{}, fmt.Errorf("--topic %q: want TOPIC or TOPIC:PARTITION,PARTITION", s)
	}
	sel := topicSelection{topic: name}
	if !hasParts {
		return sel, nil
	}
	for _, p := range strings.Split(parts, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return topicSelection{}, fmt.Errorf("--topic %q: %q is not a partition number", s, p)
		}
		sel.partitions = append(sel.partitions, int32(n))
	}
	return sel, nil
}

func groupResetOffsetsCmd() *cobra.Command {
	var (
		topics     []string
		toEarliest bool
		toLatest   bool
		toOffset   int64
		execute    bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC[:P,P] (--to-earliest | --to-latest | --to-offset N) [--execute]",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `Move a group's committed offsets for the given topics (all their
partitions, or TOPIC:0,2 for some) to the earliest offset, the latest, or
a given offset (kept within each partition's start and end). Without
--execute it only prints the plan, as kafka-consumer-groups does.

The group must have no active members: stop its consumers first. A group
that does not exist yet is created with these offsets.

  strata group reset-offsets my-group --topic orders --to-earliest --execute`,
		Args: needName("group", "strata group reset-offsets my-group --topic orders --to-earliest"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			n := 0
			for _, b := range []bool{toEarliest, toLatest, cmd.Flags().Changed("to-offset")} {
				if b {
					n++
				}
			}
			if n != 1 {
				return errors.New("give exactly one of --to-earliest, --to-latest and --to-offset N")
			}
			if cmd.Flags().Changed("to-offset") && toOffset < 0 {
				return fmt.Errorf("--to-offset %d: must be 0 or more (use --to-earliest for the start)", toOffset)
			}
			if len(topics) == 0 {
				return errors.New("give the topics to reset with --topic TOPIC (repeatable; TOPIC:0,1 for some partitions)")
			}
			var sels []topicSelection
			for _, t := range topics {
				sel, err := parseTopicSelection(t)
				if err != nil {
					return err
				}
				sels = append(sels, sel)
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()

			descs, gerrs, err := describeGroupMembers(ctx, adm, []string{group})
			if err != nil {
				return err
			}
			if d := descs[group]; d != nil && len(d.Members) > 0 {
				return fmt.Errorf("group %q has %d active %s (state %s); offsets can only be reset while it has none: stop its consumers first", group, len(d.Members), plural(int64(len(d.Members)), "member"), d.State)
			}
			if e := gerrs[group]; e != nil && !errors.Is(e, errGroupNotFound) {
				return e
			}

			// Which partitions, and where each can go.
			var names []string
			for _, s := range sels {
				names = append(names, s.topic)
			}
			meta, err := adm.ListTopics(ctx, names...)
			if err != nil {
				return fmt.Errorf("describe topics: %w", err)
			}
			want := kadm.TopicsSet{}
			for _, s := range sels {
				t, ok := meta[s.topic]
				if !ok {
					return topicErr(s.topic, kerr.UnknownTopicOrPartition, "")
				}
				if t.Err != nil {
					return topicErr(s.topic, t.Err, "")
				}
				if s.partitions == nil {
					want.Add(s.topic, t.Partitions.Numbers()...)
					continue
				}
				for _, p := range s.partitions {
					if _, ok := t.Partitions[p]; !ok {
						return fmt.Errorf("--topic %s: topic %q has partitions 0 to %d", s.topic+":"+int32List(s.partitions), s.topic, len(t.Partitions)-1)
					}
				}
				want.Add(s.topic, s.partitions...)
			}
			topicNames := want.Topics()
			starts, err := adm.ListStartOffsets(ctx, topicNames...)
			if err == nil {
				err = starts.Error()
			}
			if err != nil {
				return fmt.Errorf("list start offsets: %w", err)
			}
			ends, err := adm.ListEndOffsets(ctx, topicNames...)
			if err == nil {
				err = ends.Error()
			}
			if err != nil {
				return fmt.Errorf("list end offsets: %w", err)
			}
			current, err := adm.FetchOffsets(ctx, group)
			if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
				return groupErr(group, err, "")
			}

			plan := offsetReset{Group: group, Executed: execute, Offsets: []resetOffset{}}
			commit := kadm.Offsets{}
			for _, tp := range want.Sorted() {
				for _, p := range sortedInt32s(tp.Partitions) {
					start, _ := starts.Lookup(tp.Topic, p)
					end, _ := ends.Lookup(tp.Topic, p)
					var to int64
					switch {
					case toEarliest:
						to = start.Offset
					case toLatest:
						to = end.Offset
					default:
						to = toOffset
						if to < start.Offset {
							fmt.Fprintf(cmd.ErrOrStderr(), "%s partition %d: offset %d is before the log start; using %d\n", tp.Topic, p, to, start.Offset)
							to = start.Offset
						} else if to > end.Offset {
							fmt.Fprintf(cmd.ErrOrStderr(), "%s partition %d: offset %d is past the log end; using %d\n", tp.Topic, p, to, end.Offset)
							to = end.Offset
						}
					}
					r := resetOffset{Topic: tp.Topic, Partition: p, NewOffset: to}
					if o, ok := current.Lookup(tp.Topic, p); ok && o.Err == nil && o.At >= 0 {
						at := o.At
						r.CurrentOffset = &at
					}
					plan.Offsets = append(plan.Offsets, r)
					commit.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: to, LeaderEpoch: -1})
				}
			}
			sort.Slice(plan.Offsets, func(i, j int) bool {
				a, b := plan.Offsets[i], plan.Offsets[j]
				if a.Topic != b.Topic {
					return a.Topic < b.Topic
				}
				return a.Partition < b.Partition
			})

			if execute {
				resp, err := adm.CommitOffsets(ctx, group, commit)
				if err == nil {
					err = resp.Error()
				}
				switch {
				case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.RebalanceInProgress):
					// A consumer joined since the check above.
					return fmt.Errorf("group %q gained members while resetting; stop its consumers and run again: %s", group, kafkaErrText(err, ""))
				case err != nil:
					return groupErr(group, err, "")
				}
			}

			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), plan); err != nil {
					return err
				}
			} else {
				var rows [][]string
				for _, r := range plan.Offsets {
					rows = append(rows, []string{r.Topic, strconv.Itoa(int(r.Partition)), optInt(r.CurrentOffset), strconv.FormatInt(r.NewOffset, 10)})
				}
				if err := table(cmd.OutOrStdout(), []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"}, rows); err != nil {
					return err
				}
			}
			if execute {
				fmt.Fprintf(cmd.ErrOrStderr(), "Committed the new offsets for group %s.\n", group)
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "Dry run: nothing was committed. Add --execute to commit these offsets.")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&topics, "topic", "t", nil, "topic to reset, TOPIC or TOPIC:0,1 for some partitions (repeatable)")
	f.BoolVar(&toEarliest, "to-earliest", false, "reset to each partition's log start offset")
	f.BoolVar(&toLatest, "to-latest", false, "reset to each partition's log end offset (skip everything)")
	f.Int64Var(&toOffset, "to-offset", 0, "reset to this offset, kept within each partition's start and end")
	f.BoolVar(&execute, "execute", false, "commit the new offsets (default: only show them)")
	return cmd
}
