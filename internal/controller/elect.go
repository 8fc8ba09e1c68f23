package controller

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// FenceChanges returns the partition changes that go with fencing
// brokerID (Kafka's ReplicationControlManager.handleBrokerFenced):
// brokerID leaves every ISR it is in, unless it is the last member, and
// each partition it led gets the first replica, in replica order, that
// stays in the ISR and is usable, or no leader (-1) when there is none.
// A last ISR member stays in the ISR of its leaderless partition, so that
// it can lead again when it comes back (UnfenceChanges) without an unclean
// election. brokerID counts as unusable whatever the image says, since the
// fence record goes with these changes. The records are
// *records.PartitionChange, sorted by topic name and partition; none when
// nothing changes.
func FenceChanges(im *cluster.Image, brokerID int32) []records.Record {
	return removeFromISR(im, brokerID)
}

// ControlledShutdownChanges returns the partition changes that go with a
// controlled shutdown of brokerID (Kafka's
// handleBrokerInControlledShutdown): the same as FenceChanges, so that the
// broker leads nothing and holds back no high watermark by the time it
// stops.
func ControlledShutdownChanges(im *cluster.Image, brokerID int32) []records.Record {
	return removeFromISR(im, brokerID)
}

// UnfenceChanges returns the partition changes that go with unfencing
// brokerID (Kafka's handleBrokerUnfenced): each leaderless partition
// whose ISR holds brokerID gets a leader again, the first replica of the
// ISR that is usable, brokerID counting as usable.
func UnfenceChanges(im *cluster.Image, brokerID int32) []records.Record {
	isUsable := func(id int32) bool { return id == brokerID || usable(im.Brokers[id]) }
	return eachPartition(im, func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange {
		if p.Leader != records.NoLeader || !slices.Contains(p.ISR, brokerID) {
			return nil
		}
		leader := electFrom(p.Replicas, p.ISR, isUsable)
		if leader == records.NoLeader {
			return nil
		}
		rec := records.NewPartitionChange(records.UUID(t.ID), i)
		rec.Leader = leader
		return rec
	})
}

// PreferredLeader returns the change that makes a partition's preferred
// replica (its first) the leader, as Kafka's ElectLeaders with election
// type PREFERRED: ELECTION_NOT_NEEDED when it leads already,
// PREFERRED_LEADER_NOT_AVAILABLE when it is not in the ISR or not usable,
// UNKNOWN_TOPIC_OR_PARTITION for a partition the image lacks. rec is
// non-nil only when errCode is 0.
func PreferredLeader(im *cluster.Image, topicID cluster.TopicID, partition int32) (rec *records.PartitionChange, errCode int16) {
	t := im.ByID[topicID]
	if t == nil || partition < 0 || partition >= int32(len(t.PartitionStates)) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	p := t.PartitionStates[partition]
	if len(p.Replicas) == 0 {
		return nil, kerr.PreferredLeaderNotAvailable.Code
	}
	preferred := p.Replicas[0]
	if p.Leader == preferred {
		return nil, kerr.ElectionNotNeeded.Code
	}
	if !slices.Contains(p.ISR, preferred) || !usable(im.Brokers[preferred]) {
		return nil, kerr.PreferredLeaderNotAvailable.Code
	}
	rec = records.NewPartitionChange(records.UUID(t.ID), partition)
	rec.Leader = preferred
	return rec, 0
}

// UncleanLeader returns the change that gives a leaderless partition a
// leader, as Kafka's ElectLeaders with election type UNCLEAN
// (PartitionChangeBuilder with Election.UNCLEAN): ELECTION_NOT_NEEDED
// when it has a leader; else the first usable replica in the ISR, a clean
// election; else the first usable replica outside it, an unclean one,
// which becomes the whole ISR with LeaderRecoveryState RECOVERING (1,
// KIP-704), records it may lack being lost; else
// ELIGIBLE_LEADERS_NOT_AVAILABLE. UNKNOWN_TOPIC_OR_PARTITION for a
// partition the image lacks. rec is non-nil only when errCode is 0.
//
// Nothing sets the recovery state back to RECOVERED yet: Kafka's leader
// does that with AlterPartition once it has recovered, which comes with
// replication.
func UncleanLeader(im *cluster.Image, topicID cluster.TopicID, partition int32) (rec *records.PartitionChange, errCode int16) {
	t := im.ByID[topicID]
	if t == nil || partition < 0 || partition >= int32(len(t.PartitionStates)) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	p := t.PartitionStates[partition]
	if p.Leader != records.NoLeader {
		return nil, kerr.ElectionNotNeeded.Code
	}
	isUsable := func(id int32) bool { return usable(im.Brokers[id]) }
	rec = records.NewPartitionChange(records.UUID(t.ID), partition)
	if leader := electFrom(p.Replicas, p.ISR, isUsable); leader != records.NoLeader {
		rec.Leader = leader
		return rec, 0
	}
	for _, id := range p.Replicas {
		if isUsable(id) {
			rec.Leader = id
			rec.Isr = []int32{id}
			rec.LeaderRecoveryState = 1
			return rec, 0
		}
	}
	return nil, kerr.EligibleLeadersNotAvailable.Code
}

// removeFromISR is Kafka's generateLeaderAndIsrUpdates with brokerToRemove
// set: the ISR without brokerID, unless that leaves it empty, and a new
// leader when the current one is brokerID.
func removeFromISR(im *cluster.Image, brokerID int32) []records.Record {
	isUsable := func(id int32) bool { return id != brokerID && usable(im.Brokers[id]) }
	return eachPartition(im, func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange {
		inISR := slices.Contains(p.ISR, brokerID)
		if !inISR && p.Leader != brokerID {
			return nil
		}
		rec := records.NewPartitionChange(records.UUID(t.ID), i)
		isr := p.ISR
		if inISR && len(p.ISR) > 1 {
			isr = slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return id == brokerID })
			rec.Isr = isr
		}
		// Kafka's PartitionChangeBuilder tries an election whenever the
		// leader is not in the new ISR (or there is none): a leaderless
		// partition whose ISR still has a usable member gets it back here.
		if p.Leader == brokerID || (p.Leader == records.NoLeader && rec.Isr != nil) {
			if leader := electFrom(p.Replicas, isr, isUsable); leader != p.Leader {
				rec.Leader = leader
			}
		}
		if rec.Isr == nil && rec.Leader == records.LeaderUnchanged {
			return nil
		}
		return rec
	})
}

// electFrom returns the first of replicas that is in isr and usable, or
// NoLeader: Kafka's PartitionChangeBuilder.electLeader without unclean
// election, which only an ElectLeaders request asks for (UncleanLeader).
func electFrom(replicas, isr []int32, isUsable func(int32) bool) int32 {
	for _, id := range replicas {
		if slices.Contains(isr, id) && isUsable(id) {
			return id
		}
	}
	return records.NoLeader
}

// eachPartition calls fn for every partition, topics by name and
// partitions by id, and returns the changes fn made.
func eachPartition(im *cluster.Image, fn func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange) []records.Record {
	var out []records.Record
	for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
		t := im.Topics[name]
		for i, p := range t.PartitionStates {
			if p == nil {
				continue
			}
			if rec := fn(t, int32(i), p); rec != nil {
				out = append(out, rec)
			}
		}
	}
	return out
}
