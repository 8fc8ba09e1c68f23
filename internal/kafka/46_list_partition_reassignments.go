package kafka

// ListPartitionReassignments: v0
//
// Behavior:
//   - Accepted on any node, forwarded to the active controller, which
//     answers from its image (Kafka's
//     ReplicationControlManager.listPartitionReassignments): each
//     partition with a reassignment in progress (KIP-455), with its
//     replicas (target and removed ones), AddingReplicas and
//     RemovingReplicas.
//   - A null topic list lists every reassignment in progress, topics by
//     name, partitions by id. Listed topics and partitions the image
//     lacks, or that are not being reassigned, are left out, as Kafka
//     does; a topic none of whose listed partitions is, too.

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(46, 0, 0, (*Handler).handleListPartitionReassignments) }

func (h *Handler) handleListPartitionReassignments(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	if !h.auth(ctx, sr).cluster(acl.OpDescribe) {
		resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		resp.ErrorCode = codeClusterAuth // Kafka: DESCRIBE on the cluster
		return h.encode(resp), nil
	}
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	im := h.meta.Image()
	add := func(t *cluster.Topic, ps []int32) {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, p := range ps {
			if p < 0 || p >= int32(len(t.PartitionStates)) || t.PartitionStates[p] == nil {
				continue
			}
			ps := t.PartitionStates[p]
			if len(ps.AddingReplicas) == 0 && len(ps.RemovingReplicas) == 0 {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = p
			sp.Replicas = slices.Clone(ps.Replicas)
			sp.AddingReplicas = nonNilInt32s(ps.AddingReplicas)
			sp.RemovingReplicas = nonNilInt32s(ps.RemovingReplicas)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if req.Topics == nil {
		for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
			t := im.Topics[name]
			var ps []int32
			for p := range int32(len(t.PartitionStates)) {
				ps = append(ps, p)
			}
			add(t, ps)
		}
	} else {
		for _, rt := range req.Topics {
			if t := im.Topic(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	return h.answer(ctx, resp), nil
}

func nonNilInt32s(vs []int32) []int32 {
	if vs == nil {
		return []int32{}
	}
	return slices.Clone(vs)
}
