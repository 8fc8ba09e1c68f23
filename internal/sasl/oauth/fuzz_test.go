package oauth

import (
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary tokens to a validator whose JWKS holds
// keys the fuzzer never has the private half of, with unsecured tokens
// refused. Invariants: no panic, and no token is accepted (it would need
// a signature by a JWKS key). The seed corpus is in
// testdata/fuzz/FuzzValidate: a JWS signed by a key not in the set, alg
// none, HS256 and malformed tokens.
func FuzzValidate(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.")
	f.Add("eyJhbGciOiJIUzI1NiIsImtpZCI6InJzYSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln")
	f.Add("a.b.c")
	v := newValidator(f, Config{Now: time.Now})
	f.Fuzz(func(t *testing.T, token string) {
		if tok, err := v.Validate(token); err == nil {
			t.Fatalf("token %q accepted: %+v", token, tok)
		}
	})
}
