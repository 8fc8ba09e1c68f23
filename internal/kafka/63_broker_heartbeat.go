package kafka

// BrokerHeartbeat: v0-1, controller listener only
//
// Behavior: see controller.Controller.Heartbeat: keeps the broker's
// session, unfences it once it has caught up with the metadata log, and
// runs its controlled shutdown. STALE_BROKER_EPOCH or
// BROKER_ID_NOT_REGISTERED make the broker register again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { registerController(63, 0, 1, (*Handler).handleBrokerHeartbeat) }

func (h *Handler) handleBrokerHeartbeat(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.BrokerHeartbeatRequest)
	resp, err := h.ctrl.Heartbeat(req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.ErrorCode = errorCode(err)
		resp.IsFenced = true
	}
	resp.SetVersion(req.Version)
	return h.answer(ctx, resp), nil
}
