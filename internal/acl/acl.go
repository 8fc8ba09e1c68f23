// Package acl is strata's authorizer: Kafka's access control lists and the
// way Kafka's StandardAuthorizer (KRaft) decides with them. It knows
// nothing of the wire protocol: handlers ask Authorize with a principal,
// a host, an operation and a resource.
//
// A binding (Kafka's AclBinding) is a resource pattern and an access
// control entry:
//
//	resource type  TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN
//	pattern        LITERAL (the name, or "*" for every resource of the type)
//	               or PREFIXED (every name that starts with it)
//	principal      "User:alice", or "User:*" for every principal
//	host           an IP address, or "*" for every host
//	operation      READ, WRITE, ... or ALL
//	permission     ALLOW or DENY
//
// Decisions are Kafka's (StandardAuthorizerData.authorize):
//   - a super user (super.users) is always allowed;
//   - a DENY binding that matches the request wins over every ALLOW;
//   - an ALLOW binding matches its operation, ALL, and the operations it
//     implies: DESCRIBE by READ, WRITE, DELETE and ALTER, DESCRIBE_CONFIGS
//     by ALTER_CONFIGS (a DENY never implies: DENY READ does not deny
//     DESCRIBE);
//   - when no binding at all (of any principal) names the resource, the
//     request is allowed only with allow.everyone.if.no.acl.found.
//
// The enums carry Kafka's codes (AclOperation, ResourceType, PatternType,
// AclPermissionType), which are also those of the metadata records and of
// the CreateAcls, DescribeAcls and DeleteAcls APIs.
package acl

import (
	"errors"
	"fmt"
	"strings"
)

// ResourceType is Kafka's ResourceType.
type ResourceType int8

const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// PatternType is Kafka's PatternType.
type PatternType int8

const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1 // filters only: any pattern type, exact name
	PatternMatch    PatternType = 2 // filters only: the bindings that apply to the name
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is Kafka's AclOperation.
type Operation int8

const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1 // filters only
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

// Permission is Kafka's AclPermissionType.
type Permission int8

const (
	PermissionUnknown Permission = 0
	PermissionAny     Permission = 1 // filters only
	PermissionDeny    Permission = 2
	PermissionAllow   Permission = 3
)

const (
	// ClusterName is the name of the one CLUSTER resource (Kafka's
	// Resource.CLUSTER_NAME).
	ClusterName = "kafka-cluster"
	// Wildcard is the resource name of a LITERAL binding for every
	// resource of its type, and the host of a binding for every host.
	Wildcard = "*"
	// WildcardPrincipal matches every principal.
	WildcardPrincipal = "User:*"
)

// ID identifies a binding in the metadata (AccessControlEntryRecord.Id).
type ID [16]byte

// Binding is one ACL: Kafka's AclBinding, with its metadata id.
type Binding struct {
	ID           ID
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string
	Host         string
	Operation    Operation
	Permission   Permission
}

// ErrInvalid marks a binding or filter Kafka refuses (INVALID_REQUEST).
var ErrInvalid = errors.New("acl: invalid")

// Validate checks a binding to be created, as Kafka's CreateAcls does:
// every field known and concrete (no ANY, no MATCH), a "Type:name"
// principal, a resource name, and kafka-cluster as the cluster's name.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType < ResourceTopic || b.ResourceType > ResourceUser:
		return fmt.Errorf("%w: resource type %d", ErrInvalid, b.ResourceType)
	case b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed:
		return fmt.Errorf("%w: pattern type %d (LITERAL or PREFIXED)", ErrInvalid, b.PatternType)
	case b.Operation < OpAll || b.Operation > OpDescribeTokens:
		return fmt.Errorf("%w: operation %d", ErrInvalid, b.Operation)
	case b.Permission != PermissionAllow && b.Permission != PermissionDeny:
		return fmt.Errorf("%w: permission type %d", ErrInvalid, b.Permission)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	case b.Host == "":
		return fmt.Errorf("%w: empty host (\"*\" is every host)", ErrInvalid)
	case b.ResourceType == ResourceCluster && b.ResourceName != ClusterName:
		return fmt.Errorf("%w: the only valid name for the CLUSTER resource is %s", ErrInvalid, ClusterName)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: principal %q (Type:name, e.g. User:alice)", ErrInvalid, b.Principal)
	}
	return nil
}

// Filter selects bindings, as Kafka's AclBindingFilter: a nil name,
// principal or host matches any, and the ANY values of the enums match
// every value. PatternMatch selects the bindings that apply to Name (the
// literal one, the literal "*", and the prefixed ones Name starts with).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Validate refuses a filter with an unknown value, as Kafka's
// AclBindingFilter.isUnknown (INVALID_REQUEST).
func (f Filter) Validate() error {
	switch {
	case f.ResourceType < ResourceAny || f.ResourceType > ResourceUser:
		return fmt.Errorf("%w: filter resource type %d", ErrInvalid, f.ResourceType)
	case f.PatternType < PatternAny || f.PatternType > PatternPrefixed:
		return fmt.Errorf("%w: filter pattern type %d", ErrInvalid, f.PatternType)
	case f.Operation < OpAny || f.Operation > OpDescribeTokens:
		return fmt.Errorf("%w: filter operation %d", ErrInvalid, f.Operation)
	case f.Permission < PermissionAny || f.Permission > PermissionAllow:
		return fmt.Errorf("%w: filter permission type %d", ErrInvalid, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects b (Kafka's
// ResourcePatternFilter.matches and AccessControlEntryFilter.matches).
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != PatternAny && f.PatternType != PatternMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName != nil {
		name := *f.ResourceName
		switch {
		case f.PatternType == PatternAny || f.PatternType == b.PatternType:
			if name != b.ResourceName {
				return false
			}
		case b.PatternType == PatternLiteral:
			if name != b.ResourceName && b.ResourceName != Wildcard {
				return false
			}
		case b.PatternType == PatternPrefixed:
			if !strings.HasPrefix(name, b.ResourceName) {
				return false
			}
		default:
			return false
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == PermissionAny || f.Permission == b.Permission
}

var opNames = map[Operation]string{
	OpUnknown: "UNKNOWN", OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE", OpCreate: "CREATE",
	OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE", OpClusterAction: "CLUSTER_ACTION",
	OpDescribeConfigs: "DESCRIBE_CONFIGS", OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
	OpCreateTokens: "CREATE_TOKENS", OpDescribeTokens: "DESCRIBE_TOKENS",
}

func (o Operation) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Operation(%d)", int8(o))
}

var resourceNames = map[ResourceType]string{
	ResourceUnknown: "UNKNOWN", ResourceAny: "ANY", ResourceTopic: "TOPIC", ResourceGroup: "GROUP",
	ResourceCluster: "CLUSTER", ResourceTransactionalID: "TRANSACTIONAL_ID",
	ResourceDelegationToken: "DELEGATION_TOKEN", ResourceUser: "USER",
}

func (r ResourceType) String() string {
	if s, ok := resourceNames[r]; ok {
		return s
	}
	return fmt.Sprintf("ResourceType(%d)", int8(r))
}
