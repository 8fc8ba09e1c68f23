package kafka

// AddOffsetsToTxn: v0-4
//
// Behavior:
//   - WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
//     and READ on the group (GROUP_AUTHORIZATION_FAILED), as Kafka checks.
//   - Adds the group's partition of __consumer_offsets to the transaction,
//     so that the markers that end it reach the group coordinator, which
//     then applies or drops the offsets TxnOffsetCommit wrote. Errors are
//     AddPartitionsToTxn's (INVALID_PRODUCER_EPOCH for PRODUCER_FENCED
//     before v2, KIP-588).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

func init() { register(25, 0, 4, (*Handler).handleAddOffsetsToTxn) }

func (h *Handler) handleAddOffsetsToTxn(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	ac := h.auth(ctx, sr)
	switch {
	case !ac.txn(acl.OpWrite, req.TransactionalID):
		resp.ErrorCode = codeTxnAuth
	case !ac.group(acl.OpRead, req.Group):
		resp.ErrorCode = codeGroupAuth
	default:
		tp := txn.TopicPartition{Topic: group.Topic, Partition: group.PartitionFor(req.Group, h.groups.Partitions())}
		resp.ErrorCode = fencedCode(errorCode(h.txns.coord.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{tp})), req.Version < 2)
	}
	return h.encode(resp), nil
}
