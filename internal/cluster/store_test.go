package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
)

func TestCreateTopicWritesKRaftRecords(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{NodeID: 7})
	defer closeStore(t, s, l)
	top, err := s.CreateTopic("orders", 3, map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if top.Partitions != 3 || len(top.PartitionStates) != 3 || top.Configs["retention.ms"] != "1000" {
		t.Fatalf("%+v", top)
	}
	for i, p := range top.PartitionStates {
		want := &Partition{Replicas: []int32{7}, ISR: []int32{7}, Leader: 7}
		if !reflect.DeepEqual(p, want) {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	if _, err := s.CreateTopic("orders", 1, nil, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatal(err)
	}
	recs, batches := logRecords(t, l)
	if len(batches) != 1 {
		t.Fatalf("one creation, %d batches", len(batches))
	}
	id := records.UUID(top.ID)
	v := func(s string) *string { return &s }
	want := []records.Record{
		&records.Topic{Name: "orders", TopicID: id},
		&records.Partition{PartitionID: 0, TopicID: id, Replicas: []int32{7}, Isr: []int32{7}, Leader: 7},
		&records.Partition{PartitionID: 1, TopicID: id, Replicas: []int32{7}, Isr: []int32{7}, Leader: 7},
		&records.Partition{PartitionID: 2, TopicID: id, Replicas: []int32{7}, Isr: []int32{7}, Leader: 7},
		&records.Config{ResourceType: records.ResourceTopic, ResourceName: "orders", Name: "cleanup.policy", Value: v("delete")},
		&records.Config{ResourceType: records.ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: v("1000")},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("log holds %+v", recs)
	}
	if s.Image().EndOffset != l.LogEndOffset() || l.LogEndOffset() != 6 {
		t.Fatalf("image end %d, log end %d", s.Image().EndOffset, l.LogEndOffset())
	}
}

// change makes one of each change the handlers make.
func change(t *testing.T, s *Store) {
	t.Helper()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}, nil))
	must(s.CreateTopic("a", 2, map[string]string{"retention.ms": "5"}, nil))
	must(s.CreateTopic("b", 1, nil, nil))
	must(s.CreateTopic("gone", 4, nil, nil))
	must(s.SetPartitions("b", 3, nil))
	must(s.AlterConfigs("a", map[string]*string{"retention.ms": nil, "segment.bytes": strp("1048576")}))
	must(s.DeleteTopic("gone"))
	must(s.AllocateProducerID())
}

func TestStoreAPI(t *testing.T) {
	s, l := openStore(t, t.TempDir(), Options{})
	defer closeStore(t, s, l)
	before := s.Image()
	change(t, s)
	im := s.Image()
	if len(before.Topics) != 0 || before.EndOffset != 0 {
		t.Fatal("an earlier image changed")
	}
	if a := im.Topic("a"); a.Configs["segment.bytes"] != "1048576" || len(a.Configs) != 1 || a.Partitions != 2 {
		t.Fatalf("%+v", a)
	}
	if b := im.Topic("b"); b.Partitions != 3 || b.PartitionStates[2].Leader != testNode || im.ByID[b.ID] != b {
		t.Fatalf("%+v", b)
	}
	if im.Topic("gone") != nil || len(im.ByID) != 2 {
		t.Fatal("deleted topic still there")
	}
	if im.ProducerIDsEnd != 1000 {
		t.Fatal(im.ProducerIDsEnd)
	}
	if b := im.Broker(testNode); b == nil || b.Fenced || b.Epoch != 0 || b.Endpoints[0].Port != 9092 {
		t.Fatalf("%+v", b)
	}
	// The same registration again writes nothing; a new port registers
	// anew, with the record's offset as the epoch.
	end := l.LogEndOffset()
	if _, err := s.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}, nil); err != nil || l.LogEndOffset() != end {
		t.Fatal("re-registered", err)
	}
	b, err := s.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9093}}, nil)
	if err != nil || b.Epoch != end || b.IncarnationID == im.Broker(testNode).IncarnationID {
		t.Fatalf("%+v %v", b, err)
	}
	if _, err := s.SetPartitions("nope", 2, nil); !errors.Is(err, ErrUnknownTopic) {
		t.Fatal(err)
	}
}

func TestProducerIDsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{})
	for want := int64(0); want < 3; want++ {
		if id, err := s.AllocateProducerID(); err != nil || id != want {
			t.Fatal(id, err)
		}
	}
	closeStore(t, s, l)
	s, l = openStore(t, dir, Options{})
	defer closeStore(t, s, l)
	if id, err := s.AllocateProducerID(); err != nil || id != 1000 {
		t.Fatal(id, err)
	}
}

// TestReopen: the image after a restart is the one before, whether it comes
// from a snapshot written at Close or from replaying the log after a
// crash.
func TestReopen(t *testing.T) {
	for _, clean := range []bool{true, false} {
		dir := t.TempDir()
		s, l := openStore(t, dir, Options{})
		change(t, s)
		want := s.Image()
		if clean {
			closeStore(t, s, l)
		} else if err := l.Close(); err != nil { // no snapshot
			t.Fatal(err)
		}
		snaps, _ := listSnapshots(fs.OS, dir)
		if clean != (len(snaps) == 1) {
			t.Fatalf("clean %v: snapshots %v", clean, snaps)
		}
		s, l = openStore(t, dir, Options{})
		sameImage(t, want, s.Image())
		if clean && local(s).bytesSinceSnapshot != 0 {
			t.Fatalf("replayed %d bytes after the snapshot", local(s).bytesSinceSnapshot)
		}
		closeStore(t, s, l)
	}
}

func TestPeriodicSnapshots(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{SnapshotBytes: 1}) // after every change
	change(t, s)
	snaps, err := listSnapshots(fs.OS, dir)
	if err != nil || len(snaps) != snapshotsRetained || snaps[0] != l.LogEndOffset() {
		t.Fatalf("snapshots %v (log end %d), %v", snaps, l.LogEndOffset(), err)
	}
	want := s.Image()
	closeStore(t, s, l)
	s, l = openStore(t, dir, Options{SnapshotBytes: -1})
	defer closeStore(t, s, l)
	sameImage(t, want, s.Image())
}

// TestSnapshotThenReplay: records after the newest snapshot are replayed
// on top of it, and only they.
func TestSnapshotThenReplay(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{SnapshotBytes: -1})
	change(t, s)
	s.mu.Lock()
	if err := local(s).snapshot(); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	snapAt := l.LogEndOffset()
	if _, err := s.CreateTopic("late", 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	want := s.Image()
	if err := l.Close(); err != nil { // a crash: no snapshot at Close
		t.Fatal(err)
	}
	s, l = openStore(t, dir, Options{SnapshotBytes: -1})
	defer closeStore(t, s, l)
	sameImage(t, want, s.Image())
	if local(s).snapshotOffset != snapAt || local(s).bytesSinceSnapshot == 0 {
		t.Fatalf("loaded snapshot %d (want %d), replayed %d bytes", local(s).snapshotOffset, snapAt, local(s).bytesSinceSnapshot)
	}
}

// TestCorruptSnapshotFallsBack: a damaged newest snapshot gives way to the
// older one, two damaged ones to a replay of the whole log, with the same
// image each time.
func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{SnapshotBytes: 1})
	change(t, s)
	want := s.Image()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := listSnapshots(fs.OS, dir)
	if len(snaps) != 2 {
		t.Fatal(snaps)
	}
	damage := func(off int64, truncate bool) {
		path := filepath.Join(dir, snapshotName(off, 0))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if truncate {
			data = data[:len(data)-3]
		} else {
			data[len(data)-2] ^= 0x40
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	damage(snaps[0], false)
	s, l = openStore(t, dir, Options{SnapshotBytes: -1})
	sameImage(t, want, s.Image())
	if local(s).snapshotOffset != snaps[1] {
		t.Fatalf("loaded %d, want the older %d", local(s).snapshotOffset, snaps[1])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	damage(snaps[1], true)
	s, l = openStore(t, dir, Options{SnapshotBytes: -1})
	defer closeStore(t, s, l)
	sameImage(t, want, s.Image())
	if local(s).snapshotOffset != -1 {
		t.Fatalf("loaded snapshot %d of two corrupt ones", local(s).snapshotOffset)
	}
}

// TestSnapshotPastLogEndIgnored: a snapshot beyond the log's end would
// make records appended below its offset invisible; it is not loaded.
func TestSnapshotPastLogEndIgnored(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{})
	if _, err := s.CreateTopic("a", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	ahead := *s.Image()
	ahead.EndOffset = 100
	if _, err := writeSnapshot(fs.OS, dir, &ahead); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001-0000000000"+partSuffix), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := s.Image()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, l = openStore(t, dir, Options{})
	defer closeStore(t, s, l)
	sameImage(t, want, s.Image())
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000001-0000000000"+partSuffix)); !os.IsNotExist(err) {
		t.Fatal("partial snapshot not removed", err)
	}
}

func TestNewerRecordVersionRefused(t *testing.T) {
	dir := t.TempDir()
	s, l := openStore(t, dir, Options{})
	if _, err := s.CreateTopic("a", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	defer l.Close()
	// A TopicRecord of version 1, as a newer Kafka might write.
	legacyAppendRaw(t, l, []byte{1, 2, 1, 2, 'x', 0})
	_, err := Open(l, Options{NodeID: testNode})
	if !errors.Is(err, records.ErrUnsupported) {
		t.Fatalf("opened a log with a newer record: %v", err)
	}
}

func TestSnapshotNames(t *testing.T) {
	for _, c := range []struct {
		name string
		off  int64
		ok   bool
	}{
		{"00000000000000001234-0000000000.checkpoint", 1234, true},
		{snapshotName(1<<40, 0), 1 << 40, true},
		{"00000000000000001234-0000000000.checkpoint.part", 0, false},
		{"0000000000000001234-0000000000.checkpoint", 0, false},
		{"00000000000000001234-000000000x.checkpoint", 0, false},
		{"00000000000000000000.log", 0, false},
		{"-0000000000000001234-0000000000.checkpoint", 0, false},
	} {
		off, ok := parseSnapshotName(c.name)
		if ok != c.ok || off != c.off {
			t.Errorf("%s: %d %v", c.name, off, ok)
		}
	}
}
