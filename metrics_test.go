package strata_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// scrape fetches /metrics and returns each sample line's value by its
// name and labels as printed (`name{a="b"}`).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMoveWithTraffic produces and consumes known amounts and checks
// that the counters moved by exactly those amounts.
func TestMetricsMoveWithTraffic(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), groupProps())
	if b.HTTPAddr() == "" {
		t.Fatal("no HTTP endpoint")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + b.HTTPAddr() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	createPartitioned(t, b.Addr(), "m", 2)
	before := scrape(t, b.HTTPAddr())

	const n = 100
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	var batchBytes int
	for i := range n {
		r := &kgo.Record{Topic: "m", Partition: int32(i % 2), Value: fmt.Appendf(nil, "value-%03d", i)}
		if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// What the batches occupy on disk is what was appended.
	after := scrape(t, b.HTTPAddr())
	for p := range 2 {
		batchBytes += int(after[fmt.Sprintf(`strata_partition_log_size_bytes{partition="%d",topic="m"}`, p)])
		if got := after[fmt.Sprintf(`strata_partition_log_end_offset{partition="%d",topic="m"}`, p)]; got != n/2 {
			t.Fatalf("partition %d log end offset %v, want %d", p, got, n/2)
		}
	}
	if got := after[`strata_topic_records_in_total{topic="m"}`] - before[`strata_topic_records_in_total{topic="m"}`]; got != n {
		t.Fatalf("records in moved by %v, want %d", got, n)
	}
	if got := after[`strata_topic_bytes_in_total{topic="m"}`]; int(got) != batchBytes {
		t.Fatalf("bytes in %v, want the %d bytes in the segment files", got, batchBytes)
	}
	if got := after[`strata_requests_total{api="Produce"}`] - before[`strata_requests_total{api="Produce"}`]; got < n {
		t.Fatalf("Produce requests moved by %v, want at least %d", got, n)
	}

	// A consumer in a group reads everything: bytes out is every batch
	// byte once, and the group's lag goes to zero after its commit.
	l := newLedger()
	m := startMember(t, b.Addr(), "mg", "m", "c", l)
	waitFor(t, 20*time.Second, "consumed", func() bool { return l.total() >= n })
	if err := m.client.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := scrape(t, b.HTTPAddr())
	if got := final[`strata_topic_bytes_out_total{topic="m"}`]; int(got) != batchBytes {
		t.Fatalf("bytes out %v, want %d", got, batchBytes)
	}
	for p := range 2 {
		key := fmt.Sprintf(`strata_group_lag{group="mg",partition="%d",topic="m"}`, p)
		if v, ok := final[key]; !ok || v != 0 {
			t.Fatalf("%s = %v (present %v), want 0", key, v, ok)
		}
	}
	if final["strata_connections_active"] < 1 || final["strata_connections_total"] < 2 {
		t.Fatalf("connections: active %v total %v", final["strata_connections_active"], final["strata_connections_total"])
	}

	// Errors are counted by API and code.
	pr7 := rawProducePartition(t, cl, "m", 7, recordtest.Values(t, 1, "x"))
	if pr7.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to partition 7: %v", kerr.ErrorForCode(pr7.ErrorCode))
	}
	if got := scrape(t, b.HTTPAddr())[`strata_errors_total{api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"}`]; got != 1 {
		t.Fatalf("Produce UNKNOWN_TOPIC_OR_PARTITION errors %v, want 1", got)
	}

	// A topic that fsyncs every append feeds the fsync histogram.
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, map[string]*string{"flush.messages": kadm.StringPtr("1")}, "synced"); err != nil {
		t.Fatal(err)
	}
	syncsBefore := scrape(t, b.HTTPAddr())["strata_log_fsync_duration_seconds_count"]
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "synced", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, b.HTTPAddr())["strata_log_fsync_duration_seconds_count"]; got <= syncsBefore {
		t.Fatalf("fsync count %v did not move past %v after an fsync-per-append produce", got, syncsBefore)
	}
}

// TestPprofOnlyWhenEnabled: the profiler is served on the admin listener
// with http.pprof.enable=true, and not by default.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	for _, enabled := range []bool{false, true} {
		props := map[string]string{}
		if enabled {
			props["http.pprof.enable"] = "true"
		}
		b := startBroker(t, t.TempDir(), props)
		resp, err := http.Get("http://" + b.HTTPAddr() + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[enabled]; resp.StatusCode != want {
			t.Fatalf("http.pprof.enable=%v: /debug/pprof/cmdline answered %d, want %d", enabled, resp.StatusCode, want)
		}
	}
}

// TestConnectionLimitsRefuseAndCount: a broker with max.connections.per.ip
// closes the connection past it at accept and counts it by reason; the
// request memory gauges are exported.
func TestConnectionLimitsRefuseAndCount(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), map[string]string{
		"max.connections.per.ip":   "2",
		"queued.max.request.bytes": "1048576",
	})
	m := scrape(t, b.HTTPAddr())
	if got := m["strata_request_memory_limit_bytes"]; got != 1<<20 {
		t.Errorf("strata_request_memory_limit_bytes = %v, want 1048576", got)
	}
	if _, ok := m["strata_request_memory_used_bytes"]; !ok {
		t.Error("no strata_request_memory_used_bytes")
	}
	const perIP = `strata_connections_rejected_total{reason="max_connections_per_ip"}`
	for _, name := range []string{perIP, `strata_connections_rejected_total{reason="max_connections"}`} {
		if v, ok := m[name]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 before any refusal", name, v, ok)
		}
	}
	for range 2 {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, 20*time.Second, "two connections open", func() bool {
		return scrape(t, b.HTTPAddr())["strata_connections_active"] == 2
	})
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection: read %d bytes, %v; want it closed (EOF)", n, err)
	}
	if got := scrape(t, b.HTTPAddr())[perIP]; got != 1 {
		t.Errorf("%s = %v, want 1", perIP, got)
	}
}

// TestMetadataMetricsSingleNode: a single node is registered unfenced,
// with an epoch, and leads every partition of its topics.
func TestMetadataMetricsSingleNode(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), nil)
	before := scrape(t, b.HTTPAddr())
	createPartitioned(t, b.Addr(), "led", 3)
	after := scrape(t, b.HTTPAddr())
	for name, want := range map[string]float64{
		"strata_broker_fenced":                        0,
		`strata_brokers{state="unfenced"}`:            1,
		`strata_brokers{state="fenced"}`:              0,
		`strata_brokers{state="controlled_shutdown"}`: 0,
		"strata_partitions_leaderless":                0,
		"strata_partitions_led":                       before["strata_partitions_led"] + 3,
		"strata_partitions_reassigning":               0,
	} {
		if got, ok := after[name]; !ok || got != want {
			t.Fatalf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if got, ok := after["strata_broker_epoch"]; !ok || got < 0 {
		t.Fatalf("strata_broker_epoch = %v (present %v)", got, ok)
	}
}

// TestClusterMetadataMetrics: in a three-node cluster (two keep a
// quorum), killing a node that is not the controller fences it and leaves its partition without
// a leader, as the controller's gauges show; ElectLeaders finds no replica
// to elect; its restart puts both back.
func TestClusterMetadataMetrics(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Nodes: 3, Dir: t.TempDir(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "200", "broker.session.timeout.ms": "1500",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctrlID, err := c.WaitController(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	otherID := ctrlID%3 + 1
	ctrl, other := c.Node(ctrlID), c.Node(otherID)

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "fenced", -1, -1
	ct.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{otherID}}}
	create.Topics = append(create.Topics, ct)
	create.Version, create.TimeoutMillis = 7, 30000
	var created kmsg.CreateTopicsResponse
	rawRoundTrip(t, ctrl.Addr(), create, &created)
	if len(created.Topics) != 1 || created.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", created)
	}
	waitFor(t, 20*time.Second, "both nodes unfenced, every partition led", func() bool {
		s := scrape(t, ctrl.HTTPAddr())
		return s[`strata_brokers{state="unfenced"}`] == 3 && s[`strata_brokers{state="fenced"}`] == 0 && s["strata_partitions_leaderless"] == 0
	})
	var s map[string]float64
	waitFor(t, 20*time.Second, "the other node leading its partition", func() bool {
		s = scrape(t, other.HTTPAddr())
		return s["strata_partitions_led"] >= 1
	})
	if s["strata_broker_fenced"] != 0 || s["strata_broker_epoch"] < 0 {
		t.Fatalf("node %d: fenced %v epoch %v", otherID, s["strata_broker_fenced"], s["strata_broker_epoch"])
	}
	epoch := s["strata_broker_epoch"]

	other.Kill()
	waitFor(t, 30*time.Second, "the killed node fenced and its partition leaderless", func() bool {
		s := scrape(t, ctrl.HTTPAddr())
		return s[`strata_brokers{state="unfenced"}`] == 2 && s[`strata_brokers{state="fenced"}`] == 1 && s["strata_partitions_leaderless"] == 1
	})
	adm := kadm.NewClient(newClient(t, ctrl.Addr()))
	for how, want := range map[kadm.ElectLeadersHow]error{
		kadm.ElectPreferredReplica: kerr.PreferredLeaderNotAvailable,
		kadm.ElectLiveReplica:      kerr.EligibleLeadersNotAvailable,
	} {
		rs, err := adm.ElectLeaders(ctxT(t), how, kadm.TopicsSet{"fenced": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if r := rs["fenced"][0]; r.Err != want {
			t.Fatalf("%v fenced/0 with its only replica fenced: %+v", how, r)
		}
	}

	if err := other.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the restarted node unfenced and leading again", func() bool {
		s := scrape(t, ctrl.HTTPAddr())
		return s[`strata_brokers{state="unfenced"}`] == 3 && s["strata_partitions_leaderless"] == 0
	})
	waitFor(t, 20*time.Second, "the restarted node leading its partition", func() bool {
		s = scrape(t, other.HTTPAddr())
		return s["strata_partitions_led"] >= 1
	})
	if s["strata_broker_fenced"] != 0 || s["strata_broker_epoch"] <= epoch {
		t.Fatalf("node %d after its restart: fenced %v epoch %v (was %v) led %v", otherID, s["strata_broker_fenced"], s["strata_broker_epoch"], epoch, s["strata_partitions_led"])
	}
}

// TestAuthenticationMetrics: each SASL exchange's end is counted by
// listener, mechanism and result.
func TestAuthenticationMetrics(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{
		"listeners": "SASL_PLAINTEXT://127.0.0.1:0",
		// The broker's own login (username, password) too: with
		// STRATA_TEST_QUORUM the node is a cluster broker, and this is
		// its inter-broker listener.
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret" user_alice="alice-secret";`,
		"connection.failed.authentication.delay.ms":           "0",
	})
	for _, pass := range []string{"alice-secret", "wrong"} {
		cl := newClient(t, b.Addr(), kgo.SASL(plain.Auth{User: "alice", Pass: pass}.AsMechanism()))
		err := cl.Ping(ctxT(t))
		if (err == nil) != (pass == "alice-secret") {
			t.Fatalf("ping with %q: %v", pass, err)
		}
		cl.Close()
	}
	m := scrape(t, b.HTTPAddr())
	for _, result := range []string{"success", "failure"} {
		key := `strata_authentications_total{listener="SASL_PLAINTEXT",mechanism="PLAIN",result="` + result + `"}`
		if m[key] != 1 {
			t.Errorf("%s = %v, want 1", key, m[key])
		}
	}
}
