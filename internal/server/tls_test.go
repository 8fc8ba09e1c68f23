package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

func tlsConfigs(t *testing.T) (server *tls.Config, client func(cert *tlstest.Leaf) *tls.Config, ca *tlstest.CA) {
	ca = tlstest.NewCA(t, "ca")
	srv := ca.Issue(t, "broker", tlstest.Options{})
	server = &tls.Config{Certificates: []tls.Certificate{srv.TLSCertificate(t)}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	client = func(cert *tlstest.Leaf) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
		if cert != nil {
			c.Certificates = []tls.Certificate{cert.TLSCertificate(t)}
		}
		return c
	}
	return server, client, ca
}

// TestTLSSession: requests on a TLS listener are answered over TLS, with
// the session's principal set from the client certificate after the
// handshake, and file regions (the fetch path) go through the copy path
// byte for byte.
func TestTLSSession(t *testing.T) {
	serverCfg, client, ca := tlsConfigs(t)
	f := bigSegment(t, 3<<20)
	want, _ := os.ReadFile(f.Name())
	principals := make(chan string, 4)
	h := HandlerFunc(func(_ context.Context, req *Request) (*Response, error) {
		principals <- req.Session.Principal()
		if req.Session.Protocol != ProtocolSSL || req.Session.Listener != "SSL" {
			return nil, errors.New("wrong session")
		}
		// Bytes, then a region at an offset, then bytes: the gathered
		// writes and the copy path interleave in order.
		return &Response{Parts: []Part{{Bytes: []byte("head")}, {Region: log.Region{File: f, Pos: 1, Len: int64(len(want)) - 1}}, {Bytes: []byte("tail")}}}, nil
	})
	ts := startServer(t, h, Config{Listener: "SSL", Protocol: ProtocolSSL, TLS: serverCfg,
		Principal: func(cs tls.ConnectionState) (string, error) {
			if len(cs.PeerCertificates) == 0 {
				return Anonymous, nil
			}
			return "User:" + cs.PeerCertificates[0].Subject.CommonName, nil
		}})
	alice := ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "alice"}})
	for _, tc := range []struct {
		cert *tlstest.Leaf
		want string
	}{{alice, "User:alice"}, {nil, Anonymous}} {
		c, err := tls.Dial("tcp", ts.addr, client(tc.cert))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		for corr := range int32(2) {
			if _, err := c.Write(echoFrame(corr, nil)); err != nil {
				t.Fatal(err)
			}
			gotCorr, body, err := readResponse(c, false)
			if err != nil {
				t.Fatal(err)
			}
			wantBody := append(append([]byte("head"), want[1:]...), "tail"...)
			if gotCorr != corr || !bytes.Equal(body, wantBody) {
				t.Fatalf("response %d: corr %d, %d bytes, equal %v", corr, gotCorr, len(body), bytes.Equal(body, wantBody))
			}
			if p := <-principals; p != tc.want {
				t.Errorf("principal %q, want %q", p, tc.want)
			}
		}
		c.Close()
	}
}

// TestTLSHandshakeFailure: a client that does not speak TLS, or one that
// does not trust the server, is closed with one log line; a client that
// connects and says nothing is closed after HandshakeTimeout.
func TestTLSHandshakeFailure(t *testing.T) {
	serverCfg, _, _ := tlsConfigs(t)
	ts := startServer(t, echo, Config{Listener: "SSL", Protocol: ProtocolSSL, TLS: serverCfg, HandshakeTimeout: 300 * time.Millisecond})

	c := dial(t, ts.addr)
	c.Write(echoFrame(1, []byte("plaintext"))) // not a ClientHello
	expectClosed(t, c)
	if recs := ts.logs.waitFor(t, "TLS handshake failed"); len(recs) != 1 {
		t.Fatalf("%d handshake log lines, want 1", len(recs))
	}

	// Silent client: closed by the timeout, not held forever.
	c2 := dial(t, ts.addr)
	start := time.Now()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c2); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("silent client not closed by the handshake timeout")
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}

	// A client that does not trust the server's CA.
	if _, err := tls.Dial("tcp", ts.addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	ts.waitNoConns(t)
	if recs := ts.logs.find("TLS handshake failed"); len(recs) != 3 {
		t.Errorf("%d handshake log lines, want 3", len(recs))
	}
}
