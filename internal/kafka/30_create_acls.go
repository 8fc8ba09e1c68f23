package kafka

// CreateAcls: v0-3
//
// Behavior:
//   - Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
//     creation otherwise), as Kafka's; SECURITY_DISABLED when no
//     authorizer is configured.
//   - Each creation is validated as Kafka's AclControlManager does
//     (INVALID_REQUEST: unknown or ANY values, MATCH or ANY pattern types,
//     a principal not "Type:name", a cluster resource not named
//     kafka-cluster); the valid ones become AccessControlEntryRecords with
//     new ids, committed as one batch through the active controller
//     (forwarded like other admin writes). A binding equal to one that
//     exists is not added again.
//   - v0 has no pattern type: LITERAL (kmsg's default).

import (
	"context"
	"crypto/rand"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(30, 0, 3, (*Handler).handleCreateACLs) }

func (h *Handler) handleCreateACLs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	fail := func(code int16, msg string) *server.Response {
		for range req.Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, &msg
			resp.Results = append(resp.Results, res)
		}
		return h.encode(resp)
	}
	if !h.auth(ctx, r).cluster(acl.OpAlter) {
		return fail(codeClusterAuth, "ALTER on the cluster is needed to create ACLs"), nil
	}
	if h.cfg.Authorizer == nil {
		return fail(kerr.SecurityDisabled.Code, "no authorizer is configured (authorizer.class.name)"), nil
	}
	if fresp, ok := h.forward(ctx, req); ok {
		return h.encode(fresp), nil
	}
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	var valid []acl.Binding
	var at []int
	for i, c := range req.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		b := acl.Binding{
			ResourceType: acl.ResourceType(c.ResourceType), ResourceName: c.ResourceName,
			PatternType: acl.PatternType(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
			Operation: acl.Operation(c.Operation), Permission: acl.Permission(c.PermissionType),
		}
		if err := b.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		valid = append(valid, b)
		at = append(at, i)
	}
	if len(valid) > 0 {
		_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
			exists := map[acl.Binding]bool{}
			for _, b := range im.ACLBindings() {
				b.ID = acl.ID{}
				exists[b] = true
			}
			var recs []records.Record
			for _, b := range valid {
				if exists[b] {
					continue
				}
				exists[b] = true
				rand.Read(b.ID[:])
				recs = append(recs, cluster.ACLRecord(b))
			}
			return recs, nil
		})
		if err != nil {
			for _, i := range at {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = errorCode(err), errorMessage(err)
			}
		} else {
			h.logger.Info("created ACLs", "count", len(valid))
		}
	}
	return h.answer(ctx, resp), nil
}
