package kafka

// LeaveGroup: v0-5
//
// Behavior: v0-2 remove one member; v3+ a batch, by member id or by
// group.instance.id (KIP-345), each with its own error. The others
// rebalance at once instead of waiting for a session timeout.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(13, 0, 5, (*Handler).handleLeaveGroup) }

func (h *Handler) handleLeaveGroup(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	return h.encode(h.groups.Leave(kreq.(*kmsg.LeaveGroupRequest))), nil
}
