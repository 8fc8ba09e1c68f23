package kafka

// Produce: v0-12
//
// Behavior:
//   - Each partition's records are appended as the producer built them:
//     validated in place (length, magic 2, CRC) and written without a copy.
//   - acks=0 gets no response; acks=1 and acks=-1 are the same on one node
//     (the high watermark moves with the append).
//   - v0-2 carry message formats v0/v1, which strata refuses as Kafka 4
//     does: UNSUPPORTED_FOR_MESSAGE_FORMAT. v0+ is still advertised because
//     librdkafka turns compression off when Produce v0 is missing
//     (KAFKA-18659).
//   - Errors are per partition; one bad partition does not fail the others.
//   - Idempotent producers: duplicates of the last 5 batches are answered
//     with their original offsets; gaps are OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - Unknown topics are auto-created when auto.create.topics.enable is on.
//
// Not built yet: recompression to a topic's compression.type (batches are
// stored as produced whatever the topic says), transactions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(0, 0, 12, (*Handler).handleProduce) }

func (h *Handler) handleProduce(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	if req.TransactionID != nil {
		// Transactions are not built; answer every partition clearly.
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return encode(resp), nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		t, code := h.topic(rt.Topic, true)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			if code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, tc, pcode := h.partition(t, rp.Partition)
			if pcode != 0 {
				sp.ErrorCode = pcode
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			res, err := p.Append(rp.Records, tc.MaxMessageBytes, tc.LogAppendTime)
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.ErrorMessage = errorMessage(err)
				if sp.ErrorCode == kerr.UnknownServerError.Code || sp.ErrorCode == kerr.KafkaStorageError.Code {
					h.logger.Error("produce failed", "partition", p.TP, "err", err)
				}
			} else {
				sp.BaseOffset = res.BaseOffset
				sp.LogAppendTime = res.LogAppendTime
				sp.LogStartOffset = res.LogStartOffset
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return &server.Response{None: true}, nil
	}
	return encode(resp), nil
}
