package cluster

import (
	"errors"
	"reflect"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
)

func applyAll(t *testing.T, base *Image, end int64, recs ...records.Record) *Image {
	t.Helper()
	d := newDelta(base)
	for _, r := range recs {
		if err := d.apply(r); err != nil {
			t.Fatal(err)
		}
	}
	return d.finish(end)
}

var tid = records.UUID{9, 9, 9}

func TestPartitionChangeEpochs(t *testing.T) {
	im0 := applyAll(t, emptyImage(), 2,
		&records.Topic{Name: "t", TopicID: tid},
		&records.Partition{PartitionID: 0, TopicID: tid, Replicas: []int32{1, 2, 3}, Isr: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 6},
	)
	shrink := records.NewPartitionChange(tid, 0)
	shrink.Isr = []int32{1, 2}
	im1 := applyAll(t, im0, 3, shrink)
	p := im1.Topic("t").PartitionStates[0]
	// An ISR change is a new partition epoch, not a new leader epoch.
	if !reflect.DeepEqual(p.ISR, []int32{1, 2}) || p.Leader != 1 || p.LeaderEpoch != 4 || p.PartitionEpoch != 7 {
		t.Fatalf("%+v", p)
	}
	elect := records.NewPartitionChange(tid, 0)
	elect.Leader = 2
	im2 := applyAll(t, im1, 4, elect)
	p = im2.Topic("t").PartitionStates[0]
	if p.Leader != 2 || p.LeaderEpoch != 5 || p.PartitionEpoch != 8 || !reflect.DeepEqual(p.Replicas, []int32{1, 2, 3}) {
		t.Fatalf("%+v", p)
	}
	// Copy on write: earlier images are as they were.
	if p0 := im0.Topic("t").PartitionStates[0]; p0.LeaderEpoch != 4 || len(p0.ISR) != 3 || im0.EndOffset != 2 {
		t.Fatalf("image 0 changed: %+v", p0)
	}
	if p1 := im1.Topic("t").PartitionStates[0]; p1.Leader != 1 {
		t.Fatalf("image 1 changed: %+v", p1)
	}
	bad := records.NewPartitionChange(tid, 5)
	if err := newDelta(im2).apply(bad); !errors.Is(err, ErrInconsistent) {
		t.Fatal(err)
	}
}

func TestBrokerRecords(t *testing.T) {
	rack := "r1"
	im := applyAll(t, emptyImage(), 1, &records.RegisterBroker{BrokerID: 2, BrokerEpoch: 10, Fenced: true, Rack: &rack,
		EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}})
	im2 := applyAll(t, im, 2, &records.UnfenceBroker{ID: 2, Epoch: 10})
	if im.Broker(2).Fenced != true || im2.Broker(2).Fenced != false || *im2.Broker(2).Rack != "r1" {
		t.Fatal("unfence")
	}
	im3 := applyAll(t, im2, 3, &records.BrokerRegistrationChange{BrokerID: 2, BrokerEpoch: 10, Fenced: 1, InControlledShutdown: 1})
	if b := im3.Broker(2); !b.Fenced || !b.InControlledShutdown {
		t.Fatalf("%+v", b)
	}
	// A fence of another epoch is refused, as Kafka's
	// ClusterControlManager refuses it.
	if err := newDelta(im3).apply(&records.FenceBroker{ID: 2, Epoch: 9}); !errors.Is(err, ErrInconsistent) {
		t.Fatal(err)
	}
	im4 := applyAll(t, im3, 4, &records.UnregisterBroker{BrokerID: 2, BrokerEpoch: 10})
	if im4.Broker(2) != nil || im3.Broker(2) == nil {
		t.Fatal("unregister")
	}
}

// TestImageRecordsRoundTrip: the records of an image (a snapshot's
// content) build the same image.
func TestImageRecordsRoundTrip(t *testing.T) {
	rack := "r"
	two := records.UUID{2}
	pc := records.NewPartitionChange(tid, 1)
	pc.Leader, pc.Isr, pc.LeaderRecoveryState = 3, []int32{3}, 1
	im := applyAll(t, emptyImage(), 42,
		&records.RegisterBroker{BrokerID: 1, BrokerEpoch: 0, IncarnationID: tid, EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "a", Port: 9092}}},
		&records.RegisterBroker{BrokerID: 3, BrokerEpoch: 1, Rack: &rack, Fenced: true,
			Features: []records.Feature{{Name: "metadata.version", MinSupportedVersion: 1, MaxSupportedVersion: 21}}, LogDirs: []records.UUID{{7}}},
		&records.Topic{Name: "t", TopicID: tid},
		&records.Partition{PartitionID: 0, TopicID: tid, Replicas: []int32{1, 3}, Isr: []int32{1, 3}, Leader: 1},
		&records.Partition{PartitionID: 1, TopicID: tid, Replicas: []int32{3, 1}, Isr: []int32{3, 1}, AddingReplicas: []int32{1}, Leader: 3},
		pc,
		&records.Config{ResourceType: records.ResourceTopic, ResourceName: "t", Name: "retention.ms", Value: strp("1")},
		&records.Topic{Name: "u", TopicID: two},
		// Fields of PartitionRecord v1 and v2, which strata does not
		// write but must not drop from a snapshot.
		&records.Partition{PartitionID: 0, TopicID: two, Replicas: []int32{1, 3}, Isr: []int32{1}, Leader: 1,
			Directories: []records.UUID{{7}, {8}}, EligibleLeaderReplicas: []int32{3}, LastKnownElr: []int32{}},
		&records.Partition{PartitionID: 1, TopicID: two, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1, Directories: []records.UUID{{7}}},
		&records.Config{ResourceType: records.ResourceBroker, ResourceName: "1", Name: "log.retention.ms", Value: strp("2")},
		&records.Config{ResourceType: records.ResourceBroker, ResourceName: "", Name: "x", Value: strp("3")},
		&records.Config{ResourceType: records.ResourceBroker, ResourceName: "", Name: "x"},
		&records.ProducerIDs{BrokerID: 1, NextProducerID: 3000},
		&records.AccessControlEntry{ID: records.UUID{1}, ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, PermissionType: 3},
		&records.AccessControlEntry{ID: records.UUID{2}, ResourceType: 3, ResourceName: "g", PatternType: 4, Principal: "User:*", Host: "1.2.3.4", Operation: 2, PermissionType: 2},
		&records.AccessControlEntry{ID: records.UUID{3}, ResourceType: 4, ResourceName: "kafka-cluster", PatternType: 3, Principal: "User:b", Host: "*", Operation: 7, PermissionType: 3},
		&records.RemoveAccessControlEntry{ID: records.UUID{1}},
	)
	if im.ACLs == nil || len(im.ACLs.ByID) != 2 {
		t.Fatalf("ACLs %+v", im.ACLs)
	}
	if p := im.Topic("t").PartitionStates[1]; p.Leader != 3 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || p.LeaderRecoveryState != 1 {
		t.Fatalf("%+v", p)
	}
	if len(im.OtherConfigs) != 1 {
		t.Fatalf("%+v", im.OtherConfigs)
	}
	data, err := encodeSnapshot(im)
	if err != nil {
		t.Fatal(err)
	}
	back := applyAll(t, emptyImage(), 42, im.Records()...)
	if !reflect.DeepEqual(back, im) {
		t.Fatalf("\n%s\n%s", dump(im), dump(back))
	}
	dir := t.TempDir()
	if ok, err := writeSnapshot(fs.OS, dir, im); !ok || err != nil {
		t.Fatal(ok, err)
	}
	loaded, err := readSnapshot(dir, 42)
	if err != nil || !reflect.DeepEqual(loaded, im) || len(data) == 0 {
		t.Fatal(err)
	}
}

// TestScramCredentials: credentials are set, replaced and removed per
// user and mechanism, copied on write, and a snapshot's records rebuild
// them.
func TestScramCredentials(t *testing.T) {
	im0 := applyAll(t, emptyImage(), 3,
		&records.UserScramCredential{Name: "alice", Mechanism: 1, Salt: []byte("s1"), StoredKey: []byte("k1"), ServerKey: []byte("v1"), Iterations: 4096},
		&records.UserScramCredential{Name: "alice", Mechanism: 2, Salt: []byte("s2"), StoredKey: []byte("k2"), ServerKey: []byte("v2"), Iterations: 8192},
		&records.UserScramCredential{Name: "bob", Mechanism: 1, Salt: []byte("s3"), StoredKey: []byte("k3"), ServerKey: []byte("v3"), Iterations: 4096},
	)
	im1 := applyAll(t, im0, 5,
		&records.RemoveUserScramCredential{Name: "alice", Mechanism: 1},
		&records.RemoveUserScramCredential{Name: "bob", Mechanism: 1},
	)
	if len(im0.Scram["alice"]) != 2 || im0.Scram["bob"] == nil {
		t.Fatalf("image 0 changed: %+v", im0.Scram)
	}
	if len(im1.Scram) != 1 || im1.Scram["alice"][2] == nil || im1.Scram["alice"][2].Iterations != 8192 {
		t.Fatalf("image 1: %+v", im1.Scram)
	}
	if err := newDelta(im1).apply(&records.RemoveUserScramCredential{Name: "bob", Mechanism: 1}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("removing a missing credential: %v", err)
	}
	data, err := encodeSnapshot(im0)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeSnapshot(data, im0.EndOffset)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Scram, im0.Scram) {
		t.Fatalf("snapshot: %+v, want %+v", back.Scram, im0.Scram)
	}
}

// TestACLRecords: ACL bindings are copied on change (an authorizer built
// from an image's ACLs stays valid), and removing an unknown one is
// refused, as Kafka's AclControlManager refuses it.
func TestACLRecords(t *testing.T) {
	add := &records.AccessControlEntry{ID: records.UUID{1}, ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, PermissionType: 3}
	im := applyAll(t, emptyImage(), 1, add)
	next := applyAll(t, im, 2, &records.RemoveAccessControlEntry{ID: records.UUID{1}})
	if len(im.ACLs.ByID) != 1 || len(next.ACLs.ByID) != 0 || im.ACLs == next.ACLs {
		t.Fatalf("before %+v after %+v", im.ACLs, next.ACLs)
	}
	if same := applyAll(t, im, 3, &records.Topic{Name: "x", TopicID: tid}); same.ACLs != im.ACLs {
		t.Fatal("a change of something else made new ACLs")
	}
	if err := newDelta(next).apply(&records.RemoveAccessControlEntry{ID: records.UUID{1}}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("removing an unknown ACL: %v", err)
	}
}
