package cluster

import (
	"fmt"
	"time"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// localLog is local mode's committer: the metadata log is a partition log
// on this node (`__cluster_metadata-0`), with image snapshots beside it
// (see the package doc). Not safe for concurrent use: Store.mu serializes
// its callers.
type localLog struct {
	opts  Options
	log   *log.Log
	image *imageCell

	// bytesSinceSnapshot counts batch bytes appended since the last
	// snapshot; snapshotOffset is that snapshot's end offset (-1 for
	// none).
	bytesSinceSnapshot int64
	snapshotOffset     int64
}

// openLocal loads the newest snapshot that reads back, replays the log
// after it and publishes the image.
func openLocal(l *log.Log, opts Options, image *imageCell) (*localLog, error) {
	c := &localLog{opts: opts, log: l, image: image, snapshotOffset: -1}
	base, err := c.loadSnapshot()
	if err != nil {
		return nil, err
	}
	im, legacy, err := c.replay(base)
	if err != nil {
		return nil, fmt.Errorf("replay metadata: %w", err)
	}
	image.Store(im)
	if legacy > 0 {
		opts.Logger.Info("upgraded metadata log from JSON records", "records", legacy, "end_offset", im.EndOffset)
		if err := c.snapshot(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// loadSnapshot returns the image of the newest snapshot that loads, or an
// empty image.
func (c *localLog) loadSnapshot() (*Image, error) {
	offs, err := listSnapshots(c.log.FS(), c.log.Dir())
	if err != nil {
		return nil, fmt.Errorf("list metadata snapshots: %w", err)
	}
	for _, off := range offs {
		if off > c.log.LogEndOffset() || off < c.log.LogStartOffset() {
			// The log is the source of truth: a snapshot past its
			// end would hide records appended at offsets below it.
			c.opts.Logger.Warn("ignoring metadata snapshot outside the log", "end_offset", off, "log_start_offset", c.log.LogStartOffset(), "log_end_offset", c.log.LogEndOffset())
			continue
		}
		im, err := readSnapshot(c.log.Dir(), off)
		if err != nil {
			c.opts.Logger.Warn("skipping metadata snapshot", "end_offset", off, "err", err)
			continue
		}
		c.snapshotOffset = off
		return im, nil
	}
	return emptyImage(), nil
}

// replay applies the log's records from base.EndOffset on. It returns the
// image and how many legacy JSON records it translated.
func (c *localLog) replay(base *Image) (*Image, int, error) {
	d := newDelta(base)
	legacy := 0
	end := base.EndOffset
	err := c.log.Scan(base.EndOffset, func(b record.Batch) error {
		var aerr error
		err := b.ForEachRecord(func(rec *record.Record) bool {
			if rec.Offset < end {
				return true // a batch that straddles the snapshot
			}
			var recs []records.Record
			if isLegacy(rec.Value) {
				legacy++
				recs, aerr = translateLegacy(d.im, rec.Value, c.opts.NodeID)
			} else {
				var r records.Record
				if r, _, aerr = records.Decode(rec.Value); aerr == nil {
					recs = []records.Record{r}
				}
			}
			for _, r := range recs {
				if aerr == nil {
					aerr = d.apply(r)
				}
			}
			if aerr != nil {
				aerr = fmt.Errorf("metadata record at offset %d: %w", rec.Offset, aerr)
				return false
			}
			end = rec.Offset + 1
			return true
		})
		if err == nil {
			err = aerr
		}
		if err == nil {
			end = max(end, b.NextOffset())
			c.bytesSinceSnapshot += int64(b.Size())
		}
		return err
	})
	return d.finish(end), legacy, err
}

// encodeBatch encodes recs as one record batch, the unit of a metadata
// change in both modes: a local log batch, or one raft log entry's data.
func encodeBatch(recs []records.Record) (record.Batch, error) {
	now := time.Now().UnixMilli()
	nr := make([]record.NewRecord, len(recs))
	for i, r := range recs {
		nr[i] = record.NewRecord{Value: records.Encode(r), Timestamp: now}
	}
	return record.Build(record.BuildOptions{}, nr...)
}

// commit appends recs durably as one batch, then publishes the image they
// build.
func (c *localLog) commit(recs []records.Record) (*Image, error) {
	d := newDelta(c.image.Load())
	for _, r := range recs {
		if err := d.apply(r); err != nil {
			return nil, err // a bug in the caller: nothing was written
		}
	}
	b, err := encodeBatch(recs)
	if err != nil {
		return nil, err
	}
	if _, err := c.log.Append(b, 0); err != nil {
		return nil, fmt.Errorf("append metadata: %w", err)
	}
	c.log.SetHighWatermark(c.log.LogEndOffset())
	im := d.finish(c.log.LogEndOffset())
	c.image.Store(im)
	c.bytesSinceSnapshot += int64(len(b))
	if c.opts.SnapshotBytes > 0 && c.bytesSinceSnapshot >= c.opts.SnapshotBytes {
		// Written here, by the writer that crossed the threshold:
		// metadata changes are rare and one snapshot is small (tens of
		// bytes a partition), so it costs less than a goroutine to own.
		// The records are durable already: a failed snapshot only
		// means a longer replay at the next start.
		if err := c.snapshot(); err != nil {
			c.opts.Logger.Error("write metadata snapshot", "err", err)
		}
	}
	return im, nil
}

// snapshot writes a snapshot of the current image, unless the newest
// snapshot already holds it, and removes older ones.
func (c *localLog) snapshot() error {
	im := c.image.Load()
	if im.EndOffset == c.snapshotOffset {
		return nil
	}
	wrote, err := writeSnapshot(c.log.FS(), c.log.Dir(), im)
	if err != nil {
		return err
	}
	c.bytesSinceSnapshot = 0
	if wrote {
		c.snapshotOffset = im.EndOffset
		c.opts.Logger.Info("wrote metadata snapshot", "end_offset", im.EndOffset)
	}
	return removeSnapshotsBefore(c.log.FS(), c.log.Dir(), snapshotsRetained)
}

// close writes a snapshot at a clean shutdown, so that the next start
// replays nothing. It does not close the log, which its owner (the broker)
// closes.
func (c *localLog) close() error { return c.snapshot() }

func (c *localLog) latest() (*Image, error) { return c.image.Load(), nil }

// controller is this node: in local mode it is its own controller.
func (c *localLog) controller() int32 { return c.opts.NodeID }

// caughtUp: the local log is the whole metadata log.
func (c *localLog) caughtUp() (bool, error) { return true, nil }

func (c *localLog) status() (term, commit, applied uint64) {
	off := uint64(c.image.Load().EndOffset)
	return 0, off, off
}
