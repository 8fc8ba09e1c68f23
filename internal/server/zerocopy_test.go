package server

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
)

// The zero-copy proof (DESIGN.md principle 1): consuming 1 GiB through
// sendfile costs less CPU than the same transfer through the read/write
// fallback. Both paths run in one process, from the page cache to a reader
// in a child process that discards, so the reader's own copy to user space
// is not charged to the server; over loopback TCP and over a Unix socket.
// The figures are medians of alternating rounds (STRATA_ZEROCOPY_PROOF=N
// sets N, default 5): on loopback the kernel charges TCP receive
// processing to whichever side happens to run it, the sender's softirq or
// the reader's release_sock, so single runs vary a lot.
//
//	STRATA_ZEROCOPY_PROOF=5 go test -run TestZeroCopyCPU -v ./internal/server/

const (
	proofFileSize = 256 << 20
	proofTotal    = 1 << 30
)

func TestZeroCopyCPU(t *testing.T) {
	if os.Getenv("STRATA_ZEROCOPY_PROOF") == "" {
		t.Skip("set STRATA_ZEROCOPY_PROOF=1 to measure sendfile against copy CPU time")
	}
	f := bigSegment(t, proofFileSize)
	h := wholeFileHandler(f)
	listen := func(network string, wrap bool) (*testServer, string) {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "sock")
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		if wrap {
			ln = plainListener{ln}
		}
		return serveOn(t, ln, h, Config{}), network + ":" + ln.Addr().String()
	}
	requests := proofTotal / proofFileSize
	gib := float64(requests*proofFileSize) / (1 << 30)
	// measure runs one child that fetches 1 GiB, and returns this
	// process's CPU time over the transfer per GiB, the child's, and the
	// throughput.
	measure := func(sink string) (server, reader, mibs float64) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestZeroCopySink$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STRATA_ZEROCOPY_SINK="+sink, "STRATA_ZEROCOPY_REQUESTS="+strconv.Itoa(requests))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		before := selfCPU(t)
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("sink: %v", err)
		}
		wall := time.Since(start)
		server = (selfCPU(t) - before).Seconds() / gib
		reader = rusageCPU(cmd.ProcessState.SysUsage().(*syscall.Rusage)).Seconds() / gib
		return server, reader, mibps(requests*proofFileSize, wall)
	}
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("STRATA_ZEROCOPY_PROOF")); err == nil && n > 1 {
		rounds = n
	}
	for _, network := range []string{"tcp", "unix"} {
		_, sf := listen(network, false)
		_, cp := listen(network, true)
		measure(sf) // warm up: page cache, socket buffers, code
		var sfServer, sfReader, cpServer, cpReader []float64
		for range rounds { // alternate, so background load hits both alike
			s, r, _ := measure(sf)
			sfServer, sfReader = append(sfServer, s), append(sfReader, r)
			s, r, _ = measure(cp)
			cpServer, cpReader = append(cpServer, s), append(cpReader, r)
		}
		sfS, cpS := median(sfServer), median(cpServer)
		t.Logf("%s sendfile: server %.3f CPU-s/GiB (min %.3f), reader %.3f", network, sfS, slices.Min(sfServer), median(sfReader))
		t.Logf("%s copy:     server %.3f CPU-s/GiB (min %.3f), reader %.3f", network, cpS, slices.Min(cpServer), median(cpReader))
		t.Logf("%s sendfile/copy server CPU (medians of %d): %.2f; saved %.3f CPU-s/GiB", network, rounds, sfS/cpS, cpS-sfS)
		if sfS >= cpS {
			t.Errorf("%s: sendfile used %.3f CPU-s/GiB, copy %.3f", network, sfS, cpS)
		}
	}
}

func median(xs []float64) float64 {
	xs = slices.Sorted(slices.Values(xs))
	return xs[len(xs)/2]
}

// TestZeroCopySink is the child process of TestZeroCopyCPU: it fetches
// and discards.
func TestZeroCopySink(t *testing.T) {
	sink := os.Getenv("STRATA_ZEROCOPY_SINK")
	if sink == "" {
		t.Skip("child process of TestZeroCopyCPU")
	}
	network, addr, _ := strings.Cut(sink, ":")
	n, _ := strconv.Atoi(os.Getenv("STRATA_ZEROCOPY_REQUESTS"))
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := fetchAll(c, n, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
}

// fetchAll sends n fetches and discards the responses.
func fetchAll(c net.Conn, n int, buf []byte) error {
	for i := range n {
		if _, err := c.Write(echoFrame(int32(i), nil)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return err
		}
		if _, err := io.CopyBuffer(io.Discard, io.LimitReader(readerOnly{c}, int64(binary.BigEndian.Uint32(buf))), buf); err != nil {
			return err
		}
	}
	return nil
}

// readerOnly hides net.Conn's WriterTo so CopyBuffer uses our buffer.
type readerOnly struct{ io.Reader }

// wholeFileHandler answers every request with all of f, as one region.
func wholeFileHandler(f *os.File) Handler {
	st, err := f.Stat()
	if err != nil {
		panic(err)
	}
	return HandlerFunc(func(context.Context, *Request) (*Response, error) {
		return &Response{Parts: []Part{{Region: log.Region{File: f, Pos: 0, Len: st.Size()}}}}, nil
	})
}

// bigSegment writes a file of size bytes (left in the page cache by the
// write) and opens it for reading.
func bigSegment(t testing.TB, size int) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "00000000000000000000.log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>8)
	}
	for range size / len(block) {
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func selfCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return rusageCPU(&ru)
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mibps(n int, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

// BenchmarkFetchSendfile and BenchmarkFetchCopy fetch 64 MiB responses
// over loopback with the reader in this process; cpu-s/GiB counts the
// whole process (reader included), so TestZeroCopyCPU is the cleaner
// comparison.
func BenchmarkFetchSendfile(b *testing.B) {
	benchmarkFetch(b, func(ln net.Listener) net.Listener { return ln })
}

func BenchmarkFetchCopy(b *testing.B) {
	benchmarkFetch(b, func(ln net.Listener) net.Listener { return plainListener{ln} })
}

func benchmarkFetch(b *testing.B, wrap func(net.Listener) net.Listener) {
	const size = 64 << 20
	f := bigSegment(b, size)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ts := serveOn(b, wrap(ln), wholeFileHandler(f), Config{})
	c := dial(b, ts.addr)
	c.SetDeadline(time.Time{})
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	before := selfCPU(b)
	n := 0
	for b.Loop() {
		if err := fetchAll(c, 1, buf); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric((selfCPU(b)-before).Seconds()/(float64(n)*size/(1<<30)), "cpu-s/GiB")
}
