package kafka

// FindCoordinator: v0-6
//
// Behavior:
//   - Every group's coordinator is this broker. The first request creates
//     __consumer_offsets (offsets.topic.num.partitions partitions), as Kafka
//     creates it on first use: its metadata only, so that the answer is
//     not held up by creating 50 logs (each is created on its group's
//     first write).
//   - v4+ answers a batch of keys (KIP-699), each with its own error.
//   - Transactions are not built: key type TRANSACTION gets
//     COORDINATOR_NOT_AVAILABLE with a message saying so. Other key types
//     are INVALID_REQUEST.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(10, 0, 6, (*Handler).handleFindCoordinator) }

const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func (h *Handler) handleFindCoordinator(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		c := h.coordinatorFor(req.CoordinatorKey, req.CoordinatorType)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return h.encode(resp), nil
	}
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, h.coordinatorFor(key, req.CoordinatorType))
	}
	return h.encode(resp), nil
}

func (h *Handler) coordinatorFor(key string, keyType int8) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID, c.Port = key, -1, -1
	fail := func(code int16, msg string) { c.ErrorCode, c.ErrorMessage = code, &msg }
	switch keyType {
	case coordinatorGroup:
		if _, err := h.offsetsTopic(); err != nil {
			h.logger.Error("find coordinator", "err", err)
			fail(kerr.CoordinatorNotAvailable.Code, err.Error())
			return c
		}
		c.NodeID, c.Host, c.Port = h.cfg.NodeID, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
	case coordinatorTransaction:
		fail(kerr.CoordinatorNotAvailable.Code, "transactions are not supported by this broker yet")
	default:
		fail(kerr.InvalidRequest.Code, "unknown coordinator key type")
	}
	return c
}
