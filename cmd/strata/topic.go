package main

// strata topic: create, list, describe, delete, alter-config,
// add-partitions (and move, reassignments: topic_move.go), the jobs of Kafka's kafka-topics and kafka-configs
// --entity-type topics, over kadm.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, topicCmd) }

func topicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, delete, configure and move topics",
		Args:  cobra.NoArgs,
		// Runnable, so that an unknown subcommand is an error
		// rather than help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(topicCreateCmd(), topicListCmd(), topicDescribeCmd(),
		topicDeleteCmd(), topicAlterConfigCmd(), topicAddPartitionsCmd())
	for _, sub := range topicSubcommands {
		cmd.AddCommand(sub())
	}
	return cmd
}

// topicSubcommands are the topic subcommands kept in files of their own
// (topic_move.go).
var topicSubcommands []func() *cobra.Command

// needNames requires at least one positional argument, saying what it is.
func needNames(what, example string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("give at least one %s, e.g. `%s`", what, example)
		}
		return nil
	}
}

// needName requires exactly one positional argument.
func needName(what, example string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("give exactly one %s, e.g. `%s`", what, example)
		}
		return nil
	}
}

// topicSummary is a row of `topic list` and `topic create`.
type topicSummary struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal"`
}

func topicCreateCmd() *cobra.Command {
	var (
		partitions int32
		replicas   int
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Long: `Create one or more topics with the same partition count, replication
factor and configs. Without --partitions or --replicas the broker's
defaults apply (num.partitions, default.replication.factor).

  strata topic create orders --partitions 3 --config retention.ms=86400000`,
		Args: needNames("topic name", "strata topic create orders --partitions 3"),
		RunE: func(cmd *cobra.Command, names []string) error {
			if partitions == 0 || partitions < -1 {
				return fmt.Errorf("--partitions %d: must be at least 1 (or omit it for the broker's num.partitions)", partitions)
			}
			if replicas == 0 || replicas < -1 || replicas > math.MaxInt16 {
				return fmt.Errorf("--replicas %d: must be at least 1 (or omit it for the broker's default.replication.factor)", replicas)
			}
			kvs, err := parseKVs("config", configs)
			if err != nil {
				return err
			}
			cfg := make(map[string]*string, len(kvs))
			for _, kv := range kvs {
				cfg[kv[0]] = kadm.StringPtr(kv[1])
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.CreateTopics(cmd.Context(), partitions, int16(replicas), cfg, names...)
			if err != nil {
				return fmt.Errorf("create topics: %w", err)
			}
			var rows []topicSummary
			var errs []error
			for _, name := range names {
				r, ok := resp[name]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", name))
				case r.Err != nil:
					errs = append(errs, topicErr(name, r.Err, r.ErrMessage))
				default:
					rows = append(rows, topicSummary{Name: name, ID: topicID(r.ID),
						Partitions: int(r.NumPartitions), Replicas: int(r.ReplicationFactor)})
				}
			}
			if err := printTopicSummaries(cmd, rows); err != nil {
				return err
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (default: the broker's num.partitions)")
	cmd.Flags().IntVarP(&replicas, "replicas", "r", -1, "replication factor (default: the broker's default.replication.factor)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value, e.g. retention.ms=3600000 (repeatable)")
	return cmd
}

// topicID is a topic id in Kafka's base64 form, empty when the broker
// does not have ids.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return id.String()
}

func printTopicSummaries(cmd *cobra.Command, rows []topicSummary) error {
	if rows == nil {
		rows = []topicSummary{}
	}
	if jsonOutput(cmd) {
		return printJSON(cmd.OutOrStdout(), rows)
	}
	if len(rows) == 0 {
		return nil
	}
	var tr [][]string
	for _, r := range rows {
		tr = append(tr, []string{r.Name, countOrDash(r.Partitions), countOrDash(r.Replicas)})
	}
	return table(cmd.OutOrStdout(), []string{"TOPIC", "PARTITIONS", "REPLICAS"}, tr)
}

// countOrDash shows -1 (not reported by an old broker) as "-".
func countOrDash(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func topicListCmd() *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			topics, err := adm.ListTopicsWithInternal(cmd.Context())
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			var rows []topicSummary
			for _, t := range topics.Sorted() {
				if t.IsInternal && !internal {
					continue
				}
				rows = append(rows, topicSummary{Name: t.Topic, ID: topicID(t.ID),
					Partitions: len(t.Partitions), Replicas: t.Partitions.NumReplicas(), Internal: t.IsInternal})
			}
			if len(rows) == 0 && !jsonOutput(cmd) {
				fmt.Fprintln(cmd.ErrOrStderr(), "No topics; create one with `strata topic create NAME`.")
				return nil
			}
			return printTopicSummaries(cmd, rows)
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics (__consumer_offsets)")
	return cmd
}

// topicDescription is the JSON of `topic describe`.
type topicDescription struct {
	Name       string            `json:"name"`
	ID         string            `json:"id,omitempty"`
	Internal   bool              `json:"internal"`
	Partitions []partitionDetail `json:"partitions"`
	Configs    []topicConfig     `json:"configs"`
}

type partitionDetail struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Offline        []int32 `json:"offline_replicas"`
	LogStartOffset *int64  `json:"log_start_offset"`
	LogEndOffset   *int64  `json:"log_end_offset"`
	Error          string  `json:"error,omitempty"`
}

type topicConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func topicDescribeCmd() *cobra.Command {
	var allConfigs bool
	cmd := &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show topics' partitions (leader, replicas, ISR, offline replicas, offsets) and configs",
		Long: `Show each topic's partitions — leader ("none" while it has none), leader
epoch, replicas (the preferred leader first), in-sync replicas, offline
replicas, log start and end offsets — and its configs. Like kafka-topics
--describe, only configs that differ from the defaults are listed unless
--all-configs is given.`,
		Args: needNames("topic name", "strata topic describe orders"),
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
			var found []string
			var errs []error
			for _, name := range names {
				t, ok := meta[name]
				switch {
				case !ok:
					errs = append(errs, topicErr(name, errors.New("missing from metadata"), ""))
				case t.Err != nil:
					errs = append(errs, topicErr(name, t.Err, ""))
				default:
					found = append(found, name)
				}
			}
			var out []topicDescription
			if len(found) > 0 {
				// Offsets and configs are best effort per partition: a
				// failure shows in that partition's row, not as a
				// failed command.
				starts, serr := adm.ListStartOffsets(ctx, found...)
				ends, eerr := adm.ListEndOffsets(ctx, found...)
				if err := errors.Join(serr, eerr); err != nil && starts == nil && ends == nil {
					return fmt.Errorf("list offsets: %w", err)
				}
				configs, cerr := adm.DescribeTopicConfigs(ctx, found...)
				if cerr != nil && configs == nil {
					return fmt.Errorf("describe configs: %w", cerr)
				}
				for _, name := range found {
					d, err := describeTopic(meta[name], starts, ends, configs, allConfigs)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					out = append(out, d)
				}
			}
			if jsonOutput(cmd) {
				if out == nil {
					out = []topicDescription{}
				}
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				for i, d := range out {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					if err := printTopicDescription(cmd.OutOrStdout(), d, allConfigs); err != nil {
						return err
					}
				}
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "list every config, defaults included")
	return cmd
}

func describeTopic(t kadm.TopicDetail, starts, ends kadm.ListedOffsets, configs kadm.ResourceConfigs, allConfigs bool) (topicDescription, error) {
	d := topicDescription{Name: t.Topic, ID: topicID(t.ID), Internal: t.IsInternal,
		Partitions: []partitionDetail{}, Configs: []topicConfig{}}
	for _, p := range t.Partitions.Sorted() {
		// Replicas in the broker's order: the first is the preferred
		// leader, as kafka-topics --describe shows them.
		pd := partitionDetail{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: append([]int32{}, p.Replicas...), ISR: sortedInt32s(p.ISR), Offline: sortedInt32s(p.OfflineReplicas)}
		var perr error
		if p.Err != nil {
			perr = p.Err
		}
		if o, ok := starts.Lookup(t.Topic, p.Partition); ok && o.Err == nil {
			pd.LogStartOffset = &o.Offset
		} else if ok && perr == nil {
			perr = o.Err
		}
		if o, ok := ends.Lookup(t.Topic, p.Partition); ok && o.Err == nil {
			pd.LogEndOffset = &o.Offset
		} else if ok && perr == nil {
			perr = o.Err
		}
		if perr != nil {
			pd.Error = kafkaErrText(perr, "")
		}
		d.Partitions = append(d.Partitions, pd)
	}
	rc, err := configs.On(t.Topic, nil)
	if err != nil {
		// Not in the answer: show the topic without configs.
		return d, nil
	}
	if rc.Err != nil {
		return d, topicErr(t.Topic, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if !allConfigs && c.Source == kmsg.ConfigSourceDefaultConfig {
			continue
		}
		d.Configs = append(d.Configs, topicConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	return d, nil
}

func printTopicDescription(w io.Writer, d topicDescription, allConfigs bool) error {
	replicas := 0
	if len(d.Partitions) > 0 {
		replicas = len(d.Partitions[0].Replicas)
	}
	id := d.ID
	if id == "" {
		id = "-"
	}
	if err := table(w, []string{"TOPIC", d.Name}, [][]string{
		{"ID", id},
		{"INTERNAL", strconv.FormatBool(d.Internal)},
		{"PARTITIONS", strconv.Itoa(len(d.Partitions))},
		{"REPLICAS", strconv.Itoa(replicas)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var rows [][]string
	anyErr := false
	for _, p := range d.Partitions {
		if p.Error != "" {
			anyErr = true
		}
	}
	for _, p := range d.Partitions {
		leader, offline := "none", "-"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		if len(p.Offline) > 0 {
			offline = int32List(p.Offline)
		}
		r := []string{strconv.Itoa(int(p.Partition)), leader, strconv.Itoa(int(p.LeaderEpoch)),
			int32List(p.Replicas), int32List(p.ISR), offline, optInt(p.LogStartOffset), optInt(p.LogEndOffset)}
		if anyErr {
			r = append(r, p.Error)
		}
		rows = append(rows, r)
	}
	header := []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE", "LOG-START-OFFSET", "LOG-END-OFFSET"}
	if anyErr {
		header = append(header, "ERROR")
	}
	if err := table(w, header, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Configs) == 0 {
		if allConfigs {
			fmt.Fprintln(w, "No configs reported.")
		} else {
			fmt.Fprintln(w, "No configs set on the topic (--all-configs shows the defaults).")
		}
		return nil
	}
	rows = rows[:0]
	for _, c := range d.Configs {
		v := "-"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil:
			v = *c.Value
		}
		rows = append(rows, []string{c.Name, v, c.Source})
	}
	return table(w, []string{"CONFIG", "VALUE", "SOURCE"}, rows)
}

// nameStatus is a row of the delete commands.
type nameStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func printStatuses(cmd *cobra.Command, kind string, rows []nameStatus) error {
	if rows == nil {
		rows = []nameStatus{}
	}
	if jsonOutput(cmd) {
		return printJSON(cmd.OutOrStdout(), rows)
	}
	if len(rows) == 0 {
		return nil
	}
	var tr [][]string
	for _, r := range rows {
		tr = append(tr, []string{r.Name, r.Status})
	}
	return table(cmd.OutOrStdout(), []string{kind, "STATUS"}, tr)
}

func topicDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Args:    needNames("topic name", "strata topic delete orders"),
		RunE: func(cmd *cobra.Command, names []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.DeleteTopics(cmd.Context(), names...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			var rows []nameStatus
			var errs []error
			for _, name := range names {
				r, ok := resp[name]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", name))
				case r.Err != nil:
					errs = append(errs, topicErr(name, r.Err, r.ErrMessage))
				default:
					rows = append(rows, nameStatus{name, "deleted"})
				}
			}
			if err := printStatuses(cmd, "TOPIC", rows); err != nil {
				return err
			}
			return joinErrs(errs)
		},
	}
}

// configChange is a row of `topic alter-config`.
type configChange struct {
	Topic  string  `json:"topic"`
	Config string  `json:"config"`
	Action string  `json:"action"`
	Value  *string `json:"value"`
}

func topicAlterConfigCmd() *cobra.Command {
	var sets, dels []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME...",
		Short: "Set or delete topic configs (incrementally; other configs are kept)",
		Long: `Set or delete topic configs with IncrementalAlterConfigs; configs not
named are left as they are. A deleted config falls back to the broker's
default.

  strata topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy`,
		Args: needNames("topic name", "strata topic alter-config orders --set retention.ms=3600000"),
		RunE: func(cmd *cobra.Command, names []string) error {
			if len(sets) == 0 && len(dels) == 0 {
				return errors.New("nothing to change: give --set key=value and/or --delete key")
			}
			kvs, err := parseKVs("set", sets)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			var changes []configChange
			for _, kv := range kvs {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: kadm.StringPtr(kv[1])})
				changes = append(changes, configChange{Config: kv[0], Action: "set", Value: kadm.StringPtr(kv[1])})
			}
			for _, k := range dels {
				if k == "" {
					return errors.New("--delete: give a config name")
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
				changes = append(changes, configChange{Config: k, Action: "delete"})
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.AlterTopicConfigs(cmd.Context(), alters, names...)
			if err != nil && len(resp) == 0 {
				return fmt.Errorf("alter configs: %w", err)
			}
			rows := []configChange{}
			var errs []error
			for _, name := range names {
				r, err := resp.On(name, nil)
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", name))
				case r.Err != nil:
					errs = append(errs, topicErr(name, r.Err, r.ErrMessage))
				default:
					for _, c := range changes {
						c.Topic = name
						rows = append(rows, c)
					}
				}
			}
			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			} else if len(rows) > 0 {
				var tr [][]string
				for _, c := range rows {
					v := "-"
					if c.Value != nil {
						v = *c.Value
					}
					tr = append(tr, []string{c.Topic, c.Config, c.Action, v})
				}
				if err := table(cmd.OutOrStdout(), []string{"TOPIC", "CONFIG", "ACTION", "VALUE"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "set a config, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&dels, "delete", nil, "delete a config, back to the default (repeatable)")
	return cmd
}

// partitionsChange is a row of `topic add-partitions`.
type partitionsChange struct {
	Topic      string `json:"topic"`
	Before     int    `json:"partitions_before"`
	Partitions int    `json:"partitions"`
}

func topicAddPartitionsCmd() *cobra.Command {
	var total int
	cmd := &cobra.Command{
		Use:   "add-partitions NAME...",
		Short: "Grow topics to --total partitions (partitions cannot be removed)",
		Long: `Grow topics to --total partitions. Kafka cannot remove partitions, so
--total must be more than a topic has. Keyed records may map to different
partitions afterwards.

  strata topic add-partitions orders --total 6`,
		Args: needNames("topic name", "strata topic add-partitions orders --total 6"),
		RunE: func(cmd *cobra.Command, names []string) error {
			if total < 1 || total > math.MaxInt32 {
				return fmt.Errorf("--total %d: give the new partition count, e.g. --total 6", total)
			}
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			meta, err := adm.ListTopics(ctx, names...)
			if err != nil {
				return fmt.Errorf("describe topics: %w", err)
			}
			var grow []string
			var errs []error
			before := map[string]int{}
			for _, name := range names {
				t, ok := meta[name]
				switch {
				case !ok:
					errs = append(errs, topicErr(name, errors.New("missing from metadata"), ""))
				case t.Err != nil:
					errs = append(errs, topicErr(name, t.Err, ""))
				case len(t.Partitions) >= total:
					errs = append(errs, fmt.Errorf("topic %q already has %d partitions; --total must be more than that (partitions cannot be removed)", name, len(t.Partitions)))
				default:
					before[name] = len(t.Partitions)
					grow = append(grow, name)
				}
			}
			rows := []partitionsChange{}
			if len(grow) > 0 {
				resp, err := adm.UpdatePartitions(ctx, total, grow...)
				if err != nil {
					return fmt.Errorf("add partitions: %w", err)
				}
				for _, name := range grow {
					r, ok := resp[name]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("topic %q: missing from the broker's answer", name))
					case r.Err != nil:
						errs = append(errs, topicErr(name, r.Err, r.ErrMessage))
					default:
						rows = append(rows, partitionsChange{Topic: name, Before: before[name], Partitions: total})
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
					tr = append(tr, []string{r.Topic, strconv.Itoa(r.Before), strconv.Itoa(r.Partitions)})
				}
				if err := table(cmd.OutOrStdout(), []string{"TOPIC", "PARTITIONS-BEFORE", "PARTITIONS"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
	cmd.Flags().IntVar(&total, "total", 0, "the new total number of partitions (required)")
	return cmd
}
