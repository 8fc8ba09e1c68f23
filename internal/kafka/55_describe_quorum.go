package kafka

// DescribeQuorum: v0-2
//
// Behavior:
//   - Answered by the active controller (forwarded there from any node),
//     for __cluster_metadata-0 only (UNKNOWN_TOPIC_OR_PARTITION otherwise),
//     as Kafka's kafka-metadata-quorum tool expects: the leader (active
//     controller), its raft term as the leader epoch, the commit index as
//     the high watermark.
//   - Every registered broker is listed with the metadata offset its last
//     heartbeat reported and when (-1 before the first heartbeat to this
//     controller): voters of controller.quorum.voters as CurrentVoters,
//     other brokers as Observers. The controller's own entry is its
//     image's offset, now. In local mode the node is the only voter.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(55, 0, 2, (*Handler).handleDescribeQuorum) }

func (h *Handler) handleDescribeQuorum(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeQuorumRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	st := h.meta.Status()
	if st.ControllerID != h.cfg.NodeID {
		resp.ErrorCode = kerr.NotController.Code
		return h.answer(ctx, resp), nil
	}
	im := h.meta.Image()
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			if rt.Topic != cluster.MetadataTopic.Topic || rp.Partition != cluster.MetadataTopic.Partition {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.LeaderID, p.LeaderEpoch = st.ControllerID, int32(st.Term)
			p.HighWatermark = int64(st.CommitIndex)
			if !h.meta.Quorum() {
				p.HighWatermark = im.EndOffset
			}
			voters := h.meta.Voters()
			for _, bs := range h.ctrl.BrokerStates() {
				rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				rs.ReplicaID, rs.LogEndOffset = bs.ID, bs.MetadataOffset
				rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1
				if !bs.LastHeartbeat.IsZero() {
					rs.LastFetchTimestamp = bs.LastHeartbeat.UnixMilli()
				}
				if bs.ID == h.cfg.NodeID {
					rs.LogEndOffset, rs.LastFetchTimestamp = im.EndOffset, time.Now().UnixMilli()
				}
				if len(voters) == 0 && bs.ID == h.cfg.NodeID || slices.Contains(voters, bs.ID) {
					p.CurrentVoters = append(p.CurrentVoters, rs)
				} else {
					p.Observers = append(p.Observers, rs)
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return h.answer(ctx, resp), nil
}
