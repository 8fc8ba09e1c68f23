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
//     image's offset, now. A controller-only voter, which registers no
//     broker, is listed with offset -1 (its own entry: its image's). In
//     local mode the node is the only voter.

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(55, 0, 2, (*Handler).handleDescribeQuorum) }

func (h *Handler) handleDescribeQuorum(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeQuorumRequest)
	if !h.auth(ctx, sr).cluster(acl.OpDescribe) {
		resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
		resp.ErrorCode = codeClusterAuth // Kafka: DESCRIBE on the cluster
		return h.encode(resp), nil
	}
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
			// Controller-only voters register no broker: listed
			// all the same, this node with its image's offset, the
			// others with -1 (raft's replication state is not read).
			for _, v := range voters {
				if slices.ContainsFunc(p.CurrentVoters, func(rs kmsg.DescribeQuorumResponseTopicPartitionReplicaState) bool { return rs.ReplicaID == v }) {
					continue
				}
				rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				rs.ReplicaID, rs.LogEndOffset = v, -1
				rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1
				if v == h.cfg.NodeID {
					rs.LogEndOffset, rs.LastFetchTimestamp = im.EndOffset, time.Now().UnixMilli()
				}
				p.CurrentVoters = append(p.CurrentVoters, rs)
			}
			slices.SortFunc(p.CurrentVoters, func(a, b kmsg.DescribeQuorumResponseTopicPartitionReplicaState) int {
				return cmp.Compare(a.ReplicaID, b.ReplicaID)
			})
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return h.answer(ctx, resp), nil
}
