package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// probeResult is what this machine can do without any broker: the
// ceilings the broker figures should be read against.
type probeResult struct {
	LoopbackMBps    float64 // one TCP stream over loopback, 256 KiB writes
	SendfileMBps    float64 // sendfile(2) from a page-cached file to a loopback socket
	FdatasyncMBps   float64 // sequential 1 MiB writes, each followed by fdatasync
	Fdatasync16KOps float64 // 16 KiB write + fdatasync per second (one writer)
	// A 1 KiB ping-pong over loopback TCP at 10,000 round trips per second
	// between two goroutines: the floor of end-to-end latency here.
	PingP50Ms, PingP99Ms, PingP999Ms float64
}

// probe measures each ceiling for d.
func probe(dir string, d time.Duration, fileBytes int64) (probeResult, error) {
	var r probeResult
	var err error
	if r.LoopbackMBps, err = probeLoopback(d, nil); err != nil {
		return r, fmt.Errorf("loopback: %w", err)
	}
	if r.SendfileMBps, err = probeSendfile(dir, d, fileBytes); err != nil {
		return r, fmt.Errorf("sendfile: %w", err)
	}
	if r.FdatasyncMBps, _, err = probeFdatasync(dir, d, 1<<20); err != nil {
		return r, fmt.Errorf("fdatasync: %w", err)
	}
	if _, r.Fdatasync16KOps, err = probeFdatasync(dir, d, 16<<10); err != nil {
		return r, fmt.Errorf("fdatasync: %w", err)
	}
	if r.PingP50Ms, r.PingP99Ms, r.PingP999Ms, err = probePing(max(d, time.Second), 10000); err != nil {
		return r, fmt.Errorf("ping: %w", err)
	}
	return r, nil
}

// probePing sends 1 KiB messages at rate per second over loopback TCP to
// an echo goroutine for d and returns round-trip percentiles in ms. A
// record's end-to-end trip through a broker takes at least two such
// one-way hops plus the wake-ups, so this is what the machine's scheduler
// and network stack alone add to e2e latency.
func probePing(d time.Duration, rate int) (p50, p99, p999 float64, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	buf := make([]byte, 1024)
	interval := time.Second / time.Duration(rate)
	var rtts sample
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return 0, 0, 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, 0, 0, err
		}
		rtts = append(rtts, float64(time.Since(t0))/1e6)
	}
	s := rtts.sorted()
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return q(0.50), q(0.99), q(0.999), nil
}

// probeLoopback streams for d from a writer to a reader that discards,
// over one loopback TCP connection. With file set, the writer sends the
// file with sendfile(2) over and over instead of writing a buffer.
func probeLoopback(d time.Duration, file *os.File) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 256<<10))
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if file == nil {
		buf := make([]byte, 256<<10)
		for time.Since(start) < d {
			if _, err := c.Write(buf); err != nil {
				c.Close()
				return 0, err
			}
		}
	} else {
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return 0, err
		}
		st, err := file.Stat()
		if err != nil {
			return 0, err
		}
		var serr error
		for time.Since(start) < d && serr == nil {
			var off int64
			for off < st.Size() && serr == nil {
				werr := raw.Write(func(fd uintptr) bool {
					_, serr = syscall.Sendfile(int(fd), int(file.Fd()), &off, 1<<20)
					return serr != syscall.EAGAIN
				})
				if serr == syscall.EAGAIN {
					serr = nil
				}
				if werr != nil {
					serr = werr
				}
			}
		}
		if serr != nil {
			c.Close()
			return 0, serr
		}
	}
	c.Close()
	elapsed := time.Since(start)
	n := <-got
	return float64(n) / elapsed.Seconds() / 1e6, nil
}

// probeSendfile writes a file of fileBytes, reads it once so it is in the
// page cache, and sends it to a loopback socket with sendfile(2).
func probeSendfile(dir string, d time.Duration, fileBytes int64) (float64, error) {
	path := filepath.Join(dir, "probe-sendfile")
	defer os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for n := int64(0); n < fileBytes; n += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
	}
	if _, err := f.Seek(0, 0); err != nil {
		return 0, err
	}
	if _, err := io.CopyBuffer(io.Discard, f, buf); err != nil {
		return 0, err
	}
	return probeLoopback(d, f)
}

// probeFdatasync writes chunk bytes and fdatasyncs, over and over for d,
// to a new file: MB/s and syncs per second.
func probeFdatasync(dir string, d time.Duration, chunk int) (mbps, ops float64, err error) {
	path := filepath.Join(dir, "probe-fdatasync")
	defer os.Remove(path)
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, chunk)
	rand.Read(buf)
	var n, syncs int64
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, err
		}
		n += int64(chunk)
		syncs++
	}
	secs := time.Since(start).Seconds()
	return float64(n) / secs / 1e6, float64(syncs) / secs, nil
}

// machine describes this machine for the report.
type machine struct {
	CPU    string
	Cores  int
	MemGiB float64
	Disk   string // filesystem of the work directory
	Kernel string
	Go     string
}

func describeMachine(dir string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Disk = mountOf(dir)
	return m
}

// mountOf names the device, filesystem and options of the mount holding
// dir, from /proc/mounts (longest matching mount point).
func mountOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, desc := "", ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, desc = mp, fmt.Sprintf("%s on %s (%s, %s)", f[0], mp, f[2], f[3])
		}
	}
	var st syscall.Statfs_t
	if syscall.Statfs(abs, &st) == nil {
		desc += fmt.Sprintf(", %.0f GB, %.0f GB free", float64(st.Blocks)*float64(st.Bsize)/1e9, float64(st.Bavail)*float64(st.Bsize)/1e9)
	}
	return desc
}
