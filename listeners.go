package strata

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/config"
	strsasl "github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/tlsconf"
)

// clientListener is one bound client listener (listeners, without the
// controller's): its configuration and socket.
type clientListener struct {
	config.Listener
	ln net.Listener
}

func closeListeners(cls []clientListener) {
	for _, cl := range cls {
		cl.ln.Close()
	}
}

// bindListeners binds every client listener of cfg, in order.
func bindListeners(cfg config.Config) ([]clientListener, error) {
	ls, err := cfg.ClientListeners()
	if err != nil {
		return nil, err
	}
	var out []clientListener
	for _, l := range ls {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			closeListeners(out)
			return nil, fmt.Errorf("listen on %s (%s): %w", l.Addr, l.Name, err)
		}
		out = append(out, clientListener{l, ln})
	}
	return out, nil
}

// isTLS reports whether a security protocol runs over TLS.
func isTLS(protocol string) bool {
	return protocol == server.ProtocolSSL || protocol == server.ProtocolSASLSSL
}

// endpoints are a node's advertised client listeners, as registered with
// the controller: advertised.listeners, else the listener's own address,
// with a port of 0 replaced by the port bound.
func endpoints(cfg config.Config, cls []clientListener) ([]records.Endpoint, error) {
	adv, err := cfg.Advertised()
	if err != nil {
		return nil, err
	}
	var out []records.Endpoint
	for _, a := range adv {
		host, port, err := net.SplitHostPort(a.Addr)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.Atoi(port)
		if p == 0 {
			for _, cl := range cls {
				if cl.Name == a.Name {
					_, port, _ = net.SplitHostPort(cl.ln.Addr().String())
					p, _ = strconv.Atoi(port)
				}
			}
		}
		out = append(out, records.Endpoint{Name: a.Name, Host: host, Port: uint16(p), SecurityProtocol: a.ProtocolID()})
	}
	return out, nil
}

func registrationListeners(eps []records.Endpoint) []kmsg.BrokerRegistrationRequestListener {
	var out []kmsg.BrokerRegistrationRequestListener
	for _, e := range eps {
		out = append(out, kmsg.BrokerRegistrationRequestListener{Name: e.Name, Host: e.Host, Port: e.Port, SecurityProtocol: e.SecurityProtocol})
	}
	return out
}

// tlsSources builds the TLS configuration of every SSL and SASL_SSL
// listener from its ssl.* properties (listener.name.<name>.ssl.* first).
func tlsSources(cfg config.Config, cls []clientListener, logger *slog.Logger) (map[string]*tlsconf.Source, error) {
	out := map[string]*tlsconf.Source{}
	for _, cl := range cls {
		if !isTLS(cl.Protocol) {
			continue
		}
		s, err := tlsconf.New(cl.Name, cfg.ListenerSSL(cl.Name), logger)
		if err != nil {
			return nil, err
		}
		out[cl.Name] = s
	}
	return out, nil
}

// serverListener is how the server runs a client listener's connections.
func serverListener(cl clientListener, sources map[string]*tlsconf.Source) server.Listener {
	l := server.Listener{Name: cl.Name, Protocol: cl.Protocol}
	if s := sources[cl.Name]; s != nil {
		l.TLS, l.Principal = s.ServerConfig(), s.Principal
	}
	return l
}

// interBrokerDial is how replica fetchers reach the leaders: through the
// node's network, and over TLS with the inter-broker listener's key and
// trust stores when that listener is SSL or SASL_SSL (Kafka's broker acts
// as a client of its own listener's ssl.* settings). SASL is on top, in
// the fetchers' client (interBrokerSASL).
func interBrokerDial(cfg config.Config, nn nodeNet, sources map[string]*tlsconf.Source, logger *slog.Logger) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	ib, err := cfg.InterBroker()
	if err != nil {
		return nil, err
	}
	switch ib.Protocol {
	case server.ProtocolPlaintext, server.ProtocolSASLPlaintext:
		return nn.dialContext, nil
	case server.ProtocolSSL, server.ProtocolSASLSSL:
	default:
		return nil, fmt.Errorf("inter-broker listener %s is %s: strata's brokers connect to each other over PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", ib.Name, ib.Protocol)
	}
	src := sources[ib.Name]
	if src == nil {
		// A controller-only node has no client listeners but never
		// fetches; a broker always has its inter-broker listener.
		if src, err = tlsconf.New(ib.Name, cfg.ListenerSSL(ib.Name), logger); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		c, err := nn.dialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, src.ClientConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}, nil
}

// interBrokerSASL is how replica fetchers authenticate on a SASL_*
// inter-broker listener, as Kafka's broker does: with
// sasl.mechanism.inter.broker.protocol and the username and password of
// the listener's JAAS configuration for that mechanism, else of
// sasl.jaas.config. It is nil on a PLAINTEXT or SSL listener. A SASL
// listener without a login is a start-up error: every fetch would fail.
func interBrokerSASL(cfg config.Config) (sasl.Mechanism, error) {
	ib, err := cfg.InterBroker()
	if err != nil {
		return nil, err
	}
	if ib.Protocol != server.ProtocolSASLPlaintext && ib.Protocol != server.ProtocolSASLSSL {
		return nil, nil
	}
	mech := cfg.SASLMechanismInterBroker
	jaas, prop := cfg.InterBrokerJAAS(ib.Name, mech)
	if jaas == "" {
		return nil, fmt.Errorf("config: the inter-broker listener %s is %s with sasl.mechanism.inter.broker.protocol=%s, but the broker has no login for it: set %s (or sasl.jaas.config) with username and password options", ib.Name, ib.Protocol, mech, prop)
	}
	user, pass, err := strsasl.ParseLoginJAAS(jaas)
	if err != nil {
		// The value holds a password: not quoted.
		return nil, fmt.Errorf("config: %s: %w", prop, err)
	}
	switch mech {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("config: sasl.mechanism.inter.broker.protocol=%s: strata's brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mech)
}
