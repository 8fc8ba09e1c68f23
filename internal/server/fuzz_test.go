package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// fuzzHandler echoes the body, except: a body starting with "E" is a
// handler error, "P" a panic, "N" a None response, and "F" answers with
// response header v1.
var fuzzHandler = HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
	if len(req.Body) > 0 {
		switch req.Body[0] {
		case 'E':
			return nil, errors.New("fuzz: handler error")
		case 'P':
			panic("fuzz: handler panic")
		case 'N':
			return &Response{None: true}, nil
		case 'F':
			return &Response{HeaderFlexible: true, Parts: []Part{{Bytes: req.Body}}}, nil
		}
	}
	return &Response{Parts: []Part{{Bytes: req.Body}}}, nil
})

// FuzzConn writes arbitrary bytes to a live connection of a running server.
// Invariants: nothing the client sends panics the server or hangs it (the
// server closes the connection once the client has sent everything and
// half-closed); what comes back is a sequence of whole response frames,
// each answering a request the client sent, in the order they were sent;
// and afterwards the server answers a fresh, well-formed connection.
func FuzzConn(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	// A small MaxRequestSize keeps a fuzzed size prefix from making the
	// server allocate 100 MiB per input.
	ts := serveOn(f, ln, fuzzHandler, Config{MaxRequestSize: 1 << 16, Logger: slog.New(slog.DiscardHandler)})

	f.Fuzz(func(t *testing.T, in []byte) {
		c := fuzzDial(t, ts.addr)
		wrote := make(chan struct{})
		go func() { // ends when the write completes or c is closed
			defer close(wrote)
			c.Write(in)
			c.(*net.TCPConn).CloseWrite()
		}()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(c)
		c.Close()
		<-wrote
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not close the connection: %v", err)
		}
		checkFrames(t, in, out)

		ok := fuzzDial(t, ts.addr)
		defer ok.Close()
		ok.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := ok.Write(echoFrame(42, []byte("alive"))); err != nil {
			t.Fatal(err)
		}
		if corr, body, err := readResponse(ok, false); err != nil || corr != 42 || string(body) != "alive" {
			t.Fatalf("server not answering after fuzz input: (%d, %q, %v)", corr, body, err)
		}
	})
}

// fuzzDial dials with SO_LINGER 0, so that connections the client closes
// first end with a reset instead of TIME_WAIT and a long fuzz run does not
// run out of local ports. (Inputs that end with the half-close and a clean
// server close still leave TIME_WAIT; Linux reuses those on loopback.)
func fuzzDial(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0)
	return c
}

// checkFrames checks that out is whole response frames whose correlation
// ids are those of requests in `in`, in order, each at most once.
func checkFrames(t *testing.T, in, out []byte) {
	var corrs []int32
	for b := in; len(b) >= 12; {
		size := int(int32(binary.BigEndian.Uint32(b)))
		if size < 8 || size > len(b)-4 {
			break
		}
		corrs = append(corrs, int32(binary.BigEndian.Uint32(b[8:])))
		b = b[4+size:]
	}
	for len(out) > 0 {
		if len(out) < 8 {
			t.Fatalf("partial response frame: %x", out)
		}
		size := int(binary.BigEndian.Uint32(out))
		if size < 4 || size > len(out)-4 {
			t.Fatalf("response frame size %d with %d bytes left", size, len(out)-4)
		}
		corr := int32(binary.BigEndian.Uint32(out[4:]))
		for len(corrs) > 0 && corrs[0] != corr {
			corrs = corrs[1:]
		}
		if len(corrs) == 0 {
			t.Fatalf("response with correlation id %d answers no request, or out of order", corr)
		}
		corrs = corrs[1:]
		out = out[4+size:]
	}
}

func fuzzSeeds() [][]byte {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	return [][]byte{
		echoFrame(1, []byte("hello")),
		cat(echoFrame(1, []byte("a")), echoFrame(2, []byte("Nnone")), echoFrame(3, []byte("Fflex"))),
		reqSpec{key: 18, version: 3, corr: 7, clientID: strp("kgo"), flexible: true, tags: [][]byte{[]byte("t")}, body: []byte{5, 'k', 'g', 'o', 0}}.frame(),
		reqSpec{key: 3, version: 12, corr: 9, flexible: true, body: []byte("meta")}.frame(),
		cat(echoFrame(1, []byte("ok")), echoFrame(2, []byte("Ebad")), echoFrame(3, []byte("late"))),
		cat(echoFrame(1, []byte("ok")), echoFrame(2, []byte("Pboom"))),
		{0, 0, 0, 4, 0, 1, 0, 2},        // header truncated
		{0xff, 0xff, 0xff, 0xff},        // negative size
		{0x7f, 0xff, 0xff, 0xff, 0, 1},  // oversized
		echoFrame(5, []byte("cut"))[:9], // body cut short
		reqSpec{key: 1, version: 12, corr: 1, clientID: strp("c"), flexible: true, rawTags: []byte{2, 0, 9}}.frame(), // bad tags
	}
}
