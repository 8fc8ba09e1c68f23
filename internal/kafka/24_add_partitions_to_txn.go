package kafka

// AddPartitionsToTxn: v0-5
//
// Behavior:
//   - v0-3 (from producers): WRITE on the transactional id, else every
//     partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED; WRITE on each
//     topic (TOPIC_AUTHORIZATION_FAILED) and an existing partition
//     (UNKNOWN_TOPIC_OR_PARTITION), else the other partitions are
//     OPERATION_NOT_ATTEMPTED, as Kafka answers. Otherwise the
//     coordinator adds the partitions to the transaction (the first one
//     begins it) and its one answer is every partition's code.
//   - v4+ (KIP-890 part 1, from brokers): CLUSTER_ACTION on the cluster,
//     else the top-level CLUSTER_AUTHORIZATION_FAILED. A batch of
//     transactions, each checked as above; VerifyOnly ones are only
//     checked: each partition is in the ongoing transaction (no error) or
//     TRANSACTION_ABORTABLE, as Kafka 4's handleVerifyPartitionsInTransaction.
//   - PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2 (KIP-588).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

func init() { register(24, 0, 5, (*Handler).handleAddPartitionsToTxn) }

// txnTopicPartitions is a request's topics and partitions, in order.
type txnTopicPartitions struct {
	topic      string
	partitions []int32
}

func (h *Handler) handleAddPartitionsToTxn(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	ac := h.auth(ctx, sr)
	if req.Version < 4 {
		var topics []txnTopicPartitions
		for _, t := range req.Topics {
			topics = append(topics, txnTopicPartitions{t.Topic, t.Partitions})
		}
		codes := h.addPartitionsToTxn(ac, req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
		for i, t := range topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.topic
			for j, p := range t.partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return h.encode(resp), nil
	}
	if !ac.cluster(acl.OpClusterAction) {
		resp.ErrorCode = codeClusterAuth
		return h.encode(resp), nil
	}
	for _, tx := range req.Transactions {
		var topics []txnTopicPartitions
		for _, t := range tx.Topics {
			topics = append(topics, txnTopicPartitions{t.Topic, t.Partitions})
		}
		codes := h.addPartitionsToTxn(ac, req.Version, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for i, t := range topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.topic
			for j, p := range t.partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return h.encode(resp), nil
}

// addPartitionsToTxn answers one transaction's partitions: codes[i][j] is
// that of topics[i].partitions[j].
func (h *Handler) addPartitionsToTxn(ac authCtx, version int16, id string, pid int64, epoch int16, verifyOnly bool, topics []txnTopicPartitions) [][]int16 {
	codes := make([][]int16, len(topics))
	for i, t := range topics {
		codes[i] = make([]int16, len(t.partitions))
	}
	fill := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	if !ac.txn(acl.OpWrite, id) {
		fill(codeTxnAuth)
		return codes
	}
	im := h.meta.Image()
	failed := false
	var tps []txn.TopicPartition
	for i, t := range topics {
		top := im.Topic(t.topic)
		for j, p := range t.partitions {
			switch {
			case !ac.topic(acl.OpWrite, t.topic):
				codes[i][j] = codeTopicAuth
			case top == nil || p < 0 || p >= top.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			default:
				tps = append(tps, txn.TopicPartition{Topic: t.topic, Partition: p})
				continue
			}
			failed = true
		}
	}
	if failed {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes
	}
	if verifyOnly {
		res, err := h.txns.coord.VerifyPartitions(id, pid, epoch, tps)
		if err != nil {
			fill(fencedCode(errorCode(err), version < 2))
			return codes
		}
		for i, t := range topics {
			for j, p := range t.partitions {
				codes[i][j] = errorCode(res[txn.TopicPartition{Topic: t.topic, Partition: p}])
			}
		}
		return codes
	}
	fill(fencedCode(errorCode(h.txns.coord.AddPartitions(id, pid, epoch, tps)), version < 2))
	return codes
}
