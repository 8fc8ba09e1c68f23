package main

// strata acl: add, list and remove ACLs (kafka-acls), with the
// CreateAcls, DescribeAcls and DeleteAcls APIs, so it works against any
// Kafka-compatible broker with an authorizer.
//
//	strata acl add --allow-principal User:alice --operation read --topic t
//	strata acl list --topic t
//	strata acl remove --allow-principal User:alice --topic t
//
// add makes one binding for each resource x principal x host x operation.
// list and remove take the same flags as filters: a flag not given
// matches anything (any resource, principal, host, operation), and
// --resource-pattern-type defaults to any there ("match" selects the
// bindings that apply to the named resource, prefixes and "*" included).

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, aclCmd) }

func aclCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, list and remove ACLs (needs an authorizer: authorizer.class.name)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(aclAddCmd(), aclListCmd(), aclRemoveCmd())
	return cmd
}

// aclFlags are the flags add, list and remove share.
type aclFlags struct {
	allow, deny, hosts, ops []string
	topics, groups, txnIDs  []string
	cluster                 bool
	pattern                 string
}

func (f *aclFlags) register(cmd *cobra.Command, filter bool) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.allow, "allow-principal", nil, "principal to allow, Type:name (User:alice, User:* for all); repeatable")
	fl.StringSliceVar(&f.deny, "deny-principal", nil, "principal to deny; repeatable")
	hostDefault := []string{"*"}
	if filter {
		hostDefault = nil
	}
	fl.StringSliceVar(&f.hosts, "host", hostDefault, "client IP address the ACL applies to (* for all); repeatable")
	fl.StringSliceVar(&f.ops, "operation", nil, "operation: all, read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs, idempotent_write; repeatable")
	fl.StringSliceVar(&f.topics, "topic", nil, "topic (* for all); repeatable")
	fl.StringSliceVar(&f.groups, "group", nil, "consumer group (* for all); repeatable")
	fl.StringSliceVar(&f.txnIDs, "transactional-id", nil, "transactional id (* for all); repeatable")
	fl.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	patternDefault, patterns := "literal", "literal or prefixed"
	if filter {
		patternDefault, patterns = "any", "any, match, literal or prefixed"
	}
	fl.StringVar(&f.pattern, "resource-pattern-type", patternDefault, "resource pattern type: "+patterns)
}

type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

func (f *aclFlags) resources() []aclResource {
	var out []aclResource
	for _, t := range f.topics {
		out = append(out, aclResource{kmsg.ACLResourceTypeTopic, t})
	}
	for _, g := range f.groups {
		out = append(out, aclResource{kmsg.ACLResourceTypeGroup, g})
	}
	for _, x := range f.txnIDs {
		out = append(out, aclResource{kmsg.ACLResourceTypeTransactionalId, x})
	}
	if f.cluster {
		out = append(out, aclResource{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	return out
}

type aclPrincipal struct {
	name string
	perm kmsg.ACLPermissionType
}

func (f *aclFlags) principals() []aclPrincipal {
	var out []aclPrincipal
	for _, p := range f.allow {
		out = append(out, aclPrincipal{p, kmsg.ACLPermissionTypeAllow})
	}
	for _, p := range f.deny {
		out = append(out, aclPrincipal{p, kmsg.ACLPermissionTypeDeny})
	}
	return out
}

func (f *aclFlags) operations() ([]kmsg.ACLOperation, error) {
	var out []kmsg.ACLOperation
	for _, o := range f.ops {
		op, err := kmsg.ParseACLOperation(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(o)), "-", "_"))
		if err != nil || op == kmsg.ACLOperationUnknown {
			return nil, fmt.Errorf("unknown operation %q", o)
		}
		out = append(out, op)
	}
	return out, nil
}

func (f *aclFlags) patternType() (kmsg.ACLResourcePatternType, error) {
	p, err := kmsg.ParseACLResourcePatternType(strings.ToLower(strings.TrimSpace(f.pattern)))
	if err != nil || p == kmsg.ACLResourcePatternTypeUnknown {
		return 0, fmt.Errorf("unknown resource pattern type %q", f.pattern)
	}
	return p, nil
}

func aclAddCmd() *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add ACLs: each resource x principal x host x operation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ops, err := f.operations()
			if err != nil {
				return err
			}
			pattern, err := f.patternType()
			if err != nil {
				return err
			}
			res, principals := f.resources(), f.principals()
			switch {
			case len(res) == 0:
				return errors.New("name a resource: --topic, --group, --transactional-id or --cluster")
			case len(principals) == 0:
				return errors.New("name a principal: --allow-principal or --deny-principal")
			case len(ops) == 0:
				return errors.New("name an operation: --operation")
			case len(f.hosts) == 0:
				return errors.New("--host must not be empty (* is every host)")
			}
			req := kmsg.NewPtrCreateACLsRequest()
			for _, r := range res {
				for _, p := range principals {
					for _, h := range f.hosts {
						for _, op := range ops {
							c := kmsg.NewCreateACLsRequestCreation()
							c.ResourceType, c.ResourceName, c.ResourcePatternType = r.typ, r.name, pattern
							c.Principal, c.Host, c.Operation, c.PermissionType = p.name, h, op, p.perm
							req.Creations = append(req.Creations, c)
						}
					}
				}
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			resp, err := req.RequestWith(cmd.Context(), cl)
			if err != nil {
				return err
			}
			var errs []error
			for i, r := range resp.Results {
				if err := kerr.ErrorForCode(r.ErrorCode); err != nil && i < len(req.Creations) {
					c := req.Creations[i]
					msg := ""
					if r.ErrorMessage != nil {
						msg = *r.ErrorMessage
					}
					errs = append(errs, fmt.Errorf("%s %s %s on %s %s: %s", c.PermissionType, c.Principal, c.Operation, c.ResourceType, c.ResourceName, kafkaErrText(err, msg)))
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %d ACL(s)\n", len(req.Creations))
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

// aclRow is one ACL as list and remove print it.
type aclRow struct {
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func printACLs(cmd *cobra.Command, rows []aclRow) error {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return fmt.Sprint(a.ResourceType, a.ResourceName, a.Principal, a.Operation) < fmt.Sprint(b.ResourceType, b.ResourceName, b.Principal, b.Operation)
	})
	if jsonOutput(cmd) {
		if rows == nil {
			rows = []aclRow{}
		}
		return printJSON(cmd.OutOrStdout(), rows)
	}
	var out [][]string
	for _, r := range rows {
		out = append(out, []string{r.Principal, r.Host, r.ResourceType, r.ResourceName, r.PatternType, r.Operation, r.Permission})
	}
	return table(cmd.OutOrStdout(), []string{"PRINCIPAL", "HOST", "RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN", "OPERATION", "PERMISSION"}, out)
}

// filters are the DescribeAcls/DeleteAcls filters the flags name: one per
// resource x principal x host x operation, with "any" for a flag not given.
func (f *aclFlags) filters() ([]kmsg.DeleteACLsRequestFilter, error) {
	ops, err := f.operations()
	if err != nil {
		return nil, err
	}
	pattern, err := f.patternType()
	if err != nil {
		return nil, err
	}
	res := f.resources()
	if len(res) == 0 {
		res = []aclResource{{typ: kmsg.ACLResourceTypeAny}}
	}
	principals := f.principals()
	if len(principals) == 0 {
		principals = []aclPrincipal{{perm: kmsg.ACLPermissionTypeAny}}
	}
	hosts := f.hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	if len(ops) == 0 {
		ops = []kmsg.ACLOperation{kmsg.ACLOperationAny}
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var out []kmsg.DeleteACLsRequestFilter
	for _, r := range res {
		for _, p := range principals {
			for _, h := range hosts {
				for _, op := range ops {
					fl := kmsg.NewDeleteACLsRequestFilter()
					fl.ResourceType, fl.ResourceName, fl.ResourcePatternType = r.typ, opt(r.name), pattern
					fl.Principal, fl.Host, fl.Operation, fl.PermissionType = opt(p.name), opt(h), op, p.perm
					out = append(out, fl)
				}
			}
		}
	}
	return out, nil
}

func aclListCmd() *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the ACLs the flags select (all without flags)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filters, err := f.filters()
			if err != nil {
				return err
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			seen := map[aclRow]bool{}
			var rows []aclRow
			for _, fl := range filters {
				req := kmsg.NewPtrDescribeACLsRequest()
				req.ResourceType, req.ResourceName, req.ResourcePatternType = fl.ResourceType, fl.ResourceName, fl.ResourcePatternType
				req.Principal, req.Host, req.Operation, req.PermissionType = fl.Principal, fl.Host, fl.Operation, fl.PermissionType
				resp, err := req.RequestWith(cmd.Context(), cl)
				if err != nil {
					return err
				}
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
					msg := ""
					if resp.ErrorMessage != nil {
						msg = *resp.ErrorMessage
					}
					return fmt.Errorf("list ACLs: %s", kafkaErrText(err, msg))
				}
				for _, r := range resp.Resources {
					for _, a := range r.ACLs {
						row := aclRow{a.Principal, a.Host, r.ResourceType.String(), r.ResourceName, r.ResourcePatternType.String(), a.Operation.String(), a.PermissionType.String()}
						if !seen[row] {
							seen[row] = true
							rows = append(rows, row)
						}
					}
				}
			}
			return printACLs(cmd, rows)
		},
	}
	f.register(cmd, true)
	return cmd
}

func aclRemoveCmd() *cobra.Command {
	var f aclFlags
	var all bool
	cmd := &cobra.Command{
		Use:     "remove",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove the ACLs the flags select, and print them",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(f.resources()) == 0 && len(f.principals()) == 0 && !all {
				return errors.New("name a resource or a principal to remove ACLs of, or pass --all to remove every ACL")
			}
			filters, err := f.filters()
			if err != nil {
				return err
			}
			cl, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := kmsg.NewPtrDeleteACLsRequest()
			req.Filters = filters
			resp, err := req.RequestWith(cmd.Context(), cl)
			if err != nil {
				return err
			}
			var rows []aclRow
			var errs []error
			for _, r := range resp.Results {
				if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
					msg := ""
					if r.ErrorMessage != nil {
						msg = *r.ErrorMessage
					}
					errs = append(errs, fmt.Errorf("remove ACLs: %s", kafkaErrText(err, msg)))
					continue
				}
				for _, a := range r.MatchingACLs {
					rows = append(rows, aclRow{a.Principal, a.Host, a.ResourceType.String(), a.ResourceName, a.ResourcePatternType.String(), a.Operation.String(), a.PermissionType.String()})
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			return printACLs(cmd, rows)
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&all, "all", false, "with no resource or principal flag: remove every ACL")
	return cmd
}
