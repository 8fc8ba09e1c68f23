package kafka

// CreateTopics: v0-7
//
// Behavior:
//   - Accepted on any node: a node that is not the active controller
//     forwards the request to it and answers once its own metadata holds
//     the topics (forward.go).
//   - NumPartitions -1 takes num.partitions; ReplicationFactor -1 or 1 is
//     accepted. Replication between brokers is not built yet, so more is
//     INVALID_REPLICATION_FACTOR, as is a factor above the live brokers.
//   - Partitions are spread over the live (registered, unfenced) brokers,
//     leaders balanced (controller.PlaceReplicas); a manual assignment
//     must name registered brokers (INVALID_REPLICA_ASSIGNMENT).
//   - Topic names are validated as Kafka does (INVALID_TOPIC_EXCEPTION);
//     configs by name and value (INVALID_CONFIG, with a message).
//   - ValidateOnly (v1+) checks without creating.
//   - A name given twice is INVALID_REQUEST for each of its entries.
//   - One request creates at most 10000 partitions in total
//     (INVALID_PARTITIONS past that), and the broker hosts at most
//     max.broker.partitions (POLICY_VIOLATION past that).
//   - v5+ returns the topic's partition count, replication factor and
//     configs; v7+ its topic ID.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(19, 0, 7, (*Handler).handleCreateTopics) }

func (h *Handler) handleCreateTopics(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	var total int64 // partitions this request has created or validated so far
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, msg string) {
			st.ErrorCode, st.ErrorMessage = code, &msg
		}
		partitions := rt.NumPartitions
		if partitions == -1 {
			partitions = h.cfg.NumPartitions
		}
		if len(rt.ReplicaAssignment) > 0 {
			partitions = int32(len(rt.ReplicaAssignment))
		}
		if seen[rt.Topic] > 1 {
			// Kafka answers every entry of a repeated name this way
			// and creates none of them.
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("topic %q appears more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		if forwarded(ctx) && internalTopic(rt.Topic) {
			// A broker creating __consumer_offsets through the
			// controller (FindCoordinator on a node that is not it).
			if t, err := h.offsetsTopic(); err != nil {
				fail(errorCode(err), err.Error())
			} else {
				st.TopicID, st.NumPartitions, st.ReplicationFactor = t.ID, t.Partitions, 1
			}
		} else if err := validTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException.Code, err.Error())
		} else if partitions <= 0 || partitions > h.cfg.MaxPartitionsPerTopic {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("number of partitions must be between 1 and %d, got %d", h.cfg.MaxPartitionsPerTopic, partitions))
		} else if total+int64(partitions) > int64(h.cfg.MaxPartitionsPerRequest) {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("one request may create at most %d partitions in total; this topic's %d would make %d", h.cfg.MaxPartitionsPerRequest, partitions, total+int64(partitions)))
		} else if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: replication between brokers is not built yet, topics have 1 replica", rt.ReplicationFactor))
		} else if bad := badAssignment(rt.ReplicaAssignment); bad != "" {
			fail(kerr.InvalidReplicaAssignment.Code, bad)
		} else if tc, err := broker.ParseTopicConfig(h.topicDefaults(), configs); err != nil {
			fail(kerr.InvalidConfig.Code, err.Error())
		} else if h.meta.Image().Topic(rt.Topic) != nil {
			fail(kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic))
		} else {
			total += int64(partitions)
			if req.ValidateOnly {
				// The answer must be the one creating would give:
				// count what this request validated so far too.
				if err := h.checkPartitionLimit(int32(total)); err != nil {
					fail(errorCode(err), err.Error())
					resp.Topics = append(resp.Topics, st)
					continue
				}
			} else {
				t, err := h.createTopic(ctx, rt.Topic, partitions, rt.ReplicationFactor, assignment(rt.ReplicaAssignment), configs)
				if err != nil {
					fail(errorCode(err), err.Error())
					resp.Topics = append(resp.Topics, st)
					continue
				}
				st.TopicID = t.ID
				h.logger.Info("created topic", "topic", rt.Topic, "partitions", partitions)
			}
			st.NumPartitions, st.ReplicationFactor = partitions, 1
			// Sources as DescribeConfigs reports them: the topic's
			// own, or that of the broker property it inherits.
			props := h.brokerProperties(h.meta.Image())
			dreq := kmsg.NewPtrDescribeConfigsRequest()
			for _, d := range broker.TopicConfigDefs {
				c := describeTopicConfig(dreq, d, &tc, configs, props)
				st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{Name: d.Name, Value: c.Value, Source: int8(c.Source)})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.answer(ctx, resp), nil
}

// badAssignment checks a manual assignment's shape: partitions 0..n-1,
// each once, one replica each (replication is not built yet). That the
// brokers exist is checked against the latest image when it is placed.
func badAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) string {
	seen := map[int32]bool{}
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition] {
			return fmt.Sprintf("partition %d: assignments must name partitions 0 to %d once each", a.Partition, len(as)-1)
		}
		seen[a.Partition] = true
		if len(a.Replicas) != 1 {
			return fmt.Sprintf("partition %d assigned to replicas %v; replication between brokers is not built yet, a partition has one replica", a.Partition, a.Replicas)
		}
	}
	return ""
}

// assignment orders a manual assignment by partition, nil for none.
func assignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) [][]int32 {
	if len(as) == 0 {
		return nil
	}
	out := make([][]int32, len(as))
	for _, a := range as {
		out[a.Partition] = a.Replicas
	}
	return out
}
