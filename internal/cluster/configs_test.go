package cluster

import (
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
)

// TestAlterResourceConfigs: broker and group configs are ConfigRecords in
// the log, kept in the image's OtherConfigs, and survive a restart from a
// snapshot (clean) or from a replay (crash).
func TestAlterResourceConfigs(t *testing.T) {
	clusterDefault := ConfigResource{Type: records.ResourceBroker, Name: ""}
	node := ConfigResource{Type: records.ResourceBroker, Name: "1"}
	grp := ConfigResource{Type: records.ResourceGroup, Name: "g"}
	for _, clean := range []bool{true, false} {
		dir := t.TempDir()
		s, l := openStore(t, dir, Options{})
		if _, err := s.CreateTopic("a", 1, nil, nil); err != nil {
			t.Fatal(err)
		}
		before := l.LogEndOffset()
		im, err := s.AlterResourceConfigs(clusterDefault, map[string]*string{"log.retention.ms": strp("1000"), "message.max.bytes": strp("2000")})
		if err != nil {
			t.Fatal(err)
		}
		if got := im.ResourceConfigs(clusterDefault); !maps.Equal(got, map[string]string{"log.retention.ms": "1000", "message.max.bytes": "2000"}) {
			t.Fatalf("cluster default %v", got)
		}
		recs, _ := logRecords(t, l)
		want := []records.Record{
			&records.Config{ResourceType: records.ResourceBroker, Name: "log.retention.ms", Value: strp("1000")},
			&records.Config{ResourceType: records.ResourceBroker, Name: "message.max.bytes", Value: strp("2000")},
		}
		if got := recs[before:]; !reflect.DeepEqual(got, want) {
			t.Fatalf("records %+v", got)
		}
		// A delete of what is not set writes nothing.
		end := l.LogEndOffset()
		if _, err := s.AlterResourceConfigs(node, map[string]*string{"log.retention.ms": nil}); err != nil || l.LogEndOffset() != end {
			t.Fatalf("%v: wrote %d records", err, l.LogEndOffset()-end)
		}
		must := func(_ *Image, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.AlterResourceConfigs(node, map[string]*string{"log.retention.ms": strp("5")}))
		must(s.AlterResourceConfigs(clusterDefault, map[string]*string{"message.max.bytes": nil}))
		must(s.AlterResourceConfigs(grp, map[string]*string{"consumer.session.timeout.ms": strp("50000")}))
		if _, err := s.AlterResourceConfigs(ConfigResource{Type: records.ResourceTopic, Name: "a"}, map[string]*string{"retention.ms": strp("1")}); !errors.Is(err, ErrInvalidResource) {
			t.Fatalf("topic resource: %v", err)
		}
		im = s.Image()
		wantAll := map[ConfigResource]map[string]string{
			clusterDefault: {"log.retention.ms": "1000"},
			node:           {"log.retention.ms": "5"},
			grp:            {"consumer.session.timeout.ms": "50000"},
		}
		if !reflect.DeepEqual(im.OtherConfigs, wantAll) {
			t.Fatalf("image holds %v", im.OtherConfigs)
		}
		// Removing the last key removes the resource.
		must(s.AlterResourceConfigs(node, map[string]*string{"log.retention.ms": nil}))
		delete(wantAll, node)
		want2 := s.Image()
		if !reflect.DeepEqual(want2.OtherConfigs, wantAll) {
			t.Fatalf("image holds %v", want2.OtherConfigs)
		}
		if clean {
			closeStore(t, s, l)
		} else if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		s, l = openStore(t, dir, Options{})
		sameImage(t, want2, s.Image())
		if !reflect.DeepEqual(s.Image().OtherConfigs, wantAll) {
			t.Fatalf("clean %v: reopened image holds %v", clean, s.Image().OtherConfigs)
		}
		closeStore(t, s, l)
	}
}

// TestResourceConfigsInPeriodicSnapshot: a snapshot written while the log
// grows carries the configs.
func TestResourceConfigsInPeriodicSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{SnapshotBytes: 1})
	res := ConfigResource{Type: records.ResourceGroup, Name: "g"}
	if _, err := s.AlterResourceConfigs(res, map[string]*string{"consumer.heartbeat.interval.ms": strp("6000")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("later", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // a crash: only the periodic snapshots
		t.Fatal(err)
	}
	s, l = openStore(t, dir, Options{SnapshotBytes: -1})
	defer closeStore(t, s, l)
	if local(s).bytesSinceSnapshot != 0 {
		t.Fatalf("replayed %d bytes after the snapshot", local(s).bytesSinceSnapshot)
	}
	if got := s.Image().ResourceConfigs(res); got["consumer.heartbeat.interval.ms"] != "6000" {
		t.Fatalf("group configs %v", got)
	}
}
