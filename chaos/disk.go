package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Disks puts each node's log dir on a small tmpfs of its own, so that a
// nemesis can fill one node's disk without touching the others or the
// machine's (issue 14's disk full: Kafka answers KAFKA_STORAGE_ERROR or
// takes the log dir offline; it must corrupt nothing and serve again once
// space is freed):
//
//	<run dir>/node1  tmpfs "strata-chaos-pid-<pid>", size=<size>   node 1's log.dirs
//	<run dir>/node2  tmpfs "strata-chaos-pid-<pid>", size=<size>   node 2's log.dirs
//	...
//
// Fill fallocates a ballast file (.chaos-ballast, a plain file the broker
// skips as it skips anything not a partition directory) that leaves about
// DiskLeave bytes free; Free removes it. The mount's source names the
// runner's pid, so that SweepDisks can unmount what a killed runner left,
// as SweepLabs does for namespaces. Everything a node writes is on the
// tmpfs: its partitions, checkpoints, producer snapshots, and the metadata
// log (__cluster_metadata on one node, __raft's bolt file in a cluster).
//
// Needs root (mount(2)). Safe for concurrent use.
type Disks struct {
	Size int64
	Dirs []string // node i's mount point, its log dir
	mu   sync.Mutex
}

const (
	diskSourcePrefix = "strata-chaos-pid-"
	ballastName      = ".chaos-ballast"
	// DiskLeave is what a filled disk keeps free: a few pages, so that
	// the broker's next writes hit ENOSPC within a moment, some of them
	// after a partial write (the case strata undoes).
	DiskLeave = 16 << 10
)

// DisksAvailable says why disks cannot be mounted here, or nil. A mount
// can still fail (no CAP_SYS_ADMIN in a container): MountDisks says so.
func DisksAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos: a small tmpfs per node needs root (run as root, or drop the diskfull nemesis)")
	}
	return nil
}

// MountDisks mounts a tmpfs of size bytes on each of dirs (created if
// missing; they should be empty). On error it unmounts whatever it
// mounted.
func MountDisks(dirs []string, size int64) (*Disks, error) {
	if err := DisksAvailable(); err != nil {
		return nil, err
	}
	if size < 1<<20 {
		return nil, fmt.Errorf("chaos: disk size %d is under 1 MiB", size)
	}
	SweepDisks()
	d := &Disks{Size: size}
	src := diskSourcePrefix + strconv.Itoa(os.Getpid())
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.Close()
			return nil, err
		}
		if err := unix.Mount(src, dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
			d.Close()
			return nil, fmt.Errorf("chaos: mount a %d-byte tmpfs on %s: %w", size, dir, err)
		}
		d.Dirs = append(d.Dirs, dir)
	}
	return d, nil
}

// Fill leaves about DiskLeave bytes free on node victim's disk. The broker
// writes meanwhile, so the free space is read again and the ballast grown
// until it fits.
func (d *Disks) Fill(victim int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	dir := d.Dirs[victim]
	f, err := os.OpenFile(filepath.Join(dir, ballastName), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: ballast on %s: %w", dir, err)
	}
	defer f.Close()
	for try := 0; try < 20; try++ {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("chaos: statfs %s: %w", dir, err)
		}
		free := int64(st.Bavail) * st.Bsize
		if free <= DiskLeave {
			return nil
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		cur, n := fi.Size(), free-DiskLeave
		err = unix.Fallocate(int(f.Fd()), 0, cur, n)
		if errors.Is(err, syscall.EOPNOTSUPP) {
			err = writeZeros(f, cur, n)
		}
		if err != nil && !errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("chaos: grow ballast on %s by %d bytes: %w", dir, n, err)
		}
		// ENOSPC: the broker took some of the space first; measure again.
	}
	return fmt.Errorf("chaos: could not fill %s: the broker keeps taking space", dir)
}

func writeZeros(f *os.File, off, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		w, err := f.WriteAt(b, off)
		if err != nil {
			return err
		}
		off, n = off+int64(w), n-int64(w)
	}
	return nil
}

// Free removes node victim's ballast.
func (d *Disks) Free(victim int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := os.Remove(filepath.Join(d.Dirs[victim], ballastName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Close unmounts every disk (lazily: a broker still holding files does
// not keep it mounted), dropping what the nodes wrote there. It is safe to
// call on a half-mounted set.
func (d *Disks) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, dir := range d.Dirs {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("chaos: unmount %s: %w", dir, err))
		}
	}
	d.Dirs = nil
	return errors.Join(errs...)
}

// SweepDisks unmounts the disks of runners that are gone (killed before
// their Close ran), and removes their mount points if empty.
func SweepDisks() {
	for _, m := range chaosMounts() {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", m.pid)); err == nil {
			continue // its runner still runs
		}
		if unix.Unmount(m.dir, unix.MNT_DETACH) == nil {
			_ = os.Remove(m.dir)
		}
	}
}

type chaosMount struct {
	dir string
	pid int
}

// chaosMounts lists the tmpfs mounts that some runner made.
func chaosMounts() []chaosMount {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	return parseMounts(string(b))
}

// parseMounts reads /proc/self/mounts lines ("source dir fstype opts 0 0",
// with spaces in dir escaped as \040) and keeps the chaos tmpfs mounts.
func parseMounts(s string) []chaosMount {
	var out []chaosMount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" || !strings.HasPrefix(f[0], diskSourcePrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], diskSourcePrefix))
		if err != nil {
			continue
		}
		out = append(out, chaosMount{dir: unescapeMount(f[1]), pid: pid})
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes of space, tab, newline
// and backslash in a mount point.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseSize reads a size such as 256m, 1g, 64k or 1048576 (bytes).
func ParseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, strings.TrimSuffix(s, "g")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("chaos: bad size %q (want e.g. 256m)", s)
	}
	return n * mult, nil
}
