package kafka

// DeleteGroups: v0-2
//
// Behavior: an empty group's metadata and offsets are deleted (tombstones
// in __consumer_offsets); NON_EMPTY_GROUP while it has members,
// GROUP_ID_NOT_FOUND when there is no such group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(42, 0, 2, (*Handler).handleDeleteGroups) }

func (h *Handler) handleDeleteGroups(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	ac := h.auth(ctx, sr)
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		if !ac.group(acl.OpDelete, id) {
			g.ErrorCode = codeGroupAuth
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.ErrorCode = h.groups.DeleteGroup(id)
		resp.Groups = append(resp.Groups, g)
	}
	return h.encode(resp), nil
}
