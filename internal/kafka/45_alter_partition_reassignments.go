package kafka

// AlterPartitionReassignments: v0-1
//
// Behavior:
//   - Accepted on any node, forwarded to the active controller, which
//     commits every partition's change of the request as one metadata
//     change (PartitionChangeRecords) and answers once it is applied, as
//     Kafka's ReplicationControlManager.alterPartitionReassignments
//     (KIP-455). The answer does not wait for the data to move.
//   - Target replicas T of a partition with replicas R (all of them,
//     during another reassignment too, as Kafka): the replicas become T
//     then R\T, AddingReplicas T\R, RemovingReplicas R\T (both in id
//     order). The adding replicas fetch from the leader and join the ISR;
//     the ISR change after which the ISR without R\T is every replica of
//     T completes the reassignment: replicas T, ISR without R\T, a new
//     leader (first usable ISR member of T) if the leader is removed.
//     Brokers that are no longer replicas delete their copy. A target
//     whose replicas are all in sync completes at once; the current
//     assignment changes nothing (controller.Reassign).
//   - Null Replicas cancels: the adding replicas leave the replicas and
//     the ISR; NO_REASSIGNMENT_IN_PROGRESS when there is none, and
//     INVALID_REPLICA_ASSIGNMENT when only adding replicas are in sync
//     unless the topic allows unclean leader election (the first replica
//     left then becomes the ISR), as Kafka's PartitionReassignmentRevert.
//   - INVALID_REPLICA_ASSIGNMENT for an empty target, a broker listed
//     twice or not registered; UNKNOWN_TOPIC_OR_PARTITION for a topic or
//     partition the image lacks; INVALID_REPLICATION_FACTOR in v1+ when
//     AllowReplicationFactorChange is false and T's size is not that of
//     the replicas but the adding ones (KIP-860). A partition named twice is changed
//     once and answered twice with the first answer.
//   - When the change cannot be committed (NOT_CONTROLLER, ...), the code
//     is the response's and every partition's. TimeoutMillis bounds the
//     forwarding.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(45, 0, 1, (*Handler).handleAlterPartitionReassignments) }

func (h *Handler) handleAlterPartitionReassignments(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	if !h.auth(ctx, sr).cluster(acl.OpAlter) {
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		resp.ErrorCode = codeClusterAuth // Kafka: ALTER on the cluster
		return h.encode(resp), nil
	}
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRF
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		// Built again from the start should the store call it again.
		resp.Topics = resp.Topics[:0]
		var recs []records.Record
		type key struct {
			topic string
			p     int32
		}
		seen := map[key]kmsg.AlterPartitionAssignmentsResponseTopicPartition{}
		for _, rt := range req.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			t := im.Topic(rt.Topic)
			for _, rp := range rt.Partitions {
				if sp, ok := seen[key{rt.Topic, rp.Partition}]; ok {
					st.Partitions = append(st.Partitions, sp)
					continue
				}
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				var err error
				switch {
				case t == nil || rp.Partition < 0 || rp.Partition >= int32(len(t.PartitionStates)) || t.PartitionStates[rp.Partition] == nil:
					err = kerr.UnknownTopicOrPartition
				default:
					var rec *records.PartitionChange
					rec, err = controller.Reassign(im, t, rp.Partition, rp.Replicas, allowRF, h.ctrl.Unclean(im))
					if rec != nil {
						recs = append(recs, rec)
					}
				}
				if err != nil {
					sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				}
				seen[key{rt.Topic, rp.Partition}] = sp
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return recs, nil
	})
	if err != nil {
		h.logger.Warn("reassigning partitions", "err", err)
		return h.answer(ctx, alterReassignmentsError(req, errorCode(err), err.Error())), nil
	}
	return h.answer(ctx, resp), nil
}

// alterReassignmentsError answers the request as a whole, and every
// listed partition, with code.
func alterReassignmentsError(req *kmsg.AlterPartitionAssignmentsRequest, code int16, msg string) *kmsg.AlterPartitionAssignmentsResponse {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.ErrorCode, resp.ErrorMessage = code, &msg
	resp.AllowReplicationFactorChange = req.Version < 1 || req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.ErrorMessage = rp.Partition, code, &msg
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
