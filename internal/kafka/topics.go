package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
)

var errInvalidTopic = errors.New("kafka: invalid topic name")

// validTopicName applies Kafka's Topic.validate: 1-249 characters from
// [a-zA-Z0-9._-], and not "." or "..".
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%w %q: must be 1-249 characters and not '.' or '..'", errInvalidTopic, name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w %q: only ASCII letters, digits, '.', '_' and '-' are allowed", errInvalidTopic, name)
		}
	}
	if name == cluster.MetadataTopic.Topic {
		return fmt.Errorf("%w %q: reserved for the metadata log", errInvalidTopic, name)
	}
	if internalTopic(name) {
		return fmt.Errorf("%w %q: an internal topic, created by the broker", errInvalidTopic, name)
	}
	return nil
}

// topicConfig returns t's effective config: the broker defaults (static,
// with the dynamic broker configs of the current image) with t's overrides.
// Produce and Fetch ask for every partition they touch, so the parsed
// config is cached (see topicConfigCache).
func (h *Handler) topicConfig(t *cluster.Topic) (broker.TopicConfig, error) {
	c := h.configCache(h.meta.Image())
	if tc, ok := c.configs.Load(t); ok {
		return tc.(broker.TopicConfig), nil
	}
	tc, err := broker.ParseTopicConfig(c.defaults, t.Configs)
	if err != nil {
		return tc, err
	}
	c.configs.Store(t, tc)
	return tc, nil
}

// configCache returns the cache of image im, making it if the current one
// is of another image. (A caller racing one with a newer image may get
// that one: its defaults are newer, never older than im's.)
func (h *Handler) configCache(im *cluster.Image) *topicConfigCache {
	c := h.topicConfigs.Load()
	if c != nil && c.image == im {
		return c
	}
	nc := &topicConfigCache{image: im, defaults: h.brokerTopicDefaults(im)}
	for {
		if h.topicConfigs.CompareAndSwap(c, nc) {
			return nc
		}
		c = h.topicConfigs.Load()
		if c.image == im || c.image.EndOffset > im.EndOffset {
			return c
		}
	}
}

// topicConfigCache holds the topic defaults of one metadata image and
// parsed topic configs by topic. A *cluster.Topic is never modified (a
// config change makes a new one) and the defaults are those of the image,
// so an entry is right for the cache's image; the cache starts over with
// each new image, which also drops the entries of deleted and altered
// topics. (An entry for a topic of an older image may land in a newer
// cache; its overrides are still its own, and it goes with the next image.)
type topicConfigCache struct {
	image    *cluster.Image
	defaults broker.TopicConfig
	configs  sync.Map // *cluster.Topic -> broker.TopicConfig
}

// topic returns the named topic, creating it with the broker defaults when
// autoCreate and auto.create.topics.enable allow. The code is
// UNKNOWN_TOPIC_OR_PARTITION or INVALID_TOPIC_EXCEPTION on failure, and
// LEADER_NOT_AVAILABLE (with the topic) when this call created it.
func (h *Handler) topic(name string, autoCreate bool) (*cluster.Topic, int16) {
	if t := h.meta.Image().Topic(name); t != nil {
		return t, 0
	}
	if !autoCreate || !h.cfg.AutoCreateTopics {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	if internalTopic(name) {
		t, err := h.createInternalTopic(name)
		if err != nil {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
		return t, 0
	}
	if err := validTopicName(name); err != nil {
		return nil, kerr.InvalidTopicException.Code
	}
	t, err := h.createTopic(context.Background(), name, h.cfg.NumPartitions, -1, nil, nil)
	if errors.Is(err, cluster.ErrTopicExists) { // created concurrently
		t = h.meta.Image().Topic(name)
	} else if err != nil {
		h.logger.Error("auto-create topic", "topic", name, "err", err)
		return nil, errorCode(err)
	}
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	h.logger.Info("auto-created topic", "topic", name, "partitions", t.Partitions)
	// Kafka answers the Metadata request that creates a topic with
	// LEADER_NOT_AVAILABLE and no partitions; clients retry and see the
	// partitions in the next answer.
	return t, kerr.LeaderNotAvailable.Code
}

// errPartitionLimit: POLICY_VIOLATION, what managed Kafka services answer
// when a topic would exceed the broker's partition limit.
var errPartitionLimit = errors.New("kafka: partition limit")

// partitionCountLocked is how many partitions the topics of the current
// image have, internal ones included. Requires topicMu.
func (h *Handler) partitionCountLocked() int64 {
	var n int64
	for _, t := range h.meta.Image().Topics {
		n += int64(t.Partitions)
	}
	return n
}

// checkPartitionLimitLocked refuses adding n partitions past
// max.broker.partitions. Requires topicMu, so that two creations cannot
// both pass the check.
func (h *Handler) checkPartitionLimitLocked(n int32) error {
	if have := h.partitionCountLocked(); have+int64(n) > int64(h.cfg.MaxBrokerPartitions) {
		return fmt.Errorf("%w: the broker has %d partitions; %d more would exceed max.broker.partitions=%d", errPartitionLimit, have, n, h.cfg.MaxBrokerPartitions)
	}
	return nil
}

// checkPartitionLimit is checkPartitionLimitLocked for requests that only
// validate.
func (h *Handler) checkPartitionLimit(n int32) error {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	return h.checkPartitionLimitLocked(n)
}

// createTopic records the topic in the metadata log, then creates the
// partitions this node leads. A crash in between leaves a topic whose
// partitions are created on first use (partition). On a node that is not
// the active controller the creation is forwarded to it (Kafka's
// auto-topic creation sends CreateTopics to the controller too).
func (h *Handler) createTopic(ctx context.Context, name string, partitions int32, rf int16, assign [][]int32, configs map[string]string) (*cluster.Topic, error) {
	if _, err := broker.ParseTopicConfig(h.topicDefaults(), configs); err != nil {
		return nil, err
	}
	if t, ok, err := h.forwardCreateTopic(ctx, name, partitions, rf, configs); ok {
		return t, err
	}
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	if err := h.checkPartitionLimitLocked(partitions); err != nil {
		return nil, err
	}
	t, err := h.meta.CreateTopic(name, partitions, configs, h.ctrl.Place(rf, assign))
	if err != nil {
		return nil, err
	}
	// The config as of the image that holds the topic: a dynamic broker
	// config changed since is applied under topicMu, after this.
	tc, err := h.topicConfig(t)
	if err != nil {
		return nil, err
	}
	for i := int32(0); i < partitions; i++ {
		if t.PartitionStates[i].Leader != h.cfg.NodeID {
			continue
		}
		if _, err := h.createPartition(t, i, tc); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// forwardCreateTopic creates a topic through the active controller when
// this node is not it (ok true), as a CreateTopics request.
func (h *Handler) forwardCreateTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) (*cluster.Topic, bool, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(forwardTimeout / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: k, Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	r, ok := h.forward(ctx, req)
	if !ok {
		return nil, false, nil
	}
	resp := r.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 {
		return nil, true, fmt.Errorf("kafka: the controller answered %d topics for 1", len(resp.Topics))
	}
	st := resp.Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		if st.ErrorCode == kerr.TopicAlreadyExists.Code {
			return nil, true, cluster.ErrTopicExists
		}
		msg := ""
		if st.ErrorMessage != nil {
			msg = *st.ErrorMessage
		}
		return nil, true, fmt.Errorf("%w: %s", err, msg)
	}
	t := h.meta.Image().Topic(name)
	if t == nil {
		return nil, true, fmt.Errorf("%w: created through the controller but not in this node's metadata yet", kerr.LeaderNotAvailable)
	}
	return t, true, nil
}

// createPartition creates partition p of t and records the topic id in its
// partition.metadata file, as Kafka does.
func (h *Handler) createPartition(t *cluster.Topic, p int32, tc broker.TopicConfig) (*broker.Partition, error) {
	part, err := h.broker.CreatePartition(log.TopicPartition{Topic: t.Name, Partition: p}, tc.Log)
	if err != nil {
		return nil, err
	}
	return part, part.WriteMetadata(t.ID)
}

// partition returns a topic's partition that this node leads, creating
// its log if the metadata has it but the files do not exist yet, and
// making it the leader in the image's leader epoch if it is not yet. nil
// with a code when the partition is outside the topic or led elsewhere.
func (h *Handler) partition(t *cluster.Topic, p int32) (*broker.Partition, broker.TopicConfig, int16) {
	if p < 0 || p >= t.Partitions {
		return nil, broker.TopicConfig{}, kerr.UnknownTopicOrPartition.Code
	}
	st := t.PartitionStates[p]
	if st.Leader != h.cfg.NodeID {
		// Another node leads it, or none does (its broker is fenced):
		// the client refreshes its metadata and goes there.
		return nil, broker.TopicConfig{}, kerr.NotLeaderForPartition.Code
	}
	part, tc, code := h.replica(t, p)
	if code != 0 {
		return nil, tc, code
	}
	if !part.IsLeader() || st.LeaderEpoch > part.LeaderEpoch() {
		if err := h.lead(part, t, p, tc); err != nil {
			return nil, tc, errorCode(err)
		}
	}
	return part, tc, 0
}

// replica returns this node's replica of a topic's partition, creating its
// log if the metadata places a replica here but the files do not exist
// yet.
func (h *Handler) replica(t *cluster.Topic, p int32) (*broker.Partition, broker.TopicConfig, int16) {
	tc, err := h.topicConfig(t)
	if err != nil {
		return nil, tc, errorCode(err)
	}
	tp := log.TopicPartition{Topic: t.Name, Partition: p}
	if part := h.broker.Partition(tp); part != nil {
		// Partitions are found by name: make sure this one is t's. t
		// may come from an image older than a delete and re-create of
		// the name (the old topic is gone), or the directory may hold
		// another topic's records (INCONSISTENT_TOPIC_ID).
		if id, ok := part.TopicID(); ok && id != t.ID {
			if h.meta.Image().ByID[t.ID] == nil {
				return nil, tc, kerr.UnknownTopicOrPartition.Code
			}
			return nil, tc, kerr.InconsistentTopicID.Code
		}
		return part, tc, 0
	}
	// The files are missing: a crash between recording the topic and
	// creating them, or a delete since t was read from the image. Only the
	// first may create them: under topicMu the current image decides, so a
	// request racing DeleteTopics never brings the directory back.
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	cur := h.meta.Image().ByID[t.ID]
	if cur == nil || p >= cur.Partitions {
		return nil, tc, kerr.UnknownTopicOrPartition.Code
	}
	if !h.placedHere(cur.PartitionStates[p]) {
		return nil, tc, kerr.NotLeaderForPartition.Code
	}
	if part := h.broker.Partition(tp); part != nil { // created meanwhile
		return part, tc, 0
	}
	// The config as it stands now: AlterConfigs applies under the same
	// lock, so a partition created here cannot miss a change.
	if tc, err = h.topicConfig(cur); err != nil {
		return nil, tc, errorCode(err)
	}
	part, err := h.createPartition(cur, p, tc)
	if err != nil {
		return nil, tc, errorCode(err)
	}
	return part, tc, 0
}

// placedHere reports whether a replica of the partition is on this node
// (an image without brokers, in unit tests, places everything here).
func (h *Handler) placedHere(st *cluster.Partition) bool {
	return st.Leader == h.cfg.NodeID || slices.Contains(st.Replicas, h.cfg.NodeID)
}

// lead makes this node the leader of a partition the image says it leads,
// in the image's leader epoch, with its ISR (broker.Partition.MakeLeader),
// and has the replica manager check its ISR.
func (h *Handler) lead(part *broker.Partition, t *cluster.Topic, p int32, tc broker.TopicConfig) error {
	st := t.PartitionStates[p]
	isr := st.ISR
	if len(isr) == 0 {
		isr = []int32{h.cfg.NodeID} // an image built by hand in tests
	}
	replicas := st.Replicas
	if len(replicas) == 0 {
		replicas = []int32{h.cfg.NodeID}
	}
	err := part.MakeLeader(broker.LeaderState{
		Self: h.cfg.NodeID, LeaderEpoch: st.LeaderEpoch, PartitionEpoch: st.PartitionEpoch,
		Replicas: replicas, ISR: isr, MinISR: tc.MinInsyncReplicas,
	})
	if err == nil && h.cfg.Replicas != nil {
		h.cfg.Replicas.Lead(part, t.ID)
	}
	return err
}

// epochCode checks a request's CurrentLeaderEpoch (-1: not given) against
// the leader's, as Kafka's Partition does: an older one is
// FENCED_LEADER_EPOCH (the client's metadata is stale), a newer one
// UNKNOWN_LEADER_EPOCH (this node's is).
func epochCode(requested, current int32) int16 {
	switch {
	case requested < 0 || requested == current:
		return 0
	case requested < current:
		return kerr.FencedLeaderEpoch.Code
	}
	return kerr.UnknownLeaderEpoch.Code
}

// lookup resolves a topic (never auto-creating it) and one of its
// partitions, returning the error code a client gets when either is
// missing.
func (h *Handler) lookup(topic string, partition int32) (*broker.Partition, int16) {
	t, code := h.topic(topic, false)
	if code != 0 {
		return nil, code
	}
	p, _, code := h.partition(t, partition)
	return p, code
}
