package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

var (
	errStopped  = errors.New("server: shutting down")
	errIdle     = errors.New("server: connection idle")
	errPanicked = errors.New("server: handler panicked")
	errNoResp   = errors.New("server: handler returned neither a response nor an error")
)

// conn is one client connection: a reader (serve's own goroutine), a
// writer goroutine, and a goroutine per request being handled. Fields are
// grouped by the goroutine that owns them.
type conn struct {
	s       *Server
	session *Session
	nc      net.Conn
	id      uint64
	remote  net.Addr
	ip      netip.Addr // client address counted by max.connections.per.ip
	hasIP   bool
	log     *slog.Logger
	// principal names the principal after a TLS handshake (Listener's).
	principal func(tls.ConnectionState) (string, error)
	// raw is the socket for sendfile; nil when nc is not a plain TCP or
	// Unix socket (TLS, net.Pipe, wrappers), which use the copy path.
	raw syscall.RawConn

	// ctx is passed to handlers; cancelled when the connection fails,
	// so a long-poll fetch for a gone client ends early.
	ctx    context.Context
	cancel context.CancelFunc

	slots chan *slot // reader -> writer, in arrival order; closed by the reader
	// work carries the same slots to the one handler goroutine, which runs
	// them one at a time in arrival order: as in Kafka, where a connection
	// is muted while its request is processed, two pipelined produce
	// requests are applied in the order they were sent (ordering and
	// idempotent sequences depend on it). Reading ahead and writing
	// responses still overlap with handling.
	work        chan *slot
	handlerDone chan struct{}
	sem         chan struct{} // one token per request read and not yet released
	dead        chan struct{} // closed by fail
	failOnce    sync.Once
	writerDone  chan struct{}

	// mu orders stopReading against the reader re-arming its deadline,
	// so that a shutdown's past deadline is never overwritten.
	mu struct {
		sync.Mutex
		stopped bool
	}

	// Reader-owned.
	sizeBuf  [4]byte
	clientID *string // last client id seen: clients send the same one every time

	// Writer-owned.
	iov     [][]byte // byte parts gathered for the next writev
	bufs    net.Buffers
	pending []*slot // written to iov or the socket, released by the next flush
}

// slot carries one request from the reader, through its handler goroutine,
// to the writer. Slots are pooled with their done channel.
type slot struct {
	req    Request
	frame  *[]byte // pooled buffer req.Body aliases, or nil
	mapped []byte  // the mapping req.Body aliases, for frames over maxPooledFrame
	// charged is the bytes charged to the server's memory pool for the
	// frame, released with it.
	charged int64
	done    chan struct{} // cap 1: the handler goroutine sends once
	resp    *Response
	err     error
	hdr     [9]byte // response size, correlation id, empty tag section
}

var slotPool = sync.Pool{New: func() any { return &slot{done: make(chan struct{}, 1)} }}

func newConn(s *Server, nc net.Conn, id uint64, l *Listener) *conn {
	c := &conn{
		s:           s,
		session:     newSession(l.Name, l.Protocol),
		principal:   l.Principal,
		nc:          nc,
		id:          id,
		remote:      nc.RemoteAddr(),
		slots:       make(chan *slot, s.cfg.MaxInFlightPerConn),
		work:        make(chan *slot, s.cfg.MaxInFlightPerConn),
		handlerDone: make(chan struct{}),
		sem:         make(chan struct{}, s.cfg.MaxInFlightPerConn),
		dead:        make(chan struct{}),
		writerDone:  make(chan struct{}),
	}
	if c.remote == nil {
		c.remote = unknownAddr{}
	}
	c.log = s.log.With("conn", id, "remote", c.remote.String())
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	if l.TLS != nil {
		// No I/O yet: the handshake runs in serve, on the
		// connection's goroutine, not the accept loop's. Responses go
		// through crypto/tls, so raw stays nil (the copy path).
		c.nc = tls.Server(nc, l.TLS)
		return c
	}
	// Only the concrete socket types: a wrapper that embeds one may
	// change what Write means, and sendfile would bypass it.
	switch t := nc.(type) {
	case *net.TCPConn:
		c.raw, _ = t.SyscallConn()
	case *net.UnixConn:
		c.raw, _ = t.SyscallConn()
	}
	return c
}

// serve runs the reader, then waits for the writer, which waits for every
// handler goroutine; only then is the connection closed and forgotten.
func (c *conn) serve() {
	defer c.s.removeConn(c)
	c.log.Debug("connection opened")
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.cancel()
			c.nc.Close()
			if !c.failed() && !c.stopped() {
				c.log.Info("closing connection: TLS handshake failed", "listener", c.session.Listener, "err", err)
			}
			return
		}
	}
	go c.writeLoop()
	go c.handleLoop()
	err := c.readLoop()
	close(c.slots)
	close(c.work)
	<-c.handlerDone
	<-c.writerDone
	c.cancel()
	c.nc.Close()
	c.log.Debug("connection closed", "reason", err)
}

// handshake runs the TLS handshake within HandshakeTimeout and sets the
// session's principal from the client's certificate.
func (c *conn) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	cs := tc.ConnectionState()
	if p := c.principal; p != nil {
		principal, err := p(cs)
		if err != nil {
			return err
		}
		c.session.SetPrincipal(principal)
	}
	c.log.Debug("TLS handshake done", "version", tls.VersionName(cs.Version),
		"cipher_suite", tls.CipherSuiteName(cs.CipherSuite), "principal", c.session.Principal())
	return nil
}

// fail closes the connection at once: the reader's Read and the writer's
// writes return, handlers see their context cancelled, and responses not
// yet written are dropped. Safe to call from any goroutine, many times.
func (c *conn) fail() {
	c.failOnce.Do(func() {
		close(c.dead)
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) failed() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// stopReading makes the reader stop taking requests (graceful shutdown):
// a deadline in the past wakes a blocked Read.
func (c *conn) stopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.stopped = true
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.stopped
}

// armRead sets the idle deadline for the next frame, unless stopReading
// was called.
func (c *conn) armRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stopped {
		return false
	}
	if d := c.s.cfg.IdleTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	return true
}

// readLoop reads frames and dispatches them until the client goes away,
// sends something invalid, or the server shuts down. Protocol errors fail
// the connection at once; a clean EOF or a shutdown lets the writer finish
// the responses already owed.
func (c *conn) readLoop() error {
	for {
		// Take the in-flight token before reading, so that at the bound
		// the socket is not read at all.
		select {
		case <-c.s.closing:
			return errStopped
		default:
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.dead:
			return net.ErrClosed
		case <-c.s.closing:
			return errStopped
		}
		s, err := c.readRequest()
		if err != nil {
			<-c.sem
			return err
		}
		// Never block: each queued slot holds one of cap(sem) tokens.
		c.slots <- s
		c.work <- s
	}
}

// readRequest reads one frame and parses its header.
func (c *conn) readRequest() (*slot, error) {
	for {
		if !c.armRead() {
			return nil, errStopped
		}
		n, err := io.ReadFull(c.nc, c.sizeBuf[:])
		if err == nil {
			break
		}
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			if c.stopped() {
				return nil, errStopped
			}
			if len(c.sem) > 1 {
				continue // requests in flight: the connection is not idle
			}
			c.log.Info("closing idle connection", "idle", c.s.cfg.IdleTimeout)
			c.fail()
			return nil, errIdle
		}
		if n == 0 && err == io.EOF {
			return nil, err // client closed between requests
		}
		return nil, c.readFailed(err, "reading request size")
	}
	size := int32(binary.BigEndian.Uint32(c.sizeBuf[:]))
	if size > c.s.cfg.SASLMaxReceiveSize && !c.session.Authenticated() {
		// Kafka's SaslServerAuthenticator refuses the same, with
		// sasl.server.max.receive.size.
		c.log.Warn("closing connection: request before SASL authentication larger than sasl.server.max.receive.size",
			"size", size, "max", c.s.cfg.SASLMaxReceiveSize)
		c.fail()
		return nil, fmt.Errorf("server: unauthenticated request size %d out of range", size)
	}
	if size < 0 || size > c.s.cfg.MaxRequestSize {
		// Kafka's InvalidReceiveException: refuse before allocating.
		c.log.Warn("closing connection: request size out of range",
			"size", size, "max", c.s.cfg.MaxRequestSize)
		c.fail()
		return nil, fmt.Errorf("server: request size %d out of range", size)
	}
	s := slotPool.Get().(*slot)
	if err := c.readBody(s, int(size)); err != nil {
		c.dropSlot(s)
		return nil, err
	}
	body := s.mapped
	if s.frame != nil {
		body = *s.frame
	}
	h, err := parseHeader(body)
	if err != nil {
		c.dropSlot(s)
		c.log.Warn("closing connection: bad request header",
			"api_key", h.key, "api_version", h.version, "size", size, "err", err)
		c.fail()
		return nil, err
	}
	s.req = Request{
		APIKey:        h.key,
		APIVersion:    h.version,
		CorrelationID: h.corr,
		ClientID:      c.clientIDFor(h),
		Body:          h.body,
		Remote:        c.remote,
		ConnID:        c.id,
		Session:       c.session,
	}
	return s, nil
}

// readBody reads a frame of n bytes into s, charging it to the server's
// memory pool (queued.max.request.bytes) first; it waits while the pool is
// spent, and the socket is not read meanwhile, so TCP pushes back on the
// client as Kafka's muted channel does. A frame up to maxPooledFrame is
// charged whole and read into a pooled buffer, so the steady state neither
// copies nor allocates. A larger one is read into a mapping, charged chunk
// by chunk before each chunk is read: memory and budget follow the bytes
// that arrived, not the size announced (see mapFrame). On error s holds
// what must be freed (freeFrame).
func (c *conn) readBody(s *slot, n int) error {
	if n <= maxPooledFrame {
		if err := c.charge(s, int64(n)); err != nil {
			return err
		}
		s.frame = getBuf(n)
		if _, err := io.ReadFull(c.nc, *s.frame); err != nil {
			return c.readFailed(err, "reading request")
		}
		return nil
	}
	b, err := mapFrame(n)
	if err != nil {
		c.log.Warn("closing connection: no memory for request", "size", n, "err", err)
		c.fail()
		return err
	}
	s.mapped = b
	for off := 0; off < n; {
		k := min(frameChunk, n-off)
		if err := c.charge(s, int64(k)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.nc, b[off:off+k]); err != nil {
			return c.readFailed(err, "reading request")
		}
		off += k
	}
	return nil
}

// charge adds n bytes to s's charge in the memory pool, waiting for room.
// A wait is the server's doing, not the client's, so it restarts the read
// deadline (connections.max.idle.ms) for the rest of the frame.
func (c *conn) charge(s *slot, n int64) error {
	ok, waited := c.s.mem.acquire(n, s.charged, c.dead, c.s.closing)
	if !ok {
		if c.failed() {
			return net.ErrClosed
		}
		return errStopped
	}
	s.charged += n
	if waited && !c.armRead() {
		return errStopped
	}
	return nil
}

// freeFrame gives back s's frame buffer and its charge in the memory pool.
func (c *conn) freeFrame(s *slot) {
	if s.frame != nil {
		putBuf(s.frame)
		s.frame = nil
	}
	if s.mapped != nil {
		unmapFrame(s.mapped)
		s.mapped = nil
	}
	c.s.mem.release(s.charged)
	s.charged = 0
}

// dropSlot frees a slot whose request was not read whole.
func (c *conn) dropSlot(s *slot) {
	c.freeFrame(s)
	*s = slot{done: s.done}
	slotPool.Put(s)
}

// readFailed classifies a read error: a shutdown deadline, or the client
// going away mid-frame (logged at Debug: not the server's problem).
func (c *conn) readFailed(err error, what string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.stopped() {
			return errStopped
		}
		c.log.Info("closing connection: stalled inside a request", "idle", c.s.cfg.IdleTimeout)
	} else if !c.failed() {
		c.log.Debug("read failed", "during", what, "err", err)
	}
	c.fail()
	return err
}

// clientIDFor returns the request's client id, reusing the previous
// string when it is the same, to save an allocation per request.
func (c *conn) clientIDFor(h requestHeader) *string {
	if h.nullClientID {
		return nil
	}
	if c.clientID == nil || *c.clientID != string(h.clientID) {
		id := string(h.clientID)
		c.clientID = &id
	}
	return c.clientID
}

// handleLoop runs the connection's requests one at a time, in order.
func (c *conn) handleLoop() {
	defer close(c.handlerDone)
	for s := range c.work {
		c.handle(s)
	}
}

// handle runs the handler for one request. A panic is contained here: it
// is logged with its stack and fails only this connection.
func (c *conn) handle(s *slot) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("closing connection: handler panicked",
				"api_key", s.req.APIKey, "api_version", s.req.APIVersion,
				"correlation_id", s.req.CorrelationID,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.resp, s.err = nil, errPanicked
		}
		s.done <- struct{}{}
	}()
	s.resp, s.err = c.s.h.Handle(c.ctx, &s.req)
}

// release returns a slot's resources once its response is written or
// dropped: the response's own, then the frame the request aliased (the
// response may have aliased it too), then the in-flight token.
func (c *conn) release(s *slot) {
	if s.resp != nil && s.resp.Release != nil {
		s.resp.Release()
	}
	c.freeFrame(s)
	*s = slot{done: s.done}
	slotPool.Put(s)
	<-c.sem
}

// unknownAddr stands in for the remote address of a conn without one.
type unknownAddr struct{}

func (unknownAddr) Network() string { return "unknown" }
func (unknownAddr) String() string  { return "unknown" }
