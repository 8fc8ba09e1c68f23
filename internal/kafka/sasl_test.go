package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strata-io/strata/internal/broker"
	ssasl "github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
)

// startSASL serves a handler on a SASL_PLAINTEXT listener on 127.0.0.1:0
// (the listener wiring of strata.go is not needed to test authentication)
// and returns it with the listener's address.
func startSASL(t *testing.T, cfg SASLConfig) (*Handler, string) {
	t.Helper()
	return startSASLOn(t, cfg, server.ProtocolSASLPlaintext)
}

// startSASLOn is startSASL with the listener's name.
func startSASLOn(t *testing.T, cfg SASLConfig, listener string) (*Handler, string) {
	t.Helper()
	return startSASLWith(t, Config{SASL: cfg}, listener)
}

// startSASLWith is startSASLOn with the handler's Config (its address and
// topic settings filled in).
func startSASLWith(t *testing.T, cfg Config, listener string) (*Handler, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeID, cfg.AdvertisedHost, cfg.AdvertisedPort = 1, "127.0.0.1", int32(ln.Addr().(*net.TCPAddr).Port)
	cfg.NumPartitions, cfg.TopicDefaults = 1, broker.DefaultTopicConfig()
	h := newTestHandler(t, t.TempDir(), cfg)
	srv := server.New(h, server.Config{Listener: listener, Protocol: server.ProtocolSASLPlaintext})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h, ln.Addr().String()
}

// addUser stores a SCRAM credential through AlterUserScramCredentials, as
// an admin client would.
func addUser(t *testing.T, h *Handler, user, password string, m ssasl.Scram, iterations int32) {
	t.Helper()
	salt := ssasl.NewSalt()
	salted, err := ssasl.SaltedPassword(m, password, salt, int(iterations))
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = user, int8(m), iterations, salt, salted
	req.Upsertions = append(req.Upsertions, up)
	resp := roundTrip[*kmsg.AlterUserSCRAMCredentialsResponse](t, h, req)
	mustCode(t, "add "+user, resp.Results[0].ErrorCode, 0)
}

func saslClient(t *testing.T, addr string, mech sasl.Mechanism) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestSASLFranzClients(t *testing.T) {
	h, addr := startSASL(t, SASLConfig{PlainUsers: map[string]string{"carol": "c-pass"}})
	addUser(t, h, "alice", "a-pass", ssasl.SHA256, 4096)
	addUser(t, h, "alice", "a-pass", ssasl.SHA512, 8192)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	good := map[string]sasl.Mechanism{
		"scram-256":   scram.Auth{User: "alice", Pass: "a-pass"}.AsSha256Mechanism(),
		"scram-512":   scram.Auth{User: "alice", Pass: "a-pass"}.AsSha512Mechanism(),
		"plain-scram": plain.Auth{User: "alice", Pass: "a-pass"}.AsMechanism(),
		"plain-jaas":  plain.Auth{User: "carol", Pass: "c-pass"}.AsMechanism(),
	}
	created := false
	for name, mech := range good {
		cl := saslClient(t, addr, mech)
		if !created {
			resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t")
			if err != nil || resp.Err != nil {
				t.Fatalf("%s: create topic: %v %v", name, err, resp.Err)
			}
			created = true
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte(name)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", name, err)
		}
	}

	bad := map[string]sasl.Mechanism{
		"scram wrong password": scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(),
		"scram unknown user":   scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism(),
		"plain wrong password": plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
		"plain unknown user":   plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(),
	}
	for name, mech := range bad {
		err := saslClient(t, addr, mech).Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}
}

func TestSASLUnsupportedMechanismFranz(t *testing.T) {
	_, addr := startSASL(t, SASLConfig{EnabledMechanisms: []string{ssasl.ScramSHA512}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := saslClient(t, addr, plain.Auth{User: "a", Pass: "b"}.AsMechanism()).Ping(ctx)
	if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("%v, want UNSUPPORTED_SASL_MECHANISM", err)
	}
}

// rawConn speaks the Kafka protocol over one connection, to see what a
// client library hides: closed connections and exact answers.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(req kmsg.Request) {
	r.t.Helper()
	r.corr++
	b := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, r.corr)
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads the response to the last request; nil with io.EOF (or a
// reset) when the broker closed the connection instead.
func (r *rawConn) recv(req kmsg.Request) (kmsg.Response, error) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	body = body[4:]
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatal(err)
	}
	return resp, nil
}

func (r *rawConn) do(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	r.send(req)
	resp, err := r.recv(req)
	if err != nil {
		r.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed: the broker closes the connection without answering.
func (r *rawConn) expectClosed(what string) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := r.c.Read(b[:])
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("%s: connection not closed (read %d, %v)", what, n, err)
	}
}

func (r *rawConn) handshake(mech string) *kmsg.SASLHandshakeResponse {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = 1, mech
	return r.do(req).(*kmsg.SASLHandshakeResponse)
}

func (r *rawConn) authenticate(version int16, msg []byte) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = version, msg
	return r.do(req).(*kmsg.SASLAuthenticateResponse)
}

func metadataReq() *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	return req
}

func TestSASLProduceBeforeAuthenticationCloses(t *testing.T) {
	_, addr := startSASL(t, SASLConfig{})
	for _, key := range []string{"produce", "metadata", "after handshake"} {
		c := dialRaw(t, addr)
		// ApiVersions is allowed first, and lists the SASL keys.
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
		for _, k := range c.do(av).(*kmsg.ApiVersionsResponse).ApiKeys {
			keys[k.ApiKey] = k
		}
		for _, k := range []int16{17, 36, 50, 51} {
			if _, ok := keys[k]; !ok {
				t.Fatalf("ApiVersions does not list %d", k)
			}
		}
		// SaslHandshake v0 must be listed: librdkafka enables SASL only
		// then.
		if keys[17].MinVersion != 0 || keys[17].MaxVersion != 1 || keys[36].MaxVersion != 2 {
			t.Fatalf("versions %+v %+v", keys[17], keys[36])
		}
		switch key {
		case "produce":
			req := kmsg.NewPtrProduceRequest()
			req.Version, req.Acks, req.TimeoutMillis = 9, 1, 1000
			c.send(req)
		case "metadata":
			c.send(metadataReq())
		case "after handshake":
			mustCode(t, "handshake", c.handshake(ssasl.Plain).ErrorCode, 0)
			c.send(metadataReq())
		}
		c.expectClosed(key)
	}
}

func TestSASLUnsupportedMechanismCloses(t *testing.T) {
	_, addr := startSASL(t, SASLConfig{EnabledMechanisms: []string{ssasl.ScramSHA256, ssasl.Plain}})
	for _, mech := range []string{"GSSAPI", ssasl.ScramSHA512, "plain"} {
		c := dialRaw(t, addr)
		resp := c.handshake(mech)
		mustCode(t, mech, resp.ErrorCode, kerr.UnsupportedSaslMechanism.Code)
		if !slices.Equal(resp.SupportedMechanisms, []string{ssasl.ScramSHA256, ssasl.Plain}) {
			t.Fatalf("supported %v", resp.SupportedMechanisms)
		}
		c.expectClosed(mech)
	}
}

func TestSASLFailedAuthenticationDelayAndClose(t *testing.T) {
	const delay = 300 * time.Millisecond
	h, addr := startSASL(t, SASLConfig{FailedAuthenticationDelay: delay})
	addUser(t, h, "alice", "a-pass", ssasl.SHA256, 4096)
	c := dialRaw(t, addr)
	mustCode(t, "handshake", c.handshake(ssasl.Plain).ErrorCode, 0)
	start := time.Now()
	resp := c.authenticate(1, []byte("\x00alice\x00wrong"))
	if took := time.Since(start); took < delay {
		t.Fatalf("failure answered after %v, before connection.failed.authentication.delay.ms %v", took, delay)
	}
	mustCode(t, "authenticate", resp.ErrorCode, kerr.SaslAuthenticationFailed.Code)
	if resp.ErrorMessage == nil || *resp.ErrorMessage != "Authentication failed: Invalid username or password" {
		t.Fatalf("message %v", resp.ErrorMessage)
	}
	c.expectClosed("after failure")

	// The right password, on a new connection, works and lets requests
	// through.
	c = dialRaw(t, addr)
	mustCode(t, "handshake", c.handshake(ssasl.Plain).ErrorCode, 0)
	resp = c.authenticate(2, []byte("\x00alice\x00a-pass"))
	mustCode(t, "authenticate", resp.ErrorCode, 0)
	if resp.SessionLifetimeMillis != 0 {
		t.Fatalf("session lifetime %d without connections.max.reauth.ms", resp.SessionLifetimeMillis)
	}
	c.do(metadataReq())
	// Another handshake on an authenticated connection is a
	// re-authentication; SaslAuthenticate without one closes.
	c.send(func() kmsg.Request { r := kmsg.NewPtrSASLAuthenticateRequest(); r.Version = 1; return r }())
	c.expectClosed("authenticate without handshake")
}

// TestSASLReauthentication: KIP-368. The session lifetime is
// connections.max.reauth.ms; a re-authentication with the same principal
// renews it, one with another principal fails, and a request after the
// lifetime without re-authentication closes the connection.
func TestSASLReauthentication(t *testing.T) {
	const life = 400 * time.Millisecond
	_, addr := startSASL(t, SASLConfig{MaxReauth: life, PlainUsers: map[string]string{"a": "pa", "b": "pb"}})
	login := func(c *rawConn, user, pass string) *kmsg.SASLAuthenticateResponse {
		mustCode(t, "handshake", c.handshake(ssasl.Plain).ErrorCode, 0)
		return c.authenticate(1, []byte("\x00"+user+"\x00"+pass))
	}
	c := dialRaw(t, addr)
	resp := login(c, "a", "pa")
	mustCode(t, "login", resp.ErrorCode, 0)
	if resp.SessionLifetimeMillis != life.Milliseconds() {
		t.Fatalf("session lifetime %d", resp.SessionLifetimeMillis)
	}
	time.Sleep(life / 2)
	mustCode(t, "reauth", login(c, "a", "pa").ErrorCode, 0)
	time.Sleep(life / 2)
	c.do(metadataReq()) // within the renewed lifetime
	resp = login(c, "b", "pb")
	mustCode(t, "reauth as another user", resp.ErrorCode, kerr.SaslAuthenticationFailed.Code)
	c.expectClosed("after principal change")

	c = dialRaw(t, addr)
	mustCode(t, "login", login(c, "a", "pa").ErrorCode, 0)
	time.Sleep(life + 100*time.Millisecond)
	c.send(metadataReq())
	c.expectClosed("after expiry")
}

// TestSASLOnPlaintextListener: the SASL requests are ILLEGAL_SASL_STATE on
// a listener without SASL, as Kafka's KafkaApis answers them.
func TestSASLOnPlaintextListener(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, TopicDefaults: broker.DefaultTopicConfig()})
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, ssasl.Plain
	mustCode(t, "handshake", roundTrip[*kmsg.SASLHandshakeResponse](t, h, hs).ErrorCode, kerr.IllegalSaslState.Code)
	au := kmsg.NewPtrSASLAuthenticateRequest()
	mustCode(t, "authenticate", roundTrip[*kmsg.SASLAuthenticateResponse](t, h, au).ErrorCode, kerr.IllegalSaslState.Code)
}

func TestUserSCRAMCredentialsAdmin(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, TopicDefaults: broker.DefaultTopicConfig()})
	addUser(t, h, "alice", "a", ssasl.SHA256, 4096)
	addUser(t, h, "alice", "a", ssasl.SHA512, 16384)
	addUser(t, h, "bob", "b", ssasl.SHA256, 5000)

	up := func(name string, mech int8, iter int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iter, []byte("salt"), []byte("salted")
		return u
	}
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		up("low", 1, 4095), up("high", 2, 16385), up("mech", 3, 4096), up("dup", 1, 4096), up("carol", 2, 4096),
	}
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("dup", 1), del("missing", 1), del("bob", 1), del("alice", 0)}
	resp := roundTrip[*kmsg.AlterUserSCRAMCredentialsResponse](t, h, req)
	want := map[string]int16{
		"low": kerr.UnacceptableCredential.Code, "high": kerr.UnacceptableCredential.Code, "mech": kerr.UnsupportedSaslMechanism.Code,
		"dup": kerr.DuplicateResource.Code, "missing": kerr.ResourceNotFound.Code, "alice": kerr.UnsupportedSaslMechanism.Code,
		"bob": 0, "carol": 0,
	}
	if len(resp.Results) != len(want) {
		t.Fatalf("results %+v", resp.Results)
	}
	for _, r := range resp.Results {
		mustCode(t, r.User, r.ErrorCode, want[r.User])
	}

	describe := func(users ...string) *kmsg.DescribeUserSCRAMCredentialsResponse {
		req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for _, u := range users {
			ru := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			ru.Name = u
			req.Users = append(req.Users, ru)
		}
		return roundTrip[*kmsg.DescribeUserSCRAMCredentialsResponse](t, h, req)
	}
	all := describe()
	var got []string
	for _, r := range all.Results {
		got = append(got, r.User)
		mustCode(t, r.User, r.ErrorCode, 0)
	}
	if !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("all users %v (bob's only credential was deleted)", got)
	}
	if infos := all.Results[0].CredentialInfos; len(infos) != 2 || infos[0].Mechanism != 1 || infos[0].Iterations != 4096 || infos[1].Mechanism != 2 || infos[1].Iterations != 16384 {
		t.Fatalf("alice %+v", infos)
	}
	some := describe("bob", "carol", "x", "x")
	codes := map[string]int16{}
	for _, r := range some.Results {
		codes[r.User] = r.ErrorCode
	}
	if codes["bob"] != kerr.ResourceNotFound.Code || codes["carol"] != 0 || codes["x"] != kerr.DuplicateResource.Code || len(some.Results) != 3 {
		t.Fatalf("described %+v", some.Results)
	}
}

// TestSASLPerListener: listener.name.<listener>.sasl.enabled.mechanisms and
// its PLAIN users apply to that listener only.
func TestSASLPerListener(t *testing.T) {
	cfg := SASLConfig{Listeners: map[string]ListenerSASL{
		"INTERNAL": {EnabledMechanisms: []string{ssasl.Plain}, PlainUsers: map[string]string{"dave": "d-pass"}},
	}}
	h, internal := startSASLOn(t, cfg, "internal")
	addUser(t, h, "alice", "a-pass", ssasl.SHA512, 4096)
	c := dialRaw(t, internal)
	resp := c.handshake(ssasl.ScramSHA512)
	mustCode(t, "scram on INTERNAL", resp.ErrorCode, kerr.UnsupportedSaslMechanism.Code)
	if !slices.Equal(resp.SupportedMechanisms, []string{ssasl.Plain}) {
		t.Fatalf("supported %v", resp.SupportedMechanisms)
	}
	for user, pass := range map[string]string{"dave": "d-pass", "alice": "a-pass"} {
		c = dialRaw(t, internal)
		mustCode(t, "handshake", c.handshake(ssasl.Plain).ErrorCode, 0)
		mustCode(t, "plain "+user, c.authenticate(1, []byte("\x00"+user+"\x00"+pass)).ErrorCode, 0)
	}

	// Another listener of the same handler: the defaults, without dave.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h, server.Config{Listener: "EXTERNAL", Protocol: server.ProtocolSASLPlaintext})
	go srv.Serve(other)
	t.Cleanup(func() { srv.Close() })
	c = dialRaw(t, other.Addr().String())
	resp = c.handshake(ssasl.Plain)
	mustCode(t, "plain on EXTERNAL", resp.ErrorCode, 0)
	if !slices.Equal(resp.SupportedMechanisms, DefaultSASLMechanisms) {
		t.Fatalf("EXTERNAL supports %v", resp.SupportedMechanisms)
	}
	mustCode(t, "dave on EXTERNAL", c.authenticate(1, []byte("\x00dave\x00d-pass")).ErrorCode, kerr.SaslAuthenticationFailed.Code)
}

// TestSASLReauthenticationFranz: franz-go re-authenticates before the
// session lifetime ends (KIP-368), so a client keeps working on its
// connections past connections.max.reauth.ms.
func TestSASLReauthenticationFranz(t *testing.T) {
	const life = time.Second
	var reauths atomic.Int32
	logger := slog.New(countHandler{msg: "authenticated", attr: "reauthentication", n: &reauths})
	h, addr := startSASLWith(t, Config{SASL: SASLConfig{MaxReauth: life}, Logger: logger}, server.ProtocolSASLPlaintext)
	addUser(t, h, "alice", "a-pass", ssasl.SHA512, 4096)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := saslClient(t, addr, scram.Auth{User: "alice", Pass: "a-pass"}.AsSha512Mechanism())
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	deadline := time.Now().Add(3 * life)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d, %v into the session: %v", i, time.Until(deadline), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if reauths.Load() == 0 {
		t.Fatal("the client never re-authenticated")
	}
}

// countHandler counts log records with message msg whose attribute attr
// is true.
type countHandler struct {
	msg, attr string
	n         *atomic.Int32
}

func (c countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (c countHandler) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c countHandler) WithGroup(string) slog.Handler            { return c }
func (c countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == c.msg {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == c.attr && a.Value.Kind() == slog.KindBool && a.Value.Bool() {
				c.n.Add(1)
			}
			return true
		})
	}
	return nil
}
