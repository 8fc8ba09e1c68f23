package kafka

// Metadata: v0-13
//
// Behavior:
//   - Brokers are the registered, unfenced brokers of this node's metadata
//     image, with their PLAINTEXT endpoint and rack; the controller id is
//     the active controller's (or, while none is elected, this node's).
//   - Each partition's leader, leader epoch, replicas and ISR are the
//     image's; replicas on fenced or unregistered brokers are offline; a
//     partition without a leader is LEADER_NOT_AVAILABLE.
//   - Null topics (v1+) or an empty list at v0 means all topics.
//   - Unknown topics are auto-created when the request allows it (always
//     before v4, AllowAutoTopicCreation from v4, KIP-204) and
//     auto.create.topics.enable is on; otherwise UNKNOWN_TOPIC_OR_PARTITION.
//     The answer that creates a topic is LEADER_NOT_AVAILABLE without
//     partitions, as Kafka's: clients retry (and a Metadata request after
//     DeleteTopics does not look like a delete that failed).
//   - v10+ carries topic IDs; v12+ may name topics by ID only.
//   - With an authorizer, as Kafka: listing all topics shows only those
//     the principal may DESCRIBE; a named topic (or id) it may not is
//     TOPIC_AUTHORIZATION_FAILED; auto-creation also needs CREATE on the
//     cluster or on the topic (else TOPIC_AUTHORIZATION_FAILED).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(3, 0, 13, (*Handler).handleMetadata) }

func (h *Handler) handleMetadata(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	ac := h.auth(ctx, sr)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := h.meta.Image()
	for _, b := range h.liveBrokers(im, h.listenerOf(sr)) {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: b.id, Host: b.host, Port: b.port, Rack: b.rack})
	}
	resp.ClusterID = &h.cfg.ClusterID
	resp.ControllerID = h.controllerID(im)

	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		names := make([]string, 0, len(im.Topics))
		for name := range im.Topics {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if !ac.topic(acl.OpDescribe, name) {
				continue // hidden, as Kafka hides it
			}
			resp.Topics = append(resp.Topics, h.topicMetadata(im, im.Topics[name], 0, name))
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
			if !ac.topic(acl.OpDescribe, t.Name) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = codeTopicAuth
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, h.topicMetadata(im, t, 0, t.Name))
			continue
		}
		name := *rt.Topic
		if !ac.topic(acl.OpDescribe, name) {
			resp.Topics = append(resp.Topics, h.topicMetadata(im, nil, codeTopicAuth, name))
			continue
		}
		if allowCreate && ac.enabled() && h.cfg.AutoCreateTopics && im.Topic(name) == nil &&
			!ac.cluster(acl.OpCreate) && !ac.topic(acl.OpCreate, name) {
			resp.Topics = append(resp.Topics, h.topicMetadata(im, nil, codeTopicAuth, name))
			continue
		}
		t, code := h.topic(name, allowCreate)
		resp.Topics = append(resp.Topics, h.topicMetadata(h.meta.Image(), t, code, *rt.Topic))
	}
	return h.encode(resp), nil
}

func (h *Handler) topicMetadata(im *cluster.Image, t *cluster.Topic, code int16, name string) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &name
	mt.ErrorCode = code
	if t == nil || code != 0 {
		return mt
	}
	mt.TopicID = t.ID
	mt.IsInternal = internalTopic(t.Name)
	for p, st := range t.PartitionStates {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(p)
		mp.Leader = st.Leader
		mp.LeaderEpoch = st.LeaderEpoch
		mp.Replicas = st.Replicas
		mp.ISR = st.ISR
		for _, r := range st.Replicas {
			if !h.brokerLive(im, r) {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if mp.Leader < 0 || !h.brokerLive(im, mp.Leader) {
			mp.Leader = -1
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
