package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetworkLimitsDefaults(t *testing.T) {
	c := Default()
	if c.QueuedMaxRequestBytes != 256<<20 || c.MaxConnections != 1<<31-1 || c.MaxConnectionsPerIP != 1<<31-1 || c.MaxConnectionsPerIPOverrides != nil {
		t.Errorf("defaults: queued %d, max %d, per ip %d, overrides %v",
			c.QueuedMaxRequestBytes, c.MaxConnections, c.MaxConnectionsPerIP, c.MaxConnectionsPerIPOverrides)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The documented defaults are the real ones.
	var fromDocs Config
	for _, d := range Defs {
		switch d.Name {
		case "queued.max.request.bytes", "max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides":
			if err := fromDocs.Set(d.Name, d.Default); err != nil {
				t.Fatalf("%s default %q: %v", d.Name, d.Default, err)
			}
		}
	}
	if fromDocs.QueuedMaxRequestBytes != c.QueuedMaxRequestBytes || fromDocs.MaxConnections != c.MaxConnections ||
		fromDocs.MaxConnectionsPerIP != c.MaxConnectionsPerIP || fromDocs.MaxConnectionsPerIPOverrides != nil {
		t.Errorf("documented defaults give queued %d, max %d, per ip %d, overrides %v",
			fromDocs.QueuedMaxRequestBytes, fromDocs.MaxConnections, fromDocs.MaxConnectionsPerIP, fromDocs.MaxConnectionsPerIPOverrides)
	}
}

func TestConnectionOverrides(t *testing.T) {
	c := Default()
	if err := c.Set("max.connections.per.ip.overrides", "127.0.0.1:200, ::1:10,[fe80::1]:0,::ffff:10.0.0.1:3"); err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]int{
		netip.MustParseAddr("127.0.0.1"): 200,
		netip.MustParseAddr("::1"):       10,
		netip.MustParseAddr("fe80::1"):   0,
		netip.MustParseAddr("10.0.0.1"):  3, // mapped IPv4 is the IPv4 client
	}
	got := c.MaxConnectionsPerIPOverrides
	if len(got) != len(want) {
		t.Fatalf("overrides %v, want %v", got, want)
	}
	for ip, n := range want {
		if got[ip] != n {
			t.Errorf("override for %s = %d, want %d", ip, got[ip], n)
		}
	}
	for _, bad := range []string{"127.0.0.1", "localhost:3", "127.0.0.1:-1", "127.0.0.1:x"} {
		if err := c.Set("max.connections.per.ip.overrides", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNetworkLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		name, value, err string
	}{
		{"queued.max.request.bytes", "-1", ""},
		{"queued.max.request.bytes", "1", ""},
		{"queued.max.request.bytes", "0", "queued.max.request.bytes"},
		{"queued.max.request.bytes", "-2", "queued.max.request.bytes"},
		{"max.connections", "0", "max.connections"},
		{"max.connections", "1", ""},
		{"max.connections.per.ip", "0", "max.connections.per.ip"},
	} {
		c := Default()
		if err := c.Set(tc.name, tc.value); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s=%s: Validate() = %v, want error mentioning %q", tc.name, tc.value, err, tc.err)
		}
	}
}

func TestListeners(t *testing.T) {
	c := Default()
	if err := c.Set("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"); err != nil {
		t.Fatal(err)
	}
	if a, err := c.ListenAddr(); err != nil || a != "127.0.0.1:9092" {
		t.Errorf("ListenAddr = %q, %v", a, err)
	}
	if a, err := c.ControllerAddr(); err != nil || a != "127.0.0.1:9093" {
		t.Errorf("ControllerAddr = %q, %v", a, err)
	}
	// The controller listener may come first; clients still get PLAINTEXT.
	c.Set("listeners", "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092")
	if a, err := c.ListenAddr(); err != nil || a != "127.0.0.1:9092" {
		t.Errorf("ListenAddr = %q, %v", a, err)
	}
	// A bare host:port is PLAINTEXT, as before.
	c.Set("listeners", "127.0.0.1:9000")
	if a, err := c.ListenAddr(); err != nil || a != "127.0.0.1:9000" {
		t.Errorf("ListenAddr = %q, %v", a, err)
	}
	if a, err := c.ControllerAddr(); err != nil || a != "" {
		t.Errorf("ControllerAddr = %q, %v", a, err)
	}
	for _, bad := range []string{"INTERNAL://127.0.0.1:9093", "PLAINTEXT://127.0.0.1", "CONTROLLER://127.0.0.1:9093", "PLAINTEXT://a:1,PLAINTEXT://b:2", ""} {
		c.Set("listeners", bad)
		if _, err := c.ListenAddr(); err == nil {
			t.Errorf("listeners %q accepted", bad)
		}
	}
}

func TestVoters(t *testing.T) {
	v, err := ParseVoters("1@127.0.0.1:9093, 2@localhost:9094,3@[::1]:9095")
	if err != nil {
		t.Fatal(err)
	}
	want := []Voter{{1, "127.0.0.1:9093"}, {2, "localhost:9094"}, {3, "[::1]:9095"}}
	if len(v) != len(want) {
		t.Fatalf("voters %v, want %v", v, want)
	}
	for i := range want {
		if v[i] != want[i] {
			t.Errorf("voter %d = %v, want %v", i, v[i], want[i])
		}
	}
	if v, err := ParseVoters(""); err != nil || v != nil {
		t.Errorf("empty voters = %v, %v", v, err)
	}
	for _, bad := range []string{"127.0.0.1:9093", "x@127.0.0.1:9093", "-1@127.0.0.1:9093", "1@127.0.0.1", "1@a:1,1@b:2"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("voters %q accepted", bad)
		}
	}
}

func TestQuorumValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props map[string]string
		err   string
	}{
		{"default is local mode", nil, ""},
		{"one voter", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, ""},
		{"three voters", map[string]string{"node.id": "2", "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@h:1,2@127.0.0.1:9093,3@h:3"}, ""},
		{"other listener name", map[string]string{"controller.listener.names": "RAFT", "listeners": "PLAINTEXT://127.0.0.1:9092,RAFT://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, ""},
		{"not a voter", map[string]string{"node.id": "4", "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@h:1,2@h:2"}, "node.id 4"},
		{"no controller listener", map[string]string{"controller.quorum.voters": "1@127.0.0.1:9093"}, "no CONTROLLER listener"},
		{"controller listener without voters", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}, "controller.quorum.voters is empty"},
		{"broker only without voters", map[string]string{"process.roles": "broker"}, "needs controller.quorum.voters"},
		{"broker only", map[string]string{"node.id": "4", "process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, ""},
		{"broker only but a voter", map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, "broker-only"},
		{"broker only without controller listener", map[string]string{"node.id": "4", "process.roles": "broker", "controller.quorum.voters": "1@127.0.0.1:9093"}, "raft pushes"},
		{"controller only", map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, ""},
		{"controller only with a plaintext listener", map[string]string{"process.roles": "controller", "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, ""},
		{"controller only not a voter", map[string]string{"node.id": "4", "process.roles": "controller", "listeners": "CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093"}, "not in controller.quorum.voters"},
		{"controller only without voters", map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://127.0.0.1:9093"}, "needs controller.quorum.voters"},
		{"no roles", map[string]string{"process.roles": ""}, "process.roles is empty"},
		{"unknown role", map[string]string{"process.roles": "broker,zookeeper"}, "unknown role"},
	} {
		c := Default()
		for k, v := range tc.props {
			if err := c.Set(k, v); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		err := c.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Validate() = %v, want error mentioning %q", tc.name, err, tc.err)
		}
		if err == nil && c.Quorum() != (tc.props["controller.quorum.voters"] != "") {
			t.Errorf("%s: Quorum() = %v", tc.name, c.Quorum())
		}
	}
}

// TestReplicaSelectorClass: empty (the default) or Kafka's rack-aware
// selector, the only one strata has; any other class is refused at start
// rather than silently ignored.
func TestReplicaSelectorClass(t *testing.T) {
	c := Default()
	if c.ReplicaSelectorClass != "" {
		t.Fatalf("default %q, want empty", c.ReplicaSelectorClass)
	}
	if err := c.Set("replica.selector.class", " "+RackAwareReplicaSelector+" "); err != nil || c.ReplicaSelectorClass != RackAwareReplicaSelector {
		t.Fatalf("set the rack-aware selector: %v, %q", err, c.ReplicaSelectorClass)
	}
	if err := c.Set("replica.selector.class", "com.example.MySelector"); err == nil {
		t.Fatal("an unknown selector class was accepted")
	}
	if err := c.Set("replica.selector.class", ""); err != nil || c.ReplicaSelectorClass != "" {
		t.Fatalf("unset: %v, %q", err, c.ReplicaSelectorClass)
	}
}

func TestSeveralListeners(t *testing.T) {
	c := Default()
	for k, v := range map[string]string{
		"listeners":                                    "PLAINTEXT://127.0.0.1:9092,SSL://0.0.0.0:9093,INTERNAL://127.0.0.1:9094",
		"advertised.listeners":                         "SSL://broker1.example:9093,INTERNAL://10.0.0.1:9094",
		"listener.security.protocol.map":               "PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:SSL,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":                   "INTERNAL",
		"ssl.keystore.location":                        "/etc/strata/ks.pem",
		"ssl.client.auth":                              "requested",
		"listener.name.internal.ssl.client.auth":       "required",
		"listener.name.internal.ssl.keystore.location": "/etc/strata/internal.pem",
		"listener.name.INTERNAL.ssl.key.password":      "secret",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	adv, err := c.Advertised()
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{{"PLAINTEXT", "127.0.0.1:9092", "PLAINTEXT"}, {"SSL", "broker1.example:9093", "SSL"}, {"INTERNAL", "10.0.0.1:9094", "SSL"}}
	if !slices.Equal(adv, want) {
		t.Errorf("Advertised = %v, want %v", adv, want)
	}
	if ib, err := c.InterBroker(); err != nil || ib != want[2] {
		t.Errorf("InterBroker = %v, %v", ib, err)
	}
	ssl, internal := c.ListenerSSL("SSL"), c.ListenerSSL("INTERNAL")
	if ssl["ssl.client.auth"] != "requested" || ssl["ssl.keystore.location"] != "/etc/strata/ks.pem" || ssl["ssl.protocol"] != "TLSv1.3" {
		t.Errorf("SSL listener: %v", ssl)
	}
	if internal["ssl.client.auth"] != "required" || internal["ssl.keystore.location"] != "/etc/strata/internal.pem" || internal["ssl.key.password"] != "secret" {
		t.Errorf("INTERNAL listener: %v", internal)
	}
	for _, p := range c.Properties() {
		if p.Name == "ssl.key.password" && p.Value != nil {
			t.Errorf("ssl.key.password reported: %q", *p.Value)
		}
	}
	for _, tc := range []struct{ k, v, err string }{
		{"listener.name.ssl.log.retention.ms", "1", "unknown property"},
		{"listener.security.protocol.map", "SSL:TLS", "unknown security protocol"},
		{"security.inter.broker.protocol", "SSLv3", "unknown security protocol"},
	} {
		if err := c.Set(tc.k, tc.v); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s=%s: %v, want %q", tc.k, tc.v, err, tc.err)
		}
	}
	for _, tc := range []struct {
		props map[string]string
		err   string
	}{
		{map[string]string{"inter.broker.listener.name": "NOPE"}, "inter-broker listener NOPE"},
		{map[string]string{"advertised.listeners": "OTHER://x:1", "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,OTHER:SSL,CONTROLLER:PLAINTEXT"}, "not in listeners"},
		{map[string]string{"listeners": "PLAINTEXT://a:1,SSL://b:2"}, ""}, // inter-broker PLAINTEXT by default
		{map[string]string{"listeners": "SSL://b:2"}, ""},                 // the lone listener
		{map[string]string{"listeners": "SSL://b:2", "security.inter.broker.protocol": "PLAINTEXT"}, "inter-broker listener PLAINTEXT"},
		{map[string]string{"listeners": "SSL://b:2", "security.inter.broker.protocol": "SSL", "inter.broker.listener.name": "SSL"}, "not both"},
	} {
		c := Default()
		for k, v := range tc.props {
			if err := c.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		err := c.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: Validate = %v, want %q", tc.props, err, tc.err)
		}
	}
}

func TestSASLConfig(t *testing.T) {
	c := Default()
	if err := c.Set("sasl.enabled.mechanisms", "SCRAM-SHA-512, PLAIN"); err != nil {
		t.Fatal(err)
	}
	if len(c.SASLEnabledMechanisms) != 2 || c.SASLEnabledMechanisms[0] != "SCRAM-SHA-512" || c.SASLEnabledMechanisms[1] != "PLAIN" {
		t.Fatalf("%q", c.SASLEnabledMechanisms)
	}
	for _, m := range []string{"GSSAPI", "oauthbearer", "scram-sha-256"} {
		if err := c.Set("sasl.enabled.mechanisms", m); err == nil {
			t.Errorf("%s accepted", m)
		}
	}
	if err := c.Set("listener.name.sasl_ssl.sasl.enabled.mechanisms", "SCRAM-SHA-256"); err != nil {
		t.Fatal(err)
	}
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required user_a="pw";`
	if err := c.Set("listener.name.sasl_ssl.plain.sasl.jaas.config", jaas); err != nil {
		t.Fatal(err)
	}
	if ls := c.ListenerSASL["SASL_SSL"]; len(ls.EnabledMechanisms) != 1 || ls.PlainJAASConfig != jaas {
		t.Fatalf("%+v", c.ListenerSASL)
	}
	for _, p := range c.Properties() {
		if p.Value != nil && strings.Contains(*p.Value, "pw") {
			t.Fatalf("property %s shows the JAAS password", p.Name)
		}
	}
	for _, bad := range []string{"listener.name.x.sasl.enabled.mechanism", "listener.name..plain.sasl.jaas.config", "listener.name.a.b.sasl.enabled.mechanisms"} {
		if err := c.Set(bad, "PLAIN"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := c.Set("listener.name.x.sasl.enabled.mechanisms", "GSSAPI"); err == nil {
		t.Error("GSSAPI accepted for a listener")
	}
	c = Default()
	c.Set("connection.failed.authentication.delay.ms", "-1")
	if err := c.Validate(); err == nil {
		t.Error("negative connection.failed.authentication.delay.ms accepted")
	}
}

func TestLoadContinuation(t *testing.T) {
	c := Default()
	err := c.Load(strings.NewReader("listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n" +
		"    user_a=\"pw\" \\\n    user_b=\"x\\\\\";\nnum.partitions=3\n"))
	if err != nil {
		t.Fatal(err)
	}
	// An even run of backslashes does not continue the line (and is
	// kept as written: this loader does not unescape).
	want := `org.apache.kafka.common.security.plain.PlainLoginModule required user_a="pw" user_b="x\\";`
	if got := c.ListenerSASL["SASL_SSL"].PlainJAASConfig; got != want || c.NumPartitions != 3 {
		t.Fatalf("%q, %d", got, c.NumPartitions)
	}
}

// TestOAuthBearerConfig: OAUTHBEARER needs a JWKS URL, or unsecured mode
// asked for by name; Kafka's silent fallback to unsigned tokens is a
// start-up error.
func TestOAuthBearerConfig(t *testing.T) {
	c := Default()
	if c.OAuthBearer.ClockSkewSeconds != 30 || c.OAuthBearer.SubClaimName != "sub" || c.OAuthBearer.ScopeClaimName != "scope" || c.OAuthBearer.JWKSEndpointRefreshMs != 3600000 {
		t.Fatalf("defaults %+v", c.OAuthBearer)
	}
	if err := c.Set("sasl.enabled.mechanisms", "SCRAM-SHA-512,OAUTHBEARER"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sasl.oauthbearer.jwks.endpoint.url") {
		t.Fatalf("OAUTHBEARER without a JWKS: %v", err)
	}
	c.Set("strata.sasl.oauthbearer.unsecured.enable", "true")
	if err := c.Validate(); err != nil {
		t.Fatalf("unsecured mode: %v", err)
	}
	c.Set("strata.sasl.oauthbearer.unsecured.enable", "false")
	for k, v := range map[string]string{
		"sasl.oauthbearer.jwks.endpoint.url":        "file:/etc/idp/jwks.json",
		"sasl.oauthbearer.expected.audience":        "kafka, strata",
		"sasl.oauthbearer.expected.issuer":          "https://idp.example",
		"sasl.oauthbearer.sub.claim.name":           "client_id",
		"sasl.oauthbearer.clock.skew.seconds":       "5",
		"sasl.oauthbearer.jwks.endpoint.refresh.ms": "60000",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o := c.OAuthBearer
	if o.JWKSEndpointURL != "file:/etc/idp/jwks.json" || len(o.ExpectedAudience) != 2 || o.ExpectedAudience[1] != "strata" || o.ExpectedIssuer != "https://idp.example" || o.SubClaimName != "client_id" || o.ClockSkewSeconds != 5 || o.JWKSEndpointRefreshMs != 60000 {
		t.Fatalf("%+v", o)
	}

	// Enabled on one listener only is enough to need the JWKS.
	c = Default()
	c.Set("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "OAUTHBEARER")
	if err := c.Validate(); err == nil {
		t.Fatal("listener OAUTHBEARER without a JWKS accepted")
	}
	c = Default()
	c.Set("sasl.oauthbearer.clock.skew.seconds", "-1")
	if err := c.Validate(); err == nil {
		t.Fatal("negative clock skew accepted")
	}
}

// The broker's inter-broker login comes from the listener's JAAS for the
// mechanism first, then sasl.jaas.config; neither is ever shown.
func TestInterBrokerJAAS(t *testing.T) {
	c := Default()
	if v, p := c.InterBrokerJAAS("INTERNAL", c.SASLMechanismInterBroker); v != "" || p != "listener.name.internal.plain.sasl.jaas.config" {
		t.Fatalf("unset: %q from %s", v, p)
	}
	for k, v := range map[string]string{
		"sasl.mechanism.inter.broker.protocol":                  "SCRAM-SHA-512",
		"sasl.jaas.config":                                      "global",
		"listener.name.internal.scram-sha-512.sasl.jaas.config": "internal-512",
		"listener.name.internal.plain.sasl.jaas.config":         "internal-plain",
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ listener, mech, want, prop string }{
		{"INTERNAL", "SCRAM-SHA-512", "internal-512", "listener.name.internal.scram-sha-512.sasl.jaas.config"},
		{"INTERNAL", "PLAIN", "internal-plain", "listener.name.internal.plain.sasl.jaas.config"},
		{"INTERNAL", "SCRAM-SHA-256", "global", "sasl.jaas.config"},
		{"OTHER", "SCRAM-SHA-512", "global", "sasl.jaas.config"},
	} {
		if v, p := c.InterBrokerJAAS(tc.listener, tc.mech); v != tc.want || p != tc.prop {
			t.Errorf("%s %s: %q from %s, want %q from %s", tc.listener, tc.mech, v, p, tc.want, tc.prop)
		}
	}
	if err := c.Set("sasl.mechanism.inter.broker.protocol", "GSSAPI"); err == nil {
		t.Error("GSSAPI accepted")
	}
	for _, p := range c.Properties() {
		if p.Name == "sasl.jaas.config" && (p.Value != nil || !p.Sensitive) {
			t.Errorf("sasl.jaas.config shown: %+v", p)
		}
	}
}
