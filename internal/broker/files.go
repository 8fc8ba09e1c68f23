package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-io/strata/internal/fs"
)

// writeFileAtomic replaces dir/name with data crash-safely, through the
// file system of the partition's log.
func writeFileAtomic(fsys fs.FS, dir, name string, data []byte) error {
	return fs.WriteAtomic(fsys, filepath.Join(dir, name), data)
}

// removeTempFiles removes the temporaries writeFileAtomic left in dir when
// the process died mid-write. Only this package's files are touched.
func removeTempFiles(fsys fs.FS, dir string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, fs.TempSuffix) {
			continue
		}
		if !strings.HasPrefix(name, leaderEpochCheckpointFile+".") &&
			!strings.HasPrefix(name, partitionMetadataFile+".") &&
			!strings.Contains(name, snapshotSuffix+".") {
			continue
		}
		if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
