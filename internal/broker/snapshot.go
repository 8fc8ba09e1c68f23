package broker

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrCorruptSnapshot marks a producer-state snapshot that cannot be used
// (bad CRC, unknown version, wrong length): Kafka's CorruptSnapshotException.
// Loading skips it and falls back to an older snapshot or to replay.
var ErrCorruptSnapshot = errors.New("broker: corrupt producer state snapshot")

const (
	snapshotSuffix = ".snapshot"
	// snapshotVersion is Kafka's ProducerStateManager.PRODUCER_SNAPSHOT_VERSION.
	snapshotVersion = 1
	// Byte layout (see doc.go): version int16, crc uint32, then the CRC'd
	// part: count int32 and the entries.
	snapshotCRCPos     = 2
	snapshotEntriesPos = 6
	snapshotHeaderSize = snapshotEntriesPos + 4
	snapshotEntrySize  = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8
	// snapshotsKept is how many snapshots stay on disk: the newest, and one
	// to fall back on if it turns out corrupt.
	snapshotsKept = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotEntry is one producer as a snapshot stores it: Kafka's
// ProducerStateEntry reduced to its last batch.
type snapshotEntry struct {
	ProducerID            int64
	ProducerEpoch         int16
	LastSequence          int32
	LastOffset            int64 // -1: no batch remembered
	OffsetDelta           int32 // last offset - first offset of the last batch
	Timestamp             int64 // max timestamp of the last batch
	CoordinatorEpoch      int32 // of the producer's last marker, -1: none
	CurrentTxnFirstOffset int64 // -1: no open transaction
}

// encodeSnapshot serializes entries in Kafka's snapshot format.
func encodeSnapshot(entries []snapshotEntry) []byte {
	buf := make([]byte, snapshotHeaderSize, snapshotHeaderSize+len(entries)*snapshotEntrySize)
	binary.BigEndian.PutUint16(buf, snapshotVersion)
	binary.BigEndian.PutUint32(buf[snapshotEntriesPos:], uint32(len(entries)))
	for _, e := range entries {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.ProducerID))
		buf = binary.BigEndian.AppendUint16(buf, uint16(e.ProducerEpoch))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.LastSequence))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.LastOffset))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.OffsetDelta))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.Timestamp))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.CoordinatorEpoch))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.CurrentTxnFirstOffset))
	}
	binary.BigEndian.PutUint32(buf[snapshotCRCPos:], crc32.Checksum(buf[snapshotEntriesPos:], castagnoli))
	return buf
}

// decodeSnapshot parses a snapshot, checking its version, CRC and length.
func decodeSnapshot(data []byte) ([]snapshotEntry, error) {
	if len(data) < snapshotHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorruptSnapshot, len(data))
	}
	if v := int16(binary.BigEndian.Uint16(data)); v != snapshotVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorruptSnapshot, v)
	}
	stored := binary.BigEndian.Uint32(data[snapshotCRCPos:])
	if computed := crc32.Checksum(data[snapshotEntriesPos:], castagnoli); stored != computed {
		return nil, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptSnapshot, stored, computed)
	}
	count := int64(int32(binary.BigEndian.Uint32(data[snapshotEntriesPos:])))
	if count < 0 || int64(len(data)) != snapshotHeaderSize+count*snapshotEntrySize {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrCorruptSnapshot, count, len(data))
	}
	entries := make([]snapshotEntry, count)
	d := data[snapshotHeaderSize:]
	for i := range entries {
		e := &entries[i]
		e.ProducerID = int64(binary.BigEndian.Uint64(d))
		e.ProducerEpoch = int16(binary.BigEndian.Uint16(d[8:]))
		e.LastSequence = int32(binary.BigEndian.Uint32(d[10:]))
		e.LastOffset = int64(binary.BigEndian.Uint64(d[14:]))
		e.OffsetDelta = int32(binary.BigEndian.Uint32(d[22:]))
		e.Timestamp = int64(binary.BigEndian.Uint64(d[26:]))
		e.CoordinatorEpoch = int32(binary.BigEndian.Uint32(d[34:]))
		e.CurrentTxnFirstOffset = int64(binary.BigEndian.Uint64(d[38:]))
		if e.LastOffset >= 0 && (e.OffsetDelta < 0 || int64(e.OffsetDelta) > e.LastOffset) {
			return nil, fmt.Errorf("%w: producer %d: offset delta %d with last offset %d", ErrCorruptSnapshot, e.ProducerID, e.OffsetDelta, e.LastOffset)
		}
		d = d[snapshotEntrySize:]
	}
	return entries, nil
}

// snapshotName is Kafka's producer snapshot file name: the offset in 20
// digits.
func snapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// listSnapshots returns the offsets of the snapshots in dir, oldest first.
func listSnapshots(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), snapshotSuffix)
		if !ok || len(name) != 20 {
			continue
		}
		if off, err := strconv.ParseInt(name, 10, 64); err == nil && off >= 0 {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// decrementSequence subtracts delta from a producer sequence, wrapping below
// 0 to MaxInt32 (Kafka's DefaultRecordBatch.decrementSequence).
func decrementSequence(seq, delta int32) int32 {
	if seq < delta {
		return math.MaxInt32 - (delta - seq) + 1
	}
	return seq - delta
}

// snapshotEntriesLocked is the producer state as snapshot entries, in
// producer id order. Kafka keeps only each producer's last batch.
func (p *Partition) snapshotEntriesLocked() []snapshotEntry {
	out := make([]snapshotEntry, 0, len(p.producers))
	for id, st := range p.producers {
		e := snapshotEntry{
			ProducerID: id, ProducerEpoch: st.epoch,
			LastSequence: -1, LastOffset: -1, Timestamp: st.lastTimestamp(),
			CoordinatorEpoch: st.coordEpoch, CurrentTxnFirstOffset: -1,
		}
		if n := len(st.batches); n > 0 {
			m := st.batches[n-1]
			e.LastSequence, e.LastOffset = m.lastSeq, m.lastOffset
			e.OffsetDelta = int32(m.lastOffset - m.firstOffset)
		}
		if first, open := p.txn.ongoing[id]; open {
			e.CurrentTxnFirstOffset = first
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b snapshotEntry) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// restoreSnapshotLocked replaces the producer state with a snapshot's,
// open transactions included (Kafka's ProducerStateManager.loadFromSnapshot).
func (p *Partition) restoreSnapshotLocked(entries []snapshotEntry) {
	clear(p.producers)
	clear(p.txn.ongoing)
	for _, e := range entries {
		st := &producerState{epoch: e.ProducerEpoch, coordEpoch: e.CoordinatorEpoch, markerTimestamp: -1}
		if e.CurrentTxnFirstOffset >= 0 {
			if p.txn.ongoing == nil {
				p.txn.ongoing = map[int64]int64{}
			}
			p.txn.ongoing[e.ProducerID] = e.CurrentTxnFirstOffset
		}
		if e.LastOffset < 0 {
			st.markerTimestamp = e.Timestamp
		} else {
			st.batches = []batchMeta{{
				firstSeq: decrementSequence(e.LastSequence, e.OffsetDelta), lastSeq: e.LastSequence,
				firstOffset: e.LastOffset - int64(e.OffsetDelta), lastOffset: e.LastOffset,
				timestamp: e.Timestamp,
			}}
		}
		p.producers[e.ProducerID] = st
	}
	p.setTxnActiveLocked()
}

// writeSnapshotSnapLocked writes entries (the producer state covering
// exactly the offsets below offset) as the snapshot at offset, unless the
// latest snapshot is already that one, and then prunes old snapshots.
// Requires snapMu, not mu: the fsyncs of a snapshot do not hold up appends.
func (p *Partition) writeSnapshotSnapLocked(offset int64, entries []snapshotEntry) error {
	if offset == p.snapOffset {
		return nil
	}
	dir := p.Log.Dir()
	if err := writeFileAtomic(p.Log.FS(), dir, snapshotName(offset), encodeSnapshot(entries)); err != nil {
		return err
	}
	p.snapOffset = offset
	p.logger.Debug("wrote producer state snapshot", "offset", offset, "producers", len(entries))
	return errors.Join(p.pruneSnapshots(), p.pruneTxnIndexes())
}

// pruneSnapshots keeps the newest snapshotsKept snapshots, minus any below
// the first segment: their offsets were deleted by retention, and a
// snapshot is only usable from the log start offset on (Kafka deletes a
// segment's snapshot with the segment).
// Requires snapMu.
func (p *Partition) pruneSnapshots() error {
	dir := p.Log.Dir()
	offs, err := listSnapshots(dir)
	if err != nil {
		return err
	}
	first := p.Log.SegmentBaseOffsets()[0]
	var errs []error
	for i, off := range offs {
		if i < len(offs)-snapshotsKept || off < first {
			errs = append(errs, p.removeSnapshot(off))
		}
	}
	return errors.Join(errs...)
}

// removeSnapshot deletes one snapshot file. Requires snapMu.
func (p *Partition) removeSnapshot(offset int64) error {
	err := p.Log.FS().Remove(filepath.Join(p.Log.Dir(), snapshotName(offset)))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if offset == p.snapOffset {
		p.snapOffset = -1
	}
	return err
}

// loadSnapshotLocked restores the newest usable snapshot and returns its
// offset, or ok=false when there is none. Snapshots above the log end offset
// come from offsets a recovery truncated away and are deleted (Kafka's
// truncateAndReload); corrupt ones are logged and deleted; ones below the
// log start offset cannot be completed by replay and are skipped. Requires
// mu (the state) and snapMu (the files).
func (p *Partition) loadSnapshotLocked() (offset int64, ok bool, err error) {
	l := p.Log
	dir, leo, start := l.Dir(), l.LogEndOffset(), l.LogStartOffset()
	offs, err := listSnapshots(dir)
	if err != nil {
		return 0, false, err
	}
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		switch {
		case off > leo:
			p.logger.Info("deleting producer state snapshot above the log end offset", "snapshot", off, "log_end_offset", leo)
			if err := p.removeSnapshot(off); err != nil {
				return 0, false, err
			}
			continue
		case off < start:
			return 0, false, nil
		}
		data, err := os.ReadFile(filepath.Join(dir, snapshotName(off)))
		if err != nil {
			p.logger.Warn("cannot read producer state snapshot; trying an older one", "snapshot", off, "err", err)
			continue
		}
		entries, err := decodeSnapshot(data)
		if err != nil {
			p.logger.Warn("ignoring corrupt producer state snapshot", "snapshot", off, "err", err)
			if err := p.removeSnapshot(off); err != nil {
				return 0, false, err
			}
			continue
		}
		p.restoreSnapshotLocked(entries)
		p.snapOffset = off
		return off, true, nil
	}
	return 0, false, nil
}
