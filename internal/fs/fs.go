// Package fs is the seam between strata's storage code and the file system:
// every write, sync, truncation, creation, rename and removal of the log's
// files (segments, indexes, checkpoints, producer snapshots, leader-epoch
// checkpoints, partition metadata, local mode's metadata snapshots,
// meta.properties) goes through an FS, so that tests can swap
// in CrashFS and simulate power loss. OS is the production implementation, a
// thin wrapper over package os. It is a leaf: it imports nothing of strata.
//
// Reads need no seam (a crash does not change what a running process reads)
// and sendfile(2), mmap(2) and flock(2) need real descriptors, so a File
// always wraps a real *os.File (File.OS). CrashFS keeps real files in a real
// directory and models only what a power loss would keep of them.
//
// # Crash model (CrashFS)
//
// What a power loss keeps is what POSIX promises and no more, as pebble's
// vfs.NewCrashableMem:
//
//   - A file's content and size are durable as of its last Sync or Datasync
//     (both taken as a snapshot of the whole file at that moment). That
//     includes pages written through a shared mmap and truncations made
//     before the sync. A file never synced is empty.
//   - A directory's entries (creations, renames, removals, of files and of
//     subdirectories) are durable as of the directory's last SyncDir.
//     Syncing a file does not make its name durable; syncing a directory
//     does not make its files' content durable. Entries link to nodes
//     (inodes): a file renamed after its directory's last sync is found
//     under its old name, with the content of its own last sync; a removed
//     one comes back.
//   - What existed under the root when the CrashFS was made is durable.
//   - A file created behind the model's back (package os directly) does not
//     exist after a crash: a write path that skips the seam shows.
//
// CrashClone(dst, nil) writes exactly the durable state. With a rand it also
// keeps part of what was written and not synced, as a disk that wrote back
// some dirty pages: each page inside the synced length that differs may be
// in its newer version, and a random prefix of the unsynced tail is kept,
// some of its 512-byte sectors possibly zeroed (allocated, never written).
// It never invents bytes that were not written.
//
// Syncs do not reach the disk: the model, not the kernel, is what a test
// checks. CrashFS records each sync under its call site (the chain of
// strata functions that called it), and SetDropSync turns chosen sites
// into no-ops, as if the call were deleted: how tests prove each is needed.
package fs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FS is the file-system operations the storage write path uses. Paths are
// as package os takes them.
type FS interface {
	// OpenFile is os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// CreateTemp is os.CreateTemp.
	CreateTemp(dir, pattern string) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	RemoveAll(path string) error
	MkdirAll(path string, perm os.FileMode) error
	// Truncate is os.Truncate: like File.Truncate, durable only once the
	// file is synced.
	Truncate(name string, size int64) error
	ReadDir(name string) ([]os.DirEntry, error)
	ReadFile(name string) ([]byte, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs a directory so that creations, renames and removals
	// of its entries are durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.WriterAt
	io.ReaderAt
	io.Closer
	Name() string
	Stat() (os.FileInfo, error)
	// Truncate changes the size; durable once the file is synced.
	Truncate(size int64) error
	// Sync is fsync(2): content, size and pages written through a shared
	// mmap of the file become durable.
	Sync() error
	// Datasync is fdatasync(2): content and size become durable (the
	// metadata it skips, such as mtime, strata never relies on).
	Datasync() error
	// OS is the real file, for sendfile(2), mmap(2) and flock(2). Writes
	// through a mapping are made durable by Sync, as above.
	OS() *os.File
}

// OS is the operating system's file system.
var OS FS = osFS{}

// Or returns fsys, or OS when fsys is nil: the zero value of the option
// structs that carry an FS means production.
func Or(fsys FS) FS {
	if fsys == nil {
		return OS
	}
	return fsys
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) CreateTemp(dir, pattern string) (File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) Truncate(name string, size int64) error       { return os.Truncate(name, size) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }
func (osFS) SyncDir(dir string) error                     { return syncDir(dir) }

// osFile is a pointer-shaped struct, so storing it in a File interface
// allocates nothing, and its methods are *os.File's.
type osFile struct{ *os.File }

func (f osFile) OS() *os.File    { return f.File }
func (f osFile) Datasync() error { return Fdatasync(f.File) }

// Fdatasync syncs a file's data through the File's own descriptor
// reference, so a concurrent Close cannot pull the descriptor away mid-call.
func Fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

func syncDir(dir string) error {
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

// TempSuffix ends the temporary files of WriteAtomic: "<name>.<random>.tmp".
// A unique name per write means two writers of one file never share a temp
// file; owners remove leftovers of a crash when they open their directory.
const TempSuffix = ".tmp"

// WriteAtomic replaces path with data so that a crash leaves either the old
// or the new content: temp file, fsync, rename, fsync of the directory (as
// hashicorp/raft's file snapshots and etcd's WAL do).
func WriteAtomic(fsys FS, path string, data []byte) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := fsys.CreateTemp(dir, name+".*"+TempSuffix)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			fsys.Remove(tmp)
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
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}

// MkdirAll is os.MkdirAll that makes the directories it creates durable:
// each one's entry in its parent is fsynced (a new directory's contents are
// not durable until its own name is). Existing directories are not synced.
func MkdirAll(fsys FS, path string, perm os.FileMode) error {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := fsys.MkdirAll(path, perm); err != nil {
		return err
	}
	// Outermost first: a parent must be durable before its child's entry
	// matters.
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
