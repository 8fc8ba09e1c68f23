// Package oauth validates the JWTs OAUTHBEARER clients present, as Kafka's
// OAuthBearerValidatorCallbackHandler does (KIP-768): a JWS signed with
// RS256/384/512, PS256/384/512 or ES256/384/512 by a key of a JWKS
// (sasl.oauthbearer.jwks.endpoint.url), with exp required, iat and nbf
// checked when present, all within sasl.oauthbearer.clock.skew.seconds,
// and the audience and issuer checked when configured. The principal is
// the claim sasl.oauthbearer.sub.claim.name names.
//
// Unsecured JWTs (alg none, Kafka's OAuthBearerUnsecuredValidatorCallbackHandler,
// its default) pass only when Config.AllowUnsecured is set.
//
// It is a package of its own so that package sasl keeps to the standard
// library: the JWS verification and the JWK parsing are go-jose's.
package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/strata-io/strata/internal/sasl"
)

// Config configures a Validator: Kafka's sasl.oauthbearer.* broker
// properties.
type Config struct {
	// JWKSURL is sasl.oauthbearer.jwks.endpoint.url: file:<path> or an
	// http(s) URL of a JSON Web Key Set. Empty: only unsecured tokens,
	// if AllowUnsecured.
	JWKSURL string
	// Refresh is sasl.oauthbearer.jwks.endpoint.refresh.ms: how often the
	// key set is fetched again (a file is also read again as soon as it
	// changes).
	Refresh time.Duration
	// ClockSkew is sasl.oauthbearer.clock.skew.seconds.
	ClockSkew time.Duration
	// Audience is sasl.oauthbearer.expected.audience: when not empty, a
	// token's aud must name one of them.
	Audience []string
	// Issuer is sasl.oauthbearer.expected.issuer: when not empty, a
	// token's iss must be it.
	Issuer string
	// SubClaim is sasl.oauthbearer.sub.claim.name ("sub" when empty).
	SubClaim string
	// ScopeClaim is sasl.oauthbearer.scope.claim.name ("scope" when empty).
	ScopeClaim string
	// AllowUnsecured is strata.sasl.oauthbearer.unsecured.enable: accept
	// tokens with alg none, which anyone can forge. For tests and
	// development only.
	AllowUnsecured bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Validator checks tokens; a sasl.TokenValidator. Safe for concurrent use.
type Validator struct {
	cfg  Config
	keys *keySource // nil without a JWKS URL
}

// algorithms are the JWS algorithms accepted: Kafka's jose4j accepts any
// asymmetric one its keys allow; HMAC (HS*) is refused, since the "key"
// would be a secret shared with every client, and so is none but in
// unsecured mode. EdDSA is left out: Kafka's validator does not take it.
var algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// New returns a validator, with the key set loaded once: a JWKS that
// cannot be read fails the broker's start, as a configuration error.
func New(cfg Config) (*Validator, error) {
	if cfg.SubClaim == "" {
		cfg.SubClaim = "sub"
	}
	if cfg.ScopeClaim == "" {
		cfg.ScopeClaim = "scope"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Validator{cfg: cfg}
	if cfg.JWKSURL == "" {
		if !cfg.AllowUnsecured {
			return nil, errors.New("oauth: OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url to validate tokens (or strata.sasl.oauthbearer.unsecured.enable=true to accept unsigned ones, for tests only)")
		}
		return v, nil
	}
	ks, err := newKeySource(cfg.JWKSURL, cfg.Refresh, cfg.Now)
	if err != nil {
		return nil, err
	}
	v.keys = ks
	return v, nil
}

// Validate checks a token in JWS compact form.
func (v *Validator) Validate(token string) (sasl.Token, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return sasl.Token{}, fmt.Errorf("malformed JWT: %d parts, want 3", len(parts))
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return sasl.Token{}, fmt.Errorf("malformed JWT header: %w", err)
	}
	var claims map[string]any
	if strings.EqualFold(hdr.Alg, "none") {
		c, err := v.unsecured(parts)
		if err != nil {
			return sasl.Token{}, err
		}
		claims = c
	} else {
		c, err := v.signed(token)
		if err != nil {
			return sasl.Token{}, err
		}
		claims = c
	}
	return v.checkClaims(claims)
}

// unsecured takes the claims of an alg none token (RFC 7519 section 6),
// as Kafka's OAuthBearerUnsecuredJws: the signature must be empty.
func (v *Validator) unsecured(parts []string) (map[string]any, error) {
	if !v.cfg.AllowUnsecured {
		return nil, errors.New("unsecured JWT (alg none) refused: strata.sasl.oauthbearer.unsecured.enable is false")
	}
	if parts[2] != "" {
		return nil, errors.New("unsecured JWT with a signature")
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("malformed JWT claims: %w", err)
	}
	return claims, nil
}

// signed verifies a JWS with the key its kid names and returns its claims.
func (v *Validator) signed(token string) (map[string]any, error) {
	if v.keys == nil {
		return nil, errors.New("signed JWT but no sasl.oauthbearer.jwks.endpoint.url to verify it with")
	}
	tok, err := jwt.ParseSigned(token, algorithms)
	if err != nil {
		return nil, fmt.Errorf("JWT refused: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, errors.New("JWT with more than one signature")
	}
	h := tok.Headers[0]
	alg := jose.SignatureAlgorithm(h.Algorithm)
	key, err := v.keys.key(h.KeyID, alg)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := tok.Claims(key, &claims); err != nil {
		return nil, fmt.Errorf("JWT signature: %w", err)
	}
	return claims, nil
}

// checkClaims applies Kafka's claim rules to verified (or unsecured)
// claims.
func (v *Validator) checkClaims(c map[string]any) (sasl.Token, error) {
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	exp, ok, err := numericDate(c, "exp")
	switch {
	case err != nil:
		return sasl.Token{}, err
	case !ok:
		return sasl.Token{}, errors.New("JWT has no exp claim")
	case !now.Before(exp.Add(skew)):
		return sasl.Token{}, fmt.Errorf("JWT expired at %s", exp.UTC().Format(time.RFC3339))
	}
	for _, name := range []string{"nbf", "iat"} {
		t, ok, err := numericDate(c, name)
		if err != nil {
			return sasl.Token{}, err
		}
		if ok && t.After(now.Add(skew)) {
			return sasl.Token{}, fmt.Errorf("JWT %s %s is in the future", name, t.UTC().Format(time.RFC3339))
		}
	}
	if len(v.cfg.Audience) > 0 {
		aud, err := stringsClaim(c, "aud")
		if err != nil {
			return sasl.Token{}, err
		}
		if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.cfg.Audience, a) }) {
			return sasl.Token{}, fmt.Errorf("JWT audience %q is not one of %q", aud, v.cfg.Audience)
		}
	}
	if v.cfg.Issuer != "" {
		iss, _ := c["iss"].(string)
		if iss != v.cfg.Issuer {
			return sasl.Token{}, fmt.Errorf("JWT issuer %q is not %q", iss, v.cfg.Issuer)
		}
	}
	sub, _ := c[v.cfg.SubClaim].(string)
	if strings.TrimSpace(sub) == "" {
		return sasl.Token{}, fmt.Errorf("JWT has no %s claim to name its principal", v.cfg.SubClaim)
	}
	scope, err := scopeClaim(c, v.cfg.ScopeClaim)
	if err != nil {
		return sasl.Token{}, err
	}
	return sasl.Token{Principal: sub, Expiry: exp, Scope: scope}, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, maybe
// with a fraction).
func numericDate(c map[string]any, name string) (time.Time, bool, error) {
	raw, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := raw.(float64)
	if !ok || f < 0 || f > 1<<53 {
		return time.Time{}, false, fmt.Errorf("JWT %s claim is not a NumericDate", name)
	}
	return time.UnixMilli(int64(f * 1000)), true, nil
}

// stringsClaim reads a claim that is a string or a list of strings (aud,
// RFC 7519 section 4.1.3).
func stringsClaim(c map[string]any, name string) ([]string, error) {
	switch x := c[name].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("JWT %s claim is not a list of strings", name)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("JWT %s claim is neither a string nor a list of strings", name)
}

// scopeClaim reads the scope, a space-separated string (RFC 8693) or a
// list, as Kafka's ClaimValidationUtils.validateScopes takes either.
func scopeClaim(c map[string]any, name string) ([]string, error) {
	if s, ok := c[name].(string); ok {
		return strings.Fields(s), nil
	}
	return stringsClaim(c, name)
}

func decodeSegment(seg string, into any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// keyFits reports whether a verification key may check alg: the key type
// must be the algorithm's (no RSA key for an ES* token nor the reverse),
// an EC key's curve the one alg names, an RSA key at least 2048 bits
// (jose4j's minimum, which Kafka's validator inherits).
func keyFits(key any, alg jose.SignatureAlgorithm) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return k.N.BitLen() >= 2048
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return k.Curve == elliptic.P256()
		case jose.ES384:
			return k.Curve == elliptic.P384()
		case jose.ES512:
			return k.Curve == elliptic.P521()
		}
	}
	return false
}
