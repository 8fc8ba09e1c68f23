package txn

import "time"

// Compactor is implemented by a Storage that can drop old records. strata
// has no log compaction, which Kafka relies on to keep __transaction_state
// small; as the group coordinator does for __consumer_offsets, the
// coordinator instead rewrites a partition's live state (the last record
// of every id) after a fresh segment start, then deletes what came before.
//
// This is safe at any point: a crash before the delete leaves the old
// records followed by the rewrite, whose replay gives the same state; the
// rewrite is done with no write of the partition in flight, so no newer
// record of an id can precede it.
type Compactor interface {
	// Rewrite starts a new segment, appends the records there (as one
	// batch, replicated as an acks=all produce) and deletes every record
	// before them.
	Rewrite(p int32, keys, values [][]byte) error
}

// compactAfter is how many records a partition takes before it is
// compacted, unless twice its live ids are more.
const compactAfter = 1000

// compactRetryBackoff spaces the compactions of a partition that failed,
// or that had writes in flight.
const compactRetryBackoff = time.Second

// noteAppendedLocked counts a record written to partition p and compacts
// the partition (on a goroutine) when it holds many more records than
// live ids.
func (c *Coordinator) noteAppendedLocked(pt *part) {
	pt.appended++
	comp, ok := c.cfg.Storage.(Compactor)
	if !ok || pt.compacting || pt.appended < max(compactAfter, 2*pt.live) {
		return
	}
	pt.compacting = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.compact(comp, pt)
	}()
}

// compact rewrites partition pt's live state and drops what came before,
// once no write of the partition is in flight. It holds c.mu throughout:
// no id of the partition may change between the snapshot and the delete.
func (c *Coordinator) compact(comp Compactor, pt *part) {
	defer func() {
		c.mu.Lock()
		pt.compacting = false
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		p, owned := c.partOfLocked(pt)
		if !owned {
			c.mu.Unlock()
			return
		}
		busy := false
		var keys, values [][]byte
		for _, m := range c.txns {
			if m.part != p {
				continue
			}
			if m.pending {
				busy = true
				break
			}
			keys = append(keys, encodeKey(m.id))
			values = append(values, encodeValue(m))
		}
		var err error
		if !busy {
			before := pt.appended
			if err = comp.Rewrite(p, keys, values); err == nil {
				pt.appended, pt.live = 0, int64(len(keys))
				c.logger.Info("compacted transaction state", "partition", p, "records_before", before, "live_ids", len(keys))
				c.mu.Unlock()
				return
			}
			c.logger.Warn("compact transaction state", "partition", p, "err", err)
		}
		c.mu.Unlock()
		select {
		case <-pt.ctx.Done():
			return
		case <-time.After(compactRetryBackoff):
		}
	}
}

// partOfLocked is the partition number pt is loaded as, if it still is.
func (c *Coordinator) partOfLocked(pt *part) (int32, bool) {
	if c.closed || pt.loading {
		return 0, false
	}
	for p, cur := range c.parts {
		if cur == pt {
			return p, true
		}
	}
	return 0, false
}
