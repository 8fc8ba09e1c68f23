package strata_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// produceAll produces values to topic and fails the test on any error.
func produceAll(t *testing.T, c *kgo.Client, topic string, values ...string) {
	t.Helper()
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(v)})
	}
	if err := c.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN reads n records of topic from the start.
func consumeN(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	c := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s after %d records: %v", topic, len(out), err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records from %s, want %d", len(out), topic, n)
	}
	return out
}

func TestEveryCodecRoundTrip(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	for i, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		p := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(codec))
		topic := fmt.Sprintf("codec-%d", i)
		var values []string
		for i := 0; i < 200; i++ {
			values = append(values, fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i)))
		}
		produceAll(t, p, topic, values...)
		got := consumeN(t, b.Addr(), topic, len(values))
		for i, r := range got {
			if string(r.Value) != values[i] {
				t.Fatalf("codec %v: record %d = %q", codec, i, r.Value)
			}
		}
	}
}

func TestTopicsSurviveRestartWithData(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, map[string]string{"num.partitions": "3"})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctxT(t), 4, 1, map[string]*string{"retention.ms": kadm.StringPtr("123456")}, "kept"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	produceAll(t, p, "kept", "a", "b", "c", "d", "e", "f", "g", "h")
	td, _ := adm.ListTopics(ctxT(t), "kept")
	id := td["kept"].ID
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, dir, nil)
	adm2 := kadm.NewClient(newClient(t, b2.Addr()))
	td2, err := adm2.ListTopics(ctxT(t), "kept")
	if err != nil || len(td2["kept"].Partitions) != 4 || td2["kept"].ID != id {
		t.Fatalf("after restart: %+v %v (id before %v)", td2["kept"], err, id)
	}
	got := consumeN(t, b2.Addr(), "kept", 8)
	if len(got) != 8 {
		t.Fatalf("consumed %d", len(got))
	}
	cfgs, err := adm2.DescribeTopicConfigs(ctxT(t), "kept")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfgs.On("kept", nil); err != nil || !hasConfig(v.Configs, "retention.ms", "123456") {
		t.Fatalf("retention.ms override lost across restart: %v", err)
	}
}

func hasConfig(cs []kadm.Config, k, v string) bool {
	for _, c := range cs {
		if c.Key == k && c.Value != nil && *c.Value == v {
			return true
		}
	}
	return false
}

func TestCreateDeleteTopicsErrors(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"auto.create.topics.enable": "false"})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := ctxT(t)
	for _, tc := range []struct {
		name    string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
	}{
		{"ok", 2, 1, nil, nil},
		{"ok", 2, 1, nil, kerr.TopicAlreadyExists},
		{"bad name!", 1, 1, nil, kerr.InvalidTopicException},
		{"..", 1, 1, nil, kerr.InvalidTopicException},
		{"rf", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"zero", 0, 1, nil, kerr.InvalidPartitions},
		{"badcfg", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
		{"unknowncfg", 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig},
	} {
		resp, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.configs, tc.name)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("create %q: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Auto-creation off: producing to an unknown topic fails clearly.
	missing, _ := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte("x"), Timestamp: 1})
	if got := rawProduce(t, newClient(t, b.Addr()), "missing", missing); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to unknown topic with auto-create off: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	dr, err := adm.DeleteTopics(ctx, "ok", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if dr["ok"].Err != nil || !errors.Is(dr["never-was"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete: ok=%v never-was=%v", dr["ok"].Err, dr["never-was"].Err)
	}
	if td, _ := adm.ListTopics(ctx); len(td) != 0 {
		t.Fatalf("topics left after delete: %v", td.Names())
	}
}

// rawProduce sends one Produce v9 request with the given batch bytes.
func rawProduce(t *testing.T, c *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	return rawProducePartition(t, c, topic, 0, batch)
}

// rawProducePartition sends one batch to one partition with a raw Produce
// v9 request and returns that partition's answer.
func rawProducePartition(t *testing.T, c *kgo.Client, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestProduceBadInputPerPartition(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"message.max.bytes": "2000"})
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	adm.CreateTopic(ctxT(t), 1, 1, nil, "bad")
	good, _ := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte("ok"), Timestamp: 1})
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	magic1 := append([]byte(nil), good...)
	magic1[16] = 1
	big, _ := record.Build(record.BuildOptions{}, record.NewRecord{Value: make([]byte, 3000), Timestamp: 1})
	for _, tc := range []struct {
		name  string
		batch []byte
		want  *kerr.Error
	}{
		{"bad crc", corrupt, kerr.CorruptMessage},
		// Produce v9: Kafka's ProduceRequest.validateRecords refuses a
		// non-v2 batch in v3+ with INVALID_RECORD (TestProduceLegacyMagic).
		{"magic 1", magic1, kerr.InvalidRecord},
		{"too large", big, kerr.MessageTooLarge},
		{"truncated", good[:30], kerr.CorruptMessage},
	} {
		if got := rawProduce(t, c, "bad", tc.batch); got.ErrorCode != tc.want.Code {
			t.Errorf("%s: error %v, want %v", tc.name, kerr.ErrorForCode(got.ErrorCode), tc.want)
		}
	}
	if got := rawProduce(t, c, "bad", good); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("good batch after bad ones: %+v", got)
	}
}

func TestIdempotentDuplicateGetsOriginalOffset(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr())
	kadm.NewClient(c).CreateTopic(ctxT(t), 1, 1, nil, "idem")
	// Recent timestamps: a producer whose last batch is older than
	// producer.id.expiration.ms (1 day) is forgotten at the restart.
	ts := time.Now().UnixMilli()
	batch := func(seq int32, v string) []byte {
		bt, err := record.Build(record.BuildOptions{ProducerID: 7, ProducerEpoch: 0, BaseSequence: seq},
			record.NewRecord{Value: []byte(v), Timestamp: ts}, record.NewRecord{Value: []byte(v), Timestamp: ts})
		if err != nil {
			t.Fatal(err)
		}
		return bt
	}
	if r := rawProduce(t, c, "idem", batch(0, "a")); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first: %+v", r)
	}
	if r := rawProduce(t, c, "idem", batch(2, "b")); r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("second: %+v", r)
	}
	if r := rawProduce(t, c, "idem", batch(0, "a")); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retry of first: %+v, want original offset 0", r)
	}
	if r := rawProduce(t, c, "idem", batch(10, "gap")); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// After a restart, a retry still gets its original offsets.
	b.Close()
	b2 := startBroker(t, dir, nil)
	c2 := newClient(t, b2.Addr())
	if r := rawProduce(t, c2, "idem", batch(2, "b")); r.ErrorCode != 0 || r.BaseOffset != 2 {
		t.Fatalf("retry after restart: %+v, want original offset 2", r)
	}
	end, _ := kadm.NewClient(c2).ListEndOffsets(ctxT(t), "idem")
	if o, _ := end.Lookup("idem", 0); o.Offset != 4 {
		t.Fatalf("end offset %d, want 4 (no duplicate written)", o.Offset)
	}
}

func TestListOffsets(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	adm.CreateTopic(ctxT(t), 1, 1, nil, "lo")
	for i, ts := range []int64{1000, 3000, 2000, 4000} {
		bt, _ := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte{byte(i)}, Timestamp: ts})
		rawProduce(t, c, "lo", bt)
	}
	ctx := ctxT(t)
	start, _ := adm.ListStartOffsets(ctx, "lo")
	end, _ := adm.ListEndOffsets(ctx, "lo")
	maxTS, _ := adm.ListMaxTimestampOffsets(ctx, "lo")
	after, _ := adm.ListOffsetsAfterMilli(ctx, 2500, "lo")
	none, _ := adm.ListOffsetsAfterMilli(ctx, 5000, "lo")
	for name, tc := range map[string]struct {
		got  kadm.ListedOffsets
		want int64
	}{"start": {start, 0}, "end": {end, 4}, "max timestamp": {maxTS, 3}, "after 2500": {after, 1}, "after everything": {none, 4}} {
		o, _ := tc.got.Lookup("lo", 0)
		if o.Err != nil || o.Offset != tc.want {
			t.Errorf("%s: offset %d err %v, want %d", name, o.Offset, o.Err, tc.want)
		}
	}
}

func TestFetchLongPollWakesOnAppend(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	produceAll(t, c, "poll", "first")
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("poll"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(20*time.Second))
	ctx := ctxT(t)
	done := make(chan []*kgo.Record, 1)
	go func() {
		// Starting at the end, the first poll parks in a long-poll fetch
		// until "second" is appended.
		done <- cons.PollFetches(ctx).Records()
	}()
	// The append must come while the fetch is parked, or the test proves
	// nothing: wait until the broker reports a parked fetch.
	waitFor(t, 30*time.Second, "a parked fetch", func() bool {
		return scrape(t, b.HTTPAddr())["strata_fetch_waiting"] >= 1
	})
	sent := time.Now()
	produceAll(t, c, "poll", "second")
	select {
	case recs := <-done:
		// Woken by the append, long before the 20 s max wait.
		if waited := time.Since(sent); waited > 10*time.Second {
			t.Fatalf("woken after %v", waited)
		}
		if len(recs) != 1 || string(recs[0].Value) != "second" {
			t.Fatalf("long poll returned %d records", len(recs))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll fetch was not woken by the append")
	}
}

// TestApiVersionsUnknownVersion: a version above the highest gets a v0
// body with UNSUPPORTED_VERSION that still lists the keys, with a v0
// response header.
func TestApiVersionsUnknownVersion(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req []byte
	req = binary.BigEndian.AppendUint16(req, 18)   // ApiVersions
	req = binary.BigEndian.AppendUint16(req, 99)   // unknown version
	req = binary.BigEndian.AppendUint32(req, 4242) // correlation id
	req = binary.BigEndian.AppendUint16(req, 0xffff)
	req = append(req, 0) // tagged fields, as a flexible client would send
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(req)))
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append(frame, req...)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	if corr := binary.BigEndian.Uint32(body); corr != 4242 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatalf("v0 body: %v", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) < 8 {
		t.Fatalf("error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

// TestProduceRejectsWhatKafkaRejects: Kafka's LogValidator checks on
// produced batches, beyond their integrity. Nothing is stored for any of
// them, and a crafted batch cannot claim billions of offsets.
func TestProduceRejectsWhatKafkaRejects(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	adm.CreateTopic(ctxT(t), 1, 1, nil, "strict")
	good, _ := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte("ok"), Timestamp: 1})
	patched := func(f func(record.Batch)) []byte {
		bt := record.Batch(append([]byte(nil), good...))
		f(bt)
		bt.UpdateCRC()
		return bt
	}
	setCount := func(n int32) func(record.Batch) {
		return func(bt record.Batch) { binary.BigEndian.PutUint32(bt[57:], uint32(n)) }
	}
	setDelta := func(d int32) func(record.Batch) {
		return func(bt record.Batch) { binary.BigEndian.PutUint32(bt[23:], uint32(d)) }
	}
	huge := patched(func(bt record.Batch) { setCount(0)(bt); setDelta(1<<31 - 1)(bt) })
	for _, tc := range []struct {
		name  string
		batch []byte
	}{
		{"two batches", append(append([]byte(nil), good...), good...)},
		{"two batches claiming 2^32 offsets", append(append([]byte(nil), huge...), huge...)},
		{"zero records", patched(setCount(0))},
		{"delta past count", patched(setDelta(5))},
		{"control batch", patched(func(bt record.Batch) { bt[22] |= 0x20 })},
	} {
		if got := rawProduce(t, c, "strict", tc.batch); got.ErrorCode != kerr.InvalidRecord.Code {
			t.Errorf("%s: %v, want INVALID_RECORD", tc.name, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	end, _ := adm.ListEndOffsets(ctxT(t), "strict")
	if o, _ := end.Lookup("strict", 0); o.Offset != 0 {
		t.Fatalf("end offset %d: something was stored", o.Offset)
	}
	if got := rawProduce(t, c, "strict", good); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("good batch: %+v", got)
	}
}
