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
// partition it has (moved away) stops fetching it; its files stay.
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
				if h.broker.Partition(tp) != nil {
					rm.Stop(tp)
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
	ep, ok := endpoint(b)
	if !ok {
		h.logger.Warn("leader of a followed partition has no endpoint", "partition", part.TP, "leader", st.Leader, "listener", listenerName)
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
