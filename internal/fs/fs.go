// Package fs holds the small file-system routines the storage packages
// share: crash-safe replacement of small files and directory fsync. It is a
// leaf: it imports nothing of strata.
package fs

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempSuffix ends the temporary files of WriteAtomic: "<name>.<random>.tmp".
// A unique name per write means two writers of one file never share a temp
// file; owners remove leftovers of a crash when they open their directory.
const TempSuffix = ".tmp"

// WriteAtomic replaces path with data so that a crash leaves either the old
// or the new content: temp file, fsync, rename, fsync of the directory (as
// hashicorp/raft's file snapshots and etcd's WAL do).
func WriteAtomic(path string, data []byte) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, name+".*"+TempSuffix)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that creations, renames and removals in it
// are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
