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
//
// A partition of a topic for which unclean says true
// (unclean.leader.election.enable) that would be left leaderless gets its
// first usable replica outside the ISR instead, as UncleanLeader elects
// (Kafka's generateLeaderAndIsrUpdates with Election.UNCLEAN). nil
// unclean is false for every topic.
func FenceChanges(im *cluster.Image, brokerID int32, unclean Unclean) []records.Record {
	return removeFromISR(im, brokerID, unclean)
}

// Unclean says whether a topic may elect a leader outside its ISR
// (unclean.leader.election.enable, Controller.Unclean); nil means never.
type Unclean func(t *cluster.Topic) bool

// ControlledShutdownChanges returns the partition changes that go with a
// controlled shutdown of brokerID (Kafka's
// handleBrokerInControlledShutdown): the same as FenceChanges, so that the
// broker leads nothing and holds back no high watermark by the time it
// stops.
func ControlledShutdownChanges(im *cluster.Image, brokerID int32, unclean Unclean) []records.Record {
	return removeFromISR(im, brokerID, unclean)
}

// UnfenceChanges returns the partition changes that go with unfencing
// brokerID (Kafka's handleBrokerUnfenced): each leaderless partition
// whose ISR holds brokerID gets a leader again, the first replica of the
// ISR that is usable, brokerID counting as usable. A leaderless partition
// of a topic for which unclean says true, whose ISR has no usable member
// but whose replicas have one (brokerID perhaps), gets an unclean leader
// (UncleanChanges).
func UnfenceChanges(im *cluster.Image, brokerID int32, unclean Unclean) []records.Record {
	isUsable := func(id int32) bool { return id == brokerID || usable(im.Brokers[id]) }
	return eachPartition(im, func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange {
		if p.Leader != records.NoLeader {
			return nil
		}
		if slices.Contains(p.ISR, brokerID) {
			if leader := electFrom(p.Replicas, p.ISR, isUsable); leader != records.NoLeader {
				rec := records.NewPartitionChange(records.UUID(t.ID), i)
				rec.Leader = leader
				return rec
			}
		}
		if unclean != nil && unclean(t) {
			return electUnclean(t, i, p, p.ISR, isUsable)
		}
		return nil
	})
}

// UncleanChanges returns the changes that give each leaderless partition
// of a topic for which unclean says true a leader: a usable ISR member if
// there is one (a clean election), else the first usable replica, which
// becomes the whole ISR with LeaderRecoveryState RECOVERING, as
// UncleanLeader. The active controller runs it periodically (Kafka's
// periodic unclean election of leaderless partitions), which catches
// partitions left leaderless before their topic allowed it.
func UncleanChanges(im *cluster.Image, unclean Unclean) []records.Record {
	if unclean == nil {
		return nil
	}
	isUsable := func(id int32) bool { return usable(im.Brokers[id]) }
	return eachPartition(im, func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange {
		if p.Leader != records.NoLeader || !unclean(t) {
			return nil
		}
		return electUnclean(t, i, p, p.ISR, isUsable)
	})
}

// electUnclean is Kafka's PartitionChangeBuilder.electLeader with
// Election.UNCLEAN for partition i of t with ISR isr: the first usable ISR
// member, else the first usable replica, alone in the ISR and RECOVERING
// (KIP-704); nil when no replica is usable.
func electUnclean(t *cluster.Topic, i int32, p *cluster.Partition, isr []int32, isUsable func(int32) bool) *records.PartitionChange {
	rec := records.NewPartitionChange(records.UUID(t.ID), i)
	if leader := electFrom(p.Replicas, isr, isUsable); leader != records.NoLeader {
		rec.Leader = leader
		if !slices.Equal(isr, p.ISR) {
			rec.Isr = isr
		}
		return rec
	}
	for _, id := range p.Replicas {
		if isUsable(id) {
			rec.Leader = id
			rec.Isr = []int32{id}
			rec.LeaderRecoveryState = 1
			return rec
		}
	}
	return nil
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
// The leader sets the recovery state back to RECOVERED with
// AlterPartition once it has recovered (AlterPartitionChanges).
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
	if rec = electUnclean(t, partition, p, p.ISR, isUsable); rec != nil {
		return rec, 0
	}
	return nil, kerr.EligibleLeadersNotAvailable.Code
}

// removeFromISR is Kafka's generateLeaderAndIsrUpdates with brokerToRemove
// set: the ISR without brokerID, unless that leaves it empty, and a new
// leader when the current one is brokerID.
func removeFromISR(im *cluster.Image, brokerID int32, unclean Unclean) []records.Record {
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
			leader := electFrom(p.Replicas, isr, isUsable)
			if leader == records.NoLeader && unclean != nil && unclean(t) {
				if u := electUnclean(t, i, p, isr, isUsable); u != nil {
					return u
				}
			}
			if leader != p.Leader {
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
