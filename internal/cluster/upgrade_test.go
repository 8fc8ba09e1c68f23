package cluster

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/record"
)

// TestUpgradeFromJSONRecords: a metadata log written by strata before the
// KRaft records opens with every topic, topic id, partition count, config
// and producer id block intact; the upgrade writes a snapshot, new changes
// are KRaft records, and a full replay of the mixed log (both snapshots
// lost) builds the same image.
func TestUpgradeFromJSONRecords(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	const ordersID = "0102030405060708090a0b0c0d0e0f10"
	v := strp
	for _, mr := range []metaRecord{
		{Type: "topic", Name: "orders", ID: ordersID, Partitions: 3, Configs: map[string]*string{"retention.ms": v("1000"), "cleanup.policy": v("delete")}},
		{Type: "topic", Name: "__consumer_offsets", ID: "ffeeddccbbaa99887766554433221100", Partitions: 50, Configs: map[string]*string{"cleanup.policy": v("compact")}},
		{Type: "producer_ids", BlockEnd: 1000},
		{Type: "partitions", Name: "orders", Partitions: 5},
		{Type: "config", Name: "orders", Configs: map[string]*string{"retention.ms": nil, "segment.bytes": v("1048576")}},
		{Type: "topic", Name: "gone", ID: "11111111111111111111111111111111", Partitions: 1},
		{Type: "delete_topic", Name: "gone"},
		{Type: "config", Name: "never-created", Configs: map[string]*string{"x": v("y")}},
		{Type: "producer_ids", BlockEnd: 2000},
	} {
		legacyAppend(t, l, mr)
	}
	legacyEnd := l.LogEndOffset()
	s, err := Open(l, Options{NodeID: 4, SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	im := s.Image()
	orders := im.Topic("orders")
	if orders == nil || orders.ID.String() != ordersID || orders.Partitions != 5 || im.ByID[orders.ID] != orders {
		t.Fatalf("orders: %+v", orders)
	}
	if !reflect.DeepEqual(orders.Configs, map[string]string{"cleanup.policy": "delete", "segment.bytes": "1048576"}) {
		t.Fatalf("orders configs %v", orders.Configs)
	}
	for i, p := range orders.PartitionStates {
		if !reflect.DeepEqual(p, &Partition{Replicas: []int32{4}, ISR: []int32{4}, Leader: 4}) {
			t.Fatalf("orders-%d: %+v", i, p)
		}
	}
	co := im.Topic("__consumer_offsets")
	if co == nil || co.ID.String() != "ffeeddccbbaa99887766554433221100" || co.Partitions != 50 || co.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("%+v", co)
	}
	if im.Topic("gone") != nil || im.Topic("never-created") != nil || len(im.Topics) != 2 || len(im.ByID) != 2 {
		t.Fatalf("topics %v", im.Topics)
	}
	if im.ProducerIDsEnd != 2000 || im.EndOffset != legacyEnd {
		t.Fatalf("producer ids end %d, end offset %d", im.ProducerIDsEnd, im.EndOffset)
	}
	if snaps, _ := listSnapshots(fs.OS, dir); !reflect.DeepEqual(snaps, []int64{legacyEnd}) {
		t.Fatalf("no snapshot at the upgrade: %v", snaps)
	}
	if id, err := s.AllocateProducerID(); err != nil || id != 2000 {
		t.Fatal(id, err)
	}
	if _, err := s.CreateTopic("after", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := s.Image()
	// From the upgrade on, the log holds only KRaft records.
	err = l.Scan(legacyEnd, func(b record.Batch) error {
		return b.ForEachRecord(func(r *record.Record) bool {
			if _, _, err := records.Decode(r.Value); err != nil {
				t.Errorf("offset %d: %v", r.Offset, err)
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s, l)

	s, l = openStore(t, dir, Options{NodeID: 4, SnapshotBytes: -1})
	sameImage(t, want, s.Image())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := listSnapshots(fs.OS, dir)
	for _, off := range snaps {
		os.Remove(filepath.Join(dir, snapshotName(off, 0)))
	}
	s, l = openStore(t, dir, Options{NodeID: 4, SnapshotBytes: -1})
	defer closeStore(t, s, l)
	sameImage(t, want, s.Image())
}
