package kafka

// SaslAuthenticate: v0-2
//
// Behavior:
//   - Carries one message of the mechanism SaslHandshake chose to the
//     server side of the exchange (package sasl) and its answer back.
//   - Success: the connection acts as User:<name> (Session.SetAuthenticated).
//   - OAUTHBEARER: an invalid token is answered with the
//     {"status":"invalid_token"} challenge (no error code), and the
//     client's ^A reply then fails as below (RFC 7628 section 3.2.2, as
//     Kafka's OAuthBearerSaslServer).
//   - Failure (wrong password, unknown user, malformed message): the
//     answer, SASL_AUTHENTICATION_FAILED with a message that does not say
//     which, is sent connection.failed.authentication.delay.ms later and
//     the connection is closed (KIP-306), so that guessing passwords is
//     slow.
//   - Without a handshake first the connection is closed. On a listener
//     without SASL it is ILLEGAL_SASL_STATE.
//
// Version notes: v1+ returns session_lifetime_ms, connections.max.reauth.ms
// (0: none), or less when the credential ends sooner (an OAUTHBEARER
// token's exp). With a lifetime the client re-authenticates before it ends
// (KIP-368: a SaslHandshake and SaslAuthenticate on the same connection,
// with the same principal); a connection that sends any other request
// after it ended is closed (sasl.go). v2 is flexible.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(saslAuthenticateKey, 0, 2, (*Handler).handleSASLAuthenticate) }

func (h *Handler) handleSASLAuthenticate(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	s := r.Session
	if !s.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received on a listener without SASL"
		resp.ErrorMessage = &msg
		return h.encode(resp), nil
	}
	x, _ := s.Exchange().(*saslExchange)
	if x == nil {
		return nil, errors.New("kafka: SaslAuthenticate without a SaslHandshake first")
	}
	out, done, err := x.server.Step(req.SASLAuthBytes)
	if err == nil && done {
		principal := "User:" + x.server.User()
		if x.reauth && principal != s.Principal() {
			// KIP-368: a re-authentication may not change who the
			// connection is.
			err = fmt.Errorf("%w: Cannot change principals during re-authentication from %s: %s", sasl.ErrAuthenticationFailed, s.Principal(), principal)
		} else {
			s.SetExchange(nil)
			var expiry time.Time
			if life := h.sessionLifetime(x.server); life > 0 {
				expiry = time.Now().Add(life)
				resp.SessionLifetimeMillis = life.Milliseconds()
			}
			s.SetAuthenticated(principal, expiry)
			h.cfg.Metrics.Authentication(s.Listener, x.mechanism, true)
			h.logger.Debug("authenticated", "remote", r.Remote.String(), "conn", r.ConnID, "principal", principal, "mechanism", x.mechanism, "reauthentication", x.reauth)
		}
	}
	if err != nil {
		return h.failAuthentication(ctx, r, x, resp, err), nil
	}
	if rj, ok := x.server.(sasl.Rejecting); ok {
		if reason := rj.Rejection(); reason != "" {
			// Logged now: the client may close instead of answering the
			// challenge, and then there is no failure to log.
			h.logger.Info("rejected SASL credential", "remote", r.Remote.String(), "conn", r.ConnID, "mechanism", x.mechanism, "err", reason)
		}
	}
	resp.SASLAuthBytes = out
	return h.encode(resp), nil
}

// sessionLifetime is the session_lifetime_ms of a completed exchange:
// connections.max.reauth.ms, cut to the time left on the credential when
// it ends (an OAUTHBEARER token's exp), as Kafka's
// SaslServerAuthenticator.ReauthInfo computes it when re-authentication
// is configured. A credential already past its end (a token accepted
// within the clock skew) gets 1 ms: the client must re-authenticate
// before its next request. 0: no lifetime.
func (h *Handler) sessionLifetime(srv sasl.Server) time.Duration {
	life := h.cfg.SASL.MaxReauth
	if life <= 0 {
		return 0
	}
	if e, ok := srv.(sasl.Expiring); ok {
		if exp := e.Expiry(); !exp.IsZero() {
			life = min(life, max(time.Until(exp), time.Millisecond))
		}
	}
	return life
}

// failAuthentication answers a failed authentication: after
// connection.failed.authentication.delay.ms (Kafka delays the answer and
// the close, KIP-306), SASL_AUTHENTICATION_FAILED, and the connection is
// closed once it is written. Requests the client pipelined behind it are
// not served: the exchange is marked failed.
func (h *Handler) failAuthentication(ctx context.Context, r *server.Request, x *saslExchange, resp *kmsg.SASLAuthenticateResponse, err error) *server.Response {
	x.failed = true
	h.cfg.Metrics.Authentication(r.Session.Listener, x.mechanism, false)
	msg := strings.TrimPrefix(err.Error(), sasl.ErrAuthenticationFailed.Error()+": ")
	h.logger.Info("failed authentication", "remote", r.Remote.String(), "conn", r.ConnID, "mechanism", x.mechanism, "err", msg)
	if d := h.cfg.SASL.FailedAuthenticationDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		case <-h.stopping:
			t.Stop()
		}
	}
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	resp.ErrorMessage = &msg
	out := h.encode(resp)
	out.Close = true
	return out
}
