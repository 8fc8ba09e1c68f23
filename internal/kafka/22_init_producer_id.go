package kafka

// InitProducerId: v0-5
//
// Behavior:
//   - Without a transactional id: a new producer id (unique across
//     restarts, reserved in blocks in the metadata log) with epoch 0.
//   - An idempotent producer re-initializing with its current id and epoch
//     (KIP-360, v3+) gets the same id with the epoch bumped, or a new id
//     when the epoch is exhausted.
//   - Transactional ids: transactions are not built yet, so the answer is
//     COORDINATOR_NOT_AVAILABLE.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(22, 0, 5, (*Handler).handleInitProducerID) }

func (h *Handler) handleInitProducerID(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1:
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
	default:
		id, err := h.meta.AllocateProducerID()
		if err != nil {
			h.logger.Error("allocate producer id", "err", err)
			resp.ErrorCode = kerr.UnknownServerError.Code
			break
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
	}
	return h.encode(resp), nil
}
