package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// CrashFS is an FS for power-loss tests over real files under a root
// directory. It records what a power loss at any moment would keep (the
// package doc states the model), and CrashClone writes that state into a new
// directory, which a test reopens as a rebooted machine would find its disk.
//
// Safe for concurrent use.
type CrashFS struct {
	root string

	mu    sync.Mutex
	top   *node
	sites map[string]int
	drop  func(site string) bool
	trace func(op, path, site string)
}

// SetTrace makes the CrashFS report each operation it models (debugging a
// failed crash test).
func (c *CrashFS) SetTrace(fn func(op, path, site string)) {
	c.mu.Lock()
	c.trace = fn
	c.mu.Unlock()
}

func (c *CrashFS) traceLocked(op, path, site string) {
	if c.trace != nil {
		c.trace(op, path, site)
	}
}

// node is an inode: a directory's live and durable entries, or a file's
// durable content. path is where it is linked now ("" once unlinked), to
// read its live content from.
type node struct {
	dir     bool
	live    map[string]*node
	durable map[string]*node
	synced  []byte
	path    string
}

// NewCrashFS models the tree under root (which must exist) as durable.
func NewCrashFS(root string) (*CrashFS, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	top, err := scanTree(root)
	if err != nil {
		return nil, err
	}
	return &CrashFS{root: root, top: top, sites: map[string]int{}}, nil
}

func scanTree(path string) (*node, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return &node{synced: data, path: path}, nil
	}
	n := &node{dir: true, live: map[string]*node{}, path: path}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() && !e.IsDir() {
			continue
		}
		c, err := scanTree(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		n.live[e.Name()] = c
	}
	n.durable = maps(n.live)
	return n, nil
}

func maps(m map[string]*node) map[string]*node {
	out := make(map[string]*node, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Root is the directory the CrashFS models.
func (c *CrashFS) Root() string { return c.root }

// SetDropSync makes every sync whose call site drop reports true a no-op
// that succeeds. Sites are as Sites reports them.
func (c *CrashFS) SetDropSync(drop func(site string) bool) {
	c.mu.Lock()
	c.drop = drop
	c.mu.Unlock()
}

// Sites returns how many syncs each call site made (dropped ones included).
// A site is "<op> <caller chain>": op is sync, datasync or syncdir; the
// chain lists strata's functions from the innermost outwards, without the
// package path, separated by " < ", e.g. "datasync log.(*segment).syncData <
// log.(*Log).syncData < log.(*Log).syncRounds".
func (c *CrashFS) Sites() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps2(c.sites)
}

func maps2(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// modulePrefix starts strata's function names: the root package's
// ("github.com/strata-io/strata.start") and the others'.
const modulePrefix = "github.com/strata-io/strata"

// site names the caller of a sync. Caller holds c.mu.
func (c *CrashFS) siteLocked(op string) (string, bool) {
	var pcs [24]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	var chain []string
	for {
		fr, more := frames.Next()
		fn := fr.Function
		if inModule(fn) && !strings.Contains(fn, "internal/fs.(*Crash") && !strings.Contains(fn, "internal/fs.(*crash") && !strings.Contains(fn, "internal/fs.crash") {
			short := fn[strings.LastIndexByte(fn, '/')+1:]
			if !strings.Contains(fn, "_test") && !strings.HasSuffix(fr.File, "_test.go") {
				chain = append(chain, short)
			}
		}
		if !more || len(chain) >= 6 {
			break
		}
	}
	s := op + " " + strings.Join(chain, " < ")
	c.sites[s]++
	return s, c.drop != nil && c.drop(s)
}

func inModule(fn string) bool {
	rest, ok := strings.CutPrefix(fn, modulePrefix)
	return ok && (strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "."))
}

// rel splits an absolute path under the root into its components.
func (c *CrashFS) rel(path string) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	r, err := filepath.Rel(c.root, abs)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return nil, fmt.Errorf("fs: %s is outside the crash fs root %s", path, c.root)
	}
	if r == "." {
		return nil, nil
	}
	return strings.Split(r, string(filepath.Separator)), nil
}

// lookupLocked returns the live node at path, nil if the model has none.
func (c *CrashFS) lookupLocked(path string) *node {
	parts, err := c.rel(path)
	if err != nil {
		return nil
	}
	n := c.top
	for _, p := range parts {
		if n == nil || !n.dir {
			return nil
		}
		n = n.live[p]
	}
	return n
}

// parentLocked returns the live parent directory node of path and its base
// name.
func (c *CrashFS) parentLocked(path string) (*node, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	if _, err := c.rel(abs); err != nil {
		return nil, "", err
	}
	dir := c.lookupLocked(filepath.Dir(abs))
	if dir == nil || !dir.dir {
		return nil, "", fmt.Errorf("fs: crash fs does not know directory %s", filepath.Dir(abs))
	}
	return dir, filepath.Base(abs), nil
}

func setPaths(n *node, path string) {
	n.path = path
	if n.dir {
		for name, c := range n.live {
			setPaths(c, filepath.Join(path, name))
		}
	}
}

func (c *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, base, err := c.parentLocked(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	n := parent.live[base]
	if n == nil {
		// Created now (or behind the model's back, which a crash then
		// loses as well).
		n = &node{path: f.Name()}
		parent.live[base] = n
		c.traceLocked("create", name, "")
	}
	return &crashFile{File: f, fs: c, node: n}, nil
}

func (c *CrashFS) CreateTemp(dir, pattern string) (File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	parent, base, err := c.parentLocked(f.Name())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	n := &node{path: f.Name()}
	parent.live[base] = n
	return &crashFile{File: f, fs: c, node: n}, nil
}

func (c *CrashFS) Rename(oldpath, newpath string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	op, obase, err := c.parentLocked(oldpath)
	if err != nil {
		return err
	}
	np, nbase, err := c.parentLocked(newpath)
	if err != nil {
		return err
	}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	c.traceLocked("rename", oldpath+" -> "+newpath, "")
	n := op.live[obase]
	delete(op.live, obase)
	if old := np.live[nbase]; old != nil {
		old.path = ""
	}
	if n != nil {
		np.live[nbase] = n
		abs, _ := filepath.Abs(newpath)
		setPaths(n, abs)
	}
	return nil
}

func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, base, err := c.parentLocked(name)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil {
		return err
	}
	c.traceLocked("remove", name, "")
	unlink(parent, base)
	return nil
}

func unlink(parent *node, base string) {
	if n := parent.live[base]; n != nil {
		n.path = ""
	}
	delete(parent.live, base)
}

func (c *CrashFS) RemoveAll(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent, base, err := c.parentLocked(path)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	unlink(parent, base)
	return nil
}

func (c *CrashFS) MkdirAll(path string, perm os.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts, err := c.rel(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path, perm); err != nil {
		return err
	}
	n, p := c.top, c.root
	for _, part := range parts {
		p = filepath.Join(p, part)
		next := n.live[part]
		if next == nil {
			next = &node{dir: true, live: map[string]*node{}, durable: map[string]*node{}, path: p}
			n.live[part] = next
		}
		n = next
	}
	return nil
}

func (c *CrashFS) Truncate(name string, size int64) error {
	if _, err := c.rel(name); err != nil {
		return err
	}
	return os.Truncate(name, size)
}

func (c *CrashFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }
func (c *CrashFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (c *CrashFS) Stat(name string) (os.FileInfo, error)      { return os.Stat(name) }

func (c *CrashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	site, dropped := c.siteLocked("syncdir")
	c.traceLocked("syncdir", dir, site)
	if dropped {
		return nil
	}
	n := c.lookupLocked(dir)
	if n == nil || !n.dir {
		return fmt.Errorf("fs: fsync dir %s: not a directory the crash fs knows", dir)
	}
	n.durable = maps(n.live)
	return nil
}

// crashFile is a real file whose syncs snapshot its content into the model.
type crashFile struct {
	*os.File
	fs   *CrashFS
	node *node
}

func (f *crashFile) OS() *os.File    { return f.File }
func (f *crashFile) Sync() error     { return f.sync("sync") }
func (f *crashFile) Datasync() error { return f.sync("datasync") }

func (f *crashFile) sync(op string) error {
	c := f.fs
	c.mu.Lock()
	defer c.mu.Unlock()
	site, dropped := c.siteLocked(op)
	c.traceLocked(op, f.Name(), site)
	if dropped {
		return nil
	}
	// Read through the descriptor: it sees pages written through a
	// shared mapping, and works after the file was renamed or unlinked.
	st, err := f.File.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, st.Size())
	n, err := f.File.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("fs: snapshot %s: %w", f.Name(), err)
	}
	// A shorter read is a file truncated since the Stat (an index
	// trimmed while another goroutine syncs it): a real fsync racing
	// ftruncate succeeds, and keeps one of the two sizes.
	f.node.synced = buf[:n]
	return nil
}

// CrashClone writes into dst (created if missing; it must be empty) what a
// power loss right now would leave of the tree, and returns a CrashFS
// modeling dst. With rng nil it keeps exactly the durable state; with an rng
// it also keeps some unsynced data, as the type documents. The receiver goes
// on working: the program that "lost power" can be shut down afterwards
// without touching dst.
func (c *CrashFS) CrashClone(dst string, rng *rand.Rand) (*CrashFS, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dst); err != nil || len(entries) > 0 {
		return nil, errors.Join(err, fmt.Errorf("fs: crash clone into non-empty %s", dst))
	}
	if err := writeDurable(c.top, dst, rng); err != nil {
		return nil, err
	}
	return NewCrashFS(dst)
}

func writeDurable(dir *node, path string, rng *rand.Rand) error {
	names := make([]string, 0, len(dir.durable))
	for name := range dir.durable {
		names = append(names, name)
	}
	slices.Sort(names) // the rng's draws follow a fixed order
	for _, name := range names {
		n := dir.durable[name]
		p := filepath.Join(path, name)
		if n.dir {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := writeDurable(n, p, rng); err != nil {
				return err
			}
			continue
		}
		data := n.synced
		if rng != nil && n.path != "" {
			if live, err := os.ReadFile(n.path); err == nil {
				data = tear(n.synced, live, rng)
			}
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const (
	sectorSize = 512
	pageSize   = 4096
)

// tear returns what a disk may hold of a file whose last synced content is
// synced and whose page-cache content is live: the synced bytes, each
// differing page possibly replaced by its live version, then a random
// prefix of the live bytes past the synced length with some sectors zeroed.
func tear(synced, live []byte, rng *rand.Rand) []byte {
	out := bytes.Clone(synced)
	for off := 0; off < len(out) && off < len(live); off += pageSize {
		end := min(off+pageSize, len(out), len(live))
		if !bytes.Equal(out[off:end], live[off:end]) && rng.IntN(2) == 0 {
			copy(out[off:end], live[off:end])
		}
	}
	if len(live) <= len(synced) {
		return out
	}
	keep := len(synced) + rng.IntN(len(live)-len(synced)+1)
	tail := bytes.Clone(live[len(synced):keep])
	if rng.IntN(4) == 0 {
		for off := (sectorSize - len(synced)%sectorSize) % sectorSize; off < len(tail); off += sectorSize {
			if rng.IntN(8) == 0 {
				clear(tail[off:min(off+sectorSize, len(tail))])
			}
		}
	}
	return append(out, tail...)
}
