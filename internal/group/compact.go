package group

import (
	"cmp"
	"slices"
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
		var batches []liveBatch
		if g.state != Dead {
			batches = g.liveBatches()
		}
		for _, b := range batches {
			if _, err = c.appendBatch(p, b.opts, b.recs...); err != nil {
				break
			}
			live += int64(len(b.recs))
		}
		g.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := comp.DeleteBefore(p, start); err != nil {
		return err
	}
	c.live[p].Store(live)
	c.appended[p].Add(-before)
	c.logger.Info("compacted consumer offsets", "partition", p, "records_before", before, "live_records", live, "new_start_offset", start)
	return nil
}

// liveBatch is records to write as one batch.
type liveBatch struct {
	opts record.BuildOptions
	recs []record.NewRecord
}

// liveBatches is the group's state as batches: its metadata (unless it
// only ever stored offsets; for a consumer group, its KIP-848 records as
// last written), then its committed offsets and the pending offsets of
// open transactions in the order they were written, each producer's run
// as a transactional batch of that producer. The order keeps what a later
// COMMIT marker applies the same (an offset committed after a
// transactional one still wins), and the pending ones stay in the
// producer's open transaction, ended by the marker still to come. Their
// transactions are marked rewritten (txnOffsets.rewritten).
func (g *group) liveBatches() []liveBatch {
	var out []liveBatch
	if recs := g.metaRecords(); len(recs) > 0 {
		out = append(out, liveBatch{recs: recs})
	}
	type entry struct {
		pid int64
		tp  topicPartition
		o   committed
	}
	var es []entry
	for tp, o := range g.offsets {
		es = append(es, entry{-1, tp, o})
	}
	for pid, t := range g.txn {
		for tp, o := range t.offsets {
			es = append(es, entry{pid, tp, o})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.o.order, b.o.order) })
	for i, e := range es {
		if i == 0 || es[i-1].pid != e.pid {
			b := liveBatch{}
			if e.pid >= 0 {
				b.opts = txnBuildOptions(e.pid, g.txn[e.pid].epoch)
				g.txn[e.pid].rewritten = true
			}
			out = append(out, b)
		}
		b := &out[len(out)-1]
		b.recs = append(b.recs, record.NewRecord{Key: offsetKey(g.id, e.tp), Value: offsetValue(e.o)})
	}
	return out
}

// metaRecords is the group's metadata as records (none for a group that
// only ever stored offsets).
func (g *group) metaRecords() []record.NewRecord {
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
	return recs
}
