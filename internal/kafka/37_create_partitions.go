package kafka

// CreatePartitions: v0-3
//
// Behavior:
//   - Count is the new total; it must exceed the current count
//     (INVALID_PARTITIONS). Assignments may name only this broker.
//   - ValidateOnly checks without creating.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(37, 0, 3, (*Handler).handleCreatePartitions) }

func (h *Handler) handleCreatePartitions(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
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
		case !onlyNode(rt.Assignment, h.cfg.NodeID):
			fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("assignments may only name broker %d", h.cfg.NodeID))
		case req.ValidateOnly:
		default:
			tc, err := h.topicConfig(t)
			if err == nil {
				t, err = h.meta.SetPartitions(rt.Topic, rt.Count)
			}
			for p := rt.Count - 1; err == nil && p >= 0 && t != nil; p-- {
				if h.broker.Partition(log.TopicPartition{Topic: rt.Topic, Partition: p}) != nil {
					break
				}
				_, err = h.createPartition(t, p, tc)
			}
			if err != nil {
				fail(errorCode(err), err.Error())
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}

func onlyNode(as []kmsg.CreatePartitionsRequestTopicAssignment, node int32) bool {
	for _, a := range as {
		for _, r := range a.Replicas {
			if r != node {
				return false
			}
		}
	}
	return true
}
