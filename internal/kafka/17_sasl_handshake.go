package kafka

// SaslHandshake: v1
//
// Behavior:
//   - On a SASL_PLAINTEXT or SASL_SSL listener, picks the mechanism of the
//     authentication that SaslAuthenticate requests then carry (sasl.go).
//     The answer lists the mechanisms enabled on the connection's listener
//     (listener.name.<listener>.sasl.enabled.mechanisms, else
//     sasl.enabled.mechanisms).
//   - A mechanism that is not enabled, or that strata does not implement,
//     is UNSUPPORTED_SASL_MECHANISM, and the connection is closed after
//     the answer, as Kafka's SaslServerAuthenticator fails it.
//   - A second handshake before the first authentication completed closes
//     the connection. On an authenticated connection a handshake starts a
//     re-authentication (KIP-368), which must end with the same principal.
//   - On a listener without SASL it is ILLEGAL_SASL_STATE, as Kafka's
//     KafkaApis answers a handshake it does not expect.
//
// Version notes: only v1, which says that the tokens follow in
// SaslAuthenticate requests (KIP-152). v0 clients send the mechanism's
// tokens as raw frames without a Kafka header after the handshake, a
// legacy framing strata does not read: ApiVersions advertises v1 as the
// minimum, and a v0 request closes the connection as an unsupported
// version does.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

func init() { register(saslHandshakeKey, 1, 1, (*Handler).handleSASLHandshake) }

func (h *Handler) handleSASLHandshake(_ context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	s := r.Session
	if !s.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.SupportedMechanisms = []string{}
		return h.encode(resp), nil
	}
	resp.SupportedMechanisms = h.saslMechanisms(s.Listener)
	if x, _ := s.Exchange().(*saslExchange); x != nil {
		return nil, fmt.Errorf("kafka: SaslHandshake during a SASL authentication with %s", x.mechanism)
	}
	srv := h.saslServer(s.Listener, req.Mechanism)
	if srv == nil {
		h.logger.Info("failed authentication: unsupported SASL mechanism", "remote", r.Remote.String(), "conn", r.ConnID, "mechanism", req.Mechanism)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		out := h.encode(resp)
		out.Close = true
		return out, nil
	}
	s.SetExchange(&saslExchange{mechanism: req.Mechanism, server: srv, reauth: s.Authenticated()})
	return h.encode(resp), nil
}
