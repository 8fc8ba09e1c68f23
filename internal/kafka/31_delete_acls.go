package kafka

// DeleteAcls: v0-3
//
// Behavior:
//   - Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
//     filter), as Kafka's; SECURITY_DISABLED when no authorizer is
//     configured.
//   - Each filter (acl.Filter, Kafka's AclBindingFilter semantics, see
//     DescribeAcls) selects bindings of the latest image on the active
//     controller (forwarded like other admin writes); they are removed
//     with RemoveAccessControlEntryRecords, all filters' in one batch, and
//     each filter's result lists the bindings it matched. A filter with an
//     unknown value is INVALID_REQUEST and removes nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(31, 0, 3, (*Handler).handleDeleteACLs) }

func (h *Handler) handleDeleteACLs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	fail := func(code int16, msg string) *server.Response {
		for range req.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, &msg
			resp.Results = append(resp.Results, res)
		}
		return h.encode(resp)
	}
	if !h.auth(ctx, r).cluster(acl.OpAlter) {
		return fail(codeClusterAuth, "ALTER on the cluster is needed to delete ACLs"), nil
	}
	if h.cfg.Authorizer == nil {
		return fail(kerr.SecurityDisabled.Code, "no authorizer is configured (authorizer.class.name)"), nil
	}
	if fresp, ok := h.forward(ctx, req); ok {
		return h.encode(fresp), nil
	}
	filters := make([]*acl.Filter, len(req.Filters))
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i, rf := range req.Filters {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
		f := acl.Filter{
			ResourceType: acl.ResourceType(rf.ResourceType), ResourceName: rf.ResourceName,
			PatternType: acl.PatternType(rf.ResourcePatternType), Principal: rf.Principal, Host: rf.Host,
			Operation: acl.Operation(rf.Operation), Permission: acl.Permission(rf.PermissionType),
		}
		if err := f.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		filters[i] = &f
	}
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		// build may run again (a retry): start each time from nothing.
		for i := range resp.Results {
			resp.Results[i].MatchingACLs = nil
		}
		removed := map[acl.ID]bool{}
		var recs []records.Record
		for _, b := range im.ACLBindings() {
			for i, f := range filters {
				if f == nil || !f.Matches(b) {
					continue
				}
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
				m.Principal, m.Host = b.Principal, b.Host
				m.Operation, m.PermissionType = kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
				resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
				if !removed[b.ID] {
					removed[b.ID] = true
					recs = append(recs, &records.RemoveAccessControlEntry{ID: records.UUID(b.ID)})
				}
			}
		}
		return recs, nil
	})
	if err != nil {
		for i := range resp.Results {
			if filters[i] != nil {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = errorCode(err), errorMessage(err)
				resp.Results[i].MatchingACLs = nil
			}
		}
	} else if n := countMatched(resp); n > 0 {
		h.logger.Info("deleted ACLs", "matched", n)
	}
	return h.answer(ctx, resp), nil
}

func countMatched(resp *kmsg.DeleteACLsResponse) int {
	n := 0
	for _, r := range resp.Results {
		n += len(r.MatchingACLs)
	}
	return n
}
