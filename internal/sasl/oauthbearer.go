package sasl

import (
	"errors"
	"strings"
	"time"
)

// OAuthBearer is the OAUTHBEARER mechanism name (RFC 7628, KIP-255).
const OAuthBearer = "OAUTHBEARER"

// Token is a bearer token a TokenValidator accepted.
type Token struct {
	// Principal is the user name the token names (its sub claim, or the
	// claim sasl.oauthbearer.sub.claim.name names).
	Principal string
	// Expiry is the token's exp claim: the session ends then (KIP-368).
	Expiry time.Time
	// Scope is the token's scope claim, if any.
	Scope []string
}

// TokenValidator checks a bearer token: its signature and claims. The JWT
// validation lives in package sasl/oauth, so that this package keeps to
// the standard library. Safe for concurrent use.
type TokenValidator interface {
	// Validate returns the token's principal and expiry, or an error
	// saying why it is not valid (for the broker's log, never the client).
	Validate(token string) (Token, error)
}

// Expiring is a Server whose credential ends: once done, Expiry is when
// (zero for never). The session must end by then (KIP-368).
type Expiring interface {
	Expiry() time.Time
}

// Rejecting is a Server that can refuse a credential with a challenge
// rather than an error (OAUTHBEARER's invalid_token): Rejection is why,
// right after that Step, and "" otherwise. The exchange fails only at the
// client's next message, which a client may never send (franz-go's closes
// the connection), so the caller logs the reason then.
type Rejecting interface {
	Rejection() string
}

// ErrNoValidator marks OAUTHBEARER asked for on mechanisms configured
// without a TokenValidator.
var ErrNoValidator = errors.New("sasl: OAUTHBEARER has no token validator")

// invalidToken is the error challenge for a token that is not valid, as
// Kafka's OAuthBearerSaslServer writes it (no scope nor
// openid-configuration: its validator sets neither).
const invalidToken = `{"status":"invalid_token"}`

// oauthServer is the server side of OAUTHBEARER as Kafka's
// OAuthBearerSaslServer runs it:
//
//	client  n,[a=authzid],^Aauth=Bearer <token>^A[key=value^A]*^A
//	server  ""                                       token valid: done
//	server  {"status":"invalid_token"}               token not valid,
//	client  ^A                                       then the exchange fails
//
// RFC 7628 section 3.2.2: the server's error is a challenge, and the
// client answers it with a lone ^A (0x01) before the server fails the
// exchange. Extensions (KIP-342) are parsed and checked for syntax but
// not used: Kafka's default extension validator accepts none either and
// ignores the unvalidated ones.
type oauthServer struct {
	validator TokenValidator
	state     int // 0 initial response expected, 1 ^A after an error expected, 2 done, 3 failed
	reason    string
	token     Token
}

func (s *oauthServer) User() string {
	if s.state != 2 {
		return ""
	}
	return s.token.Principal
}

// Expiry is when the token ends, once done: package kafka bounds the
// session lifetime with it (KIP-368).
func (s *oauthServer) Expiry() time.Time { return s.token.Expiry }

func (s *oauthServer) Rejection() string {
	if s.state != 1 {
		return ""
	}
	return s.reason
}

func (s *oauthServer) Step(msg []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		authzid, token, err := ParseOAuthBearer(msg)
		if err != nil {
			s.state = 3
			return nil, false, err
		}
		if s.validator == nil {
			s.state = 3
			return nil, false, failed("%v", ErrNoValidator)
		}
		tok, err := s.validator.Validate(token)
		if err != nil {
			// Kafka's OAuthBearerValidatorCallbackHandler reports every
			// validation failure as invalid_token; the reason stays in
			// the broker's log (Rejection).
			s.state, s.reason = 1, err.Error()
			return []byte(invalidToken), false, nil
		}
		if authzid != "" && authzid != tok.Principal {
			s.state = 3
			return nil, false, failed("Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)", authzid, tok.Principal)
		}
		s.state, s.token = 2, tok
		return []byte{}, true, nil
	case 1:
		// The error's message goes to the client: like Kafka's, it is the
		// JSON status and never says why the token was refused (the
		// broker logged that with the challenge, see Rejecting).
		s.state = 3
		if len(msg) != 1 || msg[0] != 0x01 {
			return nil, false, failed("Invalid OAUTHBEARER client response after an error: want ^A")
		}
		return nil, false, failed("%s", invalidToken)
	}
	return nil, false, failed("OAUTHBEARER exchange already complete")
}

// ParseOAuthBearer parses a client's initial response (RFC 7628 section
// 3.1) as Kafka's OAuthBearerClientInitialResponse does:
//
//	n,[a=<authzid>],^A<kvpair>*^A     kvpair: <key>=<value>^A
//
// with one kvpair auth=Bearer <token>. Keys are letters; values printable
// ASCII, space, tab, CR or LF; the token is base64url characters and dots
// (a JWT). Channel binding (y, p=) is refused: Kafka supports none. The
// authzid is returned with RFC 5802's =2C and =3D undone.
func ParseOAuthBearer(msg []byte) (authzid, token string, err error) {
	s := string(msg)
	rest, ok := strings.CutPrefix(s, "n,")
	if !ok {
		return "", "", failed("Invalid OAUTHBEARER client first message: bad GS2 header")
	}
	a, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", failed("Invalid OAUTHBEARER client first message: bad GS2 header")
	}
	if a != "" {
		v, ok := strings.CutPrefix(a, "a=")
		if !ok || v == "" {
			return "", "", failed("Invalid OAUTHBEARER client first message: bad authorization id")
		}
		if authzid, ok = decodeName(v); !ok {
			return "", "", failed("Invalid OAUTHBEARER client first message: bad authorization id")
		}
	}
	// ^A kvpair* ^A: after the leading ^A, each pair ends with ^A and an
	// empty one ends the message.
	rest, ok = strings.CutPrefix(rest, "\x01")
	if !ok {
		return "", "", failed("Invalid OAUTHBEARER client first message: bad separators")
	}
	auth, seenAuth := "", false
	for {
		pair, after, found := strings.Cut(rest, "\x01")
		if !found {
			return "", "", failed("Invalid OAUTHBEARER client first message: bad separators")
		}
		if pair == "" {
			if after != "" {
				return "", "", failed("Invalid OAUTHBEARER client first message: data after the final separator")
			}
			break
		}
		rest = after
		k, v, ok := strings.Cut(pair, "=")
		if !ok || !validExtensionKey(k) || !validExtensionValue(v) {
			return "", "", failed("Invalid OAUTHBEARER client first message: bad key-value pair")
		}
		if k == "auth" {
			if seenAuth {
				return "", "", failed("Invalid OAUTHBEARER client first message: 'auth' given twice")
			}
			auth, seenAuth = v, true
		}
	}
	if !seenAuth {
		return "", "", failed("Invalid OAUTHBEARER client first message: 'auth' not specified")
	}
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || !validTokenChars(token) {
		return "", "", failed("Invalid OAUTHBEARER client first message: invalid 'auth' format")
	}
	return authzid, token, nil
}

// validExtensionKey: Kafka's [A-Za-z]+.
func validExtensionKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// validExtensionValue: Kafka's [\x21-\x7E \t\r\n]+.
func validExtensionValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// validTokenChars: Kafka's [-_.a-zA-Z0-9]+, the characters of a JWS in
// compact form.
func validTokenChars(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// OAuthBearerInitial builds a client's initial response; for tests and
// tools (franz-go's sasl/oauth builds the same).
func OAuthBearerInitial(authzid, token string, extensions ...string) []byte {
	var b strings.Builder
	b.WriteString("n,")
	if authzid != "" {
		b.WriteString("a=" + strings.NewReplacer(",", "=2C", "=", "=3D").Replace(authzid))
	}
	b.WriteString(",\x01auth=Bearer " + token + "\x01")
	for i := 0; i+1 < len(extensions); i += 2 {
		b.WriteString(extensions[i] + "=" + extensions[i+1] + "\x01")
	}
	b.WriteString("\x01")
	return []byte(b.String())
}
