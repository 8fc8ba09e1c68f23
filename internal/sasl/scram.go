package sasl

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
)

// scramServer is the server side of SCRAM-SHA-256 / SCRAM-SHA-512
// (RFC 5802, RFC 7677) without channel binding, as Kafka's
// ScramSaslServer:
//
//	client-first  n,[a=authzid],n=user,r=cnonce[,ext...]
//	server-first  r=cnonce+snonce,s=base64(salt),i=iterations
//	client-final  c=base64(gs2 header),r=cnonce+snonce[,ext...],p=base64(proof)
//	server-final  v=base64(ServerSignature)
//
// Extensions (Kafka's tokenauth=true for delegation tokens) are ignored:
// strata has no delegation tokens, so the user's SCRAM credential is what
// the proof is checked against either way.
type scramServer struct {
	cfg  *Config
	mech Scram

	state           int // 0 client-first expected, 1 client-final expected, 2 done
	user            string
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	cred            Credential
	known           bool
}

func (s *scramServer) User() string {
	if s.state != 2 {
		return ""
	}
	return s.user
}

func (s *scramServer) Step(msg []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		resp, err := s.clientFirst(string(msg))
		if err != nil {
			s.state = 3
			return nil, false, err
		}
		s.state = 1
		return resp, false, nil
	case 1:
		resp, err := s.clientFinal(string(msg))
		if err != nil {
			s.state = 3
			return nil, false, err
		}
		s.state = 2
		return resp, true, nil
	}
	return nil, false, failed("SCRAM exchange already complete")
}

func (s *scramServer) clientFirst(msg string) ([]byte, error) {
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, failed("Invalid SCRAM client first message")
	}
	switch flag {
	case "n", "y":
	default:
		// p=...: channel binding, which Kafka does not support either.
		return nil, failed("Invalid SCRAM client first message: channel binding not supported")
	}
	authzField, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, failed("Invalid SCRAM client first message")
	}
	authzid := ""
	if authzField != "" {
		v, ok := strings.CutPrefix(authzField, "a=")
		if !ok {
			return nil, failed("Invalid SCRAM client first message")
		}
		if authzid, ok = decodeName(v); !ok {
			return nil, failed("Invalid SCRAM client first message")
		}
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || attrs[0] == "" || attrs[0][0] == 'm' {
		// m= is reserved for mandatory extensions, which none are.
		return nil, failed("Invalid SCRAM client first message")
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return nil, failed("Invalid SCRAM client first message")
	}
	user, ok := decodeName(name)
	if !ok || user == "" {
		return nil, failed("Invalid SCRAM client first message")
	}
	cnonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(cnonce) {
		return nil, failed("Invalid SCRAM client first message")
	}
	if authzid != "" && authzid != user {
		return nil, failed("Authentication failed: Client requested an authorization id that is different from username")
	}
	s.user, s.gs2Header, s.clientFirstBare = user, msg[:len(msg)-len(bare)], bare

	s.cred = s.cfg.fakeCredential(s.mech, user)
	for _, c := range s.cfg.Lookup(user) {
		if c.Mechanism == s.mech {
			s.cred, s.known = c, true
		}
	}
	s.nonce = cnonce + serverNonce()
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(int(s.cred.Iterations))
	return []byte(s.serverFirst), nil
}

func (s *scramServer) clientFinal(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, failed("Invalid SCRAM client final message")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 {
		return nil, failed("Invalid SCRAM client final message")
	}
	cbind, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok || cbind != base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) {
		return nil, failed("Invalid SCRAM client final message: channel binding data does not match")
	}
	// Kafka's ScramSaslServer checks that the final nonce ends with the
	// server-first one, not that it equals it, and librdkafka relies on
	// that: it sends its own nonce again before the combined one
	// (cnonce+cnonce+snonce). The proof covers the message as sent, so
	// this weakens nothing.
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !strings.HasSuffix(nonce, s.nonce) {
		return nil, failed("Invalid SCRAM client final message: nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return nil, failed("Invalid SCRAM client final message")
	}
	m := s.mech
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	clientSignature := hmacSum(m, s.cred.StoredKey, authMessage)
	if len(proof) != len(clientSignature) {
		return nil, failed("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", m)
	}
	clientKey := make([]byte, len(proof))
	subtle.XORBytes(clientKey, proof, clientSignature)
	ok = subtle.ConstantTimeCompare(hashSum(m, clientKey), s.cred.StoredKey) == 1
	if !ok || !s.known {
		return nil, failed("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", m)
	}
	serverSignature := hmacSum(m, s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), nil
}

// decodeName undoes RFC 5802's escaping of a saslname: "=2C" is ",",
// "=3D" is "=", and any other "=" is malformed.
func decodeName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// validNonce: printable ASCII except ',' (RFC 5802's printable).
func validNonce(n string) bool {
	if n == "" {
		return false
	}
	return bytes.IndexFunc([]byte(n), func(r rune) bool { return r < 0x21 || r > 0x7e || r == ',' }) < 0
}

// serverNonce is the server's part of the nonce: 24 random bytes, printable
// (URL-safe base64 has no ','). A variable so that tests can replay RFC
// 7677's exchange.
var serverNonce = func() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
