package kafka

// OffsetDelete: v0
//
// Behavior: deletes committed offsets of an empty group, or of topics no
// member of a consumer group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC per
// partition otherwise; NON_EMPTY_GROUP for an active group whose
// subscriptions are not the consumer protocol's).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(47, 0, 0, (*Handler).handleOffsetDelete) }

func (h *Handler) handleOffsetDelete(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	ac := h.auth(ctx, sr)
	if !ac.enabled() {
		return h.encode(h.groups.DeleteOffsets(req)), nil
	}
	// As Kafka: DELETE on the group, READ on each topic.
	if !ac.group(acl.OpDelete, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = codeGroupAuth
		return h.encode(resp), nil
	}
	var kept []kmsg.OffsetDeleteRequestTopic
	var denied []kmsg.OffsetDeleteResponseTopic
	for _, t := range req.Topics {
		if ac.topic(acl.OpRead, t.Topic) {
			kept = append(kept, t)
			continue
		}
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codeTopicAuth
			rt.Partitions = append(rt.Partitions, rp)
		}
		denied = append(denied, rt)
	}
	req.Topics = kept
	resp := h.groups.DeleteOffsets(req)
	resp.Topics = append(resp.Topics, denied...)
	return h.encode(resp), nil
}
