package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/record"
)

const (
	snapshotSuffix = ".checkpoint"
	// partSuffix is a snapshot being written, Kafka's ".checkpoint.part";
	// one left by a crash is removed at start.
	partSuffix = ".checkpoint.part"
)

// ErrCorruptSnapshot marks a snapshot file that cannot be loaded.
var ErrCorruptSnapshot = errors.New("cluster: corrupt metadata snapshot")

// snapshotName is Kafka's snapshot file name: the end offset (20 digits)
// and the epoch (10 digits) of the last record it holds. strata has no
// raft epoch yet: the epoch is 0.
func snapshotName(endOffset int64, epoch int32) string {
	return fmt.Sprintf("%020d-%010d%s", endOffset, epoch, snapshotSuffix)
}

func parseSnapshotName(name string) (int64, bool) {
	base, ok := strings.CutSuffix(name, snapshotSuffix)
	if !ok || len(base) != 31 || base[20] != '-' {
		return 0, false
	}
	off, err := strconv.ParseInt(base[:20], 10, 64)
	if err != nil || off < 0 {
		return 0, false
	}
	if _, err := strconv.ParseUint(base[21:], 10, 31); err != nil {
		return 0, false
	}
	return off, true
}

// listSnapshots returns the end offsets of the snapshots in dir, newest
// first, and removes partial ones left by a crash. The snapshots' files go
// through fsys, the metadata log's file system, so that power-loss tests
// see them.
func listSnapshots(fsys fs.FS, dir string) ([]int64, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), partSuffix) {
			if err := fsys.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
			continue
		}
		if off, ok := parseSnapshotName(e.Name()); ok {
			offs = append(offs, off)
		}
	}
	slices.SortFunc(offs, func(a, b int64) int { return cmp.Compare(b, a) })
	return offs, nil
}

// encodeSnapshot encodes im as one record batch of its records (see the
// package doc). An image with no records has no snapshot: nil.
func encodeSnapshot(im *Image) ([]byte, error) {
	recs := im.Records()
	if len(recs) == 0 {
		return nil, nil
	}
	return encodeBatch(recs)
}

// writeSnapshot writes im's snapshot into dir: to a .part file, fsynced,
// renamed, then the directory fsynced, so that a crash leaves either the
// whole snapshot or none (hashicorp/raft file_snapshot.go, Kafka's
// FileRawSnapshotWriter.freeze). Returns false if im has nothing to write.
func writeSnapshot(fsys fs.FS, dir string, im *Image) (bool, error) {
	data, err := encodeSnapshot(im)
	if err != nil || data == nil {
		return false, err
	}
	path := filepath.Join(dir, snapshotName(im.EndOffset, 0))
	tmp := strings.TrimSuffix(path, snapshotSuffix) + partSuffix
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return false, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		fsys.Remove(tmp)
		return false, fmt.Errorf("write metadata snapshot %s: %w", path, err)
	}
	return true, fsys.SyncDir(dir)
}

// readSnapshot loads the snapshot of end offset off from dir. Every
// failure (a short file, a bad CRC, an undecodable or inconsistent record)
// wraps ErrCorruptSnapshot, so that Open falls back to an older one.
func readSnapshot(dir string, off int64) (*Image, error) {
	path := filepath.Join(dir, snapshotName(off, 0))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSnapshot, path, err)
	}
	im, err := decodeSnapshot(data, off)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptSnapshot, path, err)
	}
	return im, nil
}

// decodeSnapshot builds the image a snapshot's batch holds, up to end.
func decodeSnapshot(data []byte, end int64) (*Image, error) {
	b, rest, err := record.Parse(data)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes after the batch", len(rest))
	}
	if err != nil {
		return nil, err
	}
	d := newDelta(emptyImage())
	var aerr error
	err = b.ForEachRecord(func(r *record.Record) bool {
		rec, _, err := records.Decode(r.Value)
		if err == nil {
			err = d.apply(rec)
		}
		aerr = err
		return err == nil
	})
	if err = cmp.Or(err, aerr); err != nil {
		return nil, err
	}
	return d.finish(end), nil
}

// removeSnapshotsBefore deletes the snapshots older than the keep newest.
func removeSnapshotsBefore(fsys fs.FS, dir string, keep int) error {
	offs, err := listSnapshots(fsys, dir)
	if err != nil {
		return err
	}
	for _, off := range offs[min(keep, len(offs)):] {
		if err := fsys.Remove(filepath.Join(dir, snapshotName(off, 0))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
