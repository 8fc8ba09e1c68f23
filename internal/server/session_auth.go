package server

import "time"

// authState is a Session's authentication state on a SASL listener.
type authState struct {
	// authenticated is set when SASL authentication succeeds; until then
	// a SASL listener's connection may only authenticate.
	authenticated bool
	// expiry is when the authentication lapses (KIP-368's
	// connections.max.reauth.ms); zero for never.
	expiry time.Time
	// exchange is the authenticator's own state between requests.
	exchange any
}

// SASL reports whether the connection came in on a SASL_PLAINTEXT or
// SASL_SSL listener, where it must authenticate before anything else.
func (s *Session) SASL() bool {
	return s != nil && (s.Protocol == ProtocolSASLPlaintext || s.Protocol == ProtocolSASLSSL)
}

// Authenticated reports whether the connection may send requests other
// than those of authentication: always on a listener without SASL,
// after a successful authentication on a SASL one.
func (s *Session) Authenticated() bool {
	if !s.SASL() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth.authenticated
}

// SetAuthenticated records a successful SASL authentication: the
// principal the connection acts as and when the authentication lapses
// (zero: never).
func (s *Session) SetAuthenticated(principal string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principal = principal
	s.auth.authenticated = true
	s.auth.expiry = expiry
}

// AuthExpiry is when the connection's authentication lapses; zero for
// never or not authenticated.
func (s *Session) AuthExpiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth.expiry
}

// Exchange returns what SetExchange stored: the authenticator's state
// between the requests of one authentication (the mechanism SaslHandshake
// chose, the exchange in progress). The server does not look at it.
func (s *Session) Exchange() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth.exchange
}

// SetExchange stores the authenticator's state.
func (s *Session) SetExchange(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth.exchange = v
}
