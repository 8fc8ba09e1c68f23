package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFraming(t *testing.T) {
	type seen struct {
		key, version int16
		corr         int32
		clientID     *string
		body         string
		remote       string
		connID       uint64
	}
	seenCh := make(chan seen, 1)
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		var cid *string
		if req.ClientID != nil {
			cid = strp(*req.ClientID)
		}
		seenCh <- seen{req.APIKey, req.APIVersion, req.CorrelationID, cid, string(req.Body), req.Remote.String(), req.ConnID}
		// Answer with response header v1 for flexible requests, except
		// ApiVersions (header v0 always), as kafka handlers will.
		flex := headerFlexible(req.APIKey, req.APIVersion) && req.APIKey != 18
		return &Response{HeaderFlexible: flex, Parts: []Part{{Bytes: []byte("re:")}, {Bytes: req.Body}}}, nil
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)

	cases := []struct {
		name     string
		req      reqSpec
		respFlex bool
	}{
		{"v1 produce v8", reqSpec{key: 0, version: 8, clientID: strp("producer-1"), body: []byte("abc")}, false},
		{"v1 empty client id", reqSpec{key: 3, version: 8, clientID: strp(""), body: []byte("x")}, false},
		{"v1 null client id", reqSpec{key: 3, version: 8, body: []byte("y")}, false},
		{"v1 empty body", reqSpec{key: 0, version: 3, clientID: strp("c")}, false},
		{"v2 no tags", reqSpec{key: 0, version: 9, clientID: strp("c"), flexible: true, body: []byte("flex")}, true},
		{"v2 tags", reqSpec{key: 0, version: 11, clientID: strp("c"), flexible: true,
			tags: [][]byte{[]byte("t0"), {}, []byte(strings.Repeat("z", 300))}, body: []byte("after tags")}, true},
		{"v2 null client id", reqSpec{key: 3, version: 12, flexible: true, tags: [][]byte{[]byte("q")}, body: []byte("meta")}, true},
		{"apiversions v3", reqSpec{key: 18, version: 3, clientID: strp("kgo"), flexible: true, body: []byte{0}}, false},
		// A client newer than kmsg: the version is treated as kmsg's newest.
		{"apiversions future version", reqSpec{key: 18, version: 99, clientID: strp("kgo"), flexible: true, body: []byte{1}}, false},
		{"apiversions v0", reqSpec{key: 18, version: 0, clientID: strp("old")}, false},
		{"unknown key", reqSpec{key: 30000, version: 5, clientID: strp("c"), body: []byte("?")}, false},
	}
	var connID uint64
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.corr = int32(1000 + i)
			if _, err := c.Write(tc.req.frame()); err != nil {
				t.Fatal(err)
			}
			s := <-seenCh
			if s.key != tc.req.key || s.version != tc.req.version || s.corr != tc.req.corr {
				t.Errorf("handler saw key %d version %d corr %d, want %d %d %d",
					s.key, s.version, s.corr, tc.req.key, tc.req.version, tc.req.corr)
			}
			if (s.clientID == nil) != (tc.req.clientID == nil) ||
				(s.clientID != nil && *s.clientID != *tc.req.clientID) {
				t.Errorf("client id = %v, want %v", s.clientID, tc.req.clientID)
			}
			if s.body != string(tc.req.body) {
				t.Errorf("body = %q, want %q", s.body, tc.req.body)
			}
			if s.remote != c.LocalAddr().String() {
				t.Errorf("remote = %s, want %s", s.remote, c.LocalAddr())
			}
			if connID == 0 {
				connID = s.connID
			} else if s.connID != connID {
				t.Errorf("conn id changed: %d then %d", connID, s.connID)
			}
			corr, body, err := readResponse(c, tc.respFlex)
			if err != nil {
				t.Fatal(err)
			}
			if corr != tc.req.corr || string(body) != "re:"+string(tc.req.body) {
				t.Errorf("response (%d, %q), want (%d, %q)", corr, body, tc.req.corr, "re:"+string(tc.req.body))
			}
		})
	}
}

func TestPipelineOrder(t *testing.T) {
	var g gauge
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		g.enter()
		defer g.exit()
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		return &Response{Parts: []Part{{Bytes: req.Body}}}, nil
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	const n = 200
	go func() {
		var b []byte
		for i := range n {
			b = append(b, echoFrame(int32(i), fmt.Appendf(nil, "req-%d", i))...)
		}
		c.Write(b)
	}()
	for i := range n {
		corr, body, err := readResponse(c, false)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if want := fmt.Sprintf("req-%d", i); corr != int32(i) || string(body) != want {
			t.Fatalf("response %d = (%d, %q), want (%d, %q)", i, corr, body, i, want)
		}
	}
	if m := g.max.Load(); m != 1 {
		t.Errorf("%d handler calls at once for one connection; want one at a time", m)
	}
}

// TestRequestsOfOneConnHandledInOrder: pipelined requests of a connection
// are handled one at a time in arrival order (so produce requests apply in
// the order sent), while requests of another connection are not held up.
func TestRequestsOfOneConnHandledInOrder(t *testing.T) {
	var (
		mu    sync.Mutex
		order []byte
	)
	gate := make(chan struct{})
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		if len(req.Body) == 1 && req.Body[0] == 0 {
			<-gate // the first request of conn A blocks
		}
		mu.Lock()
		order = append(order, req.Body...)
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		return &Response{Parts: []Part{{Bytes: req.Body}}}, nil
	})
	ts := startServer(t, h, Config{})
	a, other := dial(t, ts.addr), dial(t, ts.addr)
	var b []byte
	for i := range 10 {
		b = append(b, echoFrame(int32(i), []byte{byte(i)})...)
	}
	a.Write(b)
	// Conn A is stuck on its first request; the other is served.
	other.Write(echoFrame(99, []byte{99}))
	if corr, _, err := readResponse(other, false); err != nil || corr != 99 {
		t.Fatalf("other connection: corr %d, %v", corr, err)
	}
	close(gate)
	for i := range 10 {
		if corr, _, err := readResponse(a, false); err != nil || corr != int32(i) {
			t.Fatalf("response %d: corr %d, %v", i, corr, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []byte{99, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if !bytes.Equal(order, want) {
		t.Fatalf("handled in order %v, want %v", order, want)
	}
}

func TestMaxInFlightPerConn(t *testing.T) {
	var g gauge
	gate := make(chan struct{})
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		g.enter()
		defer g.exit()
		<-gate
		return &Response{Parts: []Part{{Bytes: req.Body}}}, nil
	})
	ts := startServer(t, h, Config{MaxInFlightPerConn: 4})
	c := dial(t, ts.addr)
	var b []byte
	for i := range 12 {
		b = append(b, echoFrame(int32(i), nil)...)
	}
	c.Write(b)
	close(gate)
	for i := range 12 {
		if corr, _, err := readResponse(c, false); err != nil || corr != int32(i) {
			t.Fatalf("response %d: corr %d, %v", i, corr, err)
		}
	}
	if m := g.max.Load(); m != 1 {
		t.Errorf("max concurrent = %d, want one at a time", m)
	}
}

func TestOversizedFrame(t *testing.T) {
	called := make(chan struct{}, 10)
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		called <- struct{}{}
		return echo(ctx, req)
	})
	const max = 1 << 10
	for _, size := range []int32{max + 1, 1 << 30, -1, -1 << 31} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ts := startServer(t, h, Config{MaxRequestSize: max})
			c := dial(t, ts.addr)
			// Only the size: a server that waited for the body would hang.
			c.Write(binary.BigEndian.AppendUint32(nil, uint32(size)))
			expectClosed(t, c)
			recs := ts.logs.waitFor(t, "size out of range")
			if len(recs) != 1 || recs[0].attrs["remote"] != c.LocalAddr().String() {
				t.Errorf("log records %+v, want one naming %s", recs, c.LocalAddr())
			}
			if len(called) != 0 {
				t.Errorf("handler called")
			}
			roundTrip(t, dial(t, ts.addr), 7, "still serving")
			// The limit is inclusive.
			roundTrip(t, dial(t, ts.addr), 8, strings.Repeat("m", max-len(echoFrame(0, nil))+4))
			<-called
			<-called
		})
	}
}

func TestBadHeader(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		key   string
	}{
		{"empty", []byte{0, 0, 0, 0}, "-1"},
		{"key only", []byte{0, 0, 0, 2, 0, 1}, "1"},
		{"no client id", []byte{0, 0, 0, 8, 0, 1, 0, 4, 0, 0, 0, 9}, "1"},
		{"client id length -2", reqSpec{key: 1, version: 4, body: []byte("xx")}.frameWith(func(b []byte) { b[12], b[13] = 0xff, 0xfe }), "1"},
		{"client id too long", reqSpec{key: 1, version: 4, clientID: strp("ab")}.frameWith(func(b []byte) { b[13] = 9 }), "1"},
		{"tag count without tags", reqSpec{key: 1, version: 12, clientID: strp("c"), flexible: true, rawTags: []byte{3}}.frame(), "1"},
		{"tag size past end", reqSpec{key: 1, version: 12, clientID: strp("c"), flexible: true, rawTags: []byte{1, 0, 100, 1}}.frame(), "1"},
		{"tag count varint too long", reqSpec{key: 1, version: 12, clientID: strp("c"), flexible: true,
			rawTags: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}.frame(), "1"},
		{"flexible header missing tags", reqSpec{key: 1, version: 12, clientID: strp("c")}.frame(), "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, echo, Config{})
			c := dial(t, ts.addr)
			c.Write(tc.frame)
			expectClosed(t, c)
			recs := ts.logs.waitFor(t, "bad request header")
			if len(recs) != 1 || recs[0].attrs["api_key"] != tc.key || recs[0].attrs["remote"] != c.LocalAddr().String() {
				t.Errorf("log records %+v, want one with api_key %s", recs, tc.key)
			}
			roundTrip(t, dial(t, ts.addr), 1, "ok")
		})
	}
}

func (r reqSpec) frameWith(f func([]byte)) []byte {
	b := r.frame()
	f(b)
	return b
}

func TestHandlerPanic(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "panic" {
			panic("boom")
		}
		return echo(ctx, req)
	})
	ts := startServer(t, h, Config{})
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	roundTrip(t, a, 1, "a1")
	roundTrip(t, b, 1, "b1")
	a.Write(echoFrame(2, []byte("panic")))
	expectClosed(t, a)
	roundTrip(t, b, 2, "b2")
	roundTrip(t, dial(t, ts.addr), 1, "new")
	recs := ts.logs.waitFor(t, "panicked")
	if len(recs) != 1 || recs[0].attrs["panic"] != "boom" || !strings.Contains(recs[0].attrs["stack"], "TestHandlerPanic") {
		t.Errorf("panic log %+v, want one with the panic value and stack", recs)
	}
	if w := ts.logs.warnings(); len(w) != 1 {
		t.Errorf("%d warnings, want 1: %+v", len(w), w)
	}
}

func TestHandlerError(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "bad" {
			return nil, errors.New("malformed produce request")
		}
		return echo(ctx, req)
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	// The response before the failing request still goes out; nothing after.
	c.Write(append(append(echoFrame(1, []byte("ok")), echoFrame(2, []byte("bad"))...), echoFrame(3, []byte("late"))...))
	if corr, body, err := readResponse(c, false); err != nil || corr != 1 || string(body) != "ok" {
		t.Fatalf("first response (%d, %q, %v)", corr, body, err)
	}
	expectClosed(t, c)
	recs := ts.logs.waitFor(t, "handler error")
	// Every line about the failed connection is logged before the server
	// forgets it: once it has no connection left, count.
	ts.waitNoConns(t)
	if w := ts.logs.warnings(); len(recs) != 1 || len(w) != 1 {
		t.Fatalf("warnings %+v, want exactly one handler error line", w)
	}
	a := recs[0].attrs
	if a["api_key"] != "0" || a["api_version"] != "8" || a["correlation_id"] != "2" ||
		a["remote"] != c.LocalAddr().String() || a["err"] != "malformed produce request" {
		t.Errorf("log attrs %v", a)
	}
	roundTrip(t, dial(t, ts.addr), 1, "ok")
}

func TestNoneResponse(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "acks=0" {
			time.Sleep(20 * time.Millisecond) // later responses must not overtake it
			return &Response{None: true}, nil
		}
		return echo(ctx, req)
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	var b []byte
	for i, body := range []string{"a", "acks=0", "b", "acks=0", "acks=0", "c"} {
		b = append(b, echoFrame(int32(i), []byte(body))...)
	}
	c.Write(b)
	for _, want := range []struct {
		corr int32
		body string
	}{{0, "a"}, {2, "b"}, {5, "c"}} {
		corr, body, err := readResponse(c, false)
		if err != nil || corr != want.corr || string(body) != want.body {
			t.Fatalf("response (%d, %q, %v), want (%d, %q)", corr, body, err, want.corr, want.body)
		}
	}
	roundTrip(t, c, 6, "after")
}

func TestReleaseCalledOnce(t *testing.T) {
	var mu sync.Mutex
	released := map[int32]int{}
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		corr := req.CorrelationID
		rel := func() { mu.Lock(); released[corr]++; mu.Unlock() }
		if string(req.Body) == "none" {
			return &Response{None: true, Release: rel}, nil
		}
		if string(req.Body) == "err" {
			return &Response{Release: rel}, errors.New("bad")
		}
		return &Response{Parts: []Part{{Bytes: req.Body}}, Release: rel}, nil
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	c.Write(append(append(append(echoFrame(0, []byte("x")), echoFrame(1, []byte("none"))...),
		echoFrame(2, []byte("err"))...), echoFrame(3, []byte("y"))...))
	expectClosed(t, c)
	ts.Close()
	mu.Lock()
	defer mu.Unlock()
	for corr := range int32(3) {
		if released[corr] != 1 {
			t.Errorf("corr %d released %d times", corr, released[corr])
		}
	}
	if n := released[3]; n > 1 {
		t.Errorf("corr 3 released %d times", n)
	}
}

func TestGracefulClose(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	var released atomic.Bool // the slow request was let go
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "slow" {
			close(entered)
			<-gate
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		return echo(ctx, req)
	})
	ts := startServer(t, h, Config{})
	c, idle := dial(t, ts.addr), dial(t, ts.addr)
	roundTrip(t, idle, 1, "idle conn")
	c.Write(echoFrame(1, []byte("slow")))
	<-entered
	closed := make(chan error, 1)
	closedEarly := make(chan bool, 1)
	go func() {
		err := ts.Close()
		closedEarly <- !released.Load()
		closed <- err
	}()
	select {
	case err := <-ts.serve: // Serve returns once Close started
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.serve <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	expectClosed(t, idle) // nothing in flight: closed at once
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("still accepting after Close")
	}
	released.Store(true)
	close(gate)
	if corr, body, err := readResponse(c, false); err != nil || corr != 1 || string(body) != "slow" {
		t.Fatalf("in-flight response (%d, %q, %v)", corr, body, err)
	}
	expectClosed(t, c)
	if <-closedEarly {
		t.Fatal("Close returned with a request in flight")
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	entered := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		close(entered)
		<-ctx.Done() // a long poll that only ends with its context
		return nil, ctx.Err()
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	c.Write(echoFrame(1, nil))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	expectClosed(t, c)
}

func TestIdleTimeout(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "long" {
			time.Sleep(300 * time.Millisecond)
		}
		return echo(ctx, req)
	})
	ts := startServer(t, h, Config{IdleTimeout: 100 * time.Millisecond})
	c := dial(t, ts.addr)
	// A request in flight longer than the timeout is not idleness.
	c.Write(echoFrame(1, []byte("long")))
	if corr, _, err := readResponse(c, false); err != nil || corr != 1 {
		t.Fatalf("long request: %d %v", corr, err)
	}
	start := time.Now()
	expectClosed(t, c)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("idle connection closed after %v", el)
	}
	if recs := ts.logs.waitFor(t, "idle"); len(recs) != 1 {
		t.Errorf("idle log records %+v", recs)
	}
}

func TestServeAfterClose(t *testing.T) {
	s := New(echo, Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != nil {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener left open")
	}
}

// TestResponseWait: a response's Wait holds back that response (and the
// ones after it, which keep their order) but not the handling of the
// connection's next requests; a failed Wait closes the connection after
// the responses before it, with one log line.
func TestResponseWait(t *testing.T) {
	gate := make(chan struct{})
	handled := make(chan string, 10)
	h := HandlerFunc(func(ctx context.Context, req *Request) (*Response, error) {
		handled <- string(req.Body)
		r := &Response{Parts: []Part{{Bytes: req.Body}}}
		switch string(req.Body) {
		case "slow":
			r.Wait = func() error { <-gate; return nil }
		case "fails":
			r.Wait = func() error { return errors.New("fsync failed") }
		}
		return r, nil
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	c.Write(append(append(echoFrame(1, []byte("slow")), echoFrame(2, []byte("next"))...), echoFrame(3, []byte("after"))...))
	// All three are handled while the first response waits.
	for _, want := range []string{"slow", "next", "after"} {
		select {
		case got := <-handled:
			if got != want {
				t.Fatalf("handled %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q was not handled while an earlier response waited", want)
		}
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := readResponse(c, false); err == nil {
		t.Fatal("a response was written before the waiting one")
	}
	c.SetReadDeadline(time.Time{})
	close(gate)
	for i, want := range []string{"slow", "next", "after"} {
		if corr, body, err := readResponse(c, false); err != nil || corr != int32(i+1) || string(body) != want {
			t.Fatalf("response (%d, %q, %v), want (%d, %q)", corr, body, err, i+1, want)
		}
	}

	c2 := dial(t, ts.addr)
	c2.Write(append(append(echoFrame(1, []byte("ok")), echoFrame(2, []byte("fails"))...), echoFrame(3, []byte("late"))...))
	if corr, body, err := readResponse(c2, false); err != nil || corr != 1 || string(body) != "ok" {
		t.Fatalf("first response (%d, %q, %v)", corr, body, err)
	}
	expectClosed(t, c2)
	ts.logs.waitFor(t, "response not acknowledged")
}
