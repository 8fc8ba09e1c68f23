package group

// CommittedOffset is one committed offset, for metrics and tools.
type CommittedOffset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// EachOffset calls fn with every committed offset of every group, one
// group at a time under its lock: fn must not call the coordinator.
func (c *Coordinator) EachOffset(fn func(CommittedOffset)) {
	for _, g := range c.groupsSnapshot() {
		g.mu.Lock()
		for tp, o := range g.offsets {
			fn(CommittedOffset{Group: g.id, Topic: tp.topic, Partition: tp.partition, Offset: o.offset})
		}
		g.mu.Unlock()
	}
}

// Count is the number of groups.
func (c *Coordinator) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.groups)
}
