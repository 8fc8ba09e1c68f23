// Package tlsconf builds crypto/tls configurations from Kafka's ssl.*
// broker properties (PEM key and trust stores, ssl.client.auth, protocol
// versions, cipher suites), re-reads the store files when they change,
// and maps client certificates to principals (ssl.principal.mapping.rules).
// It knows nothing of listeners or connections: the broker builds one
// Source per SSL or SASL_SSL listener.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Source is the TLS configuration of one listener. Its tls.Configs read
// the key and trust stores through it, so that a store file replaced on
// disk is used by the next handshake (Kafka re-reads its stores on
// AlterConfigs; strata notices the file's change). Safe for concurrent use.
type Source struct {
	name       string
	props      map[string]string
	log        *slog.Logger
	mapper     *Mapper
	clientAuth tls.ClientAuthType
	minVersion uint16
	maxVersion uint16
	suites     []uint16
	verifyHost bool
	now        func() time.Time

	mu struct {
		sync.Mutex
		cert       *tls.Certificate
		roots      *x509.CertPool // nil: the system's
		keyStamp   stamp
		trustStamp stamp
		server     *tls.Config // rebuilt when a store changes
		checked    time.Time
	}
}

// stamp identifies a version of a store file: a replaced or rewritten
// file changes its modification time or size.
type stamp struct {
	mod  time.Time
	size int64
}

func statStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// recheckEvery bounds how often the store files are stat'ed: a burst of
// connections costs one stat, and a replaced certificate is in use within
// this long.
const recheckEvery = time.Second

// New builds the Source of listener name from its ssl.* properties (as
// config.ListenerSSL resolves them). It fails on anything a handshake
// would fail on later: a missing or unreadable store, a key that does not
// match its certificate, an expired certificate, an unknown protocol or
// cipher suite.
func New(name string, props map[string]string, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{name: name, props: props, log: logger, now: time.Now}
	get := func(k string) string { return strings.TrimSpace(props[k]) }
	wrap := func(err error) error { return fmt.Errorf("listener %s: %w", name, err) }

	for _, k := range []string{"ssl.keystore.type", "ssl.truststore.type"} {
		if t := get(k); t != "" && !strings.EqualFold(t, "PEM") {
			return nil, wrap(fmt.Errorf("%s=%s: strata reads PEM stores only (convert a JKS or PKCS12 store with keytool -importkeystore and openssl pkcs12 -nodes)", k, t))
		}
	}
	switch v := strings.ToLower(get("ssl.client.auth")); v {
	case "", "none":
		s.clientAuth = tls.NoClientCert
	case "requested":
		s.clientAuth = tls.VerifyClientCertIfGiven
	case "required":
		s.clientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, wrap(fmt.Errorf("ssl.client.auth=%s: want none, requested or required", v))
	}
	var err error
	if s.minVersion, s.maxVersion, err = versions(get("ssl.protocol"), get("ssl.enabled.protocols")); err != nil {
		return nil, wrap(err)
	}
	if s.suites, err = cipherSuites(get("ssl.cipher.suites")); err != nil {
		return nil, wrap(err)
	}
	if s.mapper, err = ParseRules(props["ssl.principal.mapping.rules"]); err != nil {
		return nil, wrap(err)
	}
	switch v := strings.ToLower(get("ssl.endpoint.identification.algorithm")); v {
	case "https":
		s.verifyHost = true
	case "":
	default:
		return nil, wrap(fmt.Errorf("ssl.endpoint.identification.algorithm=%s: want https or empty", v))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(true); err != nil {
		return nil, wrap(err)
	}
	return s, nil
}

// Name is the listener's name.
func (s *Source) Name() string { return s.name }

// loadLocked (re)reads the stores whose files changed (all of them when
// first). On a reload a failure keeps the stores in use and logs a
// warning: a half-written file must not take a listener down.
func (s *Source) loadLocked(first bool) error {
	get := func(k string) string { return strings.TrimSpace(s.props[k]) }
	changed := first
	if loc := get("ssl.keystore.location"); loc != "" || first {
		st, err := stampOf(loc)
		if err != nil && first {
			return err
		}
		if err == nil && (first || st != s.mu.keyStamp) {
			cert, err := s.loadKeyStore()
			switch {
			case err != nil && first:
				return err
			case err != nil:
				s.log.Warn("key store changed but cannot be loaded; keeping the one in use", "listener", s.name, "file", loc, "err", err)
			default:
				s.mu.cert, s.mu.keyStamp, changed = cert, st, true
				if !first {
					s.log.Info("key store reloaded", "listener", s.name, "file", loc, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
				}
			}
		}
	}
	if loc := get("ssl.truststore.location"); loc != "" || first {
		st, err := stampOf(loc)
		if err != nil && first {
			return err
		}
		if err == nil && (first || st != s.mu.trustStamp) {
			roots, err := s.loadTrustStore()
			switch {
			case err != nil && first:
				return err
			case err != nil:
				s.log.Warn("trust store changed but cannot be loaded; keeping the one in use", "listener", s.name, "file", loc, "err", err)
			default:
				s.mu.roots, s.mu.trustStamp, changed = roots, st, true
				if !first {
					s.log.Info("trust store reloaded", "listener", s.name, "file", loc)
				}
			}
		}
	}
	if changed {
		s.mu.server = s.serverConfigLocked()
	}
	s.mu.checked = s.now()
	return nil
}

// stampOf stats path; an empty path (inline PEM) has the zero stamp.
func stampOf(path string) (stamp, error) {
	if path == "" {
		return stamp{}, nil
	}
	return statStamp(path)
}

// current returns the stores in use, re-reading changed files at most
// every recheckEvery.
func (s *Source) current() (*tls.Config, *tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Sub(s.mu.checked) >= recheckEvery {
		s.loadLocked(false)
	}
	return s.mu.server, s.mu.cert, s.mu.roots
}

func (s *Source) serverConfigLocked() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*s.mu.cert},
		ClientAuth:   s.clientAuth,
		ClientCAs:    s.mu.roots,
		MinVersion:   s.minVersion,
		MaxVersion:   s.maxVersion,
		CipherSuites: s.suites,
	}
}

// ServerConfig is the listener's server-side configuration. Each handshake
// takes the stores current then (GetConfigForClient).
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: s.minVersion,
		MaxVersion: s.maxVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cfg, _, _ := s.current()
			return cfg, nil
		},
	}
}

// ClientConfig is the configuration a broker dials another broker's
// listener with (the inter-broker listener): the key store as its client
// certificate, the trust store to check the other broker's, and the host
// name checked unless ssl.endpoint.identification.algorithm is empty.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	_, cert, roots := s.current()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{*cert},
		RootCAs:      roots,
		ServerName:   serverName,
		MinVersion:   s.minVersion,
		MaxVersion:   s.maxVersion,
		CipherSuites: s.suites,
	}
	if !s.verifyHost {
		// Check the chain but not the name: crypto/tls does both or
		// neither, so verify the chain here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tlsconf: the broker sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// Principal is the principal of a connection after its handshake:
// User:<mapped subject DN> when the client presented a certificate,
// User:ANONYMOUS when not (Kafka's SslAuthenticator).
func (s *Source) Principal(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "User:ANONYMOUS", nil
	}
	return s.mapper.Principal(cs.PeerCertificates[0])
}

func (s *Source) loadKeyStore() (*tls.Certificate, error) {
	get := func(k string) string { return strings.TrimSpace(s.props[k]) }
	var certPEM, keyPEM []byte
	switch loc := get("ssl.keystore.location"); {
	case loc != "":
		if get("ssl.keystore.certificate.chain") != "" || get("ssl.keystore.key") != "" {
			return nil, errors.New("set ssl.keystore.location or ssl.keystore.certificate.chain and ssl.keystore.key, not both")
		}
		b, err := os.ReadFile(loc)
		if err != nil {
			return nil, fmt.Errorf("ssl.keystore.location: %w", err)
		}
		certPEM, keyPEM = b, b
	case get("ssl.keystore.certificate.chain") != "" && get("ssl.keystore.key") != "":
		certPEM, keyPEM = []byte(get("ssl.keystore.certificate.chain")), []byte(get("ssl.keystore.key"))
	default:
		return nil, errors.New("no key store: set ssl.keystore.location (a PEM file with the key and its certificate chain), or ssl.keystore.certificate.chain and ssl.keystore.key")
	}
	cert, err := parseKeyPair(certPEM, keyPEM, s.props["ssl.key.password"])
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.After(cert.Leaf.NotAfter) || now.Before(cert.Leaf.NotBefore) {
		return nil, fmt.Errorf("the key store's certificate (%s) is valid from %s to %s, not now", cert.Leaf.Subject, cert.Leaf.NotBefore.Format(time.RFC3339), cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	return cert, nil
}

// parseKeyPair reads the certificates of certPEM (leaf first) and the one
// private key of keyPEM, which may be encrypted PKCS#8.
func parseKeyPair(certPEM, keyPEM []byte, password string) (*tls.Certificate, error) {
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("the key store holds no CERTIFICATE block")
	}
	var keyDER []byte
	var keyType string
	for rest := keyPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			if keyDER != nil {
				return nil, errors.New("the key store holds more than one private key")
			}
			if _, encrypted := b.Headers["Proc-Type"]; encrypted {
				return nil, errors.New("the private key is encrypted the legacy OpenSSL way (Proc-Type header); convert it to encrypted PKCS#8 with openssl pkcs8 -topk8 -v2 aes-256-cbc")
			}
			keyDER, keyType = b.Bytes, b.Type
		}
	}
	if keyDER == nil {
		return nil, errors.New("the key store holds no PRIVATE KEY block")
	}
	if keyType == "ENCRYPTED PRIVATE KEY" {
		if password == "" {
			return nil, errors.New("the private key is encrypted: set ssl.key.password")
		}
		der, err := decryptPKCS8(keyDER, password)
		if err != nil {
			return nil, err
		}
		keyDER, keyType = der, "PRIVATE KEY"
	}
	var certBuf []byte
	for _, der := range chain {
		certBuf = append(certBuf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	cert, err := tls.X509KeyPair(certBuf, pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

func (s *Source) loadTrustStore() (*x509.CertPool, error) {
	get := func(k string) string { return strings.TrimSpace(s.props[k]) }
	var b []byte
	switch loc := get("ssl.truststore.location"); {
	case loc != "":
		var err error
		if b, err = os.ReadFile(loc); err != nil {
			return nil, fmt.Errorf("ssl.truststore.location: %w", err)
		}
	case get("ssl.truststore.certificates") != "":
		b = []byte(get("ssl.truststore.certificates"))
	default:
		if s.clientAuth != tls.NoClientCert {
			return nil, errors.New("ssl.client.auth needs a trust store to check client certificates against: set ssl.truststore.location or ssl.truststore.certificates")
		}
		return nil, nil // the system's roots, for dialing other brokers
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("the trust store holds no certificate")
	}
	return pool, nil
}

// versions maps ssl.protocol and ssl.enabled.protocols to the TLS version
// range: Kafka negotiates the newest version both enable.
func versions(protocol, enabled string) (uint16, uint16, error) {
	names := map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}
	var lo, hi uint16
	for _, e := range strings.Split(enabled, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		v, ok := names[e]
		if !ok {
			return 0, 0, fmt.Errorf("ssl.enabled.protocols: %q is not supported (TLSv1.2, TLSv1.3)", e)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	if lo == 0 {
		lo, hi = tls.VersionTLS12, tls.VersionTLS13
	}
	switch protocol {
	case "", "TLS", "TLSv1.3":
	case "TLSv1.2":
		// Kafka's SSLContext for TLSv1.2 cannot speak 1.3.
		hi = min(hi, tls.VersionTLS12)
	default:
		return 0, 0, fmt.Errorf("ssl.protocol=%s: want TLSv1.2 or TLSv1.3", protocol)
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("ssl.protocol=%s allows none of ssl.enabled.protocols %s", protocol, enabled)
	}
	return lo, hi, nil
}

func cipherSuites(v string) ([]uint16, error) {
	var out []uint16
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		found := false
		for _, cs := range tls.CipherSuites() {
			if cs.Name == n {
				out, found = append(out, cs.ID), true
			}
		}
		if !found {
			return nil, fmt.Errorf("ssl.cipher.suites: %q is not a cipher suite Go considers secure", n)
		}
	}
	return out, nil
}
