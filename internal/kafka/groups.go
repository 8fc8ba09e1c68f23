package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
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
func internalTopic(name string) bool { return name == group.Topic || name == txn.Topic }

var (
	errInternalTopic  = errors.New("kafka: internal topic")
	errNoOffsetsTopic = errors.New("kafka: " + group.Topic + " does not exist")
)

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
	res, err := part.Append(batch, 1<<30, false)
	if errors.Is(err, broker.ErrInvalidProducerEpoch) {
		// A TxnOffsetCommit of a fenced producer.
		return fmt.Errorf("%w: %w", err, kerr.InvalidProducerEpoch)
	}
	if err != nil {
		return err
	}
	// A commit is acknowledged once every in-sync replica has it (Kafka
	// appends with acks=-1), within offsets.commit.timeout.ms; a failure
	// is COORDINATOR_NOT_AVAILABLE and the client commits again.
	if w, ok := part.WaitFor(res.NextOffset); ok {
		return part.WaitReplicated(w, time.Now().Add(offsetsCommitTimeout))
	}
	return nil
}

// offsetsCommitTimeout is offsets.commit.timeout.ms's default.
const offsetsCommitTimeout = 5 * time.Second

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

// partition returns partition p of __consumer_offsets, creating its log
// on first use. The topic exists: the coordinator writes only to the
// partitions it loaded, and it loads them from the topic. (Creating the
// topic here, under a group's lock, would take the topic lock and then
// the coordinator's partition locks in the wrong order.)
func (s *offsetsStorage) partition(p int32) (*broker.Partition, error) {
	t := s.h.meta.Image().Topic(group.Topic)
	if t == nil {
		return nil, errNoOffsetsTopic
	}
	part, _, code := s.h.partition(t, p)
	if code != 0 {
		return nil, fmt.Errorf("%s-%d: %w", group.Topic, p, kerr.ErrorForCode(code))
	}
	return part, nil
}

// offsetsTopic returns __consumer_offsets, creating it with
// offsets.topic.num.partitions partitions if it does not exist; the
// coordinator then loads the new partitions this node leads (all of them
// on a single node), as Kafka's coordinator is elected for a partition
// when it is created.
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
	t, created, err := h.createOffsetsTopic()
	if err != nil || !created {
		return t, err
	}
	// After the topic lock is released: compaction takes a partition's
	// lock and then (creating a log) the topic lock.
	if err := h.loadLedOffsetsPartitions(t); err != nil {
		return nil, err
	}
	return t, nil
}

func (h *Handler) createOffsetsTopic() (*cluster.Topic, bool, error) {
	// On a node that is not the active controller, through it (outside
	// the topic lock: the answer waits for this node's image).
	// The controller places offsets.topic.replication.factor replicas,
	// as many as there are usable brokers if fewer (PlaceUpTo).
	rf := h.offsetsReplicationFactor()
	if t, ok, err := h.forwardCreateTopic(context.Background(), group.Topic, h.groups.Partitions(), rf, offsetsTopicConfigs); ok {
		if errors.Is(err, cluster.ErrTopicExists) {
			t, err = h.meta.Image().Topic(group.Topic), nil
		}
		if err != nil || t == nil {
			return nil, false, fmt.Errorf("create %s: %w", group.Topic, cmp.Or(err, cluster.ErrUnknownTopic))
		}
		return t, true, nil
	}
	// The topic lock orders this creation with the others, so their
	// max.broker.partitions checks count it. The limit itself does not
	// apply: without this topic no group works.
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	if t := h.meta.Image().Topic(group.Topic); t != nil {
		return t, false, nil
	}
	if _, err := broker.ParseTopicConfig(h.topicDefaults(), offsetsTopicConfigs); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", group.Topic, err)
	}
	t, err := h.meta.CreateTopic(group.Topic, h.groups.Partitions(), offsetsTopicConfigs, h.ctrl.PlaceUpTo(rf))
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", group.Topic, err)
	}
	h.logger.Info("created internal topic", "topic", group.Topic, "partitions", t.Partitions, "replication_factor", replicationFactor(t))
	return t, true, nil
}

// offsetsReplicationFactor is offsets.topic.replication.factor (3) as this
// node's static config sets it: the controller caps it at the usable
// brokers, and a single node keeps one replica.
func (h *Handler) offsetsReplicationFactor() int16 {
	for _, p := range h.cfg.BrokerConfigs {
		if p.Name == "offsets.topic.replication.factor" && p.Value != nil {
			if n, err := strconv.ParseInt(*p.Value, 10, 16); err == nil && n > 0 {
				return int16(n)
			}
		}
	}
	return 3
}

// startGroups creates the group coordinator and, in local mode, loads the
// partitions of __consumer_offsets, if it exists, that this node leads in
// the image (in quorum mode the image is current only at AdoptPartitions,
// which loads them).
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
	if t == nil || !h.coordsReady {
		return nil // quorum mode: AdoptPartitions loads them
	}
	if err := h.loadLedOffsetsPartitions(t); err != nil {
		h.groups.Close()
		return err
	}
	return nil
}

// offsetsLeader is the leader of partition p of __consumer_offsets in t,
// -1 for none.
func offsetsLeader(t *cluster.Topic, p int32) int32 {
	if p < 0 || int(p) >= len(t.PartitionStates) || t.PartitionStates[p] == nil {
		return -1
	}
	return t.PartitionStates[p].Leader
}

// loadLedOffsetsPartitions loads the partitions of __consumer_offsets (t)
// whose leader is this node. A partition without a log on disk is loaded
// empty, without creating its log: nothing was ever written to it, and
// creating 50 logs would hold up the start (or the first FindCoordinator)
// for nothing; the first write creates the log.
func (h *Handler) loadLedOffsetsPartitions(t *cluster.Topic) error {
	for p := int32(0); p < t.Partitions && p < h.groups.Partitions(); p++ {
		if offsetsLeader(t, p) != h.cfg.NodeID {
			continue
		}
		var l *log.Log
		if part := h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p}); part != nil {
			l = part.Log
		}
		if err := h.groups.Load(p, l); err != nil {
			return fmt.Errorf("load consumer groups of %s-%d: %w", t.Name, p, err)
		}
	}
	return nil
}

// setOffsetsLeadership makes this node the group coordinator of partition
// p of __consumer_offsets (leader) or stops it being that (Kafka's
// GroupCoordinator onElection and onResignation), when the image makes it
// the partition's leader or another node. Becoming leader replays the
// partition's log (created if missing) into the coordinator; requests for
// its groups get COORDINATOR_LOAD_IN_PROGRESS meanwhile. Resigning drops
// the groups from memory: their members get NOT_COORDINATOR and find the
// new coordinator. Either is a no-op when already done. Calls for one
// partition take effect in the order they are made; a load can take a
// while for a large partition, so the caller may run it on a goroutine
// of its own.
func (h *Handler) setOffsetsLeadership(p int32, leader bool) error {
	if !leader {
		h.groups.Unload(p)
		return nil
	}
	if h.groups.Loaded(p) {
		return nil
	}
	t := h.meta.Image().Topic(group.Topic)
	if t == nil {
		return errNoOffsetsTopic
	}
	part, _, code := h.partition(t, p)
	if code != 0 {
		return fmt.Errorf("load consumer groups of %s-%d: %w", group.Topic, p, kerr.ErrorForCode(code))
	}
	if err := h.groups.Load(p, part.Log); err != nil {
		return fmt.Errorf("load consumer groups of %s-%d: %w", group.Topic, p, err)
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
