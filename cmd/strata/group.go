package main

// strata group: list, describe (members, assignments, per-partition lag),
// delete and reset-offsets, the jobs of kafka-consumer-groups. Both classic
// groups (DescribeGroups) and KIP-848 consumer groups
// (ConsumerGroupDescribe) are described.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, groupCmd) }

func groupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, delete consumer groups and reset their offsets",
		Args:  cobra.NoArgs,
		// Runnable, so that an unknown subcommand is an error
		// rather than help and exit code 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(groupListCmd(), groupDescribeCmd(), groupDeleteCmd(), groupResetOffsetsCmd())
	return cmd
}

// listedGroup is a row of `group list`.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	Type         string `json:"type"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func groupListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			// A raw request rather than kadm.ListGroups, for the
			// group type (classic or consumer, KIP-848) of v5.
			var rows []listedGroup
			var errs []error
			for _, sh := range cl.RequestSharded(cmd.Context(), kmsg.NewPtrListGroupsRequest()) {
				if sh.Err != nil {
					errs = append(errs, fmt.Errorf("list groups on broker %d: %w", sh.Meta.NodeID, sh.Err))
					continue
				}
				resp := sh.Resp.(*kmsg.ListGroupsResponse)
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("list groups on broker %d: %s", sh.Meta.NodeID, kafkaErrText(err, "")))
					continue
				}
				for _, g := range resp.Groups {
					rows = append(rows, listedGroup{Group: g.Group, State: g.GroupState, Type: g.GroupType,
						ProtocolType: g.ProtocolType, Coordinator: sh.Meta.NodeID})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
			if jsonOutput(cmd) {
				if rows == nil {
					rows = []listedGroup{}
				}
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			} else if len(rows) == 0 && len(errs) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No consumer groups.")
			} else if len(rows) > 0 {
				var tr [][]string
				for _, r := range rows {
					tr = append(tr, []string{r.Group, dash(r.Type), dash(r.ProtocolType), dash(r.State)})
				}
				if err := table(cmd.OutOrStdout(), []string{"GROUP", "TYPE", "PROTOCOL-TYPE", "STATE"}, tr); err != nil {
					return err
				}
			}
			return joinErrs(errs)
		},
	}
}

// dash shows an empty field as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupDescription is the JSON of `group describe`.
type groupDescription struct {
	Group        string        `json:"group"`
	State        string        `json:"state"`
	Type         string        `json:"type"`
	ProtocolType string        `json:"protocol_type"`
	Protocol     string        `json:"protocol"`
	Coordinator  int32         `json:"coordinator"`
	Members      []groupMember `json:"members"`
	Offsets      []groupOffset `json:"offsets"`
	TotalLag     int64         `json:"total_lag"`
}

type groupMember struct {
	MemberID   string            `json:"member_id"`
	InstanceID *string           `json:"instance_id"`
	ClientID   string            `json:"client_id"`
	ClientHost string            `json:"client_host"`
	Assignment []topicPartitions `json:"assignment"`
}

type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// groupOffset is one partition the group has committed to or is assigned.
type groupOffset struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"`
	LogEndOffset    *int64 `json:"log_end_offset"`
	Lag             *int64 `json:"lag"`
	MemberID        string `json:"member_id"`
	Error           string `json:"error,omitempty"`
}

// errGroupNotFound marks a group that neither describe API knows.
var errGroupNotFound = errors.New("group not found")

// describeGroupMembers describes groups as classic groups and, for those
// the classic API does not know, as KIP-848 consumer groups. Groups
// neither knows are errGroupNotFound in errs. Offsets are not filled in.
func describeGroupMembers(ctx context.Context, adm *kadm.Client, names []string) (map[string]*groupDescription, map[string]error, error) {
	out := map[string]*groupDescription{}
	errs := map[string]error{}
	classic, err := adm.DescribeGroups(ctx, names...)
	if err != nil && len(classic) == 0 {
		return nil, nil, fmt.Errorf("describe groups: %w", err)
	}
	var next []string
	for _, name := range names {
		g, ok := classic[name]
		if ok && g.Err == nil && g.State != "Dead" {
			out[name] = classicGroup(g)
			continue
		}
		switch {
		case !ok:
			errs[name] = errGroupNotFound
		case g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound):
			errs[name] = groupErr(name, g.Err, g.ErrMessage)
			continue
		default:
			errs[name] = errGroupNotFound
		}
		next = append(next, name)
	}
	if len(next) == 0 {
		return out, errs, nil
	}
	// Brokers before Kafka 3.7 lack ConsumerGroupDescribe: their groups
	// were all answered above.
	cgs, _ := adm.DescribeConsumerGroups(ctx, next...)
	for _, name := range next {
		g, ok := cgs[name]
		if !ok || g.Err != nil || g.State == "Dead" {
			continue
		}
		delete(errs, name)
		d := &groupDescription{Group: name, State: g.State, Type: "consumer", ProtocolType: "consumer",
			Protocol: g.AssignorName, Coordinator: g.Coordinator.NodeID, Members: []groupMember{}}
		for _, m := range g.Members {
			gm := groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
			gm.Assignment = assignmentOf(m.Assignment)
			d.Members = append(d.Members, gm)
		}
		out[name] = d
	}
	return out, errs, nil
}

func classicGroup(g kadm.DescribedGroup) *groupDescription {
	d := &groupDescription{Group: g.Group, State: g.State, Type: "classic", ProtocolType: g.ProtocolType,
		Protocol: g.Protocol, Coordinator: g.Coordinator.NodeID, Members: []groupMember{}}
	for _, m := range g.Members {
		gm := groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
		set := kadm.TopicsSet{}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				set.Add(t.Topic, t.Partitions...)
			}
		}
		gm.Assignment = assignmentOf(set)
		d.Members = append(d.Members, gm)
	}
	return d
}

func assignmentOf(set kadm.TopicsSet) []topicPartitions {
	out := []topicPartitions{}
	for _, t := range set.Sorted() {
		if len(t.Partitions) > 0 {
			out = append(out, topicPartitions{Topic: t.Topic, Partitions: sortedInt32s(t.Partitions)})
		}
	}
	return out
}

// describeGroups describes groups with their committed offsets, log end
// offsets and lag.
func describeGroups(ctx context.Context, adm *kadm.Client, names []string) ([]*groupDescription, []error, error) {
	descs, gerrs, err := describeGroupMembers(ctx, adm, names)
	if err != nil {
		return nil, nil, err
	}
	var found []*groupDescription
	var errs []error
	for _, name := range names {
		if d, ok := descs[name]; ok {
			found = append(found, d)
		} else if e := gerrs[name]; errors.Is(e, errGroupNotFound) {
			errs = append(errs, groupErr(name, kerr.GroupIDNotFound, ""))
		} else {
			errs = append(errs, e)
		}
	}
	if len(found) == 0 {
		return nil, errs, nil
	}
	committed := map[string]kadm.OffsetResponses{}
	topics := map[string]bool{}
	var described []*groupDescription
	for _, d := range found {
		os, err := adm.FetchOffsets(ctx, d.Group)
		if err != nil {
			errs = append(errs, groupErr(d.Group, err, ""))
			continue
		}
		committed[d.Group] = os
		for t := range os {
			topics[t] = true
		}
		for _, m := range d.Members {
			for _, a := range m.Assignment {
				topics[a.Topic] = true
			}
		}
		described = append(described, d)
	}
	var ends kadm.ListedOffsets
	if len(topics) > 0 {
		var names []string
		for t := range topics {
			names = append(names, t)
		}
		sort.Strings(names)
		// Per-partition failures (a deleted topic) show in the rows.
		ends, _ = adm.ListEndOffsets(ctx, names...)
	}
	for _, d := range described {
		fillGroupOffsets(d, committed[d.Group], ends)
	}
	return described, errs, nil
}

// fillGroupOffsets adds a row for every partition the group has committed
// to or has assigned, with the lag where both offsets are known.
func fillGroupOffsets(d *groupDescription, committed kadm.OffsetResponses, ends kadm.ListedOffsets) {
	type tp struct {
		t string
		p int32
	}
	owner := map[tp]string{}
	for _, m := range d.Members {
		for _, a := range m.Assignment {
			for _, p := range a.Partitions {
				owner[tp{a.Topic, p}] = m.MemberID
			}
		}
	}
	rows := map[tp]*groupOffset{}
	row := func(t string, p int32) *groupOffset {
		k := tp{t, p}
		if r := rows[k]; r != nil {
			return r
		}
		r := &groupOffset{Topic: t, Partition: p, MemberID: owner[k]}
		rows[k] = r
		return r
	}
	committed.Each(func(o kadm.OffsetResponse) {
		r := row(o.Topic, o.Partition)
		switch {
		case o.Err != nil:
			r.Error = kafkaErrText(o.Err, "")
		case o.At >= 0:
			at := o.At
			r.CommittedOffset = &at
		}
	})
	for k := range owner {
		row(k.t, k.p)
	}
	d.Offsets = []groupOffset{}
	for _, r := range rows {
		if e, ok := ends.Lookup(r.Topic, r.Partition); ok && e.Err == nil {
			end := e.Offset
			r.LogEndOffset = &end
		} else if ok && r.Error == "" {
			r.Error = kafkaErrText(e.Err, "")
		} else if !ok && r.Error == "" {
			r.Error = "no log end offset (was the topic deleted?)"
		}
		if r.CommittedOffset != nil && r.LogEndOffset != nil {
			lag := max(*r.LogEndOffset-*r.CommittedOffset, 0)
			r.Lag = &lag
			d.TotalLag += lag
		}
		d.Offsets = append(d.Offsets, *r)
	}
	sort.Slice(d.Offsets, func(i, j int) bool {
		a, b := d.Offsets[i], d.Offsets[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
}

func groupDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show groups' members, assignments, committed offsets and lag",
		Long: `Show each group's state, members with their assigned partitions, and
for every partition the group has committed to or is assigned: the
committed offset, the log end offset (high watermark) and the lag between
them. "-" means unknown: no committed offset yet, or the partition's end
could not be listed.`,
		Args: needNames("group", "strata group describe my-group"),
		RunE: func(cmd *cobra.Command, names []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			descs, errs, err := describeGroups(cmd.Context(), adm, names)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				if descs == nil {
					descs = []*groupDescription{}
				}
				if err := printJSON(cmd.OutOrStdout(), descs); err != nil {
					return err
				}
			} else {
				for i, d := range descs {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					if err := printGroupDescription(cmd.OutOrStdout(), d); err != nil {
						return err
					}
				}
			}
			return joinErrs(errs)
		},
	}
}

func printGroupDescription(w io.Writer, d *groupDescription) error {
	protocol := d.ProtocolType
	if d.Protocol != "" {
		protocol += "/" + d.Protocol
	}
	if err := table(w, []string{"GROUP", d.Group}, [][]string{
		{"STATE", dash(d.State)},
		{"TYPE", d.Type},
		{"PROTOCOL", dash(protocol)},
		{"COORDINATOR", strconv.Itoa(int(d.Coordinator))},
		{"MEMBERS", strconv.Itoa(len(d.Members))},
		{"TOTAL-LAG", strconv.FormatInt(d.TotalLag, 10)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Members) == 0 {
		fmt.Fprintln(w, "No active members.")
	} else {
		instances := false
		for _, m := range d.Members {
			instances = instances || m.InstanceID != nil
		}
		header := []string{"MEMBER-ID"}
		if instances {
			header = append(header, "INSTANCE-ID")
		}
		header = append(header, "CLIENT-ID", "HOST", "ASSIGNMENT")
		var rows [][]string
		for _, m := range d.Members {
			r := []string{m.MemberID}
			if instances {
				id := "-"
				if m.InstanceID != nil {
					id = *m.InstanceID
				}
				r = append(r, id)
			}
			var as []string
			for _, a := range m.Assignment {
				as = append(as, a.Topic+"["+int32List(a.Partitions)+"]")
			}
			r = append(r, dash(m.ClientID), dash(m.ClientHost), dash(strings.Join(as, " ")))
			rows = append(rows, r)
		}
		if err := table(w, header, rows); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(d.Offsets) == 0 {
		fmt.Fprintln(w, "No committed offsets.")
		return nil
	}
	anyErr := false
	for _, o := range d.Offsets {
		anyErr = anyErr || o.Error != ""
	}
	header := []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"}
	if anyErr {
		header = append(header, "ERROR")
	}
	var rows [][]string
	for _, o := range d.Offsets {
		r := []string{o.Topic, strconv.Itoa(int(o.Partition)), optInt(o.CommittedOffset),
			optInt(o.LogEndOffset), optInt(o.Lag), dash(o.MemberID)}
		if anyErr {
			r = append(r, o.Error)
		}
		rows = append(rows, r)
	}
	return table(w, header, rows)
}

func groupDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete groups and their committed offsets (groups must have no members)",
		Args:    needNames("group", "strata group delete my-group"),
		RunE: func(cmd *cobra.Command, names []string) error {
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			defer done()
			resp, err := adm.DeleteGroups(cmd.Context(), names...)
			if err != nil && len(resp) == 0 {
				return fmt.Errorf("delete groups: %w", err)
			}
			var rows []nameStatus
			var errs []error
			for _, name := range names {
				r, ok := resp[name]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("group %q: missing from the broker's answer", name))
				case r.Err != nil:
					errs = append(errs, groupErr(name, r.Err, r.ErrMessage))
				default:
					rows = append(rows, nameStatus{name, "deleted"})
				}
			}
			if err := printStatuses(cmd, "GROUP", rows); err != nil {
				return err
			}
			return joinErrs(errs)
		},
	}
}
