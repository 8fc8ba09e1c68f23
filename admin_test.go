package strata_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAlterConfigsAndDescribe(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := ctxT(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("100000")}, "cfg"); err != nil {
		t.Fatal(err)
	}
	get := func() []kadm.Config {
		rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rc.Configs
	}
	if cs := get(); !hasConfig(cs, "segment.bytes", "100000") || !hasConfig(cs, "retention.ms", "604800000") || !hasConfig(cs, "max.message.bytes", "1048588") {
		t.Fatalf("describe after create: %v", cs)
	}
	// Incremental: set one, delete another.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("5000")},
		{Op: kadm.DeleteConfig, Name: "segment.bytes"},
	}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("incremental alter: %v %v", err, rs)
	}
	if cs := get(); !hasConfig(cs, "retention.ms", "5000") || !hasConfig(cs, "segment.bytes", "1073741824") {
		t.Fatalf("describe after incremental alter: %v", cs)
	}
	// Bad values are INVALID_CONFIG and change nothing.
	rs, _ = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("x")}}, "cfg")
	if len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v", rs)
	}
	// Legacy AlterConfigs replaces the whole set.
	rs, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("2000")}}, "cfg")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs)
	}
	if cs := get(); !hasConfig(cs, "max.message.bytes", "2000") || !hasConfig(cs, "retention.ms", "604800000") {
		t.Fatalf("describe after replacing alter: %v", cs)
	}
}

func TestCreatePartitionsAndDeleteRecords(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	ctx := ctxT(t)
	adm.CreateTopic(ctx, 1, 1, nil, "grow")
	if rs, err := adm.CreatePartitions(ctx, 2, "grow"); err != nil || rs["grow"].Err != nil {
		t.Fatalf("add 2 partitions: %v %v", err, rs)
	}
	if rs, _ := adm.UpdatePartitions(ctx, 2, "grow"); !errors.Is(rs["grow"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v", rs["grow"].Err)
	}
	td, _ := adm.ListTopics(ctx, "grow")
	if n := len(td["grow"].Partitions); n != 3 {
		t.Fatalf("partitions %d, want 3", n)
	}
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("grow"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: 2, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{"grow": {2: {At: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := del.Lookup("grow", 2); r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete records: %+v", r)
	}
	start, _ := adm.ListStartOffsets(ctx, "grow")
	if o, _ := start.Lookup("grow", 2); o.Offset != 7 {
		t.Fatalf("start offset %d after delete records", o.Offset)
	}
	del, _ = adm.DeleteRecords(ctx, kadm.Offsets{"grow": {2: {At: 11}}})
	if r, _ := del.Lookup("grow", 2); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past high watermark: %+v", r)
	}
}

func TestDescribeClusterLogDirsProducersEpochs(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	adm := kadm.NewClient(c)
	ctx := ctxT(t)
	produceAll(t, c, "desc", "a", "b", "c")

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) != 1 || meta.Cluster == "" || meta.Controller != 1 {
		t.Fatalf("describe cluster: %+v %v", meta, err)
	}
	ld, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	ld.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "desc" && p.Size > 0 && filepath.Clean(d.Dir) == filepath.Clean(dir) {
				found = true
			}
		})
	})
	if !found {
		t.Fatalf("log dirs: %+v", ld)
	}
	prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"desc": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	dp := prods["desc"].Partitions[0]
	if len(dp.ActiveProducers) != 1 || dp.ActiveProducers.Sorted()[0].LastSequence != 2 {
		t.Fatalf("producers: %+v", dp)
	}

	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "desc"
	for _, epoch := range []int32{0, 5} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, epoch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LeaderEpoch != 0 || ps[0].EndOffset != 3 {
		t.Errorf("epoch 0: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].LeaderEpoch != -1 || ps[1].EndOffset != -1 {
		t.Errorf("unknown newer epoch: %+v", ps[1])
	}
}

// TestDescribeBrokerConfigs lists the broker's properties: what was set
// (STATIC_BROKER_CONFIG) and the defaults, all read-only.
func TestDescribeBrokerConfigs(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), map[string]string{"num.partitions": "3"})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("1", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe broker 1: %v %v", err, rc.Err)
	}
	found := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		found[c.Key] = c
	}
	if c := found["num.partitions"]; c.MaybeValue() != "3" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("num.partitions: %+v", c)
	}
	if c := found["log.segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.segment.bytes: %+v", c)
	}
	if _, err := adm.DescribeBrokerConfigs(ctxT(t), 7); err == nil {
		t.Fatal("describing another broker id succeeded")
	}
}
