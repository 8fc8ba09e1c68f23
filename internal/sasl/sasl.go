// Package sasl is the server side of the SASL mechanisms strata's SASL_*
// listeners accept: PLAIN (RFC 4616), SCRAM-SHA-256 / SCRAM-SHA-512
// (RFC 5802, RFC 7677) and OAUTHBEARER (RFC 7628, with the token checked
// by a TokenValidator: package sasl/oauth validates JWTs), and the SCRAM credentials they check, which the
// metadata log stores as Kafka's UserScramCredentialRecord does: a salt,
// an iteration count, StoredKey and ServerKey, never the password.
//
// It knows nothing of Kafka's wire types: package kafka carries the
// mechanisms' messages in SaslAuthenticate and maps the errors here to
// Kafka's codes.
//
// A Server is one authentication exchange, not safe for concurrent use
// (a connection runs its requests one at a time).
package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// Mechanism names, as SaslHandshake carries them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// ErrAuthenticationFailed marks a client that did not prove who it is
// (a wrong password, an unknown user, a malformed message): Kafka's
// SASL_AUTHENTICATION_FAILED. Its message is meant for the client and
// never says which of these it was.
var ErrAuthenticationFailed = errors.New("sasl: authentication failed")

// Scram is Kafka's ScramMechanism id, as UserScramCredentialRecord and
// the UserScramCredentials APIs carry it.
type Scram int8

const (
	ScramUnknown Scram = 0
	SHA256       Scram = 1
	SHA512       Scram = 2
)

// MinIterations and MaxIterations bound a credential's iteration count,
// as Kafka's ScramMechanism minIterations (4096, RFC 7677) and the
// controller's upper bound of 16384 do.
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// ParseScram returns the SCRAM mechanism of a SASL mechanism name.
func ParseScram(name string) (Scram, bool) {
	switch name {
	case ScramSHA256:
		return SHA256, true
	case ScramSHA512:
		return SHA512, true
	}
	return ScramUnknown, false
}

// String is the SASL mechanism name.
func (m Scram) String() string {
	switch m {
	case SHA256:
		return ScramSHA256
	case SHA512:
		return ScramSHA512
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(m))
}

// Valid reports whether m is a mechanism this package implements.
func (m Scram) Valid() bool { return m == SHA256 || m == SHA512 }

func (m Scram) hash() func() hash.Hash {
	if m == SHA512 {
		return sha512.New
	}
	return sha256.New
}

// Credential is one user's SCRAM credential for one mechanism
// (UserScramCredentialRecord without the name).
type Credential struct {
	Mechanism  Scram
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// SaltedPassword is RFC 5802's Hi(Normalize(password), salt, i): PBKDF2
// with HMAC of the mechanism's hash. The password is used as given:
// Kafka's ScramFormatter does no SASLprep either.
func SaltedPassword(m Scram, password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(m.hash(), password, salt, iterations, m.hash()().Size())
}

// NewCredential derives StoredKey and ServerKey from a salted password,
// as the controller does for AlterUserScramCredentials (the client sends
// the salt and salted password, never the password).
func NewCredential(m Scram, salt, saltedPassword []byte, iterations int32) Credential {
	clientKey := hmacSum(m, saltedPassword, []byte("Client Key"))
	return Credential{
		Mechanism:  m,
		Salt:       slices.Clone(salt),
		StoredKey:  hashSum(m, clientKey),
		ServerKey:  hmacSum(m, saltedPassword, []byte("Server Key")),
		Iterations: iterations,
	}
}

// CheckPassword reports whether password derives c's StoredKey, compared
// in constant time.
func (c Credential) CheckPassword(password string) bool {
	if !c.Mechanism.Valid() || c.Iterations <= 0 {
		return false
	}
	salted, err := SaltedPassword(c.Mechanism, password, c.Salt, int(c.Iterations))
	if err != nil {
		return false
	}
	got := NewCredential(c.Mechanism, c.Salt, salted, c.Iterations)
	return subtle.ConstantTimeCompare(got.StoredKey, c.StoredKey) == 1
}

// NewSalt returns a random salt for a new credential.
func NewSalt() []byte {
	b := make([]byte, 24)
	rand.Read(b)
	return b
}

// Lookup returns a user's SCRAM credentials, one per mechanism stored;
// none for an unknown user.
type Lookup func(user string) []Credential

// Server is one server side authentication exchange.
type Server interface {
	// Step takes the client's next message and returns the server's
	// answer. done is true once the client is authenticated (the answer
	// may still have to be sent). An error wrapping
	// ErrAuthenticationFailed ends the exchange.
	Step(msg []byte) (resp []byte, done bool, err error)
	// User is the authenticated user name, once done.
	User() string
}

// Config configures the mechanisms of a listener.
type Config struct {
	// Lookup gives the SCRAM credentials of the metadata image.
	Lookup Lookup
	// PlainUsers are passwords of PLAIN users configured in the broker's
	// properties (Kafka's JAAS user_<name>="<password>"); checked before
	// the SCRAM credentials. Nil for none.
	PlainUsers map[string]string
	// OAuthBearer validates OAUTHBEARER tokens; nil refuses every one.
	OAuthBearer TokenValidator
	// fakeKey derives fake salts for unknown users (see fakeCredential).
	fakeKey []byte
}

// Mechanisms creates the exchanges of one listener; safe for concurrent
// use.
type Mechanisms struct{ cfg Config }

// New returns the mechanisms over cfg.
func New(cfg Config) *Mechanisms {
	cfg.fakeKey = make([]byte, 32)
	rand.Read(cfg.fakeKey)
	if cfg.Lookup == nil {
		cfg.Lookup = func(string) []Credential { return nil }
	}
	return &Mechanisms{cfg: cfg}
}

// Supported reports whether name is a mechanism this package implements.
func Supported(name string) bool {
	_, scram := ParseScram(name)
	return name == Plain || name == OAuthBearer || scram
}

// NewServer starts an exchange of the named mechanism, or returns false
// for one this package does not implement.
func (ms *Mechanisms) NewServer(name string) (Server, bool) {
	if name == Plain {
		return &plainServer{cfg: &ms.cfg}, true
	}
	if m, ok := ParseScram(name); ok {
		return &scramServer{cfg: &ms.cfg, mech: m}, true
	}
	if name == OAuthBearer {
		return &oauthServer{validator: ms.cfg.OAuthBearer}, true
	}
	return nil, false
}

// fakeCredential stands in for a user with no credential of mechanism m,
// so that the exchange goes on as for a real user with a wrong password:
// the salt, derived from the name with a key of this process, is the same
// at every attempt, and the work is the same, so neither the answers nor
// their timing tell that the user does not exist. Its keys match no
// password.
func (c *Config) fakeCredential(m Scram, user string) Credential {
	mac := hmac.New(sha256.New, c.fakeKey)
	mac.Write([]byte(m.String()))
	mac.Write([]byte{0})
	mac.Write([]byte(user))
	sum := mac.Sum(nil)
	size := m.hash()().Size()
	return Credential{Mechanism: m, Salt: sum[:24], StoredKey: make([]byte, size), ServerKey: make([]byte, size), Iterations: MinIterations}
}

func hmacSum(m Scram, key, msg []byte) []byte {
	mac := hmac.New(m.hash(), key)
	mac.Write(msg)
	return mac.Sum(nil)
}

func hashSum(m Scram, b []byte) []byte {
	h := m.hash()()
	h.Write(b)
	return h.Sum(nil)
}

func failed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrAuthenticationFailed}, args...)...)
}
