package kafka

// EndTxn: v0-5
//
// Behavior:
//   - WRITE on the transactional id, else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
//   - The coordinator writes PrepareCommit/PrepareAbort and answers; the
//     markers follow (CONCURRENT_TRANSACTIONS until they are written).
//     A retry of a finished end succeeds; the other end of a finished or
//     preparing transaction is INVALID_TXN_STATE, as is ending with no
//     transaction (v0-4). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before
//     v2 (KIP-588).
//   - v5 is transaction version 2 (KIP-890 part 2): the epoch is bumped at
//     every end (a new producer id when it is exhausted), the answer
//     carries the producer id and epoch to use next, and aborting with no
//     transaction succeeds.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(26, 0, 5, (*Handler).handleEndTxn) }

func (h *Handler) handleEndTxn(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	ac := h.auth(ctx, sr)
	if !ac.txn(acl.OpWrite, req.TransactionalID) {
		resp.ErrorCode = codeTxnAuth
		return h.encode(resp), nil
	}
	pid, epoch, err := h.txns.coord.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	if err != nil {
		resp.ErrorCode = fencedCode(errorCode(err), req.Version < 2)
		return h.encode(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
	return h.encode(resp), nil
}
