package kafka

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/log"
)

func strp(s string) *string { return &s }

// TestApplyImageConfigs: a change of dynamic broker configs or topic
// overrides that reaches this node only as a new image (written by another
// node) is applied to the partitions by applyImageConfigs; the topic
// defaults of requests follow the image at once.
func TestApplyImageConfigs(t *testing.T) {
	h := raceHandler(t, nil)
	if _, err := h.createTopic(context.Background(), "a", 2, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createTopic(context.Background(), "own", 1, -1, nil, map[string]string{"retention.ms": "1234"}); err != nil {
		t.Fatal(err)
	}
	logCfg := func(topic string, p int32) log.Config {
		t.Helper()
		part := h.broker.Partition(log.TopicPartition{Topic: topic, Partition: p})
		if part == nil {
			t.Fatalf("no partition %s-%d", topic, p)
		}
		return part.Log.Config()
	}
	def := broker.DefaultTopicConfig().Log

	old := h.meta.Image()
	// As another node would: straight to the metadata store.
	im, err := h.meta.AlterResourceConfigs(clusterDefaultResource, map[string]*string{
		"log.retention.ms": strp("1000"), "log.segment.bytes": strp("100000"), "message.max.bytes": strp("500"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.meta.AlterResourceConfigs(cluster.ConfigResource{Type: records.ResourceBroker, Name: "2"}, map[string]*string{"log.retention.ms": strp("7")}); err != nil {
		t.Fatal(err)
	}
	// Requests see the image's defaults without waiting for the hook.
	tc, err := h.topicConfig(h.meta.Image().Topic("a"))
	if err != nil || tc.MaxMessageBytes != 500 || tc.Log.RetentionMs != 1000 {
		t.Fatalf("topic config %+v %v", tc, err)
	}
	// The image watcher applies it too; calling the hook again, late,
	// changes nothing.
	h.applyImageConfigs(old, h.meta.Image())
	for p := int32(0); p < 2; p++ {
		if c := logCfg("a", p); c.RetentionMs != 1000 || c.SegmentBytes != 100000 {
			t.Fatalf("a-%d after the hook: %+v", p, c)
		}
	}
	if c := logCfg("own", 0); c.RetentionMs != 1234 || c.SegmentBytes != 100000 {
		t.Fatalf("own-0 after the hook: %+v", c)
	}

	// This node's own value wins; a topic override changed elsewhere
	// is applied too.
	old = h.meta.Image()
	if _, err := h.meta.AlterResourceConfigs(h.nodeResource(), map[string]*string{"log.retention.ms": strp("2000")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.meta.AlterConfigs("own", map[string]*string{"retention.ms": nil}); err != nil {
		t.Fatal(err)
	}
	h.applyImageConfigs(old, h.meta.Image())
	if c := logCfg("a", 1); c.RetentionMs != 2000 {
		t.Fatalf("a-1 with a per-node value: %+v", c)
	}
	if c := logCfg("own", 0); c.RetentionMs != 2000 {
		t.Fatalf("own-0 without its override: %+v", c)
	}

	// A partition of a topic new since the old image, running with a
	// stale config, is brought up to date.
	old = im
	if _, err := h.createTopic(context.Background(), "late", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.broker.Partition(log.TopicPartition{Topic: "late"}).Log.SetConfig(def); err != nil {
		t.Fatal(err)
	}
	h.applyImageConfigs(old, h.meta.Image())
	if c := logCfg("late", 0); c.RetentionMs != 2000 {
		t.Fatalf("late-0: %+v", c)
	}

	// A value that does not parse (another version wrote it) is
	// skipped; the rest apply.
	if _, err := h.meta.AlterResourceConfigs(clusterDefaultResource, map[string]*string{"log.flush.interval.ms": strp("soon")}); err != nil {
		t.Fatal(err)
	}
	if d := h.topicDefaults(); d.Log.RetentionMs != 2000 || d.Log.FlushMs != def.FlushMs {
		t.Fatalf("defaults with a bad value: %+v", d.Log)
	}
}

// TestValidateBrokerConfigs: names must be dynamic, values must parse.
func TestValidateBrokerConfigs(t *testing.T) {
	h := raceHandler(t, nil)
	for _, tc := range []struct {
		configs map[string]string
		ok      bool
	}{
		{map[string]string{"log.retention.ms": "-1", "compression.type": "zstd", "log.cleanup.policy": "delete"}, true},
		{map[string]string{"log.message.timestamp.type": "LogAppendTime", "min.insync.replicas": "2"}, true},
		{map[string]string{"compression.type": "brotli"}, false},
		{map[string]string{"log.segment.bytes": "1"}, false},
		{map[string]string{"log.retention.hours": "1"}, false}, // a synonym, not dynamic in Kafka either
		{map[string]string{"log.dirs": "/tmp"}, false},
		{map[string]string{"nope": "1"}, false},
		{map[string]string{"background.threads": "9", "sasl.kerberos.min.time.before.relogin": "58000"}, true}, // stored, no effect
		{map[string]string{"background.threads": "many"}, false},
		{map[string]string{"max.connections": "10", "max.connections.per.ip.overrides": "127.0.0.1:5"}, true},
		{map[string]string{"max.connections.per.ip.overrides": "localhost"}, false},
	} {
		if err := h.validateBrokerConfigs(tc.configs); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.configs, err)
		}
	}
	for _, name := range []string{"", "0", "12"} {
		if err := validBrokerName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"x", "-1", "1.5"} {
		if err := validBrokerName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

// TestDynamicBrokerConfigsApplied: every property config.Dynamic names is
// a broker property that this package applies at run time.
func TestDynamicBrokerConfigsApplied(t *testing.T) {
	for name := range config.Dynamic {
		if !slices.ContainsFunc(config.Defs, func(d config.Def) bool { return d.Name == name }) {
			t.Errorf("%s is dynamic but not a property", name)
		}
		if strings.HasPrefix(name, "max.connections") {
			continue // connectionLimits
		}
		tk, ok := brokerTopicConfigs[name]
		if !ok {
			t.Errorf("%s is dynamic but not applied", name)
		} else if _, ok := broker.LookupTopicConfig(tk); !ok {
			t.Errorf("%s is the default of %s, not a topic config", name, tk)
		}
	}
	for name := range brokerTopicConfigs {
		if !config.Dynamic[name] {
			t.Errorf("%s is applied but not listed in config.Dynamic", name)
		}
	}
}
