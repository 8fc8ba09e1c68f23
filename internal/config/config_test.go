package config

import (
	"net/netip"
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
