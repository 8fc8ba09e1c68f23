package kafka

// SaslHandshake: v0-1
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
// Version notes: v1 says that the tokens follow in SaslAuthenticate
// requests (KIP-152), and every client since Kafka 1.0 sends it. v0
// clients send the mechanism's tokens as raw frames without a Kafka
// header after the handshake, a legacy framing strata does not read: the
// first such frame fails the SASL gate and closes the connection, with a
// log line at the handshake that says why. v0 is still advertised:
// librdkafka enables SASL only when ApiVersions lists SaslHandshake v0
// (its "SaslHandshake" feature), even though it then sends v1.

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

func init() { register(saslHandshakeKey, 0, 1, (*Handler).handleSASLHandshake) }

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
	if req.Version == 0 {
		h.logger.Info("SaslHandshake v0: the client will send raw SASL tokens, which strata does not read (it needs a client that authenticates with SaslAuthenticate, Kafka 1.0+)",
			"remote", r.Remote.String(), "conn", r.ConnID)
	}
	s.SetExchange(&saslExchange{mechanism: req.Mechanism, server: srv, reauth: s.Authenticated()})
	return h.encode(resp), nil
}
