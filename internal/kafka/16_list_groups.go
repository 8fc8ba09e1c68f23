package kafka

// ListGroups: v0-5
//
// Behavior: every group this node coordinates (of the partitions of
// __consumer_offsets it leads; a client asks every broker) with its protocol
// type, state (v4+) and type (v5+, "classic" or "consumer"), filtered by
// state (v4+) and type (v5+) names without regard to case. While a
// partition loads, the groups come with COORDINATOR_LOAD_IN_PROGRESS, as
// Kafka answers.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(16, 0, 5, (*Handler).handleListGroups) }

func (h *Handler) handleListGroups(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	groups, err := h.groups.List(req.StatesFilter, req.TypesFilter)
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	// As Kafka: DESCRIBE on the cluster lists every group, else only
	// those the principal may DESCRIBE.
	if ac := h.auth(ctx, sr); !ac.cluster(acl.OpDescribe) {
		kept := groups[:0]
		for _, g := range groups {
			if ac.group(acl.OpDescribe, g.Group) {
				kept = append(kept, g)
			}
		}
		groups = kept
	}
	resp.Groups = groups
	return h.encode(resp), nil
}
