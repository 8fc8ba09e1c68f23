package strata

import (
	"fmt"
	"strings"
	"time"

	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/kafka"
	"github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/sasl/oauth"
)

// saslConfig builds the SASL handlers' settings from the broker's
// properties; a listener's PLAIN JAAS configuration that does not parse
// fails the start, as Kafka's does, and so does an OAUTHBEARER JWKS that
// cannot be read.
func saslConfig(cfg *config.Config) (kafka.SASLConfig, error) {
	out := kafka.SASLConfig{
		EnabledMechanisms:         cfg.SASLEnabledMechanisms,
		FailedAuthenticationDelay: msDuration(cfg.ConnectionFailedAuthenticationDelayMs),
		MaxReauth:                 msDuration(cfg.ConnectionsMaxReauthMs),
	}
	if cfg.OAuthBearerEnabled() {
		o := cfg.OAuthBearer
		v, err := oauth.New(oauth.Config{
			JWKSURL:        o.JWKSEndpointURL,
			Refresh:        msDuration(o.JWKSEndpointRefreshMs),
			ClockSkew:      time.Duration(o.ClockSkewSeconds) * time.Second,
			Audience:       o.ExpectedAudience,
			Issuer:         o.ExpectedIssuer,
			SubClaim:       o.SubClaimName,
			ScopeClaim:     o.ScopeClaimName,
			AllowUnsecured: o.UnsecuredEnable,
		})
		if err != nil {
			// A JWKS that cannot be read at start is a configuration
			// error: every OAUTHBEARER client would fail.
			return out, fmt.Errorf("config: OAUTHBEARER: %w", err)
		}
		out.OAuthBearer = v
	}
	for name, ls := range cfg.ListenerSASL {
		kls := kafka.ListenerSASL{EnabledMechanisms: ls.EnabledMechanisms}
		if ls.PlainJAASConfig != "" {
			users, err := sasl.ParsePlainJAAS(ls.PlainJAASConfig)
			if err != nil {
				// The value holds passwords: not quoted in the error.
				return out, fmt.Errorf("config: listener.name.%s.plain.sasl.jaas.config: %w", strings.ToLower(name), err)
			}
			kls.PlainUsers = users
		}
		if out.Listeners == nil {
			out.Listeners = map[string]kafka.ListenerSASL{}
		}
		out.Listeners[name] = kls
	}
	return out, nil
}
