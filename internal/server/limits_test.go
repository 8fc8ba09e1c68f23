package server

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond: the server changes state on its own goroutines.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// selfRSS is this process's VmRSS in bytes.
func selfRSS(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// TestLyingSizePrefix: clients announcing 99 MiB and sending 1 MiB cost
// the server about 1 MiB each, on the heap and in RSS, not 99 MiB.
func TestLyingSizePrefix(t *testing.T) {
	const (
		liars     = 8
		announced = 99 << 20
		sent      = frameChunk // the server charges its second chunk only after reading this one
	)
	ts := startServer(t, echo, Config{})
	runtime.GC()
	heap0, rss0 := heapInUse(), selfRSS(t)
	frame := echoFrame(1, nil)
	binary.BigEndian.PutUint32(frame, announced)
	frame = append(frame, make([]byte, sent-(len(frame)-4))...)
	for range liars {
		c := dial(t, ts.addr)
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	// Each reader has read its first chunk once it charges the second.
	waitUntil(t, "the server to read every liar's first MiB", func() bool {
		return ts.QueuedRequestBytes() == liars*2*frameChunk
	})
	heap, rss := heapInUse()-heap0, selfRSS(t)-rss0
	t.Logf("%d clients announcing %d MiB and sending %d MiB: heap +%d MiB, RSS +%d MiB",
		liars, announced>>20, sent>>20, heap>>20, rss>>20)
	// Generous: the test's own client buffers and the runtime count too.
	if limit := int64(liars * 4 * sent); heap > limit || rss > limit {
		t.Errorf("heap grew %d MiB, RSS %d MiB; want under %d MiB", heap>>20, rss>>20, limit>>20)
	}
}

// gatedEcho answers a request once its body's first byte is let through
// open; calls counts the requests handled, by that byte.
type gatedEcho struct {
	mu    sync.Mutex
	gates map[byte]chan struct{}
	calls map[byte]int
}

func newGatedEcho() *gatedEcho {
	return &gatedEcho{gates: map[byte]chan struct{}{}, calls: map[byte]int{}}
}

func (g *gatedEcho) gate(b byte) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.gates[b]
	if !ok {
		ch = make(chan struct{})
		g.gates[b] = ch
	}
	return ch
}

func (g *gatedEcho) called(b byte) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[b]
}

func (g *gatedEcho) Handle(ctx context.Context, req *Request) (*Response, error) {
	b := req.Body[0]
	g.mu.Lock()
	g.calls[b]++
	g.mu.Unlock()
	select {
	case <-g.gate(b):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &Response{Parts: []Part{{Bytes: req.Body[:1]}}}, nil
}

func bodyOf(b byte, n int) []byte {
	body := make([]byte, n)
	body[0] = b
	return body
}

// TestQueuedMaxRequestBytes: while the bytes of the requests read and not
// yet answered are at queued.max.request.bytes, no connection reads a new
// request; once responses are written, reading resumes.
func TestQueuedMaxRequestBytes(t *testing.T) {
	const limit = 64 << 10
	g := newGatedEcho()
	ts := startServer(t, g, Config{QueuedMaxRequestBytes: limit})
	a, b, c := dial(t, ts.addr), dial(t, ts.addr), dial(t, ts.addr)
	a.Write(echoFrame(1, bodyOf('a', 60<<10)))
	waitUntil(t, "a to be handled", func() bool { return g.called('a') == 1 })
	// Kafka's pool is not strict: with room left, b's request is read
	// even though it takes the pool past its limit.
	b.Write(echoFrame(2, bodyOf('b', 10<<10)))
	waitUntil(t, "b to be handled", func() bool { return g.called('b') == 1 })
	if used := ts.QueuedRequestBytes(); used <= limit {
		t.Fatalf("%d bytes charged, want over %d", used, limit)
	}
	// Now the pool is spent: c's reader waits after the size prefix.
	c.Write(echoFrame(3, bodyOf('c', 100)))
	waitUntil(t, "c's reader to wait for memory", func() bool { return ts.mem.waiters.Load() == 1 })
	if n := g.called('c'); n != 0 {
		t.Fatalf("c handled %d times while the pool was spent", n)
	}
	close(g.gate('c'))
	close(g.gate('a'))
	// a's response frees 60 KiB: c is read, handled and answered.
	for _, x := range []struct {
		conn net.Conn
		corr int32
	}{{a, 1}, {c, 3}} {
		if corr, _, err := readResponse(x.conn, false); err != nil || corr != x.corr {
			t.Fatalf("response %d: corr %d, %v", x.corr, corr, err)
		}
	}
	close(g.gate('b'))
	if corr, _, err := readResponse(b, false); err != nil || corr != 2 {
		t.Fatalf("response 2: corr %d, %v", corr, err)
	}
	waitUntil(t, "every byte released", func() bool { return ts.QueuedRequestBytes() == 0 })
}

// TestRequestLargerThanPool: a request larger than the whole pool is read
// when nothing else holds memory, as Kafka's non-strict pool allows; two
// of them sent at once, each charged chunk by chunk, do not deadlock.
func TestRequestLargerThanPool(t *testing.T) {
	const size = 3*frameChunk + 100
	ts := startServer(t, smallEchoLen{}, Config{QueuedMaxRequestBytes: 64 << 10})
	var wg sync.WaitGroup
	for i := range 2 {
		c := dial(t, ts.addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Write(echoFrame(int32(i), make([]byte, size))); err != nil {
				t.Error(err)
			}
		}()
		defer func() {
			corr, body, err := readResponse(c, false)
			if err != nil || corr != int32(i) || binary.BigEndian.Uint32(body) != size {
				t.Errorf("response %d: corr %d body %x, %v", i, corr, body, err)
			}
		}()
	}
	wg.Wait()
}

// smallEchoLen answers with the body's length.
type smallEchoLen struct{}

func (smallEchoLen) Handle(_ context.Context, req *Request) (*Response, error) {
	return &Response{Parts: []Part{{Bytes: binary.BigEndian.AppendUint32(nil, uint32(len(req.Body)))}}}, nil
}

// rejections counts OnConnRejected calls by reason.
type rejections struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *rejections) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *rejections) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// TestMaxConnections: past max.connections a new connection is closed at
// accept and counted, and one line is logged for a burst; once a
// connection closes, a new one is served.
func TestMaxConnections(t *testing.T) {
	var rej rejections
	var open atomic.Int64
	ts := startServer(t, echo, Config{
		MaxConnections: 2,
		OnConnRejected: rej.add,
		OnConnOpen:     func() { open.Add(1) },
		OnConnClose:    func() { open.Add(-1) },
	})
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	roundTrip(t, a, 1, "a")
	roundTrip(t, b, 2, "b")
	for i := range 3 {
		expectClosed(t, dial(t, ts.addr))
		if n := rej.get(RejectMaxConnections); n != i+1 {
			t.Fatalf("%d rejections counted, want %d", n, i+1)
		}
	}
	if recs := ts.logs.find("connection limit"); len(recs) != 1 || recs[0].attrs["reason"] != RejectMaxConnections {
		t.Errorf("log lines %+v, want one, rate-limited", recs)
	}
	roundTrip(t, a, 3, "a still served")
	b.Close()
	waitUntil(t, "b's close to be seen", func() bool { return open.Load() == 1 })
	roundTrip(t, dial(t, ts.addr), 4, "room again")
	if n := rej.get(RejectMaxConnectionsPerIP); n != 0 {
		t.Errorf("%d per-ip rejections", n)
	}
}

// TestMaxConnectionsPerIP: each client address has max.connections.per.ip
// connections, or its override; others still connect.
func TestMaxConnectionsPerIP(t *testing.T) {
	var rej rejections
	ts := startServer(t, echo, Config{
		MaxConnectionsPerIP:          1,
		MaxConnectionsPerIPOverrides: map[netip.Addr]int{netip.MustParseAddr("127.0.0.2"): 2, netip.MustParseAddr("127.0.0.3"): 0},
		OnConnRejected:               rej.add,
	})
	roundTrip(t, dialFrom(t, ts.addr, "127.0.0.1"), 1, "first from .1")
	expectClosed(t, dialFrom(t, ts.addr, "127.0.0.1"))
	roundTrip(t, dialFrom(t, ts.addr, "127.0.0.2"), 2, "first from .2")
	roundTrip(t, dialFrom(t, ts.addr, "127.0.0.2"), 3, "second from .2")
	expectClosed(t, dialFrom(t, ts.addr, "127.0.0.2"))
	expectClosed(t, dialFrom(t, ts.addr, "127.0.0.3"))
	roundTrip(t, dialFrom(t, ts.addr, "127.0.0.4"), 4, "first from .4")
	if n := rej.get(RejectMaxConnectionsPerIP); n != 3 {
		t.Errorf("%d per-ip rejections, want 3", n)
	}
	if n := rej.get(RejectMaxConnections); n != 0 {
		t.Errorf("%d max_connections rejections", n)
	}
}

func TestRateLimitedLog(t *testing.T) {
	l := rateLimitedLog{every: time.Second}
	t0 := time.Unix(1000, 0)
	for i, c := range []struct {
		at   time.Duration
		n    int
		want bool
	}{
		{0, 1, true},
		{100 * time.Millisecond, 0, false},
		{900 * time.Millisecond, 0, false},
		{time.Second, 3, true},
		{1500 * time.Millisecond, 0, false},
		{5 * time.Second, 2, true},
	} {
		n, ok := l.allow(t0.Add(c.at))
		if ok != c.want || n != c.n {
			t.Errorf("event %d at %v: (%d, %v), want (%d, %v)", i, c.at, n, ok, c.n, c.want)
		}
	}
}
