package sasl

import (
	"errors"
	"fmt"
	"strings"
)

// PlainLoginModule is the JAAS login module whose user_<name>="<password>"
// options list the PLAIN users of a Kafka broker.
const PlainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"

// ParsePlainJAAS returns the users of a Kafka JAAS configuration for PLAIN
// (listener.name.<listener>.plain.sasl.jaas.config), as Kafka's
// PlainServerCallbackHandler reads them: each option user_<name>="<password>"
// of a PlainLoginModule entry. The entry's username and password options
// are the broker's own client credentials for inter-broker SASL, which
// strata does not use; they are ignored. The syntax is JAAS's:
//
//	<login module class> <flag> [<option>=<value> ...];
//
// with values quoted ("...", backslash escapes) or bare.
func ParsePlainJAAS(s string) (map[string]string, error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for len(toks) > 0 {
		if len(toks) < 2 {
			return nil, errors.New("sasl: JAAS entry without a control flag")
		}
		module, flag := toks[0], toks[1]
		switch flag.text {
		case "required", "requisite", "sufficient", "optional":
		default:
			return nil, fmt.Errorf("sasl: JAAS control flag %q (want required, requisite, sufficient or optional)", flag.text)
		}
		toks = toks[2:]
		for len(toks) > 0 && toks[0].text != ";" {
			if len(toks) < 3 || toks[0].quoted || toks[1].quoted || toks[1].text != "=" || !toks[2].quoted && (toks[2].text == "=" || toks[2].text == ";") {
				// Never the token itself: it may be a password.
				return nil, errors.New("sasl: JAAS option not of the form name=\"value\"")
			}
			name, value := toks[0].text, toks[2].text
			if user, ok := strings.CutPrefix(name, "user_"); ok && module.text == PlainLoginModule {
				if user == "" {
					return nil, errors.New("sasl: JAAS option user_ with no user name")
				}
				users[user] = value
			}
			toks = toks[3:]
		}
		if len(toks) == 0 {
			return nil, errors.New("sasl: JAAS entry does not end with ';'")
		}
		toks = toks[1:]
		if module.text != PlainLoginModule {
			return nil, fmt.Errorf("sasl: JAAS login module %q: PLAIN users come from %s", module.text, PlainLoginModule)
		}
	}
	return users, nil
}

type jaasToken struct {
	text   string
	quoted bool
}

func jaasTokens(s string) ([]jaasToken, error) {
	var out []jaasToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '=' || c == ';':
			out = append(out, jaasToken{text: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errors.New("sasl: JAAS quoted value not closed")
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, jaasToken{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r=;\"", rune(s[j])) {
				j++
			}
			out = append(out, jaasToken{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}
