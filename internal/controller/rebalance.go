package controller

import (
	"maps"
	"slices"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// RebalanceChanges returns the preferred leader elections that
// auto.leader.rebalance.enable makes (Kafka's
// checkAndTriggerAutoLeaderRebalance): for each broker that is the
// preferred replica (the first) of some partitions, its imbalance is the
// share of those partitions it does not lead; when that share is above
// percent/100 (leader.imbalance.per.broker.percentage), each of them whose
// preferred replica is in the ISR and usable is moved back to it
// (PreferredLeader). Leaderless partitions are left to elections
// (UnfenceChanges, UncleanChanges). KRaft's controller moves every
// imbalanced partition whatever the share: percent 0 does the same.
func RebalanceChanges(im *cluster.Image, percent int) []records.Record {
	type share struct{ preferred, off []*partitionRef }
	byBroker := map[int32]*share{}
	for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
		t := im.Topics[name]
		for i, p := range t.PartitionStates {
			if p == nil || len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			s := byBroker[pref]
			if s == nil {
				s = &share{}
				byBroker[pref] = s
			}
			ref := &partitionRef{t: t, i: int32(i)}
			s.preferred = append(s.preferred, ref)
			if p.Leader != pref && p.Leader != records.NoLeader {
				s.off = append(s.off, ref)
			}
		}
	}
	var out []records.Record
	for _, id := range slices.Sorted(maps.Keys(byBroker)) {
		s := byBroker[id]
		if len(s.off) == 0 || len(s.off)*100 <= percent*len(s.preferred) {
			continue
		}
		for _, ref := range s.off {
			if rec, code := PreferredLeader(im, ref.t.ID, ref.i); code == 0 {
				out = append(out, rec)
			}
		}
	}
	slices.SortFunc(out, func(a, b records.Record) int {
		pa, pb := a.(*records.PartitionChange), b.(*records.PartitionChange)
		if c := compareNames(im, pa, pb); c != 0 {
			return c
		}
		return int(pa.PartitionID - pb.PartitionID)
	})
	return out
}

type partitionRef struct {
	t *cluster.Topic
	i int32
}

func compareNames(im *cluster.Image, a, b *records.PartitionChange) int {
	na, nb := im.ByID[cluster.TopicID(a.TopicID)].Name, im.ByID[cluster.TopicID(b.TopicID)].Name
	switch {
	case na < nb:
		return -1
	case na > nb:
		return 1
	}
	return 0
}

// BalanceLeaders runs, on the active controller, the periodic check of
// leader.imbalance.check.interval.seconds once: unclean elections for the
// leaderless partitions of topics that allow them (UncleanChanges), and
// with auto.leader.rebalance.enable the preferred leader elections of
// RebalanceChanges, as one metadata change. It does nothing on another
// node, and returns the number of partitions changed.
func (c *Controller) BalanceLeaders() (int, error) {
	if c.cfg.Store.ControllerID() != c.cfg.NodeID {
		return 0, nil
	}
	n := 0
	_, err := c.cfg.Store.Propose(func(im *cluster.Image) ([]records.Record, error) {
		recs := UncleanChanges(im, c.Unclean(im))
		if c.cfg.AutoLeaderRebalance {
			recs = append(recs, RebalanceChanges(im, c.cfg.LeaderImbalancePerBrokerPercentage)...)
		}
		n = len(recs)
		return recs, nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		c.logger.Info("leader elections: preferred replicas back in the lead, or unclean elections", "partitions", n)
	}
	return n, nil
}
