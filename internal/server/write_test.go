package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
)

// regionHandler answers a request whose body is a list of (pos, len)
// int64 pairs with: "<", then per pair a region of f followed by "|", then
// ">". Byte and region parts alternate, so writev and sendfile interleave.
func regionHandler(f *os.File) Handler {
	return HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		b := req.Body
		if len(b)%16 != 0 {
			return nil, errors.New("bad region list")
		}
		parts := []Part{{Bytes: []byte("<")}}
		for ; len(b) > 0; b = b[16:] {
			pos, n := int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
			parts = append(parts, Part{Region: log.Region{File: f, Pos: pos, Len: n}}, Part{Bytes: []byte("|")})
		}
		return &Response{HeaderFlexible: true, Parts: append(parts, Part{Bytes: []byte(">")})}, nil
	})
}

func regionRequest(corr int32, regions ...[2]int64) []byte {
	var body []byte
	for _, r := range regions {
		body = binary.BigEndian.AppendUint64(body, uint64(r[0]))
		body = binary.BigEndian.AppendUint64(body, uint64(r[1]))
	}
	return reqSpec{key: 1, version: 4, corr: corr, clientID: strp("fetcher"), body: body}.frame()
}

func wantRegions(data []byte, regions ...[2]int64) []byte {
	want := []byte("<")
	for _, r := range regions {
		want = append(append(want, data[r[0]:r[0]+r[1]]...), '|')
	}
	return append(want, '>')
}

// segmentFile writes size random bytes to a temp file, opened read-only as
// a segment reader would have it.
func segmentFile(t testing.TB, size int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// plainConn hides the *net.TCPConn so that the server takes the copy path,
// as it will for TLS.
type plainConn struct{ net.Conn }

type plainListener struct{ net.Listener }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return plainConn{c}, nil
}

// pipeListener hands out the server ends of net.Pipes.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(t testing.TB) net.Conn {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
	case <-time.After(5 * time.Second):
		t.Fatal("pipe listener not accepting")
	}
	t.Cleanup(func() { client.Close() })
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// transports runs a test over the sendfile path (TCP and Unix sockets) and
// the copy paths (a TCP conn hidden behind a wrapper, and net.Pipe).
func transports(t *testing.T, h Handler, fn func(t *testing.T, ts *testServer, dial func() net.Conn)) {
	t.Run("sendfile", func(t *testing.T) {
		ts := startServer(t, h, Config{})
		fn(t, ts, func() net.Conn { return dial(t, ts.addr) })
	})
	t.Run("sendfile unix", func(t *testing.T) {
		ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
		if err != nil {
			t.Fatal(err)
		}
		ts := serveOn(t, ln, h, Config{})
		fn(t, ts, func() net.Conn {
			c, err := net.Dial("unix", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		})
	})
	t.Run("copy", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts := serveOn(t, plainListener{ln}, h, Config{})
		fn(t, ts, func() net.Conn { return dial(t, ts.addr) })
	})
	t.Run("pipe", func(t *testing.T) {
		pl := newPipeListener()
		ts := serveOn(t, pl, h, Config{})
		fn(t, ts, func() net.Conn { return pl.dial(t) })
	})
}

func TestRegions(t *testing.T) {
	const size = 8 << 20
	f, data := segmentFile(t, size)
	transports(t, regionHandler(f), func(t *testing.T, ts *testServer, dial func() net.Conn) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for conn := range 16 {
			c := dial()
			wg.Go(func() {
				rng := mrand.New(mrand.NewPCG(uint64(conn), 1))
				for i := range 20 {
					var regions [][2]int64
					for range 1 + rng.IntN(4) {
						pos := 1 + rng.Int64N(size-1) // nonzero offsets
						regions = append(regions, [2]int64{pos, rng.Int64N(min(size-pos, 64<<10))})
					}
					if conn == 0 && i == 0 {
						// Larger than the socket buffers: sendfile sees
						// EAGAIN and must resume at the right offset.
						regions = append(regions, [2]int64{3, size - 3})
					}
					if _, err := c.Write(regionRequest(int32(i), regions...)); err != nil {
						errs <- err
						return
					}
					corr, body, err := readResponse(c, true)
					if err != nil {
						errs <- err
						return
					}
					if corr != int32(i) || !bytes.Equal(body, wantRegions(data, regions...)) {
						errs <- fmt.Errorf("conn %d request %d: response differs (corr %d, %d bytes)", conn, i, corr, len(body))
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Nothing used or moved the file's shared position.
		if pos, _ := f.Seek(0, io.SeekCurrent); pos != 0 {
			t.Errorf("file position moved to %d", pos)
		}
	})
}

// A region past the end of its file (truncated under us) cannot complete
// the frame: the connection closes, with a log line.
func TestRegionTruncated(t *testing.T) {
	f, data := segmentFile(t, 1<<20)
	transports(t, regionHandler(f), func(t *testing.T, ts *testServer, dial func() net.Conn) {
		c := dial()
		c.Write(regionRequest(1, [2]int64{10, 100}))
		if _, body, err := readResponse(c, true); err != nil || !bytes.Equal(body, wantRegions(data, [2]int64{10, 100})) {
			t.Fatalf("first response: %v", err)
		}
		c.Write(regionRequest(2, [2]int64{1<<20 - 50, 100}))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection not closed")
		}
		// The frame is cut short: size prefix + header + "<" + 50 file bytes at most.
		if len(got) > 4+5+1+50 {
			t.Errorf("read %d bytes of the broken frame", len(got))
		}
		recs := ts.logs.waitFor(t, "file region")
		if len(recs) != 1 {
			t.Fatalf("log records %+v", recs)
		}
	})
}

// Many connections sending regions of the same file at the same time
// through both paths of one server.
func TestRegionsSharedFileBothPaths(t *testing.T) {
	const size = 1 << 20
	f, data := segmentFile(t, size)
	h := regionHandler(f)
	tcp := startServer(t, h, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cp := serveOn(t, plainListener{ln}, h, Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		for _, addr := range []string{tcp.addr, cp.addr} {
			c := dial(t, addr)
			wg.Go(func() {
				for j := range 10 {
					r := [2]int64{int64(i*1000 + j*7919), int64(100_000 + j)}
					c.Write(regionRequest(int32(j), r))
					if _, body, err := readResponse(c, true); err != nil || !bytes.Equal(body, wantRegions(data, r)) {
						t.Errorf("%s: request %d: %v", addr, j, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// A region sendfile cannot send (a pipe has no offsets) fails the
// connection, with a log line naming the error.
func TestSendfileErrorClosesConn(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte("pipe data"))
	ts := startServer(t, regionHandler(r), Config{})
	c := dial(t, ts.addr)
	c.Write(regionRequest(1, [2]int64{0, 4}))
	expectClosed(t, c)
	recs := ts.logs.waitFor(t, "file region")
	if len(recs) != 1 || recs[0].attrs["err"] != "sendfile: illegal seek" {
		t.Fatalf("log records %+v, want the sendfile error", recs)
	}
	c = dial(t, ts.addr)
	c.Write(regionRequest(2))
	if _, body, err := readResponse(c, true); err != nil || string(body) != "<>" {
		t.Fatalf("next connection: %q, %v", body, err)
	}
}
