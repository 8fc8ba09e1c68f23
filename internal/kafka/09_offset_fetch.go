package kafka

// OffsetFetch: v0-9
//
// Behavior:
//   - Partitions without a committed offset get offset -1 and no error;
//     null topics (v2+) return every committed partition.
//   - v0-1 have no group-level error: a group's error (NOT_COORDINATOR,
//     COORDINATOR_LOAD_IN_PROGRESS) is set on every partition asked for.
//   - v8+ fetch for a batch of groups (KIP-709), each with its own error.
//   - RequireStable (v7+, KIP-447): a partition for which an open
//     transaction (TxnOffsetCommit) holds an offset of the group answers
//     UNSTABLE_OFFSET_COMMIT with offset -1, as Kafka 4 does per
//     partition; without it the committed offset is answered.
//   - v9 (KIP-848) carries MemberID and MemberEpoch: for a consumer group
//     an unknown member gets UNKNOWN_MEMBER_ID and another epoch than the
//     member's STALE_MEMBER_EPOCH, as a group-level error; a null member id
//     (admin clients, classic consumers) is not checked.
//   - With an authorizer, as Kafka: DESCRIBE on the group, else
//     GROUP_AUTHORIZATION_FAILED; named topics without DESCRIBE are
//     TOPIC_AUTHORIZATION_FAILED, and when all topics are asked for those
//     are left out.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(9, 0, 9, (*Handler).handleOffsetFetch) }

func (h *Handler) handleOffsetFetch(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	ac := h.auth(ctx, sr)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			memberID, epoch := rg.MemberID, rg.MemberEpoch
			if req.Version < 9 {
				memberID, epoch = nil, -1
			}
			g.Topics, g.ErrorCode = fetchOffsetsAuthorized(ac, rg.Group, rg.Topics, func(topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
				return h.groups.FetchOffsetsStable(rg.Group, memberID, epoch, topics, req.RequireStable)
			})
			resp.Groups = append(resp.Groups, g)
		}
		return h.encode(resp), nil
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil || req.Version < 2 {
		topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	got, code := fetchOffsetsAuthorized(ac, req.Group, topics, func(topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
		return h.groups.FetchOffsetsStable(req.Group, nil, -1, topics, req.Version >= 7 && req.RequireStable)
	})
	resp.ErrorCode = code
	if code != 0 && req.Version < 2 {
		// v0-1 have no group-level error: each partition asked for
		// carries it, as Kafka's OffsetFetchRequest.getErrorResponse
		// answers, or a client would take NOT_COORDINATOR for "no
		// offset committed".
		got = nil
		for _, t := range req.Topics {
			rt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
				meta := ""
				rp.Metadata = &meta
				rt.Partitions = append(rt.Partitions, rp)
			}
			got = append(got, rt)
		}
	}
	for _, t := range got {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata
			rp.ErrorCode = p.ErrorCode
			if req.Version < 2 && code != 0 {
				rp.ErrorCode = code // v0-1 have no group-level error
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return h.encode(resp), nil
}

// fetchOffsetsAuthorized runs fetch for the topics the principal may
// DESCRIBE (nil topics: all committed ones, filtered after), answering
// the others TOPIC_AUTHORIZATION_FAILED, and the whole group
// GROUP_AUTHORIZATION_FAILED without DESCRIBE on it.
func fetchOffsetsAuthorized(ac authCtx, groupID string, topics []kmsg.OffsetFetchRequestGroupTopic, fetch func([]kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16)) ([]kmsg.OffsetFetchResponseGroupTopic, int16) {
	if !ac.enabled() {
		return fetch(topics)
	}
	if !ac.group(acl.OpDescribe, groupID) {
		return nil, codeGroupAuth
	}
	if topics == nil {
		got, code := fetch(nil)
		kept := got[:0]
		for _, t := range got {
			if ac.topic(acl.OpDescribe, t.Topic) {
				kept = append(kept, t)
			}
		}
		return kept, code
	}
	allowed := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(topics)) // not nil: nil asks for all
	var denied []kmsg.OffsetFetchResponseGroupTopic
	for _, t := range topics {
		if ac.topic(acl.OpDescribe, t.Topic) {
			allowed = append(allowed, t)
			continue
		}
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, codeTopicAuth
			rt.Partitions = append(rt.Partitions, rp)
		}
		denied = append(denied, rt)
	}
	got, code := fetch(allowed)
	if code != 0 {
		return got, code
	}
	return append(got, denied...), code
}
