package chaos

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMounts(t *testing.T) {
	in := "/dev/vda / ext4 rw 0 0\n" +
		"strata-chaos-pid-42 /tmp/strata-chaos-1/node1 tmpfs rw,size=1024k 0 0\n" +
		"strata-chaos-pid-x /tmp/a tmpfs rw 0 0\n" +
		"tmpfs /dev/shm tmpfs rw 0 0\n" +
		"strata-chaos-pid-7 /tmp/with\\040space tmpfs rw 0 0\n" +
		"strata-chaos-pid-8 /tmp/b ext4 rw 0 0\n"
	got := parseMounts(in)
	want := []chaosMount{{"/tmp/strata-chaos-1/node1", 42}, {"/tmp/with space", 7}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mount %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"256m", 256 << 20}, {"1G", 1 << 30}, {"64k", 64 << 10}, {"4096", 4096}, {"x", 0}, {"-1m", 0}, {"", 0}} {
		got, err := ParseSize(c.in)
		if (err != nil) != (c.want == 0) || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// TestDisksFillFree checks the nemesis's disks themselves: a filled disk
// refuses a write of a few pages with ENOSPC while the other disk does
// not, a freed one takes it, and Close unmounts both. A mount left by a
// runner that is gone is swept by the next MountDisks.
func TestDisksFillFree(t *testing.T) {
	if err := DisksAvailable(); err != nil {
		t.Skip(err)
	}
	base := t.TempDir()
	// What a killed runner left: a mount naming a pid that does not run.
	stale := filepath.Join(base, "stale")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(diskSourcePrefix+"999999999", stale, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	dirs := []string{filepath.Join(base, "node1"), filepath.Join(base, "node2")}
	d, err := MountDisks(dirs, 8<<20)
	if err != nil {
		_ = unix.Unmount(stale, unix.MNT_DETACH)
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	for _, m := range chaosMounts() {
		if m.dir == stale {
			_ = unix.Unmount(stale, unix.MNT_DETACH)
			t.Fatalf("the stale mount %s was not swept", stale)
		}
	}
	write := func(i int) error {
		return os.WriteFile(filepath.Join(dirs[i], "data"), make([]byte, 4*DiskLeave), 0o644)
	}
	if err := d.Fill(0); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dirs[0], &st); err != nil {
		t.Fatal(err)
	}
	if free := int64(st.Bavail) * st.Bsize; free > DiskLeave {
		t.Errorf("%d bytes free after Fill, want at most %d", free, DiskLeave)
	}
	if err := write(0); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write to a full disk: %v, want ENOSPC", err)
	}
	if err := write(1); err != nil {
		t.Errorf("write to the other disk: %v", err)
	}
	if err := d.Fill(0); err != nil { // again: nothing to do
		t.Fatal(err)
	}
	if err := d.Free(0); err != nil {
		t.Fatal(err)
	}
	if err := write(0); err != nil {
		t.Errorf("write after Free: %v", err)
	}
	closed = true
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range chaosMounts() {
		if m.pid == os.Getpid() {
			t.Errorf("still mounted after Close: %s", m.dir)
		}
	}
}
