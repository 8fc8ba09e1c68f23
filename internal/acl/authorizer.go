package acl

import (
	"strings"
)

// Config is the authorizer's part of the broker configuration.
type Config struct {
	// SuperUsers are always allowed (super.users, principals separated
	// by semicolons).
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows a request on a resource that no
	// binding names (allow.everyone.if.no.acl.found, default false).
	AllowEveryoneIfNoACLFound bool
}

// ParseSuperUsers splits super.users: principals separated by semicolons,
// blanks ignored, as Kafka's StandardAuthorizer reads it.
func ParseSuperUsers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type resourceKey struct {
	typ  ResourceType
	name string
}

// Authorizer decides with a fixed set of bindings. It is immutable, so
// safe for concurrent use; a change of the bindings builds a new one.
// A nil *Authorizer allows everything: no authorizer is configured.
type Authorizer struct {
	cfg      Config
	super    map[string]bool
	literal  map[resourceKey][]Binding
	prefixed map[ResourceType][]Binding
	all      []Binding
}

// New returns an authorizer over bindings.
func New(cfg Config, bindings []Binding) *Authorizer {
	a := &Authorizer{cfg: cfg, super: map[string]bool{}, literal: map[resourceKey][]Binding{}, prefixed: map[ResourceType][]Binding{}, all: bindings}
	for _, u := range cfg.SuperUsers {
		a.super[u] = true
	}
	for _, b := range bindings {
		switch b.PatternType {
		case PatternLiteral:
			k := resourceKey{b.ResourceType, b.ResourceName}
			a.literal[k] = append(a.literal[k], b)
		case PatternPrefixed:
			a.prefixed[b.ResourceType] = append(a.prefixed[b.ResourceType], b)
		}
	}
	return a
}

// IsSuperUser reports whether principal is in super.users.
func (a *Authorizer) IsSuperUser(principal string) bool {
	return a == nil || a.super[principal]
}

// Authorize reports whether principal, connected from host, may perform
// op on the resource of type rt named name (see the package doc).
func (a *Authorizer) Authorize(principal, host string, op Operation, rt ResourceType, name string) bool {
	if a == nil || a.super[principal] {
		return true
	}
	var found, allowed bool
	// check returns true when a matching DENY decides.
	check := func(b *Binding) bool {
		found = true
		if b.Principal != principal && b.Principal != WildcardPrincipal {
			return false
		}
		if b.Host != Wildcard && b.Host != host {
			return false
		}
		if b.Permission == PermissionDeny {
			return b.Operation == OpAll || b.Operation == op
		}
		if b.Permission == PermissionAllow && implies(b.Operation, op) {
			allowed = true
		}
		return false
	}
	for i, bs := range [2][]Binding{a.literal[resourceKey{rt, name}], a.literal[resourceKey{rt, Wildcard}]} {
		if i == 1 && name == Wildcard {
			break // the same list
		}
		for j := range bs {
			if check(&bs[j]) {
				return false
			}
		}
	}
	pbs := a.prefixed[rt]
	for j := range pbs {
		if strings.HasPrefix(name, pbs[j].ResourceName) && check(&pbs[j]) {
			return false
		}
	}
	if allowed {
		return true
	}
	return !found && a.cfg.AllowEveryoneIfNoACLFound
}

// implies reports whether an ALLOW of granted allows op (Kafka's
// StandardAuthorizerData: ALL allows everything, READ, WRITE, DELETE and
// ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS).
func implies(granted, op Operation) bool {
	if granted == op || granted == OpAll {
		return true
	}
	switch op {
	case OpDescribe:
		return granted == OpRead || granted == OpWrite || granted == OpDelete || granted == OpAlter
	case OpDescribeConfigs:
		return granted == OpAlterConfigs
	}
	return false
}

// AuthorizeAny reports whether principal may perform op on at least one
// resource of type rt, as Kafka's Authorizer.authorizeByResourceType
// (KIP-679: an idempotent producer needs WRITE on some topic): a super
// user may; else an ALLOW of op (or ALL) for the principal and host on
// some literal or prefixed pattern that no DENY of the same literal name
// or of a prefix of it overrides, or a literal "*" ALLOW without a
// literal "*" DENY.
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, rt ResourceType) bool {
	// Kafka asks a hard-coded resource name first, for super users and
	// allow.everyone.if.no.acl.found.
	if a.Authorize(principal, host, op, rt, "hardcode") {
		return true
	}
	denyLiteral, denyPrefix := map[string]bool{}, map[string]bool{}
	var allowLiteral, allowPrefix []string
	wildcardAllow := false
	for _, b := range a.all {
		if b.ResourceType != rt || b.Host != host && b.Host != Wildcard ||
			b.Principal != principal && b.Principal != WildcardPrincipal ||
			b.Operation != op && b.Operation != OpAll {
			continue
		}
		switch {
		case b.Permission == PermissionDeny && b.PatternType == PatternLiteral:
			if b.ResourceName == Wildcard {
				return false
			}
			denyLiteral[b.ResourceName] = true
		case b.Permission == PermissionDeny:
			denyPrefix[b.ResourceName] = true
		case b.PatternType == PatternLiteral && b.ResourceName == Wildcard:
			wildcardAllow = true
		case b.PatternType == PatternLiteral:
			allowLiteral = append(allowLiteral, b.ResourceName)
		default:
			allowPrefix = append(allowPrefix, b.ResourceName)
		}
	}
	if wildcardAllow {
		return true
	}
	dominated := func(name string) bool {
		for i := 1; i <= len(name); i++ {
			if denyPrefix[name[:i]] {
				return true
			}
		}
		return false
	}
	for _, n := range allowLiteral {
		if !denyLiteral[n] && !dominated(n) {
			return true
		}
	}
	for _, n := range allowPrefix {
		if !dominated(n) {
			return true
		}
	}
	return false
}

// Bindings returns the bindings the authorizer decides with. The caller
// must not modify them.
func (a *Authorizer) Bindings() []Binding {
	if a == nil {
		return nil
	}
	return a.all
}
