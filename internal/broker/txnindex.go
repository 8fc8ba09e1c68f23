package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The aborted-transaction index (Kafka's TransactionIndex): one
// <base>.txnindex file per segment that has aborts, next to the segment's
// files, listing the transactions aborted by a marker in that segment, in
// marker order. See doc.go for the format.

const (
	txnIndexSuffix = ".txnindex"
	// txnIndexEntrySize is Kafka's AbortedTxn.TOTAL_SIZE: version int16,
	// producer id int64, first offset int64, last offset int64, last
	// stable offset int64.
	txnIndexEntrySize = 2 + 8 + 8 + 8 + 8
	// txnIndexVersion is Kafka's AbortedTxn.CURRENT_VERSION.
	txnIndexVersion = 0
)

// ErrCorruptTxnIndex marks a .txnindex file that cannot be read (Kafka's
// CorruptIndexException): loading keeps the whole entries before the fault
// and the replay of the log adds what it can.
var ErrCorruptTxnIndex = errors.New("broker: corrupt transaction index")

// txnIndexEntry is an aborted transaction and the segment whose index
// holds it.
type txnIndexEntry struct {
	AbortedTxn
	base int64
}

func txnIndexName(base int64) string { return fmt.Sprintf("%020d%s", base, txnIndexSuffix) }

// encodeAbortedTxn appends e in Kafka's AbortedTxn layout.
func encodeAbortedTxn(dst []byte, e AbortedTxn) []byte {
	dst = binary.BigEndian.AppendUint16(dst, txnIndexVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(e.LastStableOffset))
}

// decodeTxnIndex reads a .txnindex file. It returns the entries before the
// first fault with an ErrCorruptTxnIndex error: a length that is not a
// whole number of entries (a torn write), an unknown version (Kafka's
// AbortedTxn.version check), or entries out of order or inconsistent.
func decodeTxnIndex(data []byte) ([]AbortedTxn, error) {
	out := make([]AbortedTxn, 0, len(data)/txnIndexEntrySize)
	for len(data) >= txnIndexEntrySize {
		if v := int16(binary.BigEndian.Uint16(data)); v != txnIndexVersion {
			return out, fmt.Errorf("%w: entry %d has version %d", ErrCorruptTxnIndex, len(out), v)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(data[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(data[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(data[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(data[26:])),
		}
		if e.FirstOffset < 0 || e.LastOffset < e.FirstOffset || (len(out) > 0 && e.LastOffset <= out[len(out)-1].LastOffset) {
			return out, fmt.Errorf("%w: entry %d: first offset %d, last offset %d", ErrCorruptTxnIndex, len(out), e.FirstOffset, e.LastOffset)
		}
		out = append(out, e)
		data = data[txnIndexEntrySize:]
	}
	if len(data) != 0 {
		return out, fmt.Errorf("%w: %d trailing bytes", ErrCorruptTxnIndex, len(data))
	}
	return out, nil
}

// listTxnIndexes returns the base offsets of the .txnindex files in dir,
// in order.
func listTxnIndexes(dir string, readDir func(string) ([]os.DirEntry, error)) ([]int64, error) {
	entries, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), txnIndexSuffix)
		if !ok || len(name) != 20 {
			continue
		}
		if base, err := strconv.ParseInt(name, 10, 64); err == nil && base >= 0 {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// segmentOf is the base of the segment of bases holding offset.
func segmentOf(bases []int64, offset int64) int64 {
	i, found := slices.BinarySearch(bases, offset)
	if found {
		return bases[i]
	}
	if i == 0 {
		return bases[0]
	}
	return bases[i-1]
}

// appendTxnIndexLocked adds an aborted transaction to the index of the
// segment holding its marker, and fsyncs it: aborts are rare, and a
// snapshot written later must not cover a marker whose entry a crash
// lost. An entry the index already has (a replay of the log) is skipped.
// Requires mu.
func (p *Partition) appendTxnIndexLocked(e AbortedTxn) error {
	if n := len(p.txn.aborted); n > 0 && e.LastOffset <= p.txn.aborted[n-1].LastOffset {
		return nil
	}
	base := segmentOf(p.Log.SegmentBaseOffsets(), e.LastOffset)
	p.txn.aborted = append(p.txn.aborted, txnIndexEntry{e, base})
	fsys, dir := p.Log.FS(), p.Log.Dir()
	path := filepath.Join(dir, txnIndexName(base))
	_, statErr := fsys.Stat(path)
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeAbortedTxn(nil, e))
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil && statErr != nil {
		err = fsys.SyncDir(dir) // a new file
	}
	return err
}

// loadTxnIndexLocked reads the .txnindex files into memory, as a log
// being loaded or truncated has them (Kafka's LogSegment.recover and
// truncateTo on the TransactionIndex): files of segments that are gone are
// deleted, entries whose marker is at or past the log end offset are cut
// off (and the file shortened, or deleted if nothing is left), a corrupt
// file keeps its whole entries before the fault. The replay of the log
// that follows adds entries for the aborts it meets that the index lacks.
// Requires mu and snapMu.
func (p *Partition) loadTxnIndexLocked() error {
	fsys, dir := p.Log.FS(), p.Log.Dir()
	p.txn.aborted = p.txn.aborted[:0]
	bases, err := listTxnIndexes(dir, fsys.ReadDir)
	if err != nil {
		return err
	}
	segs := p.Log.SegmentBaseOffsets()
	leo := p.Log.LogEndOffset()
	var errs []error
	for _, base := range bases {
		path := filepath.Join(dir, txnIndexName(base))
		if _, ok := slices.BinarySearch(segs, base); !ok {
			errs = append(errs, removeIfExists(fsys.Remove, path))
			continue
		}
		data, err := fsys.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entries, derr := decodeTxnIndex(data)
		if derr != nil {
			p.logger.Warn("transaction index corrupt; keeping the entries before the fault", "file", path, "err", derr)
		}
		keep := 0
		for _, e := range entries {
			if e.LastOffset >= leo {
				break
			}
			if n := len(p.txn.aborted); n > 0 && e.LastOffset <= p.txn.aborted[n-1].LastOffset {
				break // out of order across files: not trusted
			}
			p.txn.aborted = append(p.txn.aborted, txnIndexEntry{e, base})
			keep++
		}
		switch {
		case keep == 0:
			errs = append(errs, removeIfExists(fsys.Remove, path))
		case keep*txnIndexEntrySize != len(data):
			if err := fsys.Truncate(path, int64(keep*txnIndexEntrySize)); err != nil {
				errs = append(errs, err)
				continue
			}
			f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	return errors.Join(errs...)
}

// pruneTxnIndexes deletes the indexes of segments below the first one
// (removed by retention or DeleteRecords). Requires snapMu.
func (p *Partition) pruneTxnIndexes() error {
	fsys, dir := p.Log.FS(), p.Log.Dir()
	bases, err := listTxnIndexes(dir, fsys.ReadDir)
	if err != nil {
		return err
	}
	first := p.Log.SegmentBaseOffsets()[0]
	var errs []error
	for _, base := range bases {
		if base < first {
			errs = append(errs, removeIfExists(fsys.Remove, filepath.Join(dir, txnIndexName(base))))
		}
	}
	return errors.Join(errs...)
}

func removeIfExists(remove func(string) error, path string) error {
	if err := remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// dropAbortedBelowLocked forgets aborted transactions whose marker is
// below the log start offset: no fetch can ask for them. Requires mu.
func (p *Partition) dropAbortedBelowLocked(start int64) {
	i := 0
	for i < len(p.txn.aborted) && p.txn.aborted[i].LastOffset < start {
		i++
	}
	if i > 0 {
		p.txn.aborted = slices.Delete(p.txn.aborted, 0, i)
	}
}
