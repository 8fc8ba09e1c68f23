package server

import "sync"

// Security protocols of a listener (listener.security.protocol.map), as
// Kafka names them.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Anonymous is the principal of a connection that has not authenticated
// (Kafka's KafkaPrincipal.ANONYMOUS).
const Anonymous = "User:ANONYMOUS"

// Session is a connection's security state, shared by all its requests:
// the listener it came in on and the principal it acts as. TLS sets the
// principal at accept (a client certificate), SASL when authentication
// succeeds; authorization reads it.
type Session struct {
	// Listener is the listener's name (listeners), Protocol its security
	// protocol (listener.security.protocol.map).
	Listener, Protocol string

	mu        sync.Mutex
	principal string
	auth      authState // guarded by mu; see session_auth.go
}

func newSession(listener, protocol string) *Session {
	if protocol == "" {
		protocol = ProtocolPlaintext
	}
	return &Session{Listener: listener, Protocol: protocol, principal: Anonymous}
}

// Principal is who the connection acts as, "Type:name" (User:alice);
// Anonymous for a nil Session (a request made without a connection).
func (s *Session) Principal() string {
	if s == nil {
		return Anonymous
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.principal
}

// SetPrincipal records who the connection acts as.
func (s *Session) SetPrincipal(p string) {
	s.mu.Lock()
	s.principal = p
	s.mu.Unlock()
}
