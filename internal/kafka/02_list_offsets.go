package kafka

// ListOffsets: v1-10
//
// Behavior:
//   - Timestamp -1: latest (the high watermark, or the log end offset for
//     replicas); -2: earliest (log start offset); -3: the record with the
//     largest timestamp (KIP-734); -4: earliest local (log start offset, no
//     tiered storage); -5: latest tiered (-1: nothing is tiered).
//   - A timestamp t >= 0: the first record whose timestamp >= t, found by
//     the time index, then the batch, then its records; offsets at or
//     beyond the high watermark are not returned to consumers (-1).
//   - v4+ returns the leader epoch (0); unknown epochs are checked as Fetch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(2, 1, 10, (*Handler).handleListOffsets) }

func (h *Handler) handleListOffsets(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			if p, code := h.lookup(rt.Topic, rp.Partition); code != 0 {
				sp.ErrorCode = code
			} else if rp.CurrentLeaderEpoch > 0 {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			} else {
				l := p.Log
				upTo := l.HighWatermark()
				if req.ReplicaID >= 0 {
					upTo = l.LogEndOffset()
				}
				sp.LeaderEpoch = 0
				switch rp.Timestamp {
				case -1:
					sp.Offset = upTo
				case -2, -4:
					sp.Offset = l.LogStartOffset()
				case -5:
					sp.Offset = -1
				case -3:
					if found, ok, err := l.OffsetForMaxTimestamp(); err != nil {
						sp.ErrorCode = errorCode(err)
					} else if ok && found.Offset < upTo {
						sp.Offset, sp.Timestamp = found.Offset, found.Timestamp
					}
				default:
					if rp.Timestamp < 0 {
						sp.ErrorCode = kerr.InvalidRequest.Code
					} else if found, ok, err := l.OffsetForTimestamp(rp.Timestamp); err != nil {
						sp.ErrorCode = errorCode(err)
					} else if ok && found.Offset < upTo {
						sp.Offset, sp.Timestamp = found.Offset, found.Timestamp
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}
