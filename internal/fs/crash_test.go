package fs

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func newCrashFS(t *testing.T) (*CrashFS, string) {
	t.Helper()
	root := t.TempDir()
	c, err := NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

// crash clones c strictly (durable state only) and returns the new root.
func crash(t *testing.T, c *CrashFS, rng *rand.Rand) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "after")
	if _, err := c.CrashClone(dst, rng); err != nil {
		t.Fatal(err)
	}
	return dst
}

func create(t *testing.T, c *CrashFS, path string, data []byte) File {
	t.Helper()
	f, err := c.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// content returns the file's content after the crash, or "<missing>".
func content(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCrashFSModel walks the model's rules one case at a time: what a
// crash keeps of file content, directory entries, renames and removals.
func TestCrashFSModel(t *testing.T) {
	cases := []struct {
		name string
		do   func(t *testing.T, c *CrashFS, root string)
		want map[string]string // file -> content after the crash
	}{
		{"created, nothing synced", func(t *testing.T, c *CrashFS, root string) {
			create(t, c, filepath.Join(root, "a"), []byte("x"))
		}, map[string]string{"a": "<missing>"}},
		{"created, dir synced, file not", func(t *testing.T, c *CrashFS, root string) {
			create(t, c, filepath.Join(root, "a"), []byte("x"))
			must(t, c.SyncDir(root))
		}, map[string]string{"a": ""}},
		{"file synced, dir not", func(t *testing.T, c *CrashFS, root string) {
			f := create(t, c, filepath.Join(root, "a"), []byte("x"))
			must(t, f.Datasync())
		}, map[string]string{"a": "<missing>"}},
		{"both synced, then more written", func(t *testing.T, c *CrashFS, root string) {
			f := create(t, c, filepath.Join(root, "a"), []byte("synced"))
			must(t, f.Sync())
			must(t, c.SyncDir(root))
			f.Write([]byte("+lost"))
			f.Truncate(2) // unsynced truncation is lost too
		}, map[string]string{"a": "synced"}},
		{"rename not synced", func(t *testing.T, c *CrashFS, root string) {
			f := create(t, c, filepath.Join(root, "a"), []byte("old"))
			must(t, f.Sync())
			must(t, c.SyncDir(root))
			g := create(t, c, filepath.Join(root, "a.tmp"), []byte("new"))
			must(t, g.Sync())
			must(t, c.Rename(filepath.Join(root, "a.tmp"), filepath.Join(root, "a")))
		}, map[string]string{"a": "old", "a.tmp": "<missing>"}},
		{"rename synced", func(t *testing.T, c *CrashFS, root string) {
			f := create(t, c, filepath.Join(root, "a"), []byte("old"))
			must(t, f.Sync())
			must(t, c.SyncDir(root))
			g := create(t, c, filepath.Join(root, "a.tmp"), []byte("new"))
			must(t, g.Sync())
			must(t, c.Rename(filepath.Join(root, "a.tmp"), filepath.Join(root, "a")))
			must(t, c.SyncDir(root))
		}, map[string]string{"a": "new", "a.tmp": "<missing>"}},
		{"remove not synced", func(t *testing.T, c *CrashFS, root string) {
			f := create(t, c, filepath.Join(root, "a"), []byte("kept"))
			must(t, f.Sync())
			must(t, c.SyncDir(root))
			must(t, c.Remove(filepath.Join(root, "a")))
		}, map[string]string{"a": "kept"}},
		{"subdirectory not synced in its parent", func(t *testing.T, c *CrashFS, root string) {
			must(t, c.MkdirAll(filepath.Join(root, "d"), 0o755))
			f := create(t, c, filepath.Join(root, "d", "a"), []byte("x"))
			must(t, f.Sync())
			must(t, c.SyncDir(filepath.Join(root, "d")))
		}, map[string]string{"d/a": "<missing>"}},
		{"renamed directory keeps its synced entries", func(t *testing.T, c *CrashFS, root string) {
			must(t, c.MkdirAll(filepath.Join(root, "d"), 0o755))
			f := create(t, c, filepath.Join(root, "d", "a"), []byte("x"))
			must(t, f.Sync())
			must(t, c.SyncDir(filepath.Join(root, "d")))
			must(t, c.Rename(filepath.Join(root, "d"), filepath.Join(root, "e")))
			must(t, c.SyncDir(root))
		}, map[string]string{"d/a": "<missing>", "e/a": "x"}},
		{"WriteAtomic", func(t *testing.T, c *CrashFS, root string) {
			must(t, WriteAtomic(c, filepath.Join(root, "cp"), []byte("v1")))
		}, map[string]string{"cp": "v1"}},
		{"bypassing the seam", func(t *testing.T, c *CrashFS, root string) {
			must(t, os.WriteFile(filepath.Join(root, "a"), []byte("x"), 0o644))
			must(t, c.SyncDir(root))
		}, map[string]string{"a": "<missing>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, root := newCrashFS(t)
			tc.do(t, c, root)
			after := crash(t, c, nil)
			for name, want := range tc.want {
				if got := content(t, after, name); got != want {
					t.Errorf("%s after crash = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestCrashFSMmap: pages written through a shared mapping are durable once
// the file is synced, and only then (the index files' case).
func TestCrashFSMmap(t *testing.T) {
	c, root := newCrashFS(t)
	f := create(t, c, filepath.Join(root, "x.index"), nil)
	must(t, f.Truncate(4096))
	must(t, c.SyncDir(root))
	m, err := unix.Mmap(int(f.OS().Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(t, err)
	defer unix.Munmap(m)
	copy(m, "entry-1")
	must(t, f.Sync())
	copy(m[7:], "entry-2")
	got := content(t, crash(t, c, nil), "x.index")
	if len(got) != 4096 || !strings.HasPrefix(got, "entry-1\x00") {
		t.Fatalf("index after crash starts %q (len %d), want entry-1 only", got[:16], len(got))
	}
}

// TestCrashFSDropSync: a dropped call site is a no-op, recorded in Sites.
func TestCrashFSDropSync(t *testing.T) {
	c, root := newCrashFS(t)
	must(t, WriteAtomic(c, filepath.Join(root, "cp"), []byte("v1")))
	c.SetDropSync(func(site string) bool { return strings.HasPrefix(site, "syncdir fs.WriteAtomic") })
	must(t, WriteAtomic(c, filepath.Join(root, "cp"), []byte("v2")))
	if got := content(t, crash(t, c, nil), "cp"); got != "v1" {
		t.Fatalf("cp = %q, want v1: the rename was not made durable", got)
	}
	sites := c.Sites()
	if sites["syncdir fs.WriteAtomic"] != 2 || sites["sync fs.WriteAtomic"] != 2 {
		t.Fatalf("sites = %v", sites)
	}
}

// TestCrashFSTear: with an rng, a crash keeps the synced bytes and a prefix
// of the unsynced tail (some sectors zeroed), never more than was written.
func TestCrashFSTear(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		synced := bytes.Repeat([]byte{'s'}, rng.IntN(3000))
		live := append(bytes.Clone(synced), bytes.Repeat([]byte{'u'}, rng.IntN(5000))...)
		got := tear(synced, live, rng)
		if !bytes.HasPrefix(got, synced) || len(got) > len(live) {
			t.Fatalf("seed %d: kept %d bytes, synced %d, live %d", seed, len(got), len(synced), len(live))
		}
		for i, b := range got[len(synced):] {
			if b != 'u' && b != 0 {
				t.Fatalf("seed %d: byte %d of the tail is %q", seed, i, b)
			}
		}
	}
}
