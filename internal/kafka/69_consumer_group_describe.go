package kafka

// ConsumerGroupDescribe: v0-1
//
// Behavior: epochs, assignor, and each member's subscription, current
// and target assignment. Unknown groups and classic groups are
// GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(69, 0, 1, (*Handler).handleConsumerGroupDescribe) }

func (h *Handler) handleConsumerGroupDescribe(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	ac := h.auth(ctx, sr)
	for _, id := range req.Groups {
		if !ac.group(acl.OpDescribe, id) {
			d := kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group, d.ErrorCode = id, codeGroupAuth
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d := h.groups.DescribeConsumer(id)
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			d.AuthorizedOperations = ac.groupOperations(id)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return h.encode(resp), nil
}
