package kafka

// CreateTopics: v0-7
//
// Behavior:
//   - Accepted on any node: a node that is not the active controller
//     forwards the request to it and answers once its own metadata holds
//     the topics (forward.go).
//   - NumPartitions -1 takes num.partitions; ReplicationFactor -1 takes
//     default.replication.factor. A factor of 0 or below -1, or above the
//     usable (registered, unfenced, not shutting down) brokers, is
//     INVALID_REPLICATION_FACTOR; a single node (local mode) is one broker,
//     so it takes factor 1 only.
//   - Replicas are spread over the usable brokers, leaders balanced and
//     racks alternating (controller.PlaceReplicas); a manual assignment
//     must give each partition the same number of distinct registered
//     brokers (INVALID_REPLICA_ASSIGNMENT).
//   - Topic names are validated as Kafka does (INVALID_TOPIC_EXCEPTION);
//     configs by name and value (INVALID_CONFIG, with a message).
//   - ValidateOnly (v1+) checks without creating.
//   - A name given twice is INVALID_REQUEST for each of its entries.
//   - One request creates at most 10000 partitions in total
//     (INVALID_PARTITIONS past that), and the broker hosts at most
//     max.broker.partitions (POLICY_VIOLATION past that).
//   - v5+ returns the topic's partition count, replication factor (the
//     one placed, or for ValidateOnly the one that would be) and configs;
//     v7+ its topic ID.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(19, 0, 7, (*Handler).handleCreateTopics) }

func (h *Handler) handleCreateTopics(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	// As Kafka: CREATE on the cluster, or on each topic (else
	// TOPIC_AUTHORIZATION_FAILED); checked here, before forwarding, with
	// the client's principal. Configs in the answer (v5+) need
	// DESCRIBE_CONFIGS on the topic.
	ac := h.auth(ctx, sr)
	var denied []kmsg.CreateTopicsResponseTopic
	if ac.enabled() && !ac.cluster(acl.OpCreate) {
		var kept []kmsg.CreateTopicsRequestTopic
		for _, rt := range req.Topics {
			if ac.topic(acl.OpCreate, rt.Topic) {
				kept = append(kept, rt)
				continue
			}
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic, st.ErrorCode, st.NumPartitions, st.ReplicationFactor = rt.Topic, codeTopicAuth, -1, -1
			denied = append(denied, st)
		}
		req.Topics = kept
	}
	authorized := func(resp *kmsg.CreateTopicsResponse) *kmsg.CreateTopicsResponse {
		if !ac.enabled() {
			return resp
		}
		for i := range resp.Topics {
			st := &resp.Topics[i]
			if st.ErrorCode == 0 && !ac.topic(acl.OpDescribeConfigs, st.Topic) {
				st.Configs, st.ConfigErrorCode = nil, codeTopicAuth
			}
		}
		resp.Topics = append(resp.Topics, denied...)
		return resp
	}
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(authorized(resp.(*kmsg.CreateTopicsResponse))), nil
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
			// A broker creating __consumer_offsets or
			// __transaction_state through the controller
			// (FindCoordinator on a node that is not it).
			if t, err := h.createInternalTopic(rt.Topic); err != nil {
				fail(errorCode(err), err.Error())
			} else {
				st.TopicID, st.NumPartitions, st.ReplicationFactor = t.ID, t.Partitions, replicationFactor(t)
			}
		} else if err := validTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException.Code, err.Error())
		} else if partitions <= 0 || partitions > h.cfg.MaxPartitionsPerTopic {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("number of partitions must be between 1 and %d, got %d", h.cfg.MaxPartitionsPerTopic, partitions))
		} else if total+int64(partitions) > int64(h.cfg.MaxPartitionsPerRequest) {
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("one request may create at most %d partitions in total; this topic's %d would make %d", h.cfg.MaxPartitionsPerRequest, partitions, total+int64(partitions)))
		} else if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			fail(kerr.InvalidReplicationFactor.Code, "Replication factor must be larger than 0, or -1 to use the default value.")
		} else if bad := badAssignment(rt.ReplicaAssignment); bad != "" {
			fail(kerr.InvalidReplicaAssignment.Code, bad)
		} else if tc, err := broker.ParseTopicConfig(h.topicDefaults(), configs); err != nil {
			fail(kerr.InvalidConfig.Code, err.Error())
		} else if h.meta.Image().Topic(rt.Topic) != nil {
			fail(kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", rt.Topic))
		} else {
			total += int64(partitions)
			rf := h.ctrl.ReplicationFactor(rt.ReplicationFactor)
			if len(rt.ReplicaAssignment) > 0 {
				rf = int16(len(rt.ReplicaAssignment[0].Replicas))
			}
			if req.ValidateOnly {
				// The answer must be the one creating would give:
				// count what this request validated so far too, and
				// place the replicas without keeping the placement.
				err := h.checkPartitionLimit(int32(total))
				if err == nil {
					err = h.ctrl.CheckPlace(h.meta.Image(), rt.ReplicationFactor, assignment(rt.ReplicaAssignment), partitions)
				}
				if err != nil {
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
				st.TopicID, rf = t.ID, replicationFactor(t)
				h.logger.Info("created topic", "topic", rt.Topic, "partitions", partitions, "replication_factor", rf)
			}
			st.NumPartitions, st.ReplicationFactor = partitions, rf
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
	return h.answer(ctx, authorized(resp)), nil
}

// badAssignment checks a manual assignment's shape: partitions 0..n-1,
// each once. That each has replicas, the same number, distinct and
// registered, is checked against the latest image when it is placed
// (controller.ValidateAssignment).
func badAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) string {
	seen := map[int32]bool{}
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition] {
			return fmt.Sprintf("partition %d: assignments must name partitions 0 to %d once each", a.Partition, len(as)-1)
		}
		seen[a.Partition] = true
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

// replicationFactor is a topic's replication factor: its first
// partition's replica count (Kafka's TopicDescription reports the same),
// without the replicas a reassignment is removing: new partitions get
// the factor the topic is moving to.
func replicationFactor(t *cluster.Topic) int16 {
	if len(t.PartitionStates) == 0 || t.PartitionStates[0] == nil {
		return -1
	}
	p := t.PartitionStates[0]
	return int16(len(p.Replicas) - len(p.RemovingReplicas))
}
