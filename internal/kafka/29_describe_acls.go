package kafka

// DescribeAcls: v0-3
//
// Behavior:
//   - Needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED), as
//     Kafka's; SECURITY_DISABLED when no authorizer is configured.
//   - Answered from this node's image, as a Kafka broker answers from its
//     authorizer's copy of the metadata (not forwarded).
//   - The filter's semantics are Kafka's AclBindingFilter (acl.Filter):
//     null name, principal and host match any; ANY pattern type matches
//     the exact name in any pattern type; MATCH the bindings that apply to
//     the name (literal, literal "*", prefixes). An unknown value is
//     INVALID_REQUEST.
//   - Bindings are grouped by resource pattern, in id order within each.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(29, 0, 3, (*Handler).handleDescribeACLs) }

func (h *Handler) handleDescribeACLs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(code int16, msg string) *server.Response {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return h.encode(resp)
	}
	if !h.auth(ctx, r).cluster(acl.OpDescribe) {
		return fail(codeClusterAuth, "DESCRIBE on the cluster is needed to describe ACLs"), nil
	}
	if h.cfg.Authorizer == nil {
		return fail(kerr.SecurityDisabled.Code, "no authorizer is configured (authorizer.class.name)"), nil
	}
	f := acl.Filter{
		ResourceType: acl.ResourceType(req.ResourceType), ResourceName: req.ResourceName,
		PatternType: acl.PatternType(req.ResourcePatternType), Principal: req.Principal, Host: req.Host,
		Operation: acl.Operation(req.Operation), Permission: acl.Permission(req.PermissionType),
	}
	if err := f.Validate(); err != nil {
		return fail(kerr.InvalidRequest.Code, err.Error()), nil
	}
	type pattern struct {
		rt   acl.ResourceType
		name string
		pt   acl.PatternType
	}
	index := map[pattern]int{}
	for _, b := range h.meta.Image().ACLBindings() {
		if !f.Matches(b) {
			continue
		}
		p := pattern{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := index[p]
		if !ok {
			i = len(resp.Resources)
			index[p] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = kmsg.ACLResourceType(p.rt), p.name, kmsg.ACLResourcePatternType(p.pt)
			resp.Resources = append(resp.Resources, res)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return h.encode(resp), nil
}
