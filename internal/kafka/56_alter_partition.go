package kafka

// AlterPartition: v0-3, controller listener only
//
// Behavior: see controller.AlterPartitionChanges. A partition leader asks
// the active controller to change the ISR (or the leader recovery state,
// KIP-704) of partitions it leads; the controller checks the sender's
// broker epoch (STALE_BROKER_EPOCH), its leadership
// (NOT_LEADER_OR_FOLLOWER), the leader and partition epochs
// (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION: the compare-and-swap of
// KIP-497; NOT_CONTROLLER when they are newer than this controller's
// image, as Kafka answers), the new ISR's shape (INVALID_REQUEST) and the brokers it adds
// (INELIGIBLE_REPLICA), commits the accepted changes as
// PartitionChangeRecords in one batch, and answers each partition's new
// state. An ISR equal to the current one is answered without a record. The
// answer carries the metadata offset of the change (MetadataOffsetTag).
//
// Versions: v1 adds LeaderRecoveryState (KIP-704); v2 names topics by id
// (KIP-841); v3 gives each ISR member's broker epoch (NewIsrWithEpochs,
// KIP-903), so that a member that restarted since the leader heard from
// it is not taken back.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { registerController(56, 0, 3, (*Handler).handleAlterPartition) }

func (h *Handler) handleAlterPartition(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AlterPartitionRequest)
	resp, err := h.ctrl.AlterPartition(req)
	if err != nil {
		resp = req.ResponseKind().(*kmsg.AlterPartitionResponse)
		resp.ErrorCode = errorCode(err)
	}
	resp.SetVersion(req.Version)
	return h.answer(ctx, resp), nil
}
