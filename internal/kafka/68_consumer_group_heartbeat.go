package kafka

// ConsumerGroupHeartbeat: v0-1
//
// Behavior (KIP-848; internal/group/consumer.go has the state machine):
//   - Epoch 0 joins (v0: the coordinator names the member; v1: the client
//     does), -1 leaves, -2 leaves a static member's place for a restart.
//   - The server-side assignors are uniform (the default) and range; others
//     are UNSUPPORTED_ASSIGNOR.
//   - Partitions are revoked before they are assigned elsewhere: a member
//     keeps its epoch until it reports the revoked partitions gone.
//   - Stale epochs are FENCED_MEMBER_EPOCH, unknown members
//     UNKNOWN_MEMBER_ID.
//   - Not persisted: after a restart members get UNKNOWN_MEMBER_ID and
//     rejoin; committed offsets are kept.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(68, 0, 1, (*Handler).handleConsumerGroupHeartbeat) }

func (h *Handler) handleConsumerGroupHeartbeat(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	// As Kafka: READ on the group, and DESCRIBE on every topic
	// subscribed to by name.
	ac := h.auth(ctx, r)
	code := int16(0)
	if !ac.group(acl.OpRead, req.Group) {
		code = codeGroupAuth
	} else {
		for _, t := range req.SubscribedTopicNames {
			if !ac.topic(acl.OpDescribe, t) {
				code = codeTopicAuth
				break
			}
		}
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		return h.encode(resp), nil
	}
	if _, err := h.offsetsTopic(); err != nil {
		h.logger.Error("consumer group heartbeat", "err", err)
	}
	return h.encode(h.groups.ConsumerHeartbeat(req, groupClient(r))), nil
}
