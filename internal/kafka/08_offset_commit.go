package kafka

// OffsetCommit: v0-9
//
// Behavior:
//   - Offsets are written to the group's __consumer_offsets partition (one
//     batch per request) before the response, and kept in memory for
//     OffsetFetch.
//   - Generation -1 is a "simple" commit (no group membership), accepted
//     while the group has no members; otherwise the member and generation
//     must be current (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//     REBALANCE_IN_PROGRESS between join and sync, FENCED_INSTANCE_ID).
//   - Unknown topics or partitions are UNKNOWN_TOPIC_OR_PARTITION; metadata
//     over offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE.
//   - v2-4's retention time sets the offset's expire timestamp.
//   - v10 (topic ids) is not served.
//   - With an authorizer, as Kafka: READ on the group (else every
//     partition is GROUP_AUTHORIZATION_FAILED) and READ on each topic
//     (else its partitions are TOPIC_AUTHORIZATION_FAILED, not committed).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(8, 0, 9, (*Handler).handleOffsetCommit) }

func (h *Handler) handleOffsetCommit(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	ac := h.auth(ctx, sr)
	if !ac.enabled() {
		return h.encode(h.groups.Commit(req)), nil
	}
	if !ac.group(acl.OpRead, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = offsetCommitErrors(req.Topics, codeGroupAuth)
		return h.encode(resp), nil
	}
	var kept, denied []kmsg.OffsetCommitRequestTopic
	for _, t := range req.Topics {
		if ac.topic(acl.OpRead, t.Topic) {
			kept = append(kept, t)
		} else {
			denied = append(denied, t)
		}
	}
	req.Topics = kept
	resp := h.groups.Commit(req)
	resp.Topics = append(resp.Topics, offsetCommitErrors(denied, codeTopicAuth)...)
	return h.encode(resp), nil
}

// offsetCommitErrors answers every partition of topics with code.
func offsetCommitErrors(topics []kmsg.OffsetCommitRequestTopic, code int16) []kmsg.OffsetCommitResponseTopic {
	out := make([]kmsg.OffsetCommitResponseTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}
