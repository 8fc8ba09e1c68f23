package kafka

// DeleteRecords: v0-2
//
// Behavior:
//   - Moves each partition's log start offset to the given offset (-1: the
//     high watermark) and deletes segments wholly below it; the response
//     carries the new low watermark.
//   - An offset past the high watermark, or below -1, is
//     OFFSET_OUT_OF_RANGE (Kafka's UnifiedLog.deleteRecords checks both).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(21, 0, 2, (*Handler).handleDeleteRecords) }

func (h *Handler) handleDeleteRecords(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ac := h.auth(ctx, sr)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		allowed := ac.topic(acl.OpDelete, rt.Topic) // as Kafka: DELETE on the topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if !allowed {
				sp.ErrorCode = codeTopicAuth
			} else if internalTopic(rt.Topic) {
				sp.ErrorCode = kerr.InvalidTopicException.Code
			} else if p, code := h.lookup(rt.Topic, rp.Partition); code != 0 {
				sp.ErrorCode = code
			} else {
				offset := rp.Offset
				if offset == -1 {
					offset = p.Log.HighWatermark()
				}
				if offset < 0 {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				} else if low, err := p.Log.DeleteRecordsBefore(offset); err != nil {
					sp.ErrorCode = errorCode(err)
				} else {
					sp.LowWatermark = low
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}
