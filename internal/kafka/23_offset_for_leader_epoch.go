package kafka

// OffsetForLeaderEpoch: v0-4
//
// Behavior:
//   - A single-node broker has led every partition since epoch 0, so the
//     leader-epoch cache has one entry (0, log start): for epoch 0 the end
//     offset is the log end offset; for a newer epoch than any known,
//     (-1, -1), as Kafka's LeaderEpochFileCache.endOffsetFor answers.
//   - CurrentLeaderEpoch (v2+) fences: newer than ours is
//     UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH.
//
// Not built yet: the leader-epoch-checkpoint file (needed once leaders
// change, with replication).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(23, 0, 4, (*Handler).handleOffsetForLeaderEpoch) }

func (h *Handler) handleOffsetForLeaderEpoch(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t, code := h.topic(rt.Topic, false)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			if code != 0 {
				sp.ErrorCode = code
			} else if p, _, pcode := h.partition(t, rp.Partition); pcode != 0 {
				sp.ErrorCode = pcode
			} else if rp.CurrentLeaderEpoch > 0 {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			} else if rp.LeaderEpoch == 0 {
				sp.LeaderEpoch, sp.EndOffset = 0, p.Log.LogEndOffset()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return encode(resp), nil
}
