package kafka

// JoinGroup: v0-9
//
// Behavior (internal/group has the state machine):
//   - v4+ members without an id get MEMBER_ID_REQUIRED and a member id to
//     join with (KIP-394); static members (group.instance.id, KIP-345, v5+)
//     rejoin a Stable group without a rebalance, and a static leader gets
//     SkipAssignment (KIP-814, v9).
//   - The response waits for the join phase to end: every member rejoined,
//     or the rebalance timeout (for a new group, the initial delay,
//     group.initial.rebalance.delay.ms). The connection's other requests
//     wait behind it, as Kafka mutes the connection.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(11, 0, 9, (*Handler).handleJoinGroup) }

func (h *Handler) handleJoinGroup(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	if !h.auth(ctx, r).group(acl.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = codeGroupAuth, -1
		return h.encode(resp), nil
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	h.groups.Join(req, groupClient(r), func(resp *kmsg.JoinGroupResponse) { ch <- resp })
	select {
	case resp := <-ch:
		return h.encode(resp), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
