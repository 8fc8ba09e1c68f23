package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logCapture is a slog.Handler that keeps records for assertions.
type logCapture struct {
	mu   sync.Mutex
	recs []capturedRecord
}

type capturedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }

func (l *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: l, attrs: as}
}

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	return l.add(nil, r)
}

func (l *logCapture) add(base []slog.Attr, r slog.Record) error {
	rec := capturedRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range base {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
	return nil
}

// find returns the records at Info or above whose message contains sub.
func (l *logCapture) find(sub string) []capturedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []capturedRecord
	for _, r := range l.recs {
		if r.level >= slog.LevelInfo && strings.Contains(r.msg, sub) {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls for a log record: the server logs from its own goroutines,
// possibly just after the client saw the connection close.
func (l *logCapture) waitFor(t *testing.T, sub string) []capturedRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if recs := l.find(sub); len(recs) > 0 || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *logCapture) warnings() []capturedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []capturedRecord
	for _, r := range l.recs {
		if r.level >= slog.LevelWarn {
			out = append(out, r)
		}
	}
	return out
}

type attrHandler struct {
	l     *logCapture
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) WithGroup(string) slog.Handler            { return h }
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *attrHandler) Handle(_ context.Context, r slog.Record) error { return h.l.add(h.attrs, r) }

// testServer is a running server on 127.0.0.1:0.
type testServer struct {
	*Server
	addr  string
	logs  *logCapture
	serve chan error
}

// waitNoConns waits until the server has forgotten every connection: their
// goroutines are done, and so is everything they log.
func (ts *testServer) waitNoConns(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts.mu.Lock()
		n := len(ts.mu.conns)
		ts.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startServer(t testing.TB, h Handler, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, h, cfg)
}

func serveOn(t testing.TB, ln net.Listener, h Handler, cfg Config) *testServer {
	t.Helper()
	logs := &logCapture{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(logs)
	}
	ts := &testServer{Server: New(h, cfg), addr: ln.Addr().String(), logs: logs, serve: make(chan error, 1)}
	go func() { ts.serve <- ts.Serve(ln) }()
	t.Cleanup(func() {
		if err := ts.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-ts.serve:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return ts
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// reqSpec describes a request frame to build.
type reqSpec struct {
	key, version int16
	corr         int32
	clientID     *string
	flexible     bool     // write header v2
	tags         [][]byte // tagged fields (tag = index), header v2 only
	rawTags      []byte   // replaces the tag section when set
	body         []byte
}

func strp(s string) *string { return &s }

func (r reqSpec) frame() []byte {
	b := make([]byte, 4, 64+len(r.body))
	b = binary.BigEndian.AppendUint16(b, uint16(r.key))
	b = binary.BigEndian.AppendUint16(b, uint16(r.version))
	b = binary.BigEndian.AppendUint32(b, uint32(r.corr))
	if r.clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*r.clientID)))
		b = append(b, *r.clientID...)
	}
	if r.flexible {
		if r.rawTags != nil {
			b = append(b, r.rawTags...)
		} else {
			b = binary.AppendUvarint(b, uint64(len(r.tags)))
			for i, tg := range r.tags {
				b = binary.AppendUvarint(b, uint64(i))
				b = binary.AppendUvarint(b, uint64(len(tg)))
				b = append(b, tg...)
			}
		}
	}
	b = append(b, r.body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// echoFrame builds a header-v1 request (Produce v8) carrying body.
func echoFrame(corr int32, body []byte) []byte {
	return reqSpec{key: 0, version: 8, corr: corr, clientID: strp("test"), body: body}.frame()
}

// readResponse reads one response frame; flexible says whether to expect
// the response header's tag byte.
func readResponse(r io.Reader, flexible bool) (corr int32, body []byte, err error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return 0, nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || (flexible && n < 5) {
		return 0, nil, fmt.Errorf("response size %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	corr = int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	if flexible {
		if b[0] != 0 {
			return 0, nil, fmt.Errorf("response tag section %x", b[0])
		}
		b = b[1:]
	}
	return corr, b, nil
}

// expectClosed reads until the server closes the connection, failing on a
// timeout (the server waited instead of closing).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// echo answers with the request body.
var echo = HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
	return &Response{Parts: []Part{{Bytes: req.Body}}}, nil
})

// roundTrip sends an echo request and checks the answer.
func roundTrip(t *testing.T, c net.Conn, corr int32, body string) {
	t.Helper()
	if _, err := c.Write(echoFrame(corr, []byte(body))); err != nil {
		t.Fatal(err)
	}
	gotCorr, got, err := readResponse(c, false)
	if err != nil {
		t.Fatalf("reading response %d: %v", corr, err)
	}
	if gotCorr != corr || string(got) != body {
		t.Fatalf("response = (%d, %q), want (%d, %q)", gotCorr, got, corr, body)
	}
}

// gauge tracks the current and highest number of concurrent calls.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}
func (g *gauge) exit() { g.cur.Add(-1) }
