package kafka

// Heartbeat: v0-4
//
// Behavior: keeps a member's session; REBALANCE_IN_PROGRESS tells it to
// rejoin, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it was fenced,
// FENCED_INSTANCE_ID that another member took its group.instance.id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(12, 0, 4, (*Handler).handleHeartbeat) }

func (h *Handler) handleHeartbeat(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !h.auth(ctx, sr).group(acl.OpRead, req.Group) {
		resp.ErrorCode = codeGroupAuth
		return h.encode(resp), nil
	}
	resp.ErrorCode = h.groups.Heartbeat(req)
	return h.encode(resp), nil
}
