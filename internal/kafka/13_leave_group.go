package kafka

// LeaveGroup: v0-5
//
// Behavior: v0-2 remove one member; v3+ a batch, by member id or by
// group.instance.id (KIP-345), each with its own error. The others
// rebalance at once instead of waiting for a session timeout.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(13, 0, 5, (*Handler).handleLeaveGroup) }

func (h *Handler) handleLeaveGroup(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	if !h.auth(ctx, sr).group(acl.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = codeGroupAuth
		return h.encode(resp), nil
	}
	return h.encode(h.groups.Leave(req)), nil
}
