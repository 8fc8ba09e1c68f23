package kafka

import (
	"testing"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
)

// A partition the image does not know is removed at start on a single
// node (its local log is the whole truth) and kept in quorum mode, where
// the image may be behind the quorum's log.
func TestStrayPartitionsAtStart(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		metaCfg := log.DefaultConfig()
		b, err := broker.Open(broker.Config{LogDirs: []string{dir}, Internal: map[log.TopicPartition]log.Config{cluster.MetadataTopic: metaCfg}})
		if err != nil {
			t.Fatal(err)
		}
		stray := log.TopicPartition{Topic: "stray", Partition: 0}
		if _, err := b.CreatePartition(stray, log.DefaultConfig()); err != nil {
			t.Fatal(err)
		}
		ml, err := b.Internal(cluster.MetadataTopic, metaCfg)
		if err != nil {
			t.Fatal(err)
		}
		meta, err := cluster.Open(ml, cluster.Options{NodeID: 1})
		if err != nil {
			t.Fatal(err)
		}
		h, err := New(Config{NodeID: 1, KeepStrayPartitions: keep}, b, meta)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Partition(stray) != nil; got != keep {
			t.Errorf("KeepStrayPartitions=%v: partition kept = %v", keep, got)
		}
		h.Stop()
		b.Close()
	}
}
