package tlsconf

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrNoMatchingRule is returned when no ssl.principal.mapping.rules rule
// matches a certificate's subject: Kafka fails the authentication then
// (SslPrincipalMapper.NoMatchingRule), and so does strata.
var ErrNoMatchingRule = errors.New("tlsconf: no ssl.principal.mapping.rules rule matches the certificate's subject")

// rule is one ssl.principal.mapping.rules entry: DEFAULT, or
// RULE:pattern/replacement/[LU].
type rule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string
	toLower     bool
	toUpper     bool
}

// Mapper turns a certificate subject's distinguished name into a
// principal name, as Kafka's SslPrincipalMapper: the rules are tried in
// order and the first whose pattern matches the whole DN gives the name.
// Safe for concurrent use.
type Mapper struct{ rules []rule }

// ruleRE is Kafka's SslPrincipalMapper RULE_PARSER: a pattern and a
// replacement, each with \/ for a literal slash, and an optional case flag.
var ruleRE = regexp.MustCompile(`^\s*(DEFAULT|RULE:((?:\\/|[^/])*)/((?:\\/|[^/])*)/([LU]?))\s*(?:,|$)`)

var javaGroupRE = regexp.MustCompile(`\$(\d+)`)

// ParseRules parses ssl.principal.mapping.rules. An empty value is
// DEFAULT. Patterns are Go regular expressions (RE2), which cover the
// Java patterns Kafka's documentation uses; a replacement refers to groups
// as $1 or ${1}.
func ParseRules(v string) (*Mapper, error) {
	m := &Mapper{}
	rest := strings.TrimSpace(v)
	if rest == "" {
		rest = "DEFAULT"
	}
	for rest != "" {
		sm := ruleRE.FindStringSubmatch(rest)
		if sm == nil {
			return nil, fmt.Errorf("tlsconf: ssl.principal.mapping.rules: bad rule at %q (want DEFAULT or RULE:pattern/replacement/[LU])", rest)
		}
		rest = strings.TrimSpace(rest[len(sm[0]):])
		if sm[1] == "DEFAULT" {
			m.rules = append(m.rules, rule{isDefault: true})
			continue
		}
		unescape := func(s string) string { return strings.ReplaceAll(s, `\/`, `/`) }
		re, err := regexp.Compile("^(?:" + unescape(sm[2]) + ")$")
		if err != nil {
			return nil, fmt.Errorf("tlsconf: ssl.principal.mapping.rules: pattern %q: %w", sm[2], err)
		}
		// Java's $1 is Go's ${1}: Go would read "$1_x" as a group named
		// "1_x".
		repl := javaGroupRE.ReplaceAllString(unescape(sm[3]), "$${$1}")
		m.rules = append(m.rules, rule{pattern: re, replacement: repl, toLower: sm[4] == "L", toUpper: sm[4] == "U"})
	}
	return m, nil
}

// Name maps a distinguished name (RFC 2253) to a principal name.
func (m *Mapper) Name(dn string) (string, error) {
	for _, r := range m.rules {
		if r.isDefault {
			return dn, nil
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		s := r.pattern.ReplaceAllString(dn, r.replacement)
		switch {
		case r.toLower:
			s = strings.ToLower(s)
		case r.toUpper:
			s = strings.ToUpper(s)
		}
		return s, nil
	}
	return "", ErrNoMatchingRule
}

// SubjectDN is a certificate subject in RFC 2253 form, most specific
// attribute first, as Java's X500Principal.getName() gives it to Kafka
// (CN=alice,OU=eng,O=acme).
func SubjectDN(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	return seq.String()
}

// Principal is the principal of a connection whose client presented cert:
// User: and the mapped subject DN (Kafka's DefaultKafkaPrincipalBuilder).
func (m *Mapper) Principal(cert *x509.Certificate) (string, error) {
	name, err := m.Name(SubjectDN(cert))
	if err != nil {
		return "", err
	}
	return "User:" + name, nil
}
