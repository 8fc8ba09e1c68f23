package ktls

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

// recorder keeps every byte written to the connection.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recorder) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.out.Bytes())
}

// TestServerKeys: the keys ServerKeys derives from crypto/tls's key log
// decrypt the first record the server writes after the handshake, at
// record sequence 0 with session tickets disabled: what Enable would give
// the kernel is what crypto/tls itself uses.
func TestServerKeys(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	leaf := ca.Issue(t, "broker", tlstest.Options{})
	goClient := func(addr string) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{leaf.TLSCertificate(t)}})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadFull(c, make([]byte, 5))
		return err
	}
	type tc struct {
		name       string
		clientAuth tls.ClientAuthType
		client     func(addr string) error
		suite      uint16
	}
	cases := []tc{
		{"go", tls.NoClientCert, goClient, tls.TLS_AES_128_GCM_SHA256},
		{"go, mutual TLS", tls.RequireAndVerifyClientCert, goClient, tls.TLS_AES_128_GCM_SHA256},
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		// AES-256-GCM (SHA-384), which Go's client never picks.
		cases = append(cases, tc{"openssl AES-256", tls.NoClientCert, func(addr string) error {
			cmd := exec.Command("openssl", "s_client", "-connect", addr, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384", "-quiet")
			cmd.Stdin = strings.NewReader("")
			return cmd.Run()
		}, tls.TLS_AES_256_GCM_SHA384})
	}
	for _, c := range cases {
		clientAuth := c.clientAuth
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var keyLog bytes.Buffer
		srvCfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate(t)}, KeyLogWriter: &keyLog,
			SessionTicketsDisabled: true, MinVersion: tls.VersionTLS13, ClientAuth: clientAuth, ClientCAs: ca.Pool()}
		errc := make(chan error, 1)
		go func() { errc <- c.client(ln.Addr().String()) }()
		raw, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{Conn: raw}
		srv := tls.Server(rec, srvCfg)
		if err := srv.Handshake(); err != nil {
			t.Fatal(err)
		}
		before := len(rec.written())
		msg := []byte("hello")
		if _, err := srv.Write(msg); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if err := <-errc; err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ln.Close()
		record := rec.written()[before:]
		cs := srv.ConnectionState()
		if cs.CipherSuite != c.suite {
			t.Errorf("%s: negotiated %s", c.name, tls.CipherSuiteName(cs.CipherSuite))
		}
		k, err := ServerKeys(keyLog.Bytes(), cs.Version, cs.CipherSuite)
		if errors.Is(err, ErrUnsupported) {
			t.Skipf("negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
		}
		if err != nil {
			t.Fatal(err)
		}
		// An application-data record: header, then ciphertext + tag
		// (the close_notify alert of Close follows it).
		if len(record) < 5 || record[0] != 23 || int(binary.BigEndian.Uint16(record[3:5])) > len(record)-5 {
			t.Fatalf("first record after the handshake: %x", record[:min(len(record), 16)])
		}
		record = record[:5+int(binary.BigEndian.Uint16(record[3:5]))]
		block, _ := aes.NewCipher(k.Key)
		gcm, _ := cipher.NewGCM(block)
		nonce := bytes.Clone(k.IV) // sequence 0: the IV itself
		plain, err := gcm.Open(nil, nonce, record[5:], record[:5])
		if err != nil {
			t.Fatalf("%s: derived keys do not decrypt the record at sequence 0: %v", tls.CipherSuiteName(cs.CipherSuite), err)
		}
		// TLSInnerPlaintext: content, then the real type (23).
		if !bytes.Equal(plain, append(msg, 23)) {
			t.Errorf("decrypted %q", plain)
		}
		info, err := cryptoInfo(k, 0)
		if err != nil || len(info) != 4+8+len(k.Key)+4+8 {
			t.Errorf("crypto_info %d bytes, %v", len(info), err)
		}
	}
}

func TestServerKeysUnsupported(t *testing.T) {
	if _, err := ServerKeys(nil, tls.VersionTLS13, tls.TLS_CHACHA20_POLY1305_SHA256); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ChaCha20: %v", err)
	}
	if _, err := ServerKeys(nil, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); !errors.Is(err, ErrUnsupported) {
		t.Errorf("TLS 1.2: %v", err)
	}
}

// TestProbe reports what this kernel allows; Enable is only tried where
// the tls ULP exists.
func TestProbe(t *testing.T) {
	if err := Probe(); err != nil {
		t.Skipf("no kTLS here: %v", err)
	}
	t.Log("the kernel accepts the tls ULP; Enable is still not wired in")
}
