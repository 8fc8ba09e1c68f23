package kafka

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
)

// SASLConfig configures authentication on SASL_PLAINTEXT and SASL_SSL
// listeners.
type SASLConfig struct {
	// EnabledMechanisms is sasl.enabled.mechanisms; nil takes
	// DefaultSASLMechanisms.
	EnabledMechanisms []string
	// FailedAuthenticationDelay is
	// connection.failed.authentication.delay.ms.
	FailedAuthenticationDelay time.Duration
	// MaxReauth is connections.max.reauth.ms: the session lifetime
	// SaslAuthenticate v1+ tells clients; 0 for none.
	MaxReauth time.Duration
	// PlainUsers are PLAIN users with their passwords, from the broker's
	// properties (Kafka's JAAS user_<name>="<password>"); nil for none.
	PlainUsers map[string]string
	// OAuthBearer validates OAUTHBEARER tokens (package sasl/oauth, from
	// the sasl.oauthbearer.* properties); nil when OAUTHBEARER is not
	// configured, which fails every OAUTHBEARER authentication.
	OAuthBearer sasl.TokenValidator
	// Listeners overrides EnabledMechanisms and PlainUsers per listener,
	// by the listener's name (Session.Listener, upper case):
	// listener.name.<listener>.sasl.enabled.mechanisms and
	// listener.name.<listener>.plain.sasl.jaas.config.
	Listeners map[string]ListenerSASL
}

// ListenerSASL is one listener's SASL settings.
type ListenerSASL struct {
	// EnabledMechanisms, when not nil, replaces SASLConfig's.
	EnabledMechanisms []string
	// PlainUsers, when not nil, replaces SASLConfig's.
	PlainUsers map[string]string
}

// DefaultSASLMechanisms are the mechanisms enabled when
// sasl.enabled.mechanisms is not set. (Kafka's default is GSSAPI, which
// strata does not implement.)
var DefaultSASLMechanisms = []string{sasl.Plain, sasl.ScramSHA256, sasl.ScramSHA512}

// saslExchange is a connection's authentication in progress, kept in its
// Session between SaslHandshake and the SaslAuthenticate requests; the
// connection runs one request at a time, so it needs no lock.
type saslExchange struct {
	mechanism string
	server    sasl.Server
	// reauth: the connection was authenticated when the handshake came
	// (KIP-368), and must keep its principal.
	reauth bool
	// failed: the authentication failed and the connection is closing;
	// nothing else it sent is served.
	failed bool
}

// saslMechanisms lists the mechanisms enabled on a listener.
func (h *Handler) saslMechanisms(listener string) []string {
	if ls, ok := h.cfg.SASL.Listeners[strings.ToUpper(listener)]; ok && ls.EnabledMechanisms != nil {
		return ls.EnabledMechanisms
	}
	if h.cfg.SASL.EnabledMechanisms == nil {
		return DefaultSASLMechanisms
	}
	return h.cfg.SASL.EnabledMechanisms
}

// saslServer starts an exchange of a mechanism enabled on the listener;
// nil if it is not enabled (or not implemented).
func (h *Handler) saslServer(listener, mechanism string) sasl.Server {
	if !slices.Contains(h.saslMechanisms(listener), mechanism) {
		return nil
	}
	ms := h.mechs
	if lm, ok := h.listenerMechs[strings.ToUpper(listener)]; ok {
		ms = lm
	}
	srv, _ := ms.NewServer(mechanism)
	return srv
}

// newMechanisms builds the mechanisms of every listener: each one with its
// own PLAIN users has its own, the others share the default.
func (h *Handler) newMechanisms() {
	h.mechs = sasl.New(sasl.Config{Lookup: h.scramLookup, PlainUsers: h.cfg.SASL.PlainUsers, OAuthBearer: h.cfg.SASL.OAuthBearer})
	for name, ls := range h.cfg.SASL.Listeners {
		if ls.PlainUsers != nil {
			if h.listenerMechs == nil {
				h.listenerMechs = map[string]*sasl.Mechanisms{}
			}
			h.listenerMechs[strings.ToUpper(name)] = sasl.New(sasl.Config{Lookup: h.scramLookup, PlainUsers: ls.PlainUsers, OAuthBearer: h.cfg.SASL.OAuthBearer})
		}
	}
}

// scramLookup gives the SCRAM mechanisms the credentials the metadata
// image holds.
func (h *Handler) scramLookup(user string) []sasl.Credential {
	creds := h.meta.Image().Scram[user]
	out := make([]sasl.Credential, 0, len(creds))
	for m, c := range creds {
		out = append(out, sasl.Credential{Mechanism: sasl.Scram(m), Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations})
	}
	return out
}

// checkSASL enforces authentication on a SASL listener before a request is
// decoded, as Kafka's SaslServerAuthenticator does: until it is
// authenticated, a connection may send only ApiVersions, SaslHandshake and
// SaslAuthenticate; anything else, or anything after a failed
// authentication, closes it (the server logs the error). Once the session
// lifetime (connections.max.reauth.ms) has passed, any request but a
// re-authentication closes it (KIP-368).
func checkSASL(r *server.Request) error {
	s := r.Session
	if !s.SASL() {
		return nil
	}
	if x, _ := s.Exchange().(*saslExchange); x != nil && x.failed {
		return fmt.Errorf("kafka: %s request after a failed SASL authentication", kmsg.NameForKey(r.APIKey))
	}
	auth := r.APIKey == saslHandshakeKey || r.APIKey == saslAuthenticateKey
	if !s.Authenticated() {
		if auth || r.APIKey == apiVersionsKey {
			return nil
		}
		return fmt.Errorf("kafka: unexpected %s request before SASL authentication", kmsg.NameForKey(r.APIKey))
	}
	if exp := s.AuthExpiry(); !auth && !exp.IsZero() && time.Now().After(exp) {
		return fmt.Errorf("kafka: %s request after the SASL session expired at %s without re-authentication", kmsg.NameForKey(r.APIKey), exp.Format(time.RFC3339Nano))
	}
	return nil
}
