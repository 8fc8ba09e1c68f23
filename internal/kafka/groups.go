package kafka

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

// offsetsTopicConfigs are the topic configs __consumer_offsets is created
// with: Kafka's offsets.topic.segment.bytes (100 MiB), and no time or size
// retention, since its records are the groups' state. Kafka compacts the
// topic; strata has no log compaction yet, so the log keeps every record
// and is replayed in full at start.
var offsetsTopicConfigs = map[string]string{
	"segment.bytes": "104857600",
	"retention.ms":  "-1",
}

// internalTopic reports whether clients may not write, create or delete
// the topic directly, as Kafka guards its internal topics.
func internalTopic(name string) bool { return name == group.Topic }

var errInternalTopic = errors.New("kafka: internal topic")

// offsetsStorage appends the coordinator's records to __consumer_offsets,
// creating the topic on first use as Kafka does.
type offsetsStorage struct {
	h    *Handler
	once sync.Mutex
}

func (s *offsetsStorage) Append(p int32, batch []byte) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	// The request was within socket.request.max.bytes; a large commit
	// must not fail on max.message.bytes.
	_, err = part.Append(batch, 1<<30, false)
	return err
}

// Roll and DeleteBefore let the coordinator compact the topic
// (group.Compactor).
func (s *offsetsStorage) Roll(p int32) (int64, error) {
	part, err := s.partition(p)
	if err != nil {
		return 0, err
	}
	if err := part.Log.Roll(); err != nil {
		return 0, err
	}
	return part.Log.LogEndOffset(), nil
}

func (s *offsetsStorage) DeleteBefore(p int32, offset int64) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	_, err = part.Log.DeleteRecordsBefore(offset)
	return err
}

func (s *offsetsStorage) partition(p int32) (*broker.Partition, error) {
	t, err := s.h.offsetsTopic()
	if err != nil {
		return nil, err
	}
	part, _, code := s.h.partition(t, p)
	if code != 0 {
		return nil, fmt.Errorf("%s-%d: %w", group.Topic, p, kerr.ErrorForCode(code))
	}
	return part, nil
}

// offsetsTopic returns __consumer_offsets, creating it with
// offsets.topic.num.partitions partitions if it does not exist.
//
// Only the topic's metadata is created here; each partition's log is
// created when a group first writes to it (partition creates a missing
// log). Creating all 50 logs up front took the first FindCoordinator one
// to several seconds, while a second client, which already found the
// topic in the metadata image, was answered at once: two consumers
// started together joined separate generations, and the later one could
// find every record already read (kafka-go's Readers, which join as soon
// as FindCoordinator answers, showed it).
func (h *Handler) offsetsTopic() (*cluster.Topic, error) {
	if t := h.meta.Image().Topic(group.Topic); t != nil {
		return t, nil
	}
	h.offsetsStore.once.Lock()
	defer h.offsetsStore.once.Unlock()
	// The topic lock orders this creation with the others, so their
	// max.broker.partitions checks count it. The limit itself does not
	// apply: without this topic no group works.
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	if t := h.meta.Image().Topic(group.Topic); t != nil {
		return t, nil
	}
	if _, err := broker.ParseTopicConfig(h.topicDefaults(), offsetsTopicConfigs); err != nil {
		return nil, fmt.Errorf("create %s: %w", group.Topic, err)
	}
	t, err := h.meta.CreateTopic(group.Topic, h.groups.Partitions(), offsetsTopicConfigs)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", group.Topic, err)
	}
	h.logger.Info("created internal topic", "topic", group.Topic, "partitions", t.Partitions)
	return t, nil
}

// startGroups creates the group coordinator and loads the groups stored
// in __consumer_offsets, if it exists.
func (h *Handler) startGroups(cfg group.Config) error {
	h.offsetsStore = &offsetsStorage{h: h}
	cfg.Storage = h.offsetsStore
	cfg.Logger = h.logger
	cfg.PartitionExists = func(topic string, partition int32) bool {
		t := h.meta.Image().Topic(topic)
		return t != nil && partition >= 0 && partition < t.Partitions
	}
	cfg.Topics = groupTopics{h}
	cfg.GroupConfigs = h.groupConfigs
	if t := h.meta.Image().Topic(group.Topic); t != nil {
		// The topic's partition count wins over the config: groups
		// were placed by it.
		cfg.Partitions = t.Partitions
	}
	h.groups = group.New(cfg)
	t := h.meta.Image().Topic(group.Topic)
	if t == nil {
		return nil
	}
	for p := int32(0); p < t.Partitions; p++ {
		part := h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p})
		if part == nil {
			continue
		}
		if err := h.groups.Load(p, part.Log); err != nil {
			h.groups.Close()
			return fmt.Errorf("load consumer groups: %w", err)
		}
	}
	return nil
}

// groupTopics resolves topics for KIP-848 assignments from the metadata
// image.
type groupTopics struct{ h *Handler }

func topicInfo(t *cluster.Topic) group.TopicInfo {
	return group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: t.Partitions}
}

func (g groupTopics) TopicByName(name string) (group.TopicInfo, bool) {
	t := g.h.meta.Image().Topic(name)
	if t == nil {
		return group.TopicInfo{}, false
	}
	return topicInfo(t), true
}

func (g groupTopics) TopicByID(id [16]byte) (group.TopicInfo, bool) {
	t := g.h.meta.Image().ByID[cluster.TopicID(id)]
	if t == nil {
		return group.TopicInfo{}, false
	}
	return topicInfo(t), true
}

func (g groupTopics) AllTopics() []group.TopicInfo {
	var out []group.TopicInfo
	for _, t := range g.h.meta.Image().Topics {
		out = append(out, topicInfo(t))
	}
	return out
}

// groupClient is the coordinator's view of who sent a request.
func groupClient(r *server.Request) group.Client {
	cl := group.Client{}
	if r.ClientID != nil {
		cl.ID = *r.ClientID
	}
	if r.Remote != nil {
		cl.Host = "/" + hostOf(r.Remote.String())
	}
	return cl
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
