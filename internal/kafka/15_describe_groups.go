package kafka

// DescribeGroups: v0-6
//
// Behavior: state, protocol type, and members (client id and host; their
// metadata and assignment only while the group is Stable, as Kafka). An
// unknown group is Dead with no error before v6 and GROUP_ID_NOT_FOUND from
// v6 (KIP-1043). Without ACLs, IncludeAuthorizedOperations reports READ,
// DELETE and DESCRIBE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(15, 0, 6, (*Handler).handleDescribeGroups) }

// groupOperations is the authorized-operations bitfield of a group without
// ACLs: READ (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

// groupOperations is the authorized-operations bitfield of group for the
// principal (KIP-430): the operations a group has that it is allowed.
func (c authCtx) groupOperations(group string) int32 {
	if !c.enabled() {
		return groupOperations
	}
	var ops int32
	for _, op := range []acl.Operation{acl.OpRead, acl.OpDelete, acl.OpDescribe} {
		if c.group(op, group) {
			ops |= 1 << op
		}
	}
	return ops
}

func (h *Handler) handleDescribeGroups(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	ac := h.auth(ctx, sr)
	for _, id := range req.Groups {
		if !ac.group(acl.OpDescribe, id) {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = id, codeGroupAuth
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d := h.groups.Describe(id, req.Version)
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			d.AuthorizedOperations = ac.groupOperations(id)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return h.encode(resp), nil
}
