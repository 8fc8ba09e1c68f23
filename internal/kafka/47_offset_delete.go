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

	"github.com/strata-io/strata/internal/server"
)

func init() { register(47, 0, 0, (*Handler).handleOffsetDelete) }

func (h *Handler) handleOffsetDelete(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	return h.encode(h.groups.DeleteOffsets(kreq.(*kmsg.OffsetDeleteRequest))), nil
}
