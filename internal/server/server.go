package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults, named after the Kafka broker settings they mirror.
const (
	// DefaultMaxRequestSize is socket.request.max.bytes.
	DefaultMaxRequestSize = 100 << 20
	// DefaultMaxInFlightPerConn bounds pipelining per connection. Kafka
	// clients send at most max.in.flight.requests.per.connection (5 by
	// default) requests ahead; acks=0 producers send more. 32 leaves them
	// room while keeping a connection's buffered requests bounded.
	DefaultMaxInFlightPerConn = 32
	// DefaultHandshakeTimeout bounds a TLS handshake, so that a client
	// that connects and sends nothing holds its goroutine and descriptor
	// no longer than this.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout is connections.max.idle.ms.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultSASLMaxReceiveSize is sasl.server.max.receive.size.
	DefaultSASLMaxReceiveSize = 512 << 10
)

// Reasons a connection is refused at accept, as OnConnRejected reports them.
const (
	RejectMaxConnections      = "max_connections"
	RejectMaxConnectionsPerIP = "max_connections_per_ip"
)

// Config configures a Server. Zero values take the defaults.
type Config struct {
	// Listener is the name of the listener this server serves (listeners,
	// "PLAINTEXT" by default); Protocol its security protocol
	// (listener.security.protocol.map; ProtocolPlaintext when empty).
	Listener, Protocol string
	// TLS, if set, makes every connection a TLS server connection (an
	// SSL or SASL_SSL listener). The handshake runs on the connection's
	// own goroutine, bounded by HandshakeTimeout (DefaultHandshakeTimeout
	// when zero); a failed one closes the connection with one log line.
	TLS              *tls.Config
	HandshakeTimeout time.Duration
	// Principal, if set, names the principal of a connection after its
	// TLS handshake (a client certificate's mapped subject); an error
	// closes the connection, as Kafka fails the authentication.
	Principal func(tls.ConnectionState) (string, error)
	// MaxRequestSize is socket.request.max.bytes: a frame whose size
	// prefix is negative or larger closes the connection before any of
	// its body is read or allocated.
	MaxRequestSize int32
	// SASLMaxReceiveSize is sasl.server.max.receive.size: on a
	// SASL listener, the largest request read before the connection
	// authenticated (a larger size prefix closes it before its body is
	// read), so that a client without a password cannot make the broker
	// buffer socket.request.max.bytes.
	SASLMaxReceiveSize int32
	// MaxInFlightPerConn bounds the requests of one connection that are
	// being handled or waiting for their response to be written. At the
	// bound the reader stops reading the socket, so a fast client is
	// pushed back by TCP, as Kafka mutes a channel.
	MaxInFlightPerConn int
	// IdleTimeout is connections.max.idle.ms: a connection is closed
	// when it sends nothing for this long with no request in flight, or
	// when a response write makes no progress for this long (a client
	// that stopped reading). Negative disables it.
	IdleTimeout time.Duration
	// QueuedMaxRequestBytes is queued.max.request.bytes: the bytes of
	// request buffers held across the server, from the first byte read
	// to the response written. Reading pauses while they are spent (see
	// memPool). Zero or negative is unbounded.
	QueuedMaxRequestBytes int64
	// MaxConnections is max.connections: a connection accepted while
	// this many are open is closed at once. Zero or negative is
	// unbounded.
	MaxConnections int
	// MaxConnectionsPerIP is max.connections.per.ip, the same bound per
	// client address; MaxConnectionsPerIPOverrides sets it for some
	// addresses (zero refuses them all). Zero or negative is unbounded.
	MaxConnectionsPerIP          int
	MaxConnectionsPerIPOverrides map[netip.Addr]int
	// Logger receives one line per closed-on-error connection; per
	// request logs are at Debug. Nil discards.
	Logger *slog.Logger
	// OnConnOpen and OnConnClose, if set, are called as connections
	// start and end (the connection metrics).
	OnConnOpen, OnConnClose func()
	// OnConnRejected, if set, is called with RejectMaxConnections or
	// RejectMaxConnectionsPerIP for each connection refused at accept.
	OnConnRejected func(reason string)
}

func (c *Config) setDefaults() {
	if c.MaxRequestSize <= 0 {
		c.MaxRequestSize = DefaultMaxRequestSize
	}
	if c.SASLMaxReceiveSize <= 0 {
		c.SASLMaxReceiveSize = DefaultSASLMaxReceiveSize
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
}

// Server accepts connections and runs each one (see the package doc). It
// is safe for concurrent use; Serve may be called for several listeners.
type Server struct {
	h   Handler
	cfg Config
	log *slog.Logger

	// ctx is the parent of every connection's context. It is cancelled
	// when Shutdown stops waiting for handlers to finish.
	ctx    context.Context
	cancel context.CancelFunc
	// closing is closed when shutdown starts: accept loops return and
	// readers stop taking new requests.
	closing chan struct{}
	// conns counts connection goroutines (serveConn); each one owns its
	// writer and handler goroutines and waits for them.
	conns  sync.WaitGroup
	nextID atomic.Uint64
	// mem charges request buffers against QueuedMaxRequestBytes.
	mem *memPool
	// rejectLog rate-limits the log line of refused connections.
	rejectLog rateLimitedLog

	mu struct {
		sync.Mutex
		closed    bool
		listeners map[net.Listener]struct{}
		conns     map[*conn]struct{}
		// perIP counts open connections by client address, for
		// MaxConnectionsPerIP.
		perIP map[netip.Addr]int
	}
}

// New returns a Server that answers requests with h.
func New(h Handler, cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{h: h, cfg: cfg, log: cfg.Logger, closing: make(chan struct{}),
		mem: newMemPool(cfg.QueuedMaxRequestBytes)}
	s.rejectLog.every = rejectLogEvery
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[*conn]struct{})
	s.mu.perIP = make(map[netip.Addr]int)
	return s
}

// QueuedRequestBytes is the bytes of request buffers now charged against
// QueuedMaxRequestBytes (Kafka's MemoryPoolUsed).
func (s *Server) QueuedRequestBytes() int64 { return s.mem.Used() }

// Listener is what a listener's connections share: its name and security
// protocol (the Session's), and for SSL and SASL_SSL its TLS
// configuration and how a client certificate names the principal.
type Listener struct {
	Name, Protocol string
	TLS            *tls.Config
	Principal      func(tls.ConnectionState) (string, error)
}

// Serve accepts connections on ln until the server is closed, and then
// returns nil; it closes ln. Any other accept error that is not temporary
// is returned. The connections are those of Config's Listener, Protocol,
// TLS and Principal.
func (s *Server) Serve(ln net.Listener) error {
	return s.ServeListener(ln, Listener{Name: s.cfg.Listener, Protocol: s.cfg.Protocol, TLS: s.cfg.TLS, Principal: s.cfg.Principal})
}

// ServeListener is Serve for the connections of listener l: one Server
// serves every listener of a node, so that max.connections and
// queued.max.request.bytes bound them together, as in Kafka.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.mu.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mu.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
				return nil
			default:
			}
			if !temporary(err) {
				return err
			}
			// Out of descriptors or memory: back off as net/http does
			// instead of spinning, and keep serving the connections we
			// have.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		s.startConn(nc, &l)
	}
}

func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// startConn registers nc and starts its goroutine, unless shutdown began or
// a connection limit refuses it: the Add happens under mu before closed is
// set, so Shutdown's Wait sees every connection.
func (s *Server) startConn(nc net.Conn, l *Listener) {
	ip, hasIP := remoteIP(nc)
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if reason, limit := s.admitLocked(ip, hasIP); reason != "" {
		s.mu.Unlock()
		s.reject(nc, reason, limit)
		return
	}
	c := newConn(s, nc, s.nextID.Add(1), l)
	c.ip, c.hasIP = ip, hasIP
	if hasIP {
		s.mu.perIP[ip]++
	}
	if s.cfg.OnConnOpen != nil {
		s.cfg.OnConnOpen()
	}
	s.mu.conns[c] = struct{}{}
	s.conns.Add(1)
	go c.serve()
	s.mu.Unlock()
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	if c.hasIP {
		if n := s.mu.perIP[c.ip] - 1; n > 0 {
			s.mu.perIP[c.ip] = n
		} else {
			delete(s.mu.perIP, c.ip)
		}
	}
	s.mu.Unlock()
	if s.cfg.OnConnClose != nil {
		s.cfg.OnConnClose()
	}
	s.conns.Done()
}

// Close shuts the server down gracefully and waits without a deadline:
// see Shutdown.
func (s *Server) Close() error {
	return s.Shutdown(context.Background())
}

// Shutdown stops accepting connections and stops reading requests; the
// requests already read are handled and their responses written, in order,
// before each connection is closed. If ctx ends first, the handlers'
// contexts are cancelled and the connections closed at once; Shutdown then
// still waits for the handlers to return (they must honour their context)
// and returns ctx's error. Serve returns nil once Shutdown has started.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.mu.closed {
		s.mu.closed = true
		close(s.closing)
		for ln := range s.mu.listeners {
			ln.Close()
		}
		for c := range s.mu.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { // owned: both paths below wait for done
		s.conns.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		s.mu.Lock()
		for c := range s.mu.conns {
			c.fail()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	return err
}
