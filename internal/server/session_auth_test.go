package server

import (
	"context"
	"testing"
	"time"
)

// TestResponseClose: a response with Close is written whole, with the ones
// before it, and then the connection is closed; a request pipelined behind
// it gets no answer.
func TestResponseClose(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		return &Response{Parts: []Part{{Bytes: req.Body}}, Close: string(req.Body) == "close"}, nil
	})
	ts := startServer(t, h, Config{})
	c := dial(t, ts.addr)
	var frames []byte
	for i, body := range []string{"first", "close", "never"} {
		frames = append(frames, echoFrame(int32(i), []byte(body))...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"first", "close"} {
		corr, got, err := readResponse(c, false)
		if err != nil || corr != int32(i) || string(got) != want {
			t.Fatalf("response %d: (%d, %q, %v), want %q", i, corr, got, err, want)
		}
	}
	expectClosed(t, c)
}

// TestSessionAuthentication: a SASL listener's session is not
// authenticated until SetAuthenticated; other listeners' always are.
func TestSessionAuthentication(t *testing.T) {
	plain := newSession("PLAINTEXT", "")
	if plain.SASL() || !plain.Authenticated() {
		t.Fatal("a PLAINTEXT session needs no authentication")
	}
	var nilSession *Session
	if nilSession.SASL() || !nilSession.Authenticated() || nilSession.Principal() != Anonymous {
		t.Fatal("a nil session needs no authentication and is anonymous")
	}
	for _, p := range []string{ProtocolSASLPlaintext, ProtocolSASLSSL} {
		s := newSession("L", p)
		if !s.SASL() || s.Authenticated() || s.Principal() != Anonymous {
			t.Fatalf("%s: new session %v %v %q", p, s.SASL(), s.Authenticated(), s.Principal())
		}
		exp := time.Now().Add(time.Minute)
		s.SetExchange("x")
		s.SetAuthenticated("User:alice", exp)
		if !s.Authenticated() || s.Principal() != "User:alice" || !s.AuthExpiry().Equal(exp) || s.Exchange() != "x" {
			t.Fatalf("%s: after SetAuthenticated", p)
		}
	}
}
