package kafka

// Metadata: v0-13
//
// Behavior:
//   - One broker (this node) leads every partition, with itself as the only
//     replica and in-sync replica; leader epoch 0.
//   - Null topics (v1+) or an empty list at v0 means all topics.
//   - Unknown topics are auto-created when the request allows it (always
//     before v4, AllowAutoTopicCreation from v4, KIP-204) and
//     auto.create.topics.enable is on; otherwise UNKNOWN_TOPIC_OR_PARTITION.
//     The answer that creates a topic is LEADER_NOT_AVAILABLE without
//     partitions, as Kafka's: clients retry (and a Metadata request after
//     DeleteTopics does not look like a delete that failed).
//   - v10+ carries topic IDs; v12+ may name topics by ID only.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(3, 0, 13, (*Handler).handleMetadata) }

func (h *Handler) handleMetadata(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: h.cfg.NodeID, Host: h.cfg.AdvertisedHost, Port: h.cfg.AdvertisedPort}}
	resp.ClusterID = &h.cfg.ClusterID
	resp.ControllerID = h.cfg.NodeID

	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	im := h.meta.Image()
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		names := make([]string, 0, len(im.Topics))
		for name := range im.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			resp.Topics = append(resp.Topics, h.topicMetadata(im.Topics[name], 0, name))
		}
		return h.encode(resp), nil
	}
	for _, rt := range req.Topics {
		if rt.Topic == nil { // by ID (v12+)
			t := im.ByID[cluster.TopicID(rt.TopicID)]
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, h.topicMetadata(t, 0, t.Name))
			continue
		}
		t, code := h.topic(*rt.Topic, allowCreate)
		resp.Topics = append(resp.Topics, h.topicMetadata(t, code, *rt.Topic))
	}
	return h.encode(resp), nil
}

func (h *Handler) topicMetadata(t *cluster.Topic, code int16, name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &name
	mt.ErrorCode = code
	if t == nil || code != 0 {
		return mt
	}
	mt.TopicID = t.ID
	mt.IsInternal = internalTopic(t.Name)
	for p := int32(0); p < t.Partitions; p++ {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = h.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{h.cfg.NodeID}
		mp.ISR = []int32{h.cfg.NodeID}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
