package kafka

import (
	"fmt"
	"slices"
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

func (h *Handler) saslMechanisms() []string {
	if h.cfg.SASL.EnabledMechanisms == nil {
		return DefaultSASLMechanisms
	}
	return h.cfg.SASL.EnabledMechanisms
}

func (h *Handler) saslEnabled(name string) bool {
	return slices.Contains(h.saslMechanisms(), name) && sasl.Supported(name)
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
