package kafka

// OffsetForLeaderEpoch: v0-4
//
// Behavior:
//   - Answers from the partition's leader-epoch cache (its
//     leader-epoch-checkpoint file), as Kafka's
//     LeaderEpochFileCache.endOffsetFor: for the latest epoch the log end
//     offset, for an older one the start of the next, for a newer epoch
//     than any known (-1, -1). A single node has led every partition since
//     epoch 0.
//   - CurrentLeaderEpoch (v2+) fences: newer than ours is
//     UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(23, 0, 4, (*Handler).handleOffsetForLeaderEpoch) }

func (h *Handler) handleOffsetForLeaderEpoch(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	// As Kafka: CLUSTER_ACTION on the cluster (a follower truncating)
	// allows every topic, else DESCRIBE on each.
	ac := h.auth(ctx, sr)
	clusterAction := ac.cluster(acl.OpClusterAction)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		allowed := clusterAction || ac.topic(acl.OpDescribe, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			if !allowed {
				sp.ErrorCode = codeTopicAuth
			} else if p, code := h.lookup(rt.Topic, rp.Partition); code != 0 {
				sp.ErrorCode = code
			} else if ecode := epochCode(rp.CurrentLeaderEpoch, p.LeaderEpoch()); ecode != 0 {
				sp.ErrorCode = ecode
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}
