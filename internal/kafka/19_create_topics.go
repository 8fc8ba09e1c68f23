package kafka

// CreateTopics: v0-7
//
// Behavior:
//   - NumPartitions -1 takes num.partitions; ReplicationFactor -1 or 1 is
//     accepted, more is INVALID_REPLICATION_FACTOR on a single node.
//   - Manual replica assignments must name only this broker.
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

func (h *Handler) handleCreateTopics(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
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
		if err := validTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException.Code, err.Error())
		} else if partitions <= 0 || partitions > h.cfg.MaxPartitionsPerTopic {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("number of partitions must be between 1 and %d, got %d", h.cfg.MaxPartitionsPerTopic, partitions))
		} else if total+int64(partitions) > int64(h.cfg.MaxPartitionsPerRequest) {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("one request may create at most %d partitions in total; this topic's %d would make %d", h.cfg.MaxPartitionsPerRequest, partitions, total+int64(partitions)))
		} else if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			fail(kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d is larger than the 1 available broker", rt.ReplicationFactor))
		} else if bad := badAssignment(rt.ReplicaAssignment, h.cfg.NodeID); bad != "" {
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
				t, err := h.createTopic(rt.Topic, partitions, configs)
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
	return h.encode(resp), nil
}

func badAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment, node int32) string {
	for _, a := range as {
		for _, r := range a.Replicas {
			if r != node || len(a.Replicas) != 1 {
				return fmt.Sprintf("partition %d assigned to replicas %v; this cluster has only broker %d", a.Partition, a.Replicas, node)
			}
		}
	}
	return ""
}
