package group

import (
	"time"

	"github.com/strata-io/strata/internal/record"
)

// compactRetryBackoff is how long a failed compaction waits before the
// partition may be compacted again.
const compactRetryBackoff = time.Second

// Compactor is implemented by a Storage that can drop old records. With
// it, the coordinator keeps each __consumer_offsets partition small the way
// Kafka's log compaction keeps it small, by a different route: it rewrites
// the partition's live state (every group's metadata and offsets) after a
// fresh segment start, then deletes everything before that start.
//
// This is safe at any point: for every key, the newest record is either
// part of the rewrite or a later commit, and a crash before the delete
// only leaves the old records, whose replay the rewrite then overrides
// with the same values.
type Compactor interface {
	// Roll starts a new segment and returns the partition's log end
	// offset, where the rewrite begins.
	Roll(partition int32) (int64, error)
	// DeleteBefore drops the partition's records below offset.
	DeleteBefore(partition int32, offset int64) error
}

// noteAppended counts records written to a partition and asks for a
// compaction once the partition holds many more records than live state.
func (c *Coordinator) noteAppended(p int32, n int) {
	if c.compactCh == nil || p < 0 || int(p) >= len(c.appended) {
		return
	}
	total := c.appended[p].Add(int64(n))
	if total < max(c.cfg.CompactAfterRecords, 2*c.live[p].Load()) {
		return
	}
	if c.compacting[p].CompareAndSwap(false, true) {
		select {
		case c.compactCh <- p:
		default:
			c.compacting[p].Store(false)
			// Commits that came during the compaction may already
			// call for the next one.
			c.noteAppended(p, 0)
		}
	}
}

// compactLoop runs compactions one at a time until the coordinator closes.
func (c *Coordinator) compactLoop(comp Compactor) {
	for {
		select {
		case <-c.closing:
			return
		case p := <-c.compactCh:
			if err := c.compact(comp, p); err != nil {
				c.logger.Error("compact consumer offsets", "partition", p, "err", err)
				// The partition still holds as many records, so
				// the next commit asks again at once: not before a
				// pause (a full disk, a leadership moving away).
				select {
				case <-c.closing:
					return
				case <-time.After(compactRetryBackoff):
				}
			}
			c.compacting[p].Store(false)
			// Commits that came during the compaction may already
			// call for the next one.
			c.noteAppended(p, 0)
		}
	}
}

// compact rewrites partition p's live state and drops what came before.
//
// It holds partMu[p]: an Unload waits for it, because deleting the old
// records after a rewrite that an Unload cut short would lose the state of
// the groups not yet rewritten. A partition not loaded is left alone: it is
// not this coordinator's to write.
func (c *Coordinator) compact(comp Compactor, p int32) error {
	c.partMu[p].Lock()
	defer c.partMu[p].Unlock()
	c.mu.Lock()
	owned := c.parts[p] == partLoaded && !c.closed
	c.mu.Unlock()
	if !owned {
		return nil
	}
	before := c.appended[p].Load()
	start, err := comp.Roll(p)
	if err != nil {
		return err
	}
	var live int64
	for _, g := range c.groupsSnapshot() {
		if g.partition != p {
			continue
		}
		g.mu.Lock()
		var recs []record.NewRecord
		if g.state != Dead {
			recs = g.liveRecords()
		}
		if len(recs) > 0 {
			err = c.append(p, recs...)
		}
		g.mu.Unlock()
		if err != nil {
			return err
		}
		live += int64(len(recs))
	}
	if err := comp.DeleteBefore(p, start); err != nil {
		return err
	}
	c.live[p].Store(live)
	c.appended[p].Add(-before)
	c.logger.Info("compacted consumer offsets", "partition", p, "records_before", before, "live_records", live, "new_start_offset", start)
	return nil
}

// liveRecords is the group's state as records: its metadata (unless it
// only ever stored offsets; for a consumer group, its KIP-848 records as
// last written) and every committed offset.
func (g *group) liveRecords() []record.NewRecord {
	var recs []record.NewRecord
	switch {
	case g.consumer != nil:
		// A consumer group is its KIP-848 records; a classic
		// metadata record would bring it back as an empty classic
		// group.
		recs = g.consumerLiveRecords()
	case g.generation > 0 || g.protocolType != "" || len(g.members) > 0:
		recs = append(recs, record.NewRecord{Key: groupKey(g.id), Value: g.metadataValue()})
	}
	for tp, o := range g.offsets {
		recs = append(recs, record.NewRecord{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
	}
	return recs
}
