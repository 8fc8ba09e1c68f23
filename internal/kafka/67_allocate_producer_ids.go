package kafka

// AllocateProducerIds: v0, controller listener only
//
// Behavior: reserves the next block of producer ids through the quorum
// for the broker that asks (KIP-730), so ids stay unique across nodes.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { registerController(67, 0, 0, (*Handler).handleAllocateProducerIDs) }

func (h *Handler) handleAllocateProducerIDs(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	start, n, err := h.ctrl.AllocateProducerIDs(req)
	resp.ErrorCode = errorCode(err)
	if err == nil {
		resp.ProducerIDStart, resp.ProducerIDLen = start, n
	}
	return h.answer(ctx, resp), nil
}
