package kafka

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
)

// KIP-392, fetch from the closest replica. Two halves, as in Kafka:
//
//   - The leader, with replica.selector.class set to Kafka's
//     RackAwareReplicaSelector, answers a consumer's Fetch (v11+) that
//     names its rack (client.rack) with a PreferredReadReplica and no
//     records when the leader is not in that rack and an in-sync replica
//     is (preferredReadReplica). The client fetches from that replica
//     from then on, and goes back to the leader on errors and every
//     metadata.max.age.ms or so (the Java client; franz-go's
//     RecheckPreferredReplicaInterval).
//   - A follower serves a consumer's Fetch (v11+) of a partition it
//     follows, whatever the selector, up to its high watermark
//     (followerRead), as Kafka's ReplicaManager reads with
//     fetchOnlyFromLeader false for every consumer that sent client
//     metadata (v11+). An older consumer gets NOT_LEADER_OR_FOLLOWER.

// preferredReadReplica is the replica a consumer in clientRack fetching
// partition part (led here) at offset should read from instead of this
// leader, -1 for this leader. Kafka's RackAwareReplicaSelector over
// ReplicaManager.findPreferredReadReplica: no rack, or the leader in the
// client's rack, is the leader; else, of the ISR members in the rack that
// are live (registered, unfenced, with a client endpoint) and whose log
// end offset as of their last fetch reaches offset, the most caught up
// (highest log end offset, then the most recent caught-up time); none is
// the leader. Kafka leaves ties to a hash set's order: the lowest id wins
// here, so that the answer is deterministic.
func (h *Handler) preferredReadReplica(im *cluster.Image, part *broker.Partition, offset int64, clientRack, listener string) int32 {
	if !h.cfg.RackAwareReplicaSelector || clientRack == "" {
		return -1
	}
	if self := im.Broker(h.cfg.NodeID); self != nil && self.Rack != nil && *self.Rack == clientRack {
		return -1
	}
	var best *broker.ReadReplica
	rs := part.ReadReplicas(offset)
	for i := range rs {
		r := &rs[i]
		b := im.Broker(r.ID)
		if b == nil || b.Fenced || b.Rack == nil || *b.Rack != clientRack {
			continue
		}
		if _, ok := endpoint(b, listener); !ok {
			continue
		}
		if best == nil || betterReadReplica(r, best) {
			best = r
		}
	}
	if best == nil {
		return -1
	}
	return best.ID
}

// betterReadReplica orders candidates as Kafka's ReplicaView.comparator
// (log end offset, then the most recent caught-up time), ties going to the
// lower id.
func betterReadReplica(a, b *broker.ReadReplica) bool {
	switch {
	case a.LogEndOffset != b.LogEndOffset:
		return a.LogEndOffset > b.LogEndOffset
	case !a.LastCaughtUp.Equal(b.LastCaughtUp):
		return a.LastCaughtUp.After(b.LastCaughtUp)
	}
	return a.ID < b.ID
}

// followerRead returns this node's replica of partition p of t for a
// consumer's read when the image places a replica here but another node
// (or none) leads it, and the replica follows: Kafka's
// Partition.localLogWithEpochOrThrow with requireLeader false. The
// consumer's CurrentLeaderEpoch must be the leader epoch the follower
// knows (FENCED_LEADER_EPOCH older, UNKNOWN_LEADER_EPOCH newer). A node
// with no replica of the partition, or one that does not follow it yet
// (its role from the image not applied), answers NOT_LEADER_OR_FOLLOWER.
func (h *Handler) followerRead(t *cluster.Topic, p int32, currentLeaderEpoch int32) (*broker.Partition, int16) {
	if p < 0 || p >= t.Partitions {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	st := t.PartitionStates[p]
	if st.Leader == h.cfg.NodeID || !slices.Contains(st.Replicas, h.cfg.NodeID) {
		return nil, kerr.NotLeaderForPartition.Code
	}
	part, _, code := h.replica(t, p)
	if code != 0 {
		return nil, code
	}
	epoch, _, ok := part.FollowerView()
	if !ok {
		return nil, kerr.NotLeaderForPartition.Code
	}
	if code := epochCode(currentLeaderEpoch, epoch); code != 0 {
		return nil, code
	}
	return part, 0
}

// followerReadCode is the error of a consumer's read at offset from a
// partition followed here, 0 to read it up to the high watermark. The
// partition may have come to lead since the fetch began (a long-poll):
// NOT_LEADER_OR_FOLLOWER, and the client asks its leader again. KIP-392's
// out-of-range cases on a follower: an offset above the log end offset
// that the leader's high watermark (as of the last fetch response) says is
// committed is one this follower lacks yet, OFFSET_NOT_AVAILABLE (the
// client retries, or goes back to the leader); beyond that, or below the
// log start offset, OFFSET_OUT_OF_RANGE, as Kafka's log read answers (the
// client goes back to the leader to check). An offset between the high
// watermark and the log end offset reads nothing, as on a leader, and a
// long-poll waits for the high watermark to move.
func followerReadCode(part *broker.Partition, offset int64) int16 {
	_, leaderHW, ok := part.FollowerView()
	if !ok {
		return kerr.NotLeaderForPartition.Code
	}
	if leo := part.Log.LogEndOffset(); offset > leo && offset <= leaderHW {
		return kerr.OffsetNotAvailable.Code
	}
	return 0
}
