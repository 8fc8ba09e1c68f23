package kafka

// CreatePartitions: v0-3
//
// Behavior:
//   - Count is the new total; it must exceed the current count
//     (INVALID_PARTITIONS). New partitions get the topic's replication
//     factor (its first partition's replica count), spread over the usable
//     brokers like a new topic's (INVALID_REPLICATION_FACTOR when fewer are
//     usable); an assignment must give each new partition that many
//     distinct registered brokers (INVALID_REPLICA_ASSIGNMENT, as Kafka's
//     "Inconsistent replication factor").
//   - Accepted on any node, forwarded to the active controller.
//   - ValidateOnly checks without creating.
//   - One request adds at most 10000 partitions in total
//     (INVALID_PARTITIONS), and the broker hosts at most
//     max.broker.partitions (POLICY_VIOLATION).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(37, 0, 3, (*Handler).handleCreatePartitions) }

func (h *Handler) handleCreatePartitions(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	// As Kafka: ALTER on each topic (else TOPIC_AUTHORIZATION_FAILED),
	// checked before forwarding.
	ac := h.auth(ctx, sr)
	var denied []kmsg.CreatePartitionsResponseTopic
	if ac.enabled() {
		var kept []kmsg.CreatePartitionsRequestTopic
		for _, rt := range req.Topics {
			if ac.topic(acl.OpAlter, rt.Topic) {
				kept = append(kept, rt)
				continue
			}
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, codeTopicAuth
			denied = append(denied, st)
		}
		req.Topics = kept
	}
	if resp, ok := h.forward(ctx, req); ok {
		cresp := resp.(*kmsg.CreatePartitionsResponse)
		cresp.Topics = append(cresp.Topics, denied...)
		return h.encode(cresp), nil
	}
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	var total int64 // partitions this request added or validated so far
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) { st.ErrorCode, st.ErrorMessage = code, &msg }
		t := h.meta.Image().Topic(rt.Topic)
		switch {
		case t == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case internalTopic(t.Name):
			// Groups are placed by the partition count.
			fail(kerr.InvalidTopicException.Code, "the partition count of an internal topic cannot change")
		case rt.Count > h.cfg.MaxPartitionsPerTopic:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("at most %d partitions per topic", h.cfg.MaxPartitionsPerTopic))
		case rt.Count <= t.Partitions:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("topic has %d partitions; the new count %d must be larger", t.Partitions, rt.Count))
		case len(rt.Assignment) > 0 && len(rt.Assignment) != int(rt.Count-t.Partitions):
			fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("%d assignments for %d new partitions", len(rt.Assignment), rt.Count-t.Partitions))
		case !sameReplicationFactor(rt.Assignment, replicationFactor(t)):
			fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("Inconsistent replication factor between partitions: the topic's partitions have %d replicas, each new partition must be assigned as many brokers", replicationFactor(t)))
		case total+int64(rt.Count-t.Partitions) > int64(h.cfg.MaxPartitionsPerRequest):
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("one request may add at most %d partitions in total", h.cfg.MaxPartitionsPerRequest))
		case req.ValidateOnly:
			total += int64(rt.Count - t.Partitions)
			if err := h.checkPartitionLimit(int32(total)); err != nil {
				fail(errorCode(err), err.Error())
			}
		default:
			total += int64(rt.Count - t.Partitions)
			var assign [][]int32
			for _, a := range rt.Assignment {
				assign = append(assign, a.Replicas)
			}
			if err := h.addPartitions(t, rt.Count, assign); err != nil {
				fail(errorCode(err), err.Error())
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	resp.Topics = append(resp.Topics, denied...)
	return h.answer(ctx, resp), nil
}

// addPartitions raises t's partition count to count and creates the new
// partitions' files, within max.broker.partitions.
func (h *Handler) addPartitions(t *cluster.Topic, count int32, assign [][]int32) error {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	cur := h.meta.Image().ByID[t.ID]
	if cur == nil {
		return fmt.Errorf("%w: %s", cluster.ErrUnknownTopic, t.Name)
	}
	tc, err := h.topicConfig(cur) // as it stands under the lock AlterConfigs takes
	if err != nil {
		return err
	}
	if count <= cur.Partitions {
		return fmt.Errorf("%w: topic has %d partitions; the new count %d must be larger", errInvalidPartitions, cur.Partitions, count)
	} else if err := h.checkPartitionLimitLocked(count - cur.Partitions); err != nil {
		return err
	}
	if t, err = h.meta.SetPartitions(t.Name, count, h.ctrl.Place(replicationFactor(cur), assign)); err != nil {
		return err
	}
	for p := count - 1; p >= cur.Partitions; p-- {
		if t.PartitionStates[p].Leader != h.cfg.NodeID || h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p}) != nil {
			continue
		}
		if _, err := h.createPartition(t, p, tc); err != nil {
			return err
		}
	}
	return nil
}

// errInvalidPartitions: INVALID_PARTITIONS.
var errInvalidPartitions = errors.New("kafka: invalid partition count")

// sameReplicationFactor reports whether every assigned partition has rf
// replicas.
func sameReplicationFactor(as []kmsg.CreatePartitionsRequestTopicAssignment, rf int16) bool {
	for _, a := range as {
		if len(a.Replicas) != int(rf) {
			return false
		}
	}
	return true
}
