package strata

import (
	"fmt"
	"strings"

	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/kafka"
	"github.com/strata-io/strata/internal/sasl"
)

// saslConfig builds the SASL handlers' settings from the broker's
// properties; a listener's PLAIN JAAS configuration that does not parse
// fails the start, as Kafka's does.
func saslConfig(cfg *config.Config) (kafka.SASLConfig, error) {
	out := kafka.SASLConfig{
		EnabledMechanisms:         cfg.SASLEnabledMechanisms,
		FailedAuthenticationDelay: msDuration(cfg.ConnectionFailedAuthenticationDelayMs),
		MaxReauth:                 msDuration(cfg.ConnectionsMaxReauthMs),
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
