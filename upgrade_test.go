package strata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUpgradeDataDirFromJSONMetadata starts this strata on a data dir that
// strata 886126a (the last to write JSON metadata records) made, and
// finds every topic with its id and partition count, its config
// overrides, its records and the producer id block; then again after a
// restart, which loads the snapshot the upgrade wrote. The fixture and
// the program that made it: testdata/upgrade-886126a/README.md.
func TestUpgradeDataDirFromJSONMetadata(t *testing.T) {
	skipInQuorumMode(t, "the fixture is a local metadata log")
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS("testdata/upgrade-886126a")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "README.md"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := func(round int) {
		b := startBroker(t, dir, nil)
		defer b.Close()
		cl := newClient(t, b.Addr(), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cl.Close()
		adm := kadm.NewClient(cl)
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]struct {
			id         string
			partitions int
		}{
			"orders": {"3d58a34ede454b53533a1b7e645c4dea", 5},
			"events": {"f69f0088d3d40fbced187168696f1785", 1},
		}
		if len(topics) != len(want) {
			t.Fatalf("round %d: topics %v", round, topics.Names())
		}
		for name, w := range want {
			td, ok := topics[name]
			if !ok || len(td.Partitions) != w.partitions {
				t.Fatalf("round %d: %s: %+v", round, name, td)
			}
			if got := fmt.Sprintf("%x", td.ID[:]); got != w.id {
				t.Fatalf("round %d: %s has id %s, want %s", round, name, got, w.id)
			}
		}
		cfgs, err := adm.DescribeTopicConfigs(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := cfgs.On("orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		overrides := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil {
				overrides[c.Key] = *c.Value
			}
		}
		if len(overrides) != 2 || overrides["segment.bytes"] != "1048576" || overrides["cleanup.policy"] != "delete" {
			t.Fatalf("round %d: orders overrides %v", round, overrides)
		}
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "v" {
			t.Fatalf("round %d: events holds %v", round, recs)
		}
		// 886126a reserved producer ids [0, 1000): new ids come after.
		req := kmsg.NewPtrInitProducerIDRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 || resp.ProducerID < 1000*int64(round) {
			t.Fatalf("round %d: producer id %+v %v", round, resp, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	check(1)
	snaps, _ := filepath.Glob(filepath.Join(dir, "__cluster_metadata-0", "*.checkpoint"))
	if len(snaps) == 0 {
		t.Fatal("no metadata snapshot after the upgrade")
	}
	check(2)
}
