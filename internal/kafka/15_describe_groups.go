package kafka

// DescribeGroups: v0-6
//
// Behavior: state, protocol type, and members (client id and host; their
// metadata and assignment only while the group is Stable, as Kafka). An
// unknown group is Dead with no error before v6 and GROUP_ID_NOT_FOUND from
// v6 (KIP-1043). Without ACLs, IncludeAuthorizedOperations reports READ,
// DELETE and DESCRIBE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(15, 0, 6, (*Handler).handleDescribeGroups) }

// groupOperations is the authorized-operations bitfield of a group without
// ACLs: READ (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func (h *Handler) handleDescribeGroups(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		d := h.groups.Describe(id, req.Version)
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			d.AuthorizedOperations = groupOperations
		}
		resp.Groups = append(resp.Groups, d)
	}
	return h.encode(resp), nil
}
