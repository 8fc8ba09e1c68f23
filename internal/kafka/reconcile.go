package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
)

// watchImage applies every new metadata image to this node, whichever node
// made the change (Kafka's BrokerMetadataPublisher and
// ReplicaManager.applyDelta): the partitions of deleted topics are
// removed, the group coordinator follows the leadership of
// __consumer_offsets' partitions, and dynamic configs reach the
// partitions. It runs until Stop.
//
// Partitions themselves are created when first used (partition), on the
// node that leads them, and take a new leader epoch from the image then;
// a node never deletes a partition because its image lacks it, only when
// it sees the topic's removal (a RemoveTopicRecord) go by.
func (h *Handler) watchImage() {
	defer close(h.watchDone)
	changed := h.meta.Changed()
	prev := h.meta.Image()
	h.applyImage(nil, prev)
	for {
		select {
		case <-h.stopping:
			return
		case <-changed:
		}
		changed = h.meta.Changed()
		cur := h.meta.Image()
		h.applyImage(prev, cur)
		prev = cur
	}
}

// applyImage acts on the differences between old (nil at start) and cur.
func (h *Handler) applyImage(old, cur *cluster.Image) {
	if old != nil {
		h.removeDeletedTopics(old, cur)
		h.applyImageConfigs(old, cur)
	}
	h.applyRoles(cur)
	h.followCoordinators()
}

// followCoordinators makes this node the group and transaction
// coordinator of the partitions of __consumer_offsets and
// __transaction_state it leads in the newest image, and no longer of the
// others, once the image is current (coordsReady). Before that, a
// restarting node's image replays the metadata log's history, and
// following it loaded coordinators at every leader epoch this node once
// held, each able to act on stale state (abort a timed-out transaction,
// resume markers) with a past coordinator epoch; Kafka's broker likewise
// publishes its metadata only once it has caught up. The image is read
// under coordsMu, so that of two racing calls the later one acts on the
// later image.
func (h *Handler) followCoordinators() {
	h.coordsMu.Lock()
	defer h.coordsMu.Unlock()
	if !h.coordsReady {
		return
	}
	im := h.meta.Image()
	h.followOffsetsLeadership(im)
	h.followTxnLeadership(im)
}

// removeDeletedTopics deletes the local partitions of topics in old that
// cur no longer has (by id: a topic deleted and created again under its
// name is a new topic). On the node that ran the delete they are gone
// already.
func (h *Handler) removeDeletedTopics(old, cur *cluster.Image) {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	for id, t := range old.ByID {
		if cur.ByID[id] != nil || internalTopic(t.Name) {
			continue
		}
		for p := int32(0); p < t.Partitions; p++ {
			tp := log.TopicPartition{Topic: t.Name, Partition: p}
			part := h.broker.Partition(tp)
			if part == nil {
				continue
			}
			if pid, ok := part.TopicID(); ok && pid != t.ID {
				continue // another topic's files under the name
			}
			if h.cfg.Replicas != nil {
				h.cfg.Replicas.Stop(tp)
			}
			if err := h.broker.DeletePartition(tp); err != nil {
				h.logger.Error("delete partition of a deleted topic", "partition", tp, "err", err)
				continue
			}
			h.logger.Info("deleted partition of a deleted topic", "partition", tp, "metadata_offset", cur.EndOffset)
		}
	}
}

// followOffsetsLeadership loads the groups of the __consumer_offsets
// partitions this node has come to lead and drops those of the partitions
// it no longer leads.
func (h *Handler) followOffsetsLeadership(im *cluster.Image) {
	t := im.Topic(group.Topic)
	if t == nil {
		return
	}
	for p, st := range t.PartitionStates {
		lead := st.Leader == h.cfg.NodeID
		if lead == h.groups.Loaded(int32(p)) {
			continue
		}
		if err := h.setOffsetsLeadership(int32(p), lead); err != nil {
			if lead && errors.Is(err, kerr.NotLeaderForPartition) && h.meta.Image() != im {
				// setOffsetsLeadership reads the newest image, and the
				// leadership moved on since im (a node stopping hands
				// its leaderships over while this one applies them):
				// the next applyImage acts on that image, nothing is lost.
				h.logger.Info("__consumer_offsets leadership moved on before its groups were loaded", "partition", p, "err", err)
				continue
			}
			h.logger.Error("follow __consumer_offsets leadership", "partition", p, "leader", lead, "err", err)
		}
	}
}
