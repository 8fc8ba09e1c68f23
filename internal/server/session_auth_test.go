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

// TestSASLMaxReceiveSize: on a SASL listener a request larger than
// sasl.server.max.receive.size closes the connection until it
// authenticated; after, socket.request.max.bytes applies.
func TestSASLMaxReceiveSize(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		if string(req.Body) == "auth" {
			req.Session.SetAuthenticated("User:u", time.Time{})
		}
		return &Response{Parts: []Part{{Bytes: []byte{byte(len(req.Body) % 251)}}}}, nil
	})
	ts := startServer(t, h, Config{Protocol: ProtocolSASLPlaintext, SASLMaxReceiveSize: 1000})
	big := make([]byte, 5000)

	c := dial(t, ts.addr)
	roundTripBody := func(body []byte) {
		t.Helper()
		if _, err := c.Write(echoFrame(1, body)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := readResponse(c, false); err != nil || len(got) != 1 || got[0] != byte(len(body)%251) {
			t.Fatalf("response to %d bytes: %v %v", len(body), got, err)
		}
	}
	roundTripBody(make([]byte, 900))
	if _, err := c.Write(echoFrame(2, big)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)

	c = dial(t, ts.addr)
	roundTripBody([]byte("auth"))
	roundTripBody(big)
}
