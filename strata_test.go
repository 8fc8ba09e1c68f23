package strata_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// startBroker starts an embedded broker in a temp dir, closed at cleanup.
func startBroker(t testing.TB, dir string, props map[string]string) *strata.Broker {
	t.Helper()
	b, err := startOn(t, dir, props)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestProduceConsumeSmoke(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	// 30 s: the Metadata request that creates the topic answers
	// LEADER_NOT_AVAILABLE, as Kafka's does, and franz-go may then wait its
	// metadata min age (5 s) before asking again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("smoke"), kgo.AllowAutoTopicCreation())
	const n = 1000
	for i := 0; i < n; i++ {
		p.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, b.Addr(), kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("v%d", got); string(r.Value) != want || r.Offset != int64(got) {
				t.Fatalf("record %d: %q at %d", got, r.Value, r.Offset)
			}
			got++
		})
	}
}

// rawRoundTrip sends req on a new connection at exactly its version (kgo
// would raise the version, and sets its own acks on Produce) and decodes
// the answer into resp.
func rawRoundTrip(t *testing.T, addr string, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, 7)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, data); err != nil {
		t.Fatal(err)
	}
	data = data[4:] // correlation id
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 { // ApiVersions answers with header v0
		if len(data) == 0 || data[0] != 0 {
			t.Fatal("rawRoundTrip: tagged header fields in the response")
		}
		data = data[1:]
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(data); err != nil {
		t.Fatal(err)
	}
}

// quorumControllers remembers the controller address given to each data
// dir, so that a restart on the same dir finds its raft peers' addresses
// unchanged.
var quorumControllers sync.Map // dir -> host:port

// quorumProps runs the single-node suite against a one-node cluster when
// STRATA_TEST_QUORUM=1: the broker's metadata goes through a one-voter
// raft quorum, with broker registration and heartbeats, instead of the
// local metadata log. Tests that set their own quorum are left alone.
func quorumProps(t testing.TB, dir string, props map[string]string) map[string]string {
	if os.Getenv("STRATA_TEST_QUORUM") != "1" || props["controller.quorum.voters"] != "" {
		return props
	}
	addr, ok := quorumControllers.Load(dir)
	if !ok {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ = quorumControllers.LoadOrStore(dir, ln.Addr().String())
		ln.Close()
	}
	out := maps.Clone(props)
	if out == nil {
		out = map[string]string{}
	}
	listeners := cmp.Or(out["listeners"], "PLAINTEXT://127.0.0.1:0")
	out["listeners"] = listeners + ",CONTROLLER://" + addr.(string)
	out["controller.quorum.voters"] = "1@" + addr.(string)
	return out
}

// startOn starts a broker on dir with props, through quorumProps. The
// controller port quorumProps picks was free when it looked, but another
// test's listener or client socket can take it before the broker binds
// it: a fresh dir then gets another port, and a restart, whose raft peers
// know the old one, waits for it to come free.
func startOn(t testing.TB, dir string, props map[string]string) (*strata.Broker, error) {
	_, restart := quorumControllers.Load(dir)
	for attempt := 0; ; attempt++ {
		b, err := strata.Start(strata.Options{Dir: dir, Properties: quorumProps(t, dir, props)})
		if err == nil || attempt == 20 || !isControllerBindRace(err) {
			return b, err
		}
		t.Logf("controller port taken, attempt %d: %v", attempt+1, err)
		if restart {
			time.Sleep(250 * time.Millisecond)
		} else {
			quorumControllers.Delete(dir)
		}
	}
}

func isControllerBindRace(err error) bool {
	return os.Getenv("STRATA_TEST_QUORUM") == "1" &&
		strings.Contains(err.Error(), "controller listener") &&
		errors.Is(err, syscall.EADDRINUSE)
}

// skipInQuorumMode skips a test of local mode's own metadata log under
// STRATA_TEST_QUORUM=1.
func skipInQuorumMode(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("STRATA_TEST_QUORUM") == "1" {
		t.Skip("local metadata log only: " + why)
	}
}

// restartOn starts a broker on dir listening on addr (a restart keeping
// its address), as startBroker does.
func restartOn(t testing.TB, dir, addr string, props map[string]string) (*strata.Broker, error) {
	props = maps.Clone(props)
	if props == nil {
		props = map[string]string{}
	}
	props["listeners"] = "PLAINTEXT://" + addr
	return startOn(t, dir, props)
}

// newTestCluster is strata.StartCluster for a test, skipped in the
// STRATA_TEST_QUORUM=1 pass: a cluster's nodes are on a quorum in both
// passes, so the second would only repeat the first.
func newTestCluster(t *testing.T, opts strata.ClusterOptions) (*strata.Cluster, error) {
	t.Helper()
	if os.Getenv("STRATA_TEST_QUORUM") == "1" {
		t.Skip("a cluster test: its nodes use the quorum in every pass")
	}
	return strata.StartCluster(opts)
}
