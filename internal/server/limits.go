package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// rejectLogEvery is the most often a refused connection is logged: an
// attacker opening thousands of connections must not flood the log.
const rejectLogEvery = 10 * time.Second

// remoteIP is the client address that max.connections.per.ip counts. Unix
// sockets and other connections without an IP are not counted per address.
func remoteIP(nc net.Conn) (netip.Addr, bool) {
	ta, ok := nc.RemoteAddr().(*net.TCPAddr)
	if !ok || ta == nil {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	// An IPv4 client on a dual-stack socket is the same client as on an
	// IPv4 one: count (and override) it under its IPv4 address.
	return ip.Unmap(), true
}

// SetConnectionLimits changes max.connections, max.connections.per.ip and
// max.connections.per.ip.overrides at run time (dynamic broker configs, as
// Kafka's ConnectionQuotas takes them from DynamicListenerConfig). They
// apply to connections accepted from now on: open ones past a lowered
// limit stay open, as in Kafka. overrides must not be modified after.
func (s *Server) SetConnectionLimits(maxConns, perIP int, overrides map[netip.Addr]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.MaxConnections, s.cfg.MaxConnectionsPerIP, s.cfg.MaxConnectionsPerIPOverrides = maxConns, perIP, overrides
}

// admitLocked decides whether a new connection from ip may open, as Kafka's
// ConnectionQuotas does at accept: the per-address limit (an override for
// ip if one is set), then the broker-wide one. It returns the reason and
// the limit reached, or "" to admit.
func (s *Server) admitLocked(ip netip.Addr, hasIP bool) (string, int) {
	if hasIP {
		limit := s.cfg.MaxConnectionsPerIP
		o, overridden := s.cfg.MaxConnectionsPerIPOverrides[ip]
		if overridden {
			limit = o
		}
		if (overridden || limit > 0) && s.mu.perIP[ip] >= limit {
			return RejectMaxConnectionsPerIP, limit
		}
	}
	if m := s.cfg.MaxConnections; m > 0 && len(s.mu.conns) >= m {
		return RejectMaxConnections, m
	}
	return "", 0
}

// reject closes a connection refused at accept, counts it and logs it
// (rate-limited). The client sees the connection closed before any
// response, as Kafka's TooManyConnectionsException closes it; Kafka logs
// each at Info, which a flood turns into a flood of lines.
//
// Kafka differs for max.connections (KIP-402): its acceptor stops
// accepting until a connection closes, leaving new clients in the listen
// backlog. Closing at once tells a client to back off and retry, and
// keeps the accept loop serving the addresses still under their limits.
func (s *Server) reject(nc net.Conn, reason string, limit int) {
	remote := "unknown"
	if a := nc.RemoteAddr(); a != nil {
		remote = a.String()
	}
	// Counted and logged before the close, so that a client seeing the
	// close can find it counted.
	if s.cfg.OnConnRejected != nil {
		s.cfg.OnConnRejected(reason)
	}
	if n, ok := s.rejectLog.allow(time.Now()); ok {
		s.log.Warn("refused connection: connection limit reached",
			"reason", reason, "limit", limit, "remote", remote,
			slog.Int("refused_since_last_line", n))
	}
	nc.Close()
}

// rateLimitedLog lets one line through per interval and counts the ones
// held back. Safe for concurrent use.
type rateLimitedLog struct {
	every time.Duration
	mu    struct {
		sync.Mutex
		last       time.Time
		suppressed int
	}
}

// allow says whether to log now; n is the events since the last line
// logged, this one included.
func (l *rateLimitedLog) allow(now time.Time) (n int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.suppressed++
	if !l.mu.last.IsZero() && now.Sub(l.mu.last) < l.every {
		return 0, false
	}
	n = l.mu.suppressed
	l.mu.last, l.mu.suppressed = now, 0
	return n, true
}
