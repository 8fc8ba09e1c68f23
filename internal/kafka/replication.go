package kafka

import (
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
)

// applyRoles gives every partition with a replica on this node the role
// the image says (Kafka's ReplicaManager.applyDelta): the leader leads in
// the image's leader epoch with its ISR; a follower fetches from the
// leader; a replica whose partition has no leader waits, fetching from
// nobody. Replicas are created here, so that a follower has a log to
// fetch into before anyone produces. A node that is not a replica of a
// partition it has (a reassignment moved it away, or was cancelled before
// this replica joined) stops fetching it and deletes it, as Kafka's
// StopReplica with deletePartition (removeReplica).
//
// It runs on a cluster node only, once AdoptPartitions matched the disk
// with a caught-up image: before that an image still catching up would
// start fetchers from stale leaders.
func (h *Handler) applyRoles(im *cluster.Image) {
	h.rolesMu.Lock()
	defer h.rolesMu.Unlock()
	rm := h.cfg.Replicas
	if rm == nil || !h.rolesReady {
		return
	}
	self := h.cfg.NodeID
	for _, t := range im.ByID {
		for i, st := range t.PartitionStates {
			p := int32(i)
			tp := log.TopicPartition{Topic: t.Name, Partition: p}
			if !slices.Contains(st.Replicas, self) {
				if part := h.broker.Partition(tp); part != nil {
					rm.Stop(tp)
					h.removeReplica(part, t.ID)
				}
				continue
			}
			part, tc, code := h.replica(t, p)
			if code != 0 {
				h.logger.Warn("replica of a partition placed here is not available", "partition", tp, "err", kerr.ErrorForCode(code))
				continue
			}
			switch st.Leader {
			case self:
				if err := h.lead(part, t, p, tc); err != nil {
					h.logger.Error("become leader", "partition", tp, "leader_epoch", st.LeaderEpoch, "err", err)
				}
			case records.NoLeader:
				rm.Stop(tp)
				part.MakeFollower(st.LeaderEpoch)
			default:
				h.follow(part, t, st)
			}
		}
	}
}

// follow makes part fetch from the leader the image names.
func (h *Handler) follow(part *broker.Partition, t *cluster.Topic, st *cluster.Partition) {
	part.MakeFollower(st.LeaderEpoch)
	b := h.meta.Image().Broker(st.Leader)
	if b == nil {
		h.logger.Warn("leader of a followed partition is not registered", "partition", part.TP, "leader", st.Leader)
		return
	}
	ep, ok := endpoint(b, h.interBrokerListener())
	if !ok {
		h.logger.Warn("leader of a followed partition has no endpoint on the inter-broker listener", "partition", part.TP, "leader", st.Leader, "listener", h.interBrokerListener())
		return
	}
	addr := net.JoinHostPort(ep.host, strconv.Itoa(int(ep.port)))
	if err := h.cfg.Replicas.Follow(part, t.ID, st.Leader, addr, st.LeaderEpoch); err != nil {
		h.logger.Error("follow partition", "partition", part.TP, "leader", st.Leader, "err", err)
	}
}

// proposeISR sends an ISR change a led partition proposed; on a single
// node there is no controller to send it to, and none is ever proposed.
func (h *Handler) proposeISR(p *broker.Partition, topicID cluster.TopicID, isr []int32) {
	if h.cfg.Replicas == nil {
		p.ISRChangeFailed()
		return
	}
	h.cfg.Replicas.ProposeISR(p, topicID, isr)
}

// removeReplica deletes part, a partition of topic id that the image no
// longer places on this node. Only the latest image decides, under
// topicMu as every partition creation and deletion: it must still have
// the topic with the partition, without this node among its replicas,
// and part's partition.metadata must name the same topic id (a directory
// without one, or of another topic of the name, is left alone). The image
// is never behind here: applyRoles acts only once AdoptPartitions matched
// the disk with an image that holds the log past this node's
// registration, and images only move forward after that.
func (h *Handler) removeReplica(part *broker.Partition, id cluster.TopicID) {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	tp := part.TP
	im := h.meta.Image()
	t := im.ByID[id]
	if t == nil || t.Name != tp.Topic || tp.Partition >= int32(len(t.PartitionStates)) || t.PartitionStates[tp.Partition] == nil {
		return // a deleted topic's partitions go with removeDeletedTopics
	}
	if slices.Contains(t.PartitionStates[tp.Partition].Replicas, h.cfg.NodeID) {
		return // placed here again since
	}
	if pid, ok := part.TopicID(); !ok || pid != id || h.broker.Partition(tp) != part {
		return
	}
	if err := h.broker.DeletePartition(tp); err != nil {
		h.logger.Error("delete partition moved off this node", "partition", tp, "err", err)
		return
	}
	h.logger.Info("deleted partition moved off this node", "partition", tp, "replicas", t.PartitionStates[tp.Partition].Replicas, "metadata_offset", im.EndOffset)
}
