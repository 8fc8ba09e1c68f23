package kafka

// DescribeProducers: v0
//
// Behavior: the idempotent and transactional producers each partition
// remembers, with their epoch, last sequence, the max timestamp of their
// last batch (or marker), the coordinator epoch of their last transaction
// marker and the first offset of the transaction they have open there
// (-1 for none), as Kafka's ProducerStateEntry.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(61, 0, 0, (*Handler).handleDescribeProducers) }

func (h *Handler) handleDescribeProducers(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	ac := h.auth(ctx, sr)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		allowed := ac.topic(acl.OpRead, rt.Topic) // as Kafka: READ on the topic
		for _, pn := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = pn
			if !allowed {
				sp.ErrorCode = codeTopicAuth
			} else if p, code := h.lookup(rt.Topic, pn); code != 0 {
				sp.ErrorCode = code
			} else {
				for _, pi := range p.Producers() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch = pi.ProducerID, int32(pi.ProducerEpoch)
					ap.LastSequence, ap.LastTimestamp = pi.LastSequence, pi.LastTimestamp
					ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pi.CoordinatorEpoch, pi.CurrentTxnStartOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}
