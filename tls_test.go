package strata_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/tlsconf/tlstest"
)

// tlsFixture is a CA, a broker key store and a trust store on disk.
type tlsFixture struct {
	ca       *tlstest.CA
	dir      string
	keyStore string
	trust    string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{ca: tlstest.NewCA(t, "strata-test-ca"), dir: t.TempDir()}
	f.keyStore = tlstest.WriteFile(t, f.dir, "broker.pem", f.ca.Issue(t, "broker", tlstest.Options{}).KeyStore())
	f.trust = tlstest.WriteFile(t, f.dir, "ca.pem", f.ca.PEM)
	return f
}

// clientTLS is a client configuration trusting the CA, with cert as the
// client certificate when set.
func (f *tlsFixture) clientTLS(t *testing.T, cert *tlstest.Leaf) *tls.Config {
	c := &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLSCertificate(t)}
	}
	return c
}

// metadataBrokers asks addr (over TLS when cfg is set) for the brokers.
func listenerMetadata(t *testing.T, addr string, cfg *tls.Config) []string {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addr)}
	if cfg != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	cl := newClient(t, addr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range resp.Brokers {
		out = append(out, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	return out
}

// TestSSLListener: one broker with a PLAINTEXT and an SSL listener. Each
// answers Metadata with its own endpoints, and franz-go produces and
// consumes large batches over SSL byte for byte (the fetch path's copy
// fallback under crypto/tls).
func TestSSLListener(t *testing.T) {
	f := newTLSFixture(t)
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners":             "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
		"ssl.keystore.location": f.keyStore,
	})
	plain, ssl := b.ListenerAddr("PLAINTEXT"), b.ListenerAddr("SSL")
	if got := listenerMetadata(t, plain, nil); len(got) != 1 || got[0] != plain {
		t.Errorf("Metadata on PLAINTEXT: %v, want [%s]", got, plain)
	}
	if got := listenerMetadata(t, ssl, f.clientTLS(t, nil)); len(got) != 1 || got[0] != ssl {
		t.Errorf("Metadata on SSL: %v, want [%s]", got, ssl)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tlsOpt := kgo.DialTLSConfig(f.clientTLS(t, nil))
	adm := kadm.NewClient(newClient(t, ssl, tlsOpt))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "secure"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, ssl, tlsOpt, kgo.DefaultProduceTopic("secure"), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n = 64
	want := make([][]byte, n)
	for i := range want {
		want[i] = make([]byte, 200<<10) // 12.5 MiB in all, in large batches
		rand.Read(want[i])
		p.Produce(ctx, &kgo.Record{Value: want[i]}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A group consumer: FindCoordinator must answer with the SSL
	// address too, or the client would dial PLAINTEXT with TLS.
	c := newClient(t, ssl, tlsOpt, kgo.ConsumeTopics("secure"), kgo.ConsumerGroup("secure-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(8<<20))
	got := 0
	for got < n {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(got) || !bytes.Equal(r.Value, want[got]) {
				t.Fatalf("record %d at offset %d differs", got, r.Offset)
			}
			got++
		})
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	// The same records over PLAINTEXT (sendfile) for comparison: the
	// listeners share one log.
	c2 := newClient(t, plain, kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := c2.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if r := fs.Records(); len(r) == 0 || !bytes.Equal(r[0].Value, want[0]) {
		t.Fatal("PLAINTEXT consumer read different bytes")
	}
}

// logRecorder keeps the attributes of every record logged, at every level.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) find(msg string) []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range l.recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestMutualTLS: with ssl.client.auth=required a client without a
// certificate, or with an expired one, is refused; one with a valid
// certificate is served as the principal its subject maps to
// (ssl.principal.mapping.rules). A replaced key store is used by the next
// connection.
func TestMutualTLS(t *testing.T) {
	skipInQuorumMode(t, "starts its own broker with a logger")
	f := newTLSFixture(t)
	logs := &logRecorder{}
	b, err := strata.Start(strata.Options{Dir: t.TempDir(), Logger: slog.New(logs), Properties: map[string]string{
		"listeners":                               "SSL://127.0.0.1:0",
		"ssl.keystore.location":                   f.keyStore,
		"ssl.truststore.location":                 f.trust,
		"ssl.client.auth":                         "required",
		"ssl.principal.mapping.rules":             `RULE:^CN=([^,]*),OU=eng,.*$/$1/L,DEFAULT`,
		"listener.name.ssl.ssl.enabled.protocols": "TLSv1.3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	addr := b.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := func(cfg *tls.Config) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(cfg), kgo.RetryTimeout(time.Second), kgo.RequestRetries(0))
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.Ping(ctx)
	}
	if err := ping(f.clientTLS(t, nil)); err == nil {
		t.Error("a client without a certificate was served")
	}
	expired := f.ca.Issue(t, "late", tlstest.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err := ping(f.clientTLS(t, expired)); err == nil {
		t.Error("a client with an expired certificate was served")
	}
	// In TLS 1.3 the client's side of the handshake ends before the
	// server has checked its certificate: the server's log line may
	// come after the client gave up.
	logDeadline := time.Now().Add(5 * time.Second)
	for len(logs.find("closing connection: TLS handshake failed")) < 2 && time.Now().Before(logDeadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(logs.find("closing connection: TLS handshake failed")); n < 2 {
		t.Errorf("%d handshake failures logged, want 2 or more", n)
	}
	alice := f.ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "Alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}}})
	bob := f.ca.Issue(t, "", tlstest.Options{Subject: &pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"ops"}, Organization: []string{"acme"}}})
	for _, l := range []*tlstest.Leaf{alice, bob} {
		if err := ping(f.clientTLS(t, l)); err != nil {
			t.Fatal(err)
		}
	}
	var principals []string
	for _, r := range logs.find("TLS handshake done") {
		principals = append(principals, r["principal"])
		if r["version"] != "TLS 1.3" {
			t.Errorf("negotiated %s with ssl.enabled.protocols=TLSv1.3", r["version"])
		}
	}
	if strings.Join(principals, " ") != "User:alice User:CN=bob,OU=ops,O=acme" {
		t.Errorf("principals %q", principals)
	}

	// Reload: a new broker certificate (serial 777) in the same file.
	os.WriteFile(f.keyStore, f.ca.Issue(t, "broker", tlstest.Options{Serial: 777}).KeyStore(), 0o600)
	later := time.Now().Add(time.Minute)
	os.Chtimes(f.keyStore, later, later)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cfg := f.clientTLS(t, alice)
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
		conn.Close()
		if serial == 777 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced key store was not used: serial %d", serial)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterSSLInterBroker: three nodes whose only client listener, and
// so the inter-broker one, is SSL with mutual TLS: followers replicate an
// RF 3 topic over it, and acks=all (min.insync.replicas=3) needs them all.
func TestClusterSSLInterBroker(t *testing.T) {
	f := newTLSFixture(t)
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), Listener: "SSL", Properties: map[string]string{
		"ssl.keystore.location":            f.keyStore,
		"ssl.truststore.location":          f.trust,
		"ssl.client.auth":                  "required",
		"offsets.topic.replication.factor": "1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := f.ca.Issue(t, "client", tlstest.Options{})
	tlsOpt := kgo.DialTLSConfig(f.clientTLS(t, client))
	addr := c.Node(1).Addr()
	adm := kadm.NewClient(newClient(t, addr, tlsOpt))
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "rf3"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	brokers := listenerMetadata(t, addr, f.clientTLS(t, client))
	if len(brokers) != 3 {
		t.Fatalf("Metadata lists %v", brokers)
	}
	p := newClient(t, addr, tlsOpt, kgo.DefaultProduceTopic("rf3"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 300
	for i := range n {
		p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Every replica has every record: each node's end offsets, read
	// from the leaders, add up to n, and the ISR is whole.
	md, err := adm.Metadata(ctx, "rf3")
	if err != nil {
		t.Fatal(err)
	}
	for _, pd := range md.Topics["rf3"].Partitions {
		if len(pd.ISR) != 3 {
			t.Errorf("partition %d ISR %v", pd.Partition, pd.ISR)
		}
	}
	cons := newClient(t, addr, tlsOpt, kgo.ConsumeTopics("rf3"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
}

// TestListenerStartErrors: a broker does not start on a TLS listener it
// cannot serve.
func TestListenerStartErrors(t *testing.T) {
	f := newTLSFixture(t)
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{"listeners": "SSL://127.0.0.1:0"}, "no key store"},
		{map[string]string{"listeners": "SSL://127.0.0.1:0", "ssl.keystore.location": f.keyStore, "ssl.client.auth": "required"}, "trust store"},
		{map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "listener.name.ssl.ssl.keystore.location": f.keyStore + ".missing"}, "no such file"},
	} {
		b, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: tc.props})
		if err == nil {
			b.Close()
			t.Errorf("%v: started", tc.props)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.props, err, tc.want)
		}
	}
}

// TestClusterSeveralListeners: three nodes, each with a PLAINTEXT listener
// for clients and an INTERNAL one over mutual TLS that the brokers
// replicate on (inter.broker.listener.name). Metadata on each listener
// lists every node's address on that listener, and an RF 3 topic with
// min.insync.replicas=3 takes acks=all writes only if replication works
// over INTERNAL.
func TestClusterSeveralListeners(t *testing.T) {
	f := newTLSFixture(t)
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), ExtraListeners: []string{"INTERNAL"}, Properties: map[string]string{
		"listener.security.protocol.map":                 "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":                     "INTERNAL",
		"listener.name.internal.ssl.keystore.location":   f.keyStore,
		"listener.name.internal.ssl.truststore.location": f.trust,
		"listener.name.internal.ssl.client.auth":         "required",
		"offsets.topic.replication.factor":               "1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var plain, internal []string
	for _, id := range []int32{1, 2, 3} {
		plain = append(plain, c.Node(id).Addr())
		internal = append(internal, c.Node(id).ListenerAddr("INTERNAL"))
	}
	client := f.ca.Issue(t, "client", tlstest.Options{})
	for i := range plain {
		if got := listenerMetadata(t, plain[i], nil); strings.Join(got, ",") != strings.Join(plain, ",") {
			t.Errorf("Metadata on node %d's PLAINTEXT: %v, want %v", i+1, got, plain)
		}
		if got := listenerMetadata(t, internal[i], f.clientTLS(t, client)); strings.Join(got, ",") != strings.Join(internal, ",") {
			t.Errorf("Metadata on node %d's INTERNAL: %v, want %v", i+1, got, internal)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, plain[0]))
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "rf3"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := newClient(t, plain[0], kgo.DefaultProduceTopic("rf3"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 100 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

// TestSASLSSL: a SASL_SSL listener runs SASL (PLAIN) inside TLS: a client
// with the password produces and consumes over it, one with a wrong
// password is refused, and Metadata on it gives its own address.
func TestSASLSSL(t *testing.T) {
	f := newTLSFixture(t)
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners":             "PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
		"ssl.keystore.location": f.keyStore,
		"listener.name.sasl_ssl.plain.sasl.jaas.config":  `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-pw";`,
		"listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
	})
	addr := b.ListenerAddr("SASL_SSL")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := func(pass string) []kgo.Opt {
		return []kgo.Opt{kgo.DialTLSConfig(f.clientTLS(t, nil)), kgo.SASL(plain.Auth{User: "alice", Pass: pass}.AsMechanism())}
	}
	bad := newClient(t, addr, append(opts("wrong"), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))...)
	if err := bad.Ping(ctx); err == nil {
		t.Error("a wrong password was accepted")
	}
	cl := newClient(t, addr, append(opts("alice-pw"), kgo.DefaultProduceTopic("sasl-ssl"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("sasl-ssl"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != addr {
		t.Errorf("Metadata on SASL_SSL: %+v", md.Brokers)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 10 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += len(fs.Records())
	}
}

// TestTLSVersionsAndSuites: ssl.enabled.protocols and ssl.cipher.suites
// bound what a listener negotiates.
func TestTLSVersionsAndSuites(t *testing.T) {
	f := newTLSFixture(t)
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners":             "SSL://127.0.0.1:0",
		"ssl.keystore.location": f.keyStore,
		"ssl.enabled.protocols": "TLSv1.2",
		"ssl.cipher.suites":     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	})
	c, err := tls.Dial("tcp", b.Addr(), f.clientTLS(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	c.Close()
	if cs.Version != tls.VersionTLS12 || cs.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("negotiated %s %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
	}
	only13 := f.clientTLS(t, nil)
	only13.MinVersion = tls.VersionTLS13
	if c, err := tls.Dial("tcp", b.Addr(), only13); err == nil {
		c.Close()
		t.Error("a TLS 1.3-only client was served by a TLSv1.2 listener")
	}
	otherSuite := f.clientTLS(t, nil)
	otherSuite.MaxVersion, otherSuite.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}
	if c, err := tls.Dial("tcp", b.Addr(), otherSuite); err == nil {
		c.Close()
		t.Error("a cipher suite outside ssl.cipher.suites was negotiated")
	}
	// And a client over it works end to end.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := newClient(t, b.Addr(), kgo.DialTLSConfig(f.clientTLS(t, nil))).Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
