package kafka

// BrokerRegistration: v0-3, controller listener only
//
// Behavior: a broker registers with the active controller (KIP-631); see
// controller.Controller.RegisterBroker. On another node the answer is
// NOT_CONTROLLER and the broker retries with the controller it learns of.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { registerController(62, 0, 3, (*Handler).handleBrokerRegistration) }

func (h *Handler) handleBrokerRegistration(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.BrokerRegistrationRequest)
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	epoch, err := h.ctrl.RegisterBroker(req)
	resp.ErrorCode, resp.BrokerEpoch = errorCode(err), epoch
	if err != nil {
		// The broker retries every few hundred milliseconds and logs
		// the refusal itself (once per reason); here it is detail.
		h.logger.Debug("broker registration refused", "broker", req.BrokerID, "err", err)
	}
	return h.answer(ctx, resp), nil
}
