package group

import "github.com/twmb/franz-go/pkg/kerr"

// Unload gives up partition p of __consumer_offsets (Kafka's
// onResignation, when another broker becomes its leader): every group of
// the partition is dropped from memory. Members waiting in JoinGroup or
// SyncGroup are answered NOT_COORDINATOR, so that they find the new
// coordinator; timers stop; later requests for the partition's groups get
// NOT_COORDINATOR until it is loaded again. Nothing is written: the log
// holds the groups' state for the next coordinator.
func (c *Coordinator) Unload(p int32) {
	if p < 0 || p >= c.cfg.Partitions {
		return
	}
	c.partMu[p].Lock()
	defer c.partMu[p].Unlock()
	c.mu.Lock()
	was := c.parts[p]
	c.parts[p] = partNotOwned
	c.txnGroups[p] = nil
	var gs []*group
	for id, g := range c.groups {
		if g.partition == p {
			gs = append(gs, g)
			delete(c.groups, id)
		}
	}
	c.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		g.unload()
		g.mu.Unlock()
	}
	if c.compactCh != nil {
		c.appended[p].Store(0)
		c.live[p].Store(0)
	}
	if was != partNotOwned {
		c.logger.Info("unloaded consumer groups", "partition", p, "groups", len(gs))
	}
}

// unload answers the group's waiting requests with NOT_COORDINATOR, stops
// its timers and makes it Dead (a request waiting for its lock looks the
// group up again and finds the partition gone), as Kafka's onGroupUnloaded.
// The caller holds g.mu.
func (g *group) unload() {
	for _, m := range g.members {
		g.answerJoin(m, kerr.NotCoordinator.Code)
		g.answerSync(m, kerr.NotCoordinator.Code)
	}
	g.stopTimers()
	g.transition(Dead)
}

// Loaded reports whether partition p of __consumer_offsets is loaded: its
// groups are served here.
func (c *Coordinator) Loaded(p int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p >= 0 && p < c.cfg.Partitions && c.parts[p] == partLoaded && !c.closed
}
