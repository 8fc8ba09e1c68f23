package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
)

// Security protocols, as Kafka names them (SecurityProtocol.java) with
// their ids in broker registrations.
var securityProtocolIDs = map[string]int16{
	"PLAINTEXT":      0,
	"SSL":            1,
	"SASL_PLAINTEXT": 2,
	"SASL_SSL":       3,
}

// DefaultSecurityProtocolMap is Kafka's default
// listener.security.protocol.map, plus CONTROLLER:PLAINTEXT: strata's
// controller listener is always named in controller.listener.names, and
// Kafka's own sample KRaft configs add the same entry.
const DefaultSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"

// SSLKeys are the ssl.* properties a listener reads, each settable for one
// listener as listener.name.<name>.<key> (Kafka's per-listener override).
// Sensitive ones are never reported by DescribeConfigs.
var SSLKeys = []Def{
	{"ssl.keystore.type", "format of the key store: PEM (Kafka's JKS and PKCS12 stores are not read; convert them with openssl)", "PEM", nil},
	{"ssl.keystore.location", "PEM file holding the private key and its certificate chain (the key first or last, in any order); re-read when it changes", "", nil},
	{"ssl.keystore.certificate.chain", "the certificate chain as inline PEM, instead of ssl.keystore.location", "", nil},
	{"ssl.keystore.key", "the private key as inline PEM (PKCS#8, PKCS#1 or SEC 1; an encrypted PKCS#8 key needs ssl.key.password), instead of ssl.keystore.location", "", nil},
	{"ssl.key.password", "password of an encrypted PKCS#8 private key (ENCRYPTED PRIVATE KEY, PBES2 with PBKDF2 and AES-CBC)", "", nil},
	{"ssl.truststore.type", "format of the trust store: PEM", "PEM", nil},
	{"ssl.truststore.location", "PEM file of the CA certificates that client certificates (ssl.client.auth) and, on the inter-broker listener, other brokers' certificates are checked against; re-read when it changes. Empty: the system's roots", "", nil},
	{"ssl.truststore.certificates", "the trusted CA certificates as inline PEM, instead of ssl.truststore.location", "", nil},
	{"ssl.client.auth", "client certificates: none, requested (asked for, checked if sent) or required (mutual TLS)", "none", nil},
	{"ssl.enabled.protocols", "TLS versions accepted: TLSv1.2, TLSv1.3", "TLSv1.2,TLSv1.3", nil},
	{"ssl.protocol", "the TLS protocol: TLSv1.3 or TLSv1.2 (TLS, TLSv1.2 and TLSv1.3 allow what ssl.enabled.protocols allows); the newest version both sides enable is negotiated", "TLSv1.3", nil},
	{"ssl.cipher.suites", "TLS 1.2 cipher suites allowed, by IANA name (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...); empty: Go's secure defaults. TLS 1.3 suites are not configurable in Go", "", nil},
	{"ssl.principal.mapping.rules", "how a client certificate's subject (RFC 2253 distinguished name) becomes the principal's name: DEFAULT (the whole DN) or RULE:pattern/replacement/[LU] rules, tried in order, as Kafka's SslPrincipalMapper", "DEFAULT", nil},
	{"ssl.endpoint.identification.algorithm", "https: a broker connecting to another over TLS checks the host name in its certificate; empty: it does not", "https", nil},
}

// sensitive are properties whose values DescribeConfigs hides, as
// Kafka's PASSWORD-typed configs.
var sensitive = map[string]bool{"ssl.keystore.key": true, "ssl.key.password": true, "sasl.jaas.config": true}

// IsSensitive reports whether name's value must not be shown (a private
// key, a password), including per-listener overrides.
func IsSensitive(name string) bool {
	if rest, ok := strings.CutPrefix(name, "listener.name."); ok {
		if _, key, ok := strings.Cut(rest, "."); ok {
			return sensitive[key]
		}
	}
	return sensitive[name]
}

func init() {
	for _, d := range SSLKeys {
		d.set = func(c *Config, v string) error {
			if c.ssl == nil {
				c.ssl = map[string]string{}
			}
			c.ssl[d.Name] = strings.TrimSpace(v)
			return nil
		}
		Defs = append(Defs, d)
	}
	Defs = append(Defs,
		Def{"listener.security.protocol.map", "security protocol of each listener name, NAME:PROTOCOL,... (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). The controller listener must be PLAINTEXT", DefaultSecurityProtocolMap, func(c *Config, v string) error {
			_, err := parseProtocolMap(v)
			c.SecurityProtocolMap = v
			return err
		}},
		Def{"inter.broker.listener.name", "the listener other brokers connect to (replica fetchers); empty: the listener named by security.inter.broker.protocol", "", func(c *Config, v string) error {
			c.InterBrokerListenerName = strings.TrimSpace(v)
			return nil
		}},
		Def{"security.inter.broker.protocol", "with inter.broker.listener.name empty, the inter-broker listener is the one with this name", "PLAINTEXT", func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if _, ok := securityProtocolIDs[v]; !ok {
				return fmt.Errorf("unknown security protocol %q", v)
			}
			c.SecurityInterBrokerProtocol = v
			return nil
		}},
	)
}

// setListenerOverride applies listener.name.<name>.<key>, where key is an
// ssl.* property. Kafka lower-cases listener names in these prefixes; any
// case is accepted here.
func (c *Config) setListenerOverride(name, value string) (bool, error) {
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return false, nil
	}
	listener, key, ok := strings.Cut(rest, ".")
	if !ok || !slices.ContainsFunc(SSLKeys, func(d Def) bool { return d.Name == key }) {
		return false, nil // not an ssl.* key: maybe a SASL one (setListenerSASL)
	}
	if c.listenerSSL == nil {
		c.listenerSSL = map[string]map[string]string{}
	}
	l := strings.ToUpper(listener)
	if c.listenerSSL[l] == nil {
		c.listenerSSL[l] = map[string]string{}
	}
	c.listenerSSL[l][key] = strings.TrimSpace(value)
	return true, nil
}

// ListenerSSL returns the ssl.* properties of listener name: its
// listener.name.<name>.* overrides, else the ssl.* properties, else their
// defaults, key by key as Kafka resolves them.
func (c *Config) ListenerSSL(name string) map[string]string {
	out := make(map[string]string, len(SSLKeys))
	for _, d := range SSLKeys {
		out[d.Name] = d.Default
	}
	maps.Copy(out, c.ssl)
	maps.Copy(out, c.listenerSSL[strings.ToUpper(name)])
	return out
}

// Listener is one entry of listeners: a name, host:port, and the
// security protocol listener.security.protocol.map gives its name.
type Listener struct {
	Name     string
	Addr     string
	Protocol string
}

// ProtocolID is the listener's security protocol as Kafka's broker
// registrations number it.
func (l Listener) ProtocolID() int16 { return securityProtocolIDs[l.Protocol] }

func parseProtocolMap(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, e := range splitList(v) {
		name, proto, ok := strings.Cut(e, ":")
		name, proto = strings.TrimSpace(name), strings.TrimSpace(proto)
		if !ok || name == "" {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q: want NAME:PROTOCOL", e)
		}
		if _, ok := securityProtocolIDs[proto]; !ok {
			return nil, fmt.Errorf("listener.security.protocol.map entry %q: unknown security protocol %q", e, proto)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener.security.protocol.map: %s appears twice", name)
		}
		m[name] = proto
	}
	return m, nil
}

// ProtocolMap is listener.security.protocol.map, parsed.
func (c *Config) ProtocolMap() (map[string]string, error) {
	return parseProtocolMap(cmpOr(c.SecurityProtocolMap, DefaultSecurityProtocolMap))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ParseListeners parses a listeners (or advertised.listeners) value:
// NAME://host:port entries, each name in protocols
// (listener.security.protocol.map). An entry without a name is PLAINTEXT,
// as strata has always accepted.
func ParseListeners(v string, protocols map[string]string) ([]Listener, error) {
	var out []Listener
	for _, e := range splitList(v) {
		l := Listener{Name: "PLAINTEXT", Addr: e}
		if name, addr, ok := strings.Cut(e, "://"); ok {
			l.Name, l.Addr = name, addr
		}
		proto, ok := protocols[l.Name]
		if !ok {
			return nil, fmt.Errorf("config: listener %q: %s is not in listener.security.protocol.map", e, l.Name)
		}
		l.Protocol = proto
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return nil, fmt.Errorf("config: listener %q: %v", e, err)
		}
		for _, o := range out {
			if o.Name == l.Name {
				return nil, fmt.Errorf("config: listeners %q: %s appears twice", v, l.Name)
			}
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, errors.New("config: no listener")
	}
	return out, nil
}

func (c *Config) listeners(v string) ([]Listener, error) {
	m, err := c.ProtocolMap()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// A controller listener not in the map is PLAINTEXT, as strata's
	// controller listener always was (a RAFT:// listener named in
	// controller.listener.names needs no map entry).
	for _, n := range c.ControllerListenerNames {
		if _, ok := m[n]; !ok {
			m[n] = "PLAINTEXT"
		}
	}
	return ParseListeners(v, m)
}

// ClientListeners returns the listeners clients (and other brokers) connect
// to: every entry of listeners but the controller listeners, in order.
func (c *Config) ClientListeners() ([]Listener, error) {
	ls, err := c.listeners(c.Listeners)
	if err != nil {
		return nil, err
	}
	var out []Listener
	for _, l := range ls {
		if !slices.Contains(c.ControllerListenerNames, l.Name) {
			out = append(out, l)
		}
	}
	return out, nil
}

// AdvertisedListeners returns, for each client listener, the address
// given to clients: its advertised.listeners entry, else its own.
func (c *Config) Advertised() ([]Listener, error) {
	ls, err := c.ClientListeners()
	if err != nil {
		return nil, err
	}
	if c.AdvertisedListeners == "" {
		return ls, nil
	}
	adv, err := c.listeners(c.AdvertisedListeners)
	if err != nil {
		return nil, fmt.Errorf("advertised.listeners: %w", err)
	}
	for _, a := range adv {
		if !slices.ContainsFunc(ls, func(l Listener) bool { return l.Name == a.Name }) {
			return nil, fmt.Errorf("config: advertised.listeners names %s, which is not in listeners", a.Name)
		}
	}
	for i, l := range ls {
		for _, a := range adv {
			if a.Name == l.Name {
				ls[i].Addr = a.Addr
			}
		}
	}
	return ls, nil
}

// InterBrokerListener is the name of the listener whose advertised address
// other brokers connect to: inter.broker.listener.name, else the listener
// named as security.inter.broker.protocol (Kafka's rule).
func (c *Config) InterBrokerListener() string {
	if c.InterBrokerListenerName != "" {
		return c.InterBrokerListenerName
	}
	return cmpOr(c.SecurityInterBrokerProtocol, "PLAINTEXT")
}

// ListenAddr returns host:port of the first client listener.
func (c *Config) ListenAddr() (string, error) {
	ls, err := c.ClientListeners()
	if err != nil {
		return "", err
	}
	if len(ls) == 0 {
		return "", fmt.Errorf("config: listeners %q has no client listener", c.Listeners)
	}
	return ls[0].Addr, nil
}

// ControllerAddr returns host:port of the controller listener (the first
// of controller.listener.names), "" when listeners has none.
func (c *Config) ControllerAddr() (string, error) {
	ls, err := c.listeners(c.Listeners)
	if err != nil {
		return "", err
	}
	for _, l := range ls {
		if len(c.ControllerListenerNames) > 0 && l.Name == c.ControllerListenerNames[0] {
			if l.Protocol != "PLAINTEXT" {
				return "", fmt.Errorf("config: controller listener %s is %s; strata's controller listener is PLAINTEXT only", l.Name, l.Protocol)
			}
			return l.Addr, nil
		}
	}
	return "", nil
}

// validateListeners checks a broker's client listeners: there is one, the
// advertised ones match, and the inter-broker listener is among them.
func (c *Config) validateListeners() error {
	ls, err := c.ClientListeners()
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return fmt.Errorf("config: listeners %q has no client listener", c.Listeners)
	}
	if _, err := c.Advertised(); err != nil {
		return err
	}
	if c.InterBrokerListenerName != "" && c.SecurityInterBrokerProtocol != "" {
		return errors.New("config: set inter.broker.listener.name or security.inter.broker.protocol, not both")
	}
	ib := c.InterBrokerListener()
	if !slices.ContainsFunc(ls, func(l Listener) bool { return l.Name == ib }) {
		if c.InterBrokerListenerName == "" && c.SecurityInterBrokerProtocol == "" && len(ls) == 1 {
			// Neither is set and there is one client listener:
			// strata uses it (Kafka would refuse to start), so
			// that a lone SSL listener needs no extra setting.
			return nil
		}
		return fmt.Errorf("config: the inter-broker listener %s (inter.broker.listener.name or security.inter.broker.protocol) is not in listeners %q", ib, c.Listeners)
	}
	return nil
}

// InterBroker returns the inter-broker listener's advertised form.
func (c *Config) InterBroker() (Listener, error) {
	ls, err := c.Advertised()
	if err != nil {
		return Listener{}, err
	}
	ib := c.InterBrokerListener()
	for _, l := range ls {
		if l.Name == ib {
			return l, nil
		}
	}
	if c.InterBrokerListenerName == "" && c.SecurityInterBrokerProtocol == "" && len(ls) == 1 {
		return ls[0], nil
	}
	return Listener{}, fmt.Errorf("config: no inter-broker listener %s", ib)
}

// InterBrokerJAAS returns the JAAS configuration holding the broker's own
// login for SASL on listener with mechanism, and the property it came
// from: listener.name.<listener>.<mechanism>.sasl.jaas.config first, then
// sasl.jaas.config (Kafka's order). value is "" when neither is set.
func (c *Config) InterBrokerJAAS(listener, mechanism string) (value, property string) {
	property = "listener.name." + strings.ToLower(listener) + "." + strings.ToLower(mechanism) + ".sasl.jaas.config"
	if v := c.ListenerSASL[strings.ToUpper(listener)].JAAS(mechanism); v != "" {
		return v, property
	}
	if c.SASLJAASConfig != "" {
		return c.SASLJAASConfig, "sasl.jaas.config"
	}
	return "", property
}
