package kafka

// InitProducerId: v0-5
//
// Behavior:
//   - Without a transactional id: always a new producer id (unique across
//     restarts, reserved in blocks in the metadata log) with epoch 0, as
//     Kafka's TransactionCoordinator does for idempotent producers. The
//     ProducerId/ProducerEpoch an idempotent producer sends (KIP-360, v3+)
//     are ignored: bumping the epoch of an id the broker no longer
//     remembers could hand two producers the same id.
//   - With a transactional id (WRITE on it, else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED), the transaction coordinator
//     answers (internal/txn): the id's producer id with its epoch bumped,
//     a new id when the epoch is exhausted, an ongoing transaction aborted
//     first (CONCURRENT_TRANSACTIONS, the client retries),
//     INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms,
//     PRODUCER_FENCED for a KIP-360 producer id/epoch (v3+) that is not
//     the id's (INVALID_PRODUCER_EPOCH before v4, KIP-588),
//     NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS elsewhere.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(22, 0, 5, (*Handler).handleInitProducerID) }

func (h *Handler) handleInitProducerID(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	ac := h.auth(ctx, sr)
	switch {
	case req.TransactionalID != nil && !ac.txn(acl.OpWrite, *req.TransactionalID):
		resp.ErrorCode = codeTxnAuth
	case req.TransactionalID == nil && !ac.idempotentWrite():
		// KIP-679: IDEMPOTENT_WRITE on the cluster, or WRITE on
		// some topic.
		resp.ErrorCode = codeClusterAuth
	case req.TransactionalID != nil:
		pid, epoch, err := h.txns.coord.InitProducerID(*req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
		if err != nil {
			resp.ErrorCode = fencedCode(errorCode(err), req.Version < 4)
			break
		}
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
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
