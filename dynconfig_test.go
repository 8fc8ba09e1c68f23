package strata_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// retentionOf returns the retention.ms partition p of topic runs with.
func retentionOf(t *testing.T, b *strata.Broker, topic string, p int32) int64 {
	t.Helper()
	cfg, ok := b.PartitionLogConfig(topic, p)
	if !ok {
		t.Fatalf("no partition %s-%d", topic, p)
	}
	return cfg.RetentionMs
}

// brokerConfig describes one property of broker 1.
func brokerConfig(t *testing.T, adm *kadm.Client, name string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("1", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe broker 1: %v %v", err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("broker 1 has no %s", name)
	return kadm.Config{}
}

func alterOK(t *testing.T, rs kadm.AlterConfigsResponses, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("alter %s: %v (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
}

// incrementalAlter sends one IncrementalAlterConfigs change to broker 1, returning the resource's error code and message.
func incrementalAlter(t *testing.T, cl *kgo.Client, typ kmsg.ConfigResourceType, name string, op kmsg.IncrementalAlterConfigOp, key, value string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: op, Value: kmsg.StringPtr(value)}}
	req.Resources = append(req.Resources, rr)
	// Straight to broker 1: kgo would route a broker resource to the
	// broker it names.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctxT(t), cl); err != nil {
		t.Fatal(err)
	}
	kresp, err := cl.Broker(1).Request(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	r := kresp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	msg := ""
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	return r.ErrorCode, msg
}

// TestDynamicBrokerConfigs: log.retention.ms set cluster-wide reaches an
// existing topic's partitions (not those of a topic that overrides it), a
// node's own value wins over it, DELETE falls back, names and values are
// validated, and the configs survive a restart.
func TestDynamicBrokerConfigs(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, map[string]string{"log.retention.hours": "100"})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "dyn"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("1234")}, "own"); err != nil {
		t.Fatal(err)
	}
	static := int64(100 * 3600 * 1000)
	if got := retentionOf(t, b, "dyn", 1); got != static {
		t.Fatalf("retention %d before any change, want %d", got, static)
	}

	// Cluster-wide (the resource named "").
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("3600000")}})
	alterOK(t, rs, err)
	for p := int32(0); p < 2; p++ {
		if got := retentionOf(t, b, "dyn", p); got != 3600000 {
			t.Fatalf("dyn-%d retention %d after the cluster-wide change", p, got)
		}
	}
	if got := retentionOf(t, b, "own", 0); got != 1234 {
		t.Fatalf("a topic override lost to the broker default: %d", got)
	}
	c := brokerConfig(t, adm, "log.retention.ms")
	if c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("log.retention.ms after the cluster-wide change: %+v", c)
	}
	// Synonyms in precedence order: the dynamic value, then the static
	// log.retention.hours, then its default.
	var syns []string
	for _, s := range c.Synonyms {
		v := ""
		if s.Value != nil {
			v = *s.Value
		}
		syns = append(syns, s.Key+"="+v+"/"+s.Source.String())
	}
	if want := "log.retention.ms=3600000/DYNAMIC_DEFAULT_BROKER_CONFIG log.retention.hours=100/STATIC_BROKER_CONFIG log.retention.hours=168/DEFAULT_CONFIG"; strings.Join(syns, " ") != want {
		t.Fatalf("synonyms %v, want %s", syns, want)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := rcs.On("", nil); err != nil || len(rc.Configs) != 1 || rc.Configs[0].Key != "log.retention.ms" || rc.Configs[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("cluster-wide configs: %+v %v", rc, err)
	}
	// A topic created now takes the dynamic default.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "later"); err != nil {
		t.Fatal(err)
	}
	if got := retentionOf(t, b, "later", 0); got != 3600000 {
		t.Fatalf("new topic retention %d", got)
	}
	tcs, err := adm.DescribeTopicConfigs(ctx, "dyn")
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := tcs.On("dyn", nil)
	if !hasConfig(tc.Configs, "retention.ms", "3600000") {
		t.Fatalf("topic describe: %v", tc.Configs)
	}
	for _, c := range tc.Configs {
		// retention.ms inherits the dynamic log.retention.ms; the rest
		// the broker's defaults.
		want := kmsg.ConfigSourceDefaultConfig
		if c.Key == "retention.ms" {
			want = kmsg.ConfigSourceDynamicDefaultBrokerConfig
		}
		if c.Source != want {
			t.Errorf("topic %s: source %v, want %v", c.Key, c.Source, want)
		}
	}

	// This node's own value wins.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("7200000")}}, 1)
	alterOK(t, rs, err)
	if got := retentionOf(t, b, "dyn", 0); got != 7200000 {
		t.Fatalf("retention %d after the per-broker change", got)
	}
	if c := brokerConfig(t, adm, "log.retention.ms"); c.MaybeValue() != "7200000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("log.retention.ms after the per-broker change: %+v", c)
	}
	// Another node's value is stored and does not apply here. (kadm
	// sends a node's change to that node; this one takes it too.)
	raw := newClient(t, b.Addr())
	if code, msg := incrementalAlter(t, raw, kmsg.ConfigResourceTypeBroker, "2", kmsg.IncrementalAlterConfigOpSet, "log.retention.ms", "60000"); code != 0 {
		t.Fatalf("set node 2's config: %v %s", kerr.ErrorForCode(code), msg)
	}
	if got := retentionOf(t, b, "dyn", 0); got != 7200000 {
		t.Fatalf("another node's config applied here: %d", got)
	}

	// DELETE falls back: to the cluster-wide value, then to the file.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.retention.ms"}}, 1)
	alterOK(t, rs, err)
	if got := retentionOf(t, b, "dyn", 0); got != 3600000 {
		t.Fatalf("retention %d after deleting the per-broker value", got)
	}

	// Refused: unknown and static names, bad values, APPEND to a
	// non-list, a non-numeric broker name. Nothing changes.
	for _, tc := range []struct {
		ac   kadm.AlterConfig
		want string
	}{
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: kadm.StringPtr("1")}, "no.such.config"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "num.partitions", Value: kadm.StringPtr("4")}, "Cannot update these configs dynamically: Set(num.partitions)"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("soon")}, "log.retention.ms"},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "log.retention.ms", Value: kadm.StringPtr("1")}, "log.retention.ms"},
	} {
		rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{tc.ac})
		if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, tc.want) {
			t.Fatalf("%+v: %v %+v", tc.ac, err, rs)
		}
	}
	rs, err = adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("5")}})
	alterOK(t, rs, err)
	if got := retentionOf(t, b, "dyn", 0); got != 3600000 {
		t.Fatalf("validate-only changed retention to %d", got)
	}
	if code, _ := incrementalAlter(t, raw, kmsg.ConfigResourceTypeBroker, "one", kmsg.IncrementalAlterConfigOpSet, "log.retention.ms", "1"); code != kerr.InvalidRequest.Code {
		t.Fatalf("non-numeric broker name: %v", kerr.ErrorForCode(code))
	}

	// message.max.bytes applies to produce at once.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.max.bytes", Value: kadm.StringPtr("1000")}})
	alterOK(t, rs, err)
	cl := newClient(t, b.Addr(), kgo.RecordRetries(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "dyn", Value: make([]byte, 2000)}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce past the dynamic message.max.bytes: %v", err)
	}

	// Legacy AlterConfigs replaces the resource's whole set: only
	// message.max.bytes is left, cluster-wide; retention is the file's.
	rs, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "message.max.bytes", Value: kadm.StringPtr("2000000")}})
	alterOK(t, rs, err)
	if got := retentionOf(t, b, "dyn", 0); got != static {
		t.Fatalf("retention %d after the replacing AlterConfigs", got)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "dyn", Value: make([]byte, 2000)}).FirstErr(); err != nil {
		t.Fatalf("produce after raising message.max.bytes: %v", err)
	}

	// Dynamic configs are metadata: they survive a restart.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("5400000")}}, 1)
	alterOK(t, rs, err)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, dir, map[string]string{"log.retention.hours": "100"})
	if got := retentionOf(t, b, "dyn", 1); got != 5400000 {
		t.Fatalf("retention %d after a restart", got)
	}
	adm = kadm.NewClient(newClient(t, b.Addr()))
	if c := brokerConfig(t, adm, "message.max.bytes"); c.MaybeValue() != "2000000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("message.max.bytes after a restart: %+v", c)
	}
}

// TestGroupConfigs: a KIP-848 group's consumer.heartbeat.interval.ms and
// consumer.session.timeout.ms (GROUP resources) are validated, described
// and used by the coordinator for the group's members.
func TestGroupConfigs(t *testing.T) {
	props := consumerGroupProps()
	props["group.consumer.min.session.timeout.ms"] = "1000"
	props["group.consumer.min.heartbeat.interval.ms"] = "100"
	b := startBroker(t, t.TempDir(), props)
	createPartitioned(t, b.Addr(), "gc", 2)
	cl := newClient(t, b.Addr())
	ctx := ctxT(t)

	alter := func(group string, op kmsg.IncrementalAlterConfigOp, name, value string) (int16, string) {
		t.Helper()
		return incrementalAlter(t, cl, kmsg.ConfigResourceTypeGroupConfig, group, op, name, value)
	}
	describe := func(group string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe group %s: %+v %v", group, resp, err)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = c
		}
		return out
	}

	for _, tc := range []struct {
		op          kmsg.IncrementalAlterConfigOp
		name, value string
		code        int16
	}{
		{kmsg.IncrementalAlterConfigOpSet, "consumer.session.timeout.ms", "500", kerr.InvalidConfig.Code},      // below the minimum
		{kmsg.IncrementalAlterConfigOpSet, "consumer.session.timeout.ms", "90000", kerr.InvalidConfig.Code},    // above the maximum
		{kmsg.IncrementalAlterConfigOpSet, "consumer.heartbeat.interval.ms", "7000", kerr.InvalidConfig.Code},  // not below the session timeout
		{kmsg.IncrementalAlterConfigOpSet, "consumer.heartbeat.interval.ms", "x", kerr.InvalidConfig.Code},     // not a number
		{kmsg.IncrementalAlterConfigOpSet, "session.timeout.ms", "10000", kerr.InvalidConfig.Code},             // unknown
		{kmsg.IncrementalAlterConfigOpAppend, "consumer.session.timeout.ms", "10000", kerr.InvalidConfig.Code}, // not a list
	} {
		if code, msg := alter("g", tc.op, tc.name, tc.value); code != tc.code || !strings.Contains(msg, tc.name) {
			t.Errorf("%v %s=%s: %v %q", tc.op, tc.name, tc.value, kerr.ErrorForCode(code), msg)
		}
	}
	if code, _ := alter("", kmsg.IncrementalAlterConfigOpSet, "consumer.session.timeout.ms", "2000"); code != kerr.InvalidRequest.Code {
		t.Fatalf("empty group name: %v", kerr.ErrorForCode(code))
	}
	if c := describe("g")["consumer.session.timeout.ms"]; c.Value == nil || *c.Value != "6000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("unset session timeout: %+v", c)
	}

	if code, msg := alter("g", kmsg.IncrementalAlterConfigOpSet, "consumer.heartbeat.interval.ms", "400"); code != 0 {
		t.Fatalf("set heartbeat: %v %s", kerr.ErrorForCode(code), msg)
	}
	if code, msg := alter("g", kmsg.IncrementalAlterConfigOpSet, "consumer.session.timeout.ms", "1500"); code != 0 {
		t.Fatalf("set session timeout: %v %s", kerr.ErrorForCode(code), msg)
	}
	cs := describe("g")
	if c := cs["consumer.session.timeout.ms"]; c.Value == nil || *c.Value != "1500" || c.Source != kmsg.ConfigSourceGroupConfig {
		t.Fatalf("session timeout: %+v", c)
	}
	if c := cs["consumer.heartbeat.interval.ms"]; c.Value == nil || *c.Value != "400" || c.Source != kmsg.ConfigSourceGroupConfig {
		t.Fatalf("heartbeat interval: %+v", c)
	}
	if c := describe("other")["consumer.heartbeat.interval.ms"]; c.Value == nil || *c.Value != "250" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("another group's heartbeat interval: %+v", c)
	}

	// A member of g is told the group's interval, and its session ends
	// after the group's 1.5 s, not the broker's 6 s.
	join := func(group string) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version = 1
		req.Group, req.MemberID, req.MemberEpoch = group, "m-"+group, 0
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"gc"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("join %s: %+v %v", group, resp, err)
		}
		return resp
	}
	if r := join("g"); r.HeartbeatIntervalMillis != 400 {
		t.Fatalf("heartbeat interval %d, want the group's 400", r.HeartbeatIntervalMillis)
	}
	if r := join("other"); r.HeartbeatIntervalMillis != 250 {
		t.Fatalf("heartbeat interval %d, want the broker's 250", r.HeartbeatIntervalMillis)
	}
	joined := time.Now()
	members := func(group string) int {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 {
			t.Fatalf("describe %s: %+v %v", group, resp, err)
		}
		return len(resp.Groups[0].Members)
	}
	waitFor(t, 10*time.Second, "g's member to expire", func() bool { return members("g") == 0 })
	if d := time.Since(joined); d > 5*time.Second { // the broker's is 6 s
		t.Fatalf("member expired after %v, not the group's 1.5 s", d)
	}
	if members("other") != 1 {
		t.Fatal("the other group's member expired with the group's session timeout")
	}
	// DELETE returns to the broker's value.
	if code, _ := alter("g", kmsg.IncrementalAlterConfigOpDelete, "consumer.heartbeat.interval.ms", ""); code != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(code))
	}
	if r := join("g"); r.HeartbeatIntervalMillis != 250 {
		t.Fatalf("heartbeat interval %d after DELETE, want the broker's 250", r.HeartbeatIntervalMillis)
	}
}

// TestDynamicConnectionLimits: max.connections.per.ip.overrides set
// cluster-wide refuses new connections at once; deleted, they open again.
// DescribeConfigs marks the dynamic properties writable.
func TestDynamicConnectionLimits(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	cl := newClient(t, b.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.connections.per.ip.overrides", Value: kadm.StringPtr("127.0.0.1:0")}})
	alterOK(t, rs, err)
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection past the dynamic limit: read %d bytes, %v; want it closed (EOF)", n, err)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "max.connections.per.ip.overrides"}})
	alterOK(t, rs, err)
	if err := newClient(t, b.Addr()).Ping(ctx); err != nil {
		t.Fatalf("new connection after the limit was removed: %v", err)
	}
	rs, _ = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.connections", Value: kadm.StringPtr("0")}})
	if len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("max.connections=0: %+v", rs)
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	rr.ConfigNames = []string{"max.connections", "log.retention.ms", "num.partitions"}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 3 {
		t.Fatalf("describe: %+v %v", resp, err)
	}
	for _, c := range resp.Resources[0].Configs {
		if want := c.Name == "num.partitions"; c.ReadOnly != want {
			t.Errorf("%s: read-only %v, want %v", c.Name, c.ReadOnly, want)
		}
		want := map[string]kmsg.ConfigType{"max.connections": kmsg.ConfigTypeInt, "log.retention.ms": kmsg.ConfigTypeLong, "num.partitions": kmsg.ConfigTypeInt}[c.Name]
		if c.ConfigType != want {
			t.Errorf("%s: type %v, want %v", c.Name, c.ConfigType, want)
		}
	}
}

// TestInertBrokerConfigs: Kafka's dynamic broker configs that mean nothing
// in strata (librdkafka's admin tests set them) are accepted, stored and
// described.
func TestInertBrokerConfigs(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := ctxT(t)
	// Legacy AlterConfigs, as librdkafka's do_test_AlterConfigs.
	rs, err := adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "sasl.kerberos.min.time.before.relogin", Value: kadm.StringPtr("58000")}}, 1)
	alterOK(t, rs, err)
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "background.threads", Value: kadm.StringPtr("9")}}, 1)
	alterOK(t, rs, err)
	if c := brokerConfig(t, adm, "sasl.kerberos.min.time.before.relogin"); c.MaybeValue() != "58000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("sasl.kerberos.min.time.before.relogin: %+v", c)
	}
	if c := brokerConfig(t, adm, "background.threads"); c.MaybeValue() != "9" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("background.threads: %+v", c)
	}
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "background.threads"}}, 1)
	alterOK(t, rs, err)
	rcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("1", nil)
	for _, c := range rc.Configs {
		if c.Key == "background.threads" {
			t.Fatalf("deleted config still described: %+v", c)
		}
	}
}

// TestDynamicConfigsQuorum: on a one-voter raft quorum, broker and group
// configs are raft entries that apply at once and come back from the raft
// state after a restart.
func TestDynamicConfigsQuorum(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctrl := ln.Addr().String()
	ln.Close()
	props := map[string]string{
		"listeners":                "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + ctrl,
		"controller.quorum.voters": "1@" + ctrl,
	}
	b := startBroker(t, dir, props)
	cl := newClient(t, b.Addr())
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: kadm.StringPtr("3600000")}})
	alterOK(t, rs, err)
	if got := retentionOf(t, b, "q", 0); got != 3600000 {
		t.Fatalf("retention %d after the change", got)
	}
	if code, msg := incrementalAlter(t, cl, kmsg.ConfigResourceTypeGroupConfig, "g", kmsg.IncrementalAlterConfigOpSet, "consumer.session.timeout.ms", "50000"); code != 0 {
		t.Fatalf("group config: %v %s", kerr.ErrorForCode(code), msg)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, dir, props)
	if got := retentionOf(t, b, "q", 0); got != 3600000 {
		t.Fatalf("retention %d after a restart", got)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "g"
	rr.ConfigNames = []string{"consumer.session.timeout.ms"}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, newClient(t, b.Addr()))
	if err != nil || len(resp.Resources[0].Configs) != 1 || *resp.Resources[0].Configs[0].Value != "50000" {
		t.Fatalf("group config after a restart: %+v %v", resp, err)
	}
}
