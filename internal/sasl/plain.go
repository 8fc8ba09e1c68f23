package sasl

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
)

// plainServer is PLAIN (RFC 4616): one message, authzid NUL authcid NUL
// passwd, checked as Kafka's PlainSaslServer checks it (the same messages);
// the password against the broker's configured PLAIN users, then against
// each SCRAM credential of the user (the salted password derived with its
// salt and iterations must give its StoredKey).
type plainServer struct {
	cfg  *Config
	user string
	done bool
}

func (s *plainServer) User() string { return s.user }

func (s *plainServer) Step(msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, failed("PLAIN exchange already complete")
	}
	s.done = true
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, failed("Invalid SASL/PLAIN response: expected 3 tokens, got %d", len(parts))
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	switch {
	case user == "":
		return nil, false, failed("Authentication failed: username not specified")
	case password == "":
		return nil, false, failed("Authentication failed: password not specified")
	case authzid != "" && authzid != user:
		return nil, false, failed("Authentication failed: Client requested an authorization id that is different from username")
	}
	if !s.check(user, password) {
		return nil, false, failed("Authentication failed: Invalid username or password")
	}
	s.user = user
	return nil, true, nil
}

// check tries every way the user may have a password. Both SCRAM
// mechanisms cost a key derivation whether the user has a credential for
// them or not (a fake one stands in, as for SCRAM), so that the time taken
// tells neither whether the user exists nor which credentials it has.
func (s *plainServer) check(user, password string) bool {
	ok := false
	if want, found := s.cfg.PlainUsers[user]; found {
		// Hashed first so that the comparison does not depend on the
		// lengths.
		a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(password))
		ok = subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	creds := s.cfg.Lookup(user)
	for _, m := range []Scram{SHA256, SHA512} {
		c, real := s.cfg.fakeCredential(m, user), false
		for _, uc := range creds {
			if uc.Mechanism == m {
				c, real = uc, true
			}
		}
		if c.CheckPassword(password) && real {
			ok = true
		}
	}
	return ok
}
