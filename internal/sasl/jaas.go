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
// are the broker's own client credentials for inter-broker SASL
// (ParseLoginJAAS); they are ignored here. The syntax is JAAS's:
//
//	<login module class> <flag> [<option>=<value> ...];
//
// with values quoted ("...", backslash escapes) or bare.
func ParsePlainJAAS(s string) (map[string]string, error) {
	entries, err := parseJAAS(s)
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, e := range entries {
		if e.module != PlainLoginModule {
			return nil, fmt.Errorf("sasl: JAAS login module %q: PLAIN users come from %s", e.module, PlainLoginModule)
		}
		for _, o := range e.options {
			if user, ok := strings.CutPrefix(o.name, "user_"); ok {
				if user == "" {
					return nil, errors.New("sasl: JAAS option user_ with no user name")
				}
				users[user] = o.value
			}
		}
	}
	return users, nil
}

// ScramLoginModule is the JAAS login module of a Kafka SCRAM client.
const ScramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"

// ParseLoginJAAS returns the client login of a Kafka JAAS configuration:
// the username and password options of its first entry, a PlainLoginModule
// or ScramLoginModule. This is how a Kafka broker finds its own
// credentials for inter-broker SASL (sasl.jaas.config, or
// listener.name.<listener>.<mechanism>.sasl.jaas.config). Either option
// missing is an error: the broker could not authenticate.
func ParseLoginJAAS(s string) (username, password string, err error) {
	entries, err := parseJAAS(s)
	if err != nil {
		return "", "", err
	}
	if len(entries) == 0 {
		return "", "", errors.New("sasl: JAAS configuration is empty")
	}
	e := entries[0]
	if e.module != PlainLoginModule && e.module != ScramLoginModule {
		return "", "", fmt.Errorf("sasl: JAAS login module %q: a broker's login is a %s or %s", e.module, PlainLoginModule, ScramLoginModule)
	}
	var haveUser, havePass bool
	for _, o := range e.options {
		switch o.name {
		case "username":
			username, haveUser = o.value, true
		case "password":
			password, havePass = o.value, true
		}
	}
	if !haveUser || username == "" || !havePass {
		return "", "", errors.New("sasl: JAAS login has no username or no password option")
	}
	return username, password, nil
}

type jaasOption struct{ name, value string }

type jaasEntry struct {
	module  string
	options []jaasOption
}

// parseJAAS splits a JAAS configuration into its entries.
func parseJAAS(s string) ([]jaasEntry, error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return nil, err
	}
	var out []jaasEntry
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
		e := jaasEntry{module: module.text}
		toks = toks[2:]
		for len(toks) > 0 && toks[0].text != ";" {
			if len(toks) < 3 || toks[0].quoted || toks[1].quoted || toks[1].text != "=" || !toks[2].quoted && (toks[2].text == "=" || toks[2].text == ";") {
				// Never the token itself: it may be a password.
				return nil, errors.New("sasl: JAAS option not of the form name=\"value\"")
			}
			e.options = append(e.options, jaasOption{toks[0].text, toks[2].text})
			toks = toks[3:]
		}
		if len(toks) == 0 {
			return nil, errors.New("sasl: JAAS entry does not end with ';'")
		}
		toks = toks[1:]
		out = append(out, e)
	}
	return out, nil
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
