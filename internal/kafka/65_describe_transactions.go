package kafka

// DescribeTransactions: v0
//
// Behavior:
//   - Per transactional id: DESCRIBE on it, else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED; NOT_COORDINATOR,
//     COORDINATOR_LOAD_IN_PROGRESS or TRANSACTIONAL_ID_NOT_FOUND from the
//     coordinator; else its state, producer id and epoch, timeout, start
//     time (-1 outside a transaction) and partitions, leaving out those of
//     topics the client may not DESCRIBE, as Kafka does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(65, 0, 0, (*Handler).handleDescribeTransactions) }

func (h *Handler) handleDescribeTransactions(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	ac := h.auth(ctx, sr)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		if !ac.txn(acl.OpDescribe, id) {
			st.ErrorCode = codeTxnAuth
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		d, err := h.txns.coord.Describe(id)
		if err != nil {
			st.ErrorCode = errorCode(err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = d.State.String()
		st.TimeoutMillis = d.TimeoutMs
		st.StartTimestamp = d.StartMs
		st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
		for _, tp := range d.Partitions {
			if !ac.topic(acl.OpDescribe, tp.Topic) {
				continue
			}
			if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				st.Topics = append(st.Topics, t)
			}
			st.Topics[len(st.Topics)-1].Partitions = append(st.Topics[len(st.Topics)-1].Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return h.encode(resp), nil
}
