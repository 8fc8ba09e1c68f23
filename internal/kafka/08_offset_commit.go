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

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(8, 0, 9, (*Handler).handleOffsetCommit) }

func (h *Handler) handleOffsetCommit(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	return h.encode(h.groups.Commit(kreq.(*kmsg.OffsetCommitRequest))), nil
}
