package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPowerLossPartitionMetadata: partition.metadata is what tells a
// partition directory of an earlier topic from the directory of a new topic
// of the same name. A node that was down while its topic was deleted and
// created again (quorum mode) finds its old directory at start: the image
// names the new topic id, and the handler's adoptPartitions calls
// WriteMetadata with it, which must refuse (ErrInconsistentTopicID), so the
// directory is set aside as a stray. If the file did not survive a power
// loss, WriteMetadata finds no id to compare and writes the new one: the
// old topic's directory, records and all, becomes the new topic's
// partition on this node. (In local mode the node is
// its own controller: the image still names the old id at start, and
// adoptPartitions rewrites the lost file with it.)
//
// A partition is created with its topic id, takes acknowledged records in
// fsync mode, and the power goes before any roll or other write syncs its
// directory. Dropping either sync of WriteMetadata's fs.WriteAtomic must
// fail.
func TestPowerLossPartitionMetadata(t *testing.T) {
	for _, tc := range []struct {
		name, op string // the syncs dropped; none if op is ""
	}{
		{"all syncs", ""},
		{"file sync dropped", "sync"},
		{"dir sync dropped", "syncdir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drop func(string) bool
			var reached atomic.Int64 // drop runs under two CrashFS's locks
			if tc.op != "" {
				d := dropSite(tc.op, "broker.(*Partition).WriteMetadata")
				drop = func(s string) bool {
					if d(s) {
						reached.Add(1)
						return true
					}
					return false
				}
			}
			err := metadataPowerLoss(t, drop)
			switch {
			case tc.op == "" && err != nil:
				t.Fatal(err)
			case tc.op == "":
			case reached.Load() == 0:
				t.Fatalf("no %s in WriteMetadata: the scenario does not reach it", tc.op)
			case err == nil:
				t.Fatalf("WriteMetadata's %s dropped, and nothing noticed", tc.op)
			default:
				t.Logf("%s dropped: %v", tc.op, err)
			}
		})
	}
}

func metadataPowerLoss(t *testing.T, drop func(string) bool) error {
	oldID := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	newID := [16]byte{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	cfs, b, _ := crashBroker(t, drop)
	defer b.Close()
	p, err := b.CreatePartition(testTP, fsyncMode())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteMetadata(oldID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
	}

	b2, err := powerLoss(t, cfs, drop)
	if err != nil {
		return err
	}
	defer closeBroker(t, b2)
	p2 := b2.Partition(testTP)
	if p2 == nil {
		return fmt.Errorf("partition %s gone after power loss", testTP)
	}
	var errs []error
	if id, ok := p2.TopicID(); !ok || id != oldID {
		errs = append(errs, fmt.Errorf("topic id %x (known: %v) after power loss, want %x", id, ok, oldID))
	}
	// What adoptPartitions does when the image names a topic of the
	// same name created since.
	if err := p2.WriteMetadata(newID); !errors.Is(err, ErrInconsistentTopicID) {
		errs = append(errs, fmt.Errorf("the directory of topic id %x adopted by topic id %x (WriteMetadata: %v), want ErrInconsistentTopicID", oldID, newID, err))
	}
	return errors.Join(errs...)
}

// TestPowerLossDeletedPartition: a partition's deletion renames its
// directory aside (<topic>-<partition>.<id>-delete) and syncs the log dir,
// so that a power loss does not bring it back. Dropping that sync brings it
// back, and the test shows why that is still safe: the directory comes
// back with its partition.metadata, so the handler's adoptPartitions finds
// it a stray (its topic is not in the image, or the image's topic of that
// name has another id: WriteMetadata refuses) and removes it, as Kafka's
// LogManager does with a deletion a crash interrupted.
func TestPowerLossDeletedPartition(t *testing.T) {
	oldID := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	newID := [16]byte{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	for _, dropped := range []bool{false, true} {
		var reached atomic.Int64 // drop runs under two CrashFS's locks
		drop := func(s string) bool {
			if dropped && strings.HasPrefix(s, "syncdir log.(*Manager).setAside") {
				reached.Add(1)
				return true
			}
			return false
		}
		cfs, b, _ := crashBroker(t, drop)
		p, err := b.CreatePartition(testTP, fsyncMode())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteMetadata(oldID); err != nil {
			t.Fatal(err)
		}
		appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
		if err := b.DeletePartition(testTP); err != nil {
			t.Fatal(err)
		}
		b2, err := powerLoss(t, cfs, drop)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		p2 := b2.Partition(testTP)
		switch {
		case dropped && reached.Load() == 0:
			t.Fatal("the deletion did not sync the log dir: the test does not reach it")
		case !dropped && p2 != nil:
			t.Fatal("a deleted partition came back after a power loss")
		case dropped && p2 == nil:
			t.Fatal("the deletion's dir sync dropped, and the partition stayed deleted: the test does not show what it means to")
		case dropped:
			if id, ok := p2.TopicID(); !ok || id != oldID {
				t.Fatalf("the deleted partition came back with topic id %x (known: %v), want %x", id, ok, oldID)
			}
			if err := p2.WriteMetadata(newID); !errors.Is(err, ErrInconsistentTopicID) {
				t.Fatalf("a new topic of the same name would adopt the deleted partition: WriteMetadata = %v", err)
			}
			t.Logf("dir sync dropped: the deleted partition came back, with its topic id")
		}
		closeBroker(t, b2)
	}
}
