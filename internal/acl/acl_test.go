package acl

import "testing"

func lit(rt ResourceType, name, principal, host string, op Operation, perm Permission) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: PatternLiteral, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func pre(rt ResourceType, name, principal, host string, op Operation, perm Permission) Binding {
	b := lit(rt, name, principal, host, op, perm)
	b.PatternType = PatternPrefixed
	return b
}

func TestAuthorize(t *testing.T) {
	const alice, bob, admin = "User:alice", "User:bob", "User:admin"
	type req struct {
		principal, host string
		op              Operation
		rt              ResourceType
		name            string
	}
	for _, tc := range []struct {
		name     string
		bindings []Binding
		cfg      Config
		req      req
		want     bool
	}{
		{"no acl, default deny", nil, Config{}, req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"no acl, allow everyone", nil, Config{AllowEveryoneIfNoACLFound: true}, req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"acl of another principal, allow everyone does not apply",
			[]Binding{lit(ResourceTopic, "t", bob, "*", OpRead, PermissionAllow)}, Config{AllowEveryoneIfNoACLFound: true},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"acl of another resource, allow everyone applies",
			[]Binding{lit(ResourceTopic, "u", bob, "*", OpRead, PermissionAllow)}, Config{AllowEveryoneIfNoACLFound: true},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"literal allow", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"literal allow other op", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpWrite, ResourceTopic, "t"}, false},
		{"literal allow other name", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t2"}, false},
		{"literal allow other type", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceGroup, "t"}, false},
		{"wildcard resource", []Binding{lit(ResourceTopic, "*", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "anything"}, true},
		{"prefixed allow", []Binding{pre(ResourceTopic, "orders-", alice, "*", OpWrite, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpWrite, ResourceTopic, "orders-eu"}, true},
		{"prefixed no match", []Binding{pre(ResourceTopic, "orders-", alice, "*", OpWrite, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpWrite, ResourceTopic, "order"}, false},
		{"prefixed star is not a wildcard", []Binding{pre(ResourceTopic, "*", alice, "*", OpWrite, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpWrite, ResourceTopic, "t"}, false},
		{"wildcard principal", []Binding{lit(ResourceTopic, "t", WildcardPrincipal, "*", OpRead, PermissionAllow)}, Config{},
			req{bob, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"host match", []Binding{lit(ResourceTopic, "t", alice, "1.1.1.1", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"host mismatch", []Binding{lit(ResourceTopic, "t", alice, "1.1.1.1", OpRead, PermissionAllow)}, Config{},
			req{alice, "2.2.2.2", OpRead, ResourceTopic, "t"}, false},
		{"deny overrides literal allow", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow),
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"prefixed deny overrides wildcard allow", []Binding{
			lit(ResourceTopic, "*", WildcardPrincipal, "*", OpAll, PermissionAllow),
			pre(ResourceTopic, "secret", alice, "*", OpAll, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "secret-x"}, false},
		{"deny from host only", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow),
			lit(ResourceTopic, "t", alice, "6.6.6.6", OpRead, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"wildcard principal deny", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow),
			lit(ResourceTopic, "t", WildcardPrincipal, "*", OpRead, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"deny other op does not deny", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow),
			lit(ResourceTopic, "t", alice, "*", OpWrite, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
		{"deny all denies every op", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow),
			lit(ResourceTopic, "t", alice, "*", OpAll, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"allow all", []Binding{lit(ResourceTopic, "t", alice, "*", OpAll, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDelete, ResourceTopic, "t"}, true},
		{"read implies describe", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceTopic, "t"}, true},
		{"write implies describe", []Binding{lit(ResourceTopic, "t", alice, "*", OpWrite, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceTopic, "t"}, true},
		{"delete implies describe", []Binding{lit(ResourceGroup, "g", alice, "*", OpDelete, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceGroup, "g"}, true},
		{"alter implies describe", []Binding{lit(ResourceCluster, ClusterName, alice, "*", OpAlter, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceCluster, ClusterName}, true},
		{"create does not imply describe", []Binding{lit(ResourceTopic, "t", alice, "*", OpCreate, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceTopic, "t"}, false},
		{"describe does not imply read", []Binding{lit(ResourceTopic, "t", alice, "*", OpDescribe, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpRead, ResourceTopic, "t"}, false},
		{"alter configs implies describe configs", []Binding{lit(ResourceTopic, "t", alice, "*", OpAlterConfigs, PermissionAllow)}, Config{},
			req{alice, "1.1.1.1", OpDescribeConfigs, ResourceTopic, "t"}, true},
		{"deny read does not deny describe", []Binding{
			lit(ResourceTopic, "t", alice, "*", OpDescribe, PermissionAllow),
			lit(ResourceTopic, "t", alice, "*", OpRead, PermissionDeny)}, Config{},
			req{alice, "1.1.1.1", OpDescribe, ResourceTopic, "t"}, true},
		{"super user", []Binding{lit(ResourceTopic, "t", WildcardPrincipal, "*", OpAll, PermissionDeny)}, Config{SuperUsers: ParseSuperUsers("User:x; User:admin")},
			req{admin, "1.1.1.1", OpRead, ResourceTopic, "t"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(tc.cfg, tc.bindings)
			r := tc.req
			if got := a.Authorize(r.principal, r.host, r.op, r.rt, r.name); got != tc.want {
				t.Errorf("Authorize(%s, %s, %v, %v, %q) = %v, want %v", r.principal, r.host, r.op, r.rt, r.name, got, tc.want)
			}
		})
	}
	var none *Authorizer
	if !none.Authorize("User:x", "h", OpRead, ResourceTopic, "t") {
		t.Error("a nil authorizer (none configured) must allow")
	}
}

func TestAuthorizeAny(t *testing.T) {
	const alice = "User:alice"
	for _, tc := range []struct {
		name     string
		bindings []Binding
		want     bool
	}{
		{"none", nil, false},
		{"literal", []Binding{lit(ResourceTopic, "t", alice, "*", OpWrite, PermissionAllow)}, true},
		{"other op", []Binding{lit(ResourceTopic, "t", alice, "*", OpRead, PermissionAllow)}, false},
		{"literal denied", []Binding{lit(ResourceTopic, "t", alice, "*", OpWrite, PermissionAllow), lit(ResourceTopic, "t", alice, "*", OpWrite, PermissionDeny)}, false},
		{"prefix denied", []Binding{lit(ResourceTopic, "abc", alice, "*", OpWrite, PermissionAllow), pre(ResourceTopic, "ab", alice, "*", OpWrite, PermissionDeny)}, false},
		{"prefixed", []Binding{pre(ResourceTopic, "abc", alice, "*", OpAll, PermissionAllow)}, true},
		{"wildcard deny", []Binding{pre(ResourceTopic, "abc", alice, "*", OpAll, PermissionAllow), lit(ResourceTopic, "*", alice, "*", OpWrite, PermissionDeny)}, false},
		{"wildcard allow", []Binding{lit(ResourceTopic, "*", "User:*", "*", OpWrite, PermissionAllow)}, true},
	} {
		a := New(Config{}, tc.bindings)
		if got := a.AuthorizeAny(alice, "1.1.1.1", OpWrite, ResourceTopic); got != tc.want {
			t.Errorf("%s: AuthorizeAny = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	s := func(s string) *string { return &s }
	all := []Binding{
		lit(ResourceTopic, "foo", "User:a", "*", OpRead, PermissionAllow),
		lit(ResourceTopic, "*", "User:a", "*", OpRead, PermissionAllow),
		pre(ResourceTopic, "fo", "User:b", "*", OpWrite, PermissionDeny),
		lit(ResourceGroup, "foo", "User:a", "*", OpRead, PermissionAllow),
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []int
	}{
		{"any", Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}, []int{0, 1, 2, 3}},
		{"any pattern, exact name", Filter{ResourceType: ResourceTopic, ResourceName: s("fo"), PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}, []int{2}},
		{"match", Filter{ResourceType: ResourceTopic, ResourceName: s("foo"), PatternType: PatternMatch, Operation: OpAny, Permission: PermissionAny}, []int{0, 1, 2}},
		{"literal", Filter{ResourceType: ResourceTopic, ResourceName: s("foo"), PatternType: PatternLiteral, Operation: OpAny, Permission: PermissionAny}, []int{0}},
		{"prefixed any name", Filter{ResourceType: ResourceAny, PatternType: PatternPrefixed, Operation: OpAny, Permission: PermissionAny}, []int{2}},
		{"principal", Filter{ResourceType: ResourceAny, PatternType: PatternAny, Principal: s("User:a"), Operation: OpAny, Permission: PermissionAny}, []int{0, 1, 3}},
		{"op and permission", Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpWrite, Permission: PermissionDeny}, []int{2}},
	} {
		var got []int
		for i, b := range all {
			if tc.f.Matches(b) {
				got = append(got, i)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestValidate(t *testing.T) {
	good := lit(ResourceTopic, "t", "User:a", "*", OpRead, PermissionAllow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Binding){
		"any resource":  func(b *Binding) { b.ResourceType = ResourceAny },
		"match pattern": func(b *Binding) { b.PatternType = PatternMatch },
		"any op":        func(b *Binding) { b.Operation = OpAny },
		"any perm":      func(b *Binding) { b.Permission = PermissionAny },
		"bad principal": func(b *Binding) { b.Principal = "alice" },
		"empty name":    func(b *Binding) { b.ResourceName = "" },
		"cluster name":  func(b *Binding) { b.ResourceType = ResourceCluster },
	} {
		b := good
		mut(&b)
		if err := b.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := (Filter{ResourceType: ResourceUnknown, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}).Validate(); err == nil {
		t.Error("unknown resource type filter valid")
	}
}
