package kafka

// FindCoordinator: v0-6
//
// Behavior:
//   - A group's coordinator is the leader of its partition of
//     __consumer_offsets (Kafka's partitionFor: the hash of the group id),
//     with that broker's PLAINTEXT endpoint from the metadata image; this
//     node answers with its advertised address. No leader, or a leader
//     that is fenced or not registered, is COORDINATOR_NOT_AVAILABLE, as
//     Kafka answers when the leader is not an alive broker: the client
//     asks again.
//   - The first request creates __consumer_offsets (offsets.topic.num.partitions
//     partitions), as Kafka creates it on first use: its metadata only, so
//     that the answer is not held up by creating 50 logs (each is created
//     on its group's first write). A group that the new topic places on
//     another broker gets COORDINATOR_NOT_AVAILABLE in that request, as
//     Kafka answers the request that creates the topic
//     (KafkaApis.getCoordinator): the other broker may not have applied
//     the new topic yet and would answer NOT_COORDINATOR, which
//     librdkafka's committed() reports instead of retrying. The client
//     asks again after its backoff.
//   - v4+ answers a batch of keys (KIP-699), each with its own error.
//   - A transactional id's coordinator (key type TRANSACTION) is the
//     leader of its partition of __transaction_state, which the first such
//     request creates (transaction.state.log.num.partitions partitions),
//     with the same answers as for groups. Other key types are
//     INVALID_REQUEST.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

func init() { register(10, 0, 6, (*Handler).handleFindCoordinator) }

const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

func (h *Handler) handleFindCoordinator(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	listener := h.listenerOf(sr)
	req := kreq.(*kmsg.FindCoordinatorRequest)
	ac := h.auth(ctx, sr)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	fresh := h.meta.Image().Topic(group.Topic) == nil
	if req.Version < 4 {
		c := h.authorizedCoordinator(ac, req.CoordinatorKey, req.CoordinatorType, fresh, listener)
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		return h.encode(resp), nil
	}
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, h.authorizedCoordinator(ac, key, req.CoordinatorType, fresh, listener))
	}
	return h.encode(resp), nil
}

// authorizedCoordinator is coordinatorFor after Kafka's check: DESCRIBE on
// the group (GROUP_AUTHORIZATION_FAILED) or on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
func (h *Handler) authorizedCoordinator(ac authCtx, key string, keyType int8, fresh bool, listener string) kmsg.FindCoordinatorResponseCoordinator {
	code := int16(0)
	switch {
	case keyType == coordinatorGroup && !ac.group(acl.OpDescribe, key):
		code = codeGroupAuth
	case keyType == coordinatorTransaction && !ac.txn(acl.OpDescribe, key):
		code = codeTxnAuth
	}
	if code != 0 {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port, c.ErrorCode = key, -1, -1, code
		return c
	}
	return h.coordinatorFor(key, keyType, fresh, listener)
}

// fresh says __consumer_offsets did not exist when the request came.
func (h *Handler) coordinatorFor(key string, keyType int8, fresh bool, listener string) kmsg.FindCoordinatorResponseCoordinator {
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
		node, host, port, msg := h.groupCoordinator(h.meta.Image(), key, listener)
		if msg != "" {
			fail(kerr.CoordinatorNotAvailable.Code, msg)
			return c
		}
		if fresh && node != h.cfg.NodeID {
			fail(kerr.CoordinatorNotAvailable.Code, group.Topic+" was just created: its leaders are taking it over")
			return c
		}
		c.NodeID, c.Host, c.Port = node, host, port
	case coordinatorTransaction:
		freshTxn := h.meta.Image().Topic(txn.Topic) == nil
		if _, err := h.txnTopic(); err != nil {
			h.logger.Error("find coordinator", "err", err)
			fail(kerr.CoordinatorNotAvailable.Code, err.Error())
			return c
		}
		p := txn.PartitionFor(key, h.txns.coord.Partitions())
		node, host, port, msg := h.coordinatorNode(h.meta.Image(), txn.Topic, p, listener)
		if msg != "" {
			fail(kerr.CoordinatorNotAvailable.Code, msg)
			return c
		}
		if freshTxn && node != h.cfg.NodeID {
			fail(kerr.CoordinatorNotAvailable.Code, txn.Topic+" was just created: its leaders are taking it over")
			return c
		}
		c.NodeID, c.Host, c.Port = node, host, port
	default:
		fail(kerr.InvalidRequest.Code, "unknown coordinator key type")
	}
	return c
}

// groupCoordinator is the broker that coordinates a group in im: the
// leader of the group's partition of __consumer_offsets, and its address.
// A message says why there is none.
func (h *Handler) groupCoordinator(im *cluster.Image, key, listener string) (node int32, host string, port int32, msg string) {
	return h.coordinatorNode(im, group.Topic, group.PartitionFor(key, h.groups.Partitions()), listener)
}

// coordinatorNode is the leader of partition p of the internal topic
// topic in im, and its address on listener.
func (h *Handler) coordinatorNode(im *cluster.Image, topic string, p int32, listener string) (node int32, host string, port int32, msg string) {
	t := im.Topic(topic)
	if t == nil {
		return -1, "", -1, topic + " does not exist"
	}
	leader := offsetsLeader(t, p)
	if leader == h.cfg.NodeID {
		// This node answers for itself even while its image says it
		// is fenced (a controlled shutdown in progress).
		if b := im.Broker(leader); b != nil {
			if ep, ok := endpoint(b, listener); ok {
				return leader, ep.host, ep.port, ""
			}
		}
		if len(im.Brokers) == 0 {
			return leader, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort, ""
		}
	}
	if leader < 0 {
		return -1, "", -1, fmt.Sprintf("%s-%d has no leader", topic, p)
	}
	b := im.Broker(leader)
	if b == nil || b.Fenced {
		return -1, "", -1, fmt.Sprintf("the leader of %s-%d, broker %d, is not available", topic, p, leader)
	}
	if ep, ok := endpoint(b, listener); ok {
		return leader, ep.host, ep.port, ""
	}
	return -1, "", -1, fmt.Sprintf("the leader of %s-%d, broker %d, has no %s listener", topic, p, leader, listener)
}
