// Package ktls is groundwork for handing the transmit direction of a TLS
// 1.3 connection to the Linux kernel (kTLS), so that an SSL listener could
// keep sendfile(2) for fetches: the kernel encrypts what is written to the
// socket. NOT WIRED IN: the broker does not use it. The machine it was
// written on has no kernel "tls" ULP (/proc/sys/net/ipv4/tcp_available_ulp
// lists only mptcp, and TCP_ULP "tls" fails with ENOENT), so Enable has
// never run against a kernel; only the key derivation is tested, by
// decrypting a record crypto/tls wrote with the keys derived here.
//
// What wiring it in needs (see the report in the branch's history):
//   - a per-connection tls.Config whose KeyLogWriter captures the
//     connection's SERVER_TRAFFIC_SECRET_0, and SessionTicketsDisabled, so
//     that crypto/tls writes no record under the application secret before
//     the kernel takes over (the record sequence is then 0);
//   - after the handshake, Enable on the raw socket, then every response
//     written to the raw socket (writev, sendfile) and never through the
//     tls.Conn again: a KeyUpdate or alert crypto/tls would write later must
//     fail the connection instead (wrap the net.Conn given to tls.Server);
//   - TLS 1.2 needs the server random as well as the master secret (key
//     expansion), which neither the key log nor ConnectionState gives:
//     those connections stay in user space, as ChaCha20 ones must.
package ktls

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kernel constants (linux/tls.h, linux/tcp.h); golang.org/x/sys/unix has
// SOL_TLS and TCP_ULP but not these.
const (
	tlsTX             = 1
	tls13Version      = 0x0304
	cipherAESGCM128   = 51
	cipherAESGCM256   = 52
	gcmSaltSize       = 4
	gcmIVSize         = 8
	gcmRecSeqSize     = 8
	serverTrafficName = "SERVER_TRAFFIC_SECRET_0"
)

// ErrUnsupported is returned for a connection the kernel cannot take: a
// cipher suite other than AES-GCM, or a TLS version other than 1.3.
var ErrUnsupported = errors.New("ktls: cipher suite or version not offloadable")

// Keys are the transmit key and IV of one direction of a TLS 1.3
// connection, as the kernel takes them.
type Keys struct {
	Suite uint16
	Key   []byte // 16 or 32 bytes
	IV    []byte // 12 bytes: the kernel splits it into salt (4) and iv (8)
}

// ServerKeys derives the server's application traffic key and IV from a
// key log (tls.Config.KeyLogWriter output, NSS format) of one connection
// that negotiated suite: HKDF-Expand-Label(SERVER_TRAFFIC_SECRET_0, "key"
// / "iv"), RFC 8446 section 7.3.
func ServerKeys(keyLog []byte, version, suite uint16) (Keys, error) {
	if version != tls.VersionTLS13 {
		return Keys{}, ErrUnsupported
	}
	var h func() hash.Hash
	var keyLen int
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		h, keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		h, keyLen = sha512.New384, 32
	default:
		return Keys{}, ErrUnsupported
	}
	var secret []byte
	for _, line := range strings.Split(string(keyLog), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == serverTrafficName {
			s, err := hex.DecodeString(f[2])
			if err != nil {
				return Keys{}, fmt.Errorf("ktls: key log: %w", err)
			}
			secret = s
		}
	}
	if secret == nil {
		return Keys{}, errors.New("ktls: no " + serverTrafficName + " in the key log")
	}
	key, err := expandLabel(h, secret, "key", keyLen)
	if err != nil {
		return Keys{}, err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Suite: suite, Key: key, IV: iv}, nil
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // empty context
	return hkdf.Expand(h, secret, string(info), n)
}

// cryptoInfo is struct tls12_crypto_info_aes_gcm_{128,256}: version,
// cipher type, iv (the IV's last 8 bytes), key, salt (its first 4), and
// the record sequence number, big-endian.
func cryptoInfo(k Keys, seq uint64) ([]byte, error) {
	var cipher uint16
	switch len(k.Key) {
	case 16:
		cipher = cipherAESGCM128
	case 32:
		cipher = cipherAESGCM256
	default:
		return nil, ErrUnsupported
	}
	if len(k.IV) != gcmSaltSize+gcmIVSize {
		return nil, errors.New("ktls: IV must be 12 bytes")
	}
	b := make([]byte, 0, 4+gcmIVSize+len(k.Key)+gcmSaltSize+gcmRecSeqSize)
	b = binary.NativeEndian.AppendUint16(b, tls13Version)
	b = binary.NativeEndian.AppendUint16(b, cipher)
	b = append(b, k.IV[gcmSaltSize:]...)
	b = append(b, k.Key...)
	b = append(b, k.IV[:gcmSaltSize]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return b, nil
}

// Enable hands conn's transmit direction to the kernel: from then on,
// bytes written to the socket (write, writev, sendfile) leave as TLS
// application-data records encrypted with k, starting at record sequence
// seq. Untested against a kernel (see the package doc).
func Enable(conn syscall.RawConn, k Keys, seq uint64) error {
	info, err := cryptoInfo(k, seq)
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) {
		if serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_ULP, "tls"); serr != nil {
			serr = fmt.Errorf("ktls: TCP_ULP tls: %w", serr)
			return
		}
		if serr = unix.SetsockoptString(int(fd), unix.SOL_TLS, tlsTX, string(info)); serr != nil {
			serr = fmt.Errorf("ktls: TLS_TX: %w", serr)
		}
	}); err != nil {
		return err
	}
	return serr
}

// Probe reports whether this kernel accepts the TLS ULP on a TCP socket,
// with a loopback connection: nil when it does.
func Probe() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer func() { c.Close(); <-done }()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_ULP, "tls")
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("ktls: the kernel has no tls ULP: %w", serr)
	}
	return nil
}
