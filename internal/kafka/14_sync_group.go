package kafka

// SyncGroup: v0-5
//
// Behavior: members wait for the leader's assignment, which is stored in
// __consumer_offsets before anyone gets it; then the group is Stable.
// Stale generations are ILLEGAL_GENERATION, a sync during a new join phase
// REBALANCE_IN_PROGRESS, and (v5) a protocol other than the group's
// INCONSISTENT_GROUP_PROTOCOL.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(14, 0, 5, (*Handler).handleSyncGroup) }

func (h *Handler) handleSyncGroup(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	if !h.auth(ctx, sr).group(acl.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = codeGroupAuth
		return h.encode(resp), nil
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	h.groups.Sync(req, func(resp *kmsg.SyncGroupResponse) { ch <- resp })
	select {
	case resp := <-ch:
		return h.encode(resp), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
