package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/log"
)

// TestPowerLossMetadataLog: local mode's metadata log keeps every
// acknowledged change across a power loss. A Store on a CrashFS (the
// metadata log's file system, which its snapshots use too) makes changes of
// every kind (broker registration, topics created, grown, reconfigured and
// deleted, broker configs, producer id blocks), each acknowledged when its
// call returns; the power goes; the store reopened on what the disk kept
// must have the image of the last acknowledged change. It goes on from
// there and loses power again. Some cases write a snapshot after every
// change, so that loading goes through snapshots; the others none, as
// production between its 20 MiB snapshots, so that it replays the log.
//
// Each case that drops a sync the log needs must fail; the snapshots'
// syncs are defence in depth (the log keeps every record: retention is
// off, and a snapshot that is lost, empty or torn is skipped for an older
// one or a replay), so dropping them must not.
func TestPowerLossMetadataLog(t *testing.T) {
	for _, tc := range []struct {
		name          string
		snapshotBytes int64 // 1: after every change; -1: none
		drop          func(site string) bool
		caught        bool
	}{
		{"all syncs, snapshots", 1, nil, false},
		{"all syncs, replay", -1, nil, false},
		{"snapshot syncs dropped", 1, func(s string) bool { return strings.Contains(s, "cluster.writeSnapshot") }, false},
		{"group commit fdatasync dropped", -1, func(s string) bool {
			return strings.HasPrefix(s, "datasync log.(*segment).syncData < log.(*Log).syncData")
		}, true},
		{"dir sync of the first segment dropped", -1, func(s string) bool { return strings.HasPrefix(s, "syncdir log.(*Log).load") }, true},
		{"dir sync of the metadata log's dir dropped", -1, func(s string) bool { return strings.HasPrefix(s, "syncdir fs.MkdirAll < log.Open") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			reached := map[string]int{}
			for _, crashAfter := range []int{1, 4, len(metadataChanges)} {
				sites, err := metadataPowerLoss(t, tc.drop, tc.snapshotBytes, crashAfter)
				errs = append(errs, err)
				for s, n := range sites {
					reached[s] += n
				}
			}
			if tc.drop != nil && !slices.ContainsFunc(mapsKeys(reached), tc.drop) {
				t.Fatalf("no sync dropped: the scenario does not reach the site; sites: %v", reached)
			}
			failed := slices.ContainsFunc(errs, func(err error) bool { return err != nil })
			switch {
			case tc.caught && !failed:
				t.Fatalf("syncs dropped, and nothing noticed; sites: %v", reached)
			case tc.caught:
				for _, err := range errs {
					if err != nil {
						t.Logf("dropped: %v", err)
						break
					}
				}
			case failed:
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func mapsKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// metadataChanges are the changes the test makes, in order.
var metadataChanges = []func(s *Store) error{
	func(s *Store) error {
		_, err := s.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}, nil)
		return err
	},
	func(s *Store) error {
		_, err := s.CreateTopic("a", 2, map[string]string{"retention.ms": "5"}, nil)
		return err
	},
	func(s *Store) error { _, err := s.CreateTopic("b", 1, nil, nil); return err },
	func(s *Store) error { _, err := s.AllocateProducerID(); return err },
	func(s *Store) error { _, err := s.CreateTopic("gone", 4, nil, nil); return err },
	func(s *Store) error { _, err := s.SetPartitions("b", 3, nil); return err },
	func(s *Store) error {
		_, err := s.AlterConfigs("a", map[string]*string{"retention.ms": nil, "segment.bytes": strp("1048576")})
		return err
	},
	func(s *Store) error {
		_, err := s.AlterResourceConfigs(ConfigResource{Type: records.ResourceBroker, Name: ""}, map[string]*string{"log.retention.ms": strp("60000")})
		return err
	},
	func(s *Store) error { _, err := s.DeleteTopic("gone"); return err },
	func(s *Store) error { _, err := s.CreateTopic("gone", 1, nil, nil); return err },
	func(s *Store) error { _, err := s.ReserveProducerIDs(testNode, 0); return err },
}

// metadataPowerLoss makes the first crashAfter changes (with snapshots as
// Options.SnapshotBytes says), loses power,
// reopens, checks, makes the rest, loses power again and checks. It
// returns the sync sites reached and the first violation.
func metadataPowerLoss(t *testing.T, drop func(string) bool, snapshotBytes int64, crashAfter int) (map[string]int, error) {
	root := filepath.Join(t.TempDir(), "gen0")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	sites := map[string]int{}
	var want *Image
	changes := [][]func(*Store) error{metadataChanges[:crashAfter], metadataChanges[crashAfter:]}
	for gen, batch := range changes {
		m, s, err := openCrashStore(cfs, snapshotBytes)
		if err != nil {
			return sites, fmt.Errorf("power loss %d: %w", gen, err)
		}
		if gen > 0 {
			// The image of the last acknowledged change before the
			// power went.
			if err := imagesEqual(want, s.Image()); err != nil {
				m.Close()
				return sites, fmt.Errorf("after power loss %d (at change %d): %w", gen, crashAfter, err)
			}
		}
		for i, c := range batch {
			if err := c(s); err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
		want = s.Image()
		// The power goes: no Close, nothing more reaches the disk.
		dst := filepath.Join(t.TempDir(), fmt.Sprintf("gen%d", gen+1))
		after, err := cfs.CrashClone(dst, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		for k, n := range cfs.Sites() {
			sites[k] += n
		}
		cfs = after
		cfs.SetDropSync(drop)
	}
	// The second power loss.
	m, s, err := openCrashStore(cfs, snapshotBytes)
	if err != nil {
		return sites, fmt.Errorf("power loss 2: %w", err)
	}
	defer m.Close()
	if err := imagesEqual(want, s.Image()); err != nil {
		return sites, fmt.Errorf("after power loss 2: %w", err)
	}
	return sites, nil
}

// openCrashStore opens the metadata log as a node does, through the log
// manager of its log dir (the broker's Internal), and the store on it.
func openCrashStore(cfs *fs.CrashFS, snapshotBytes int64) (*log.Manager, *Store, error) {
	m, err := log.OpenManager(log.ManagerConfig{
		Dirs:      []string{filepath.Join(cfs.Root(), "data")},
		FS:        cfs,
		ConfigFor: func(log.TopicPartition) log.Config { return metaLogConfig() },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open log dir: %w", err)
	}
	l, err := m.GetOrCreate(MetadataTopic, metaLogConfig())
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open metadata log: %w", err)
	}
	s, err := Open(l, Options{NodeID: testNode, SnapshotBytes: snapshotBytes})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return m, s, nil
}

func imagesEqual(want, got *Image) error {
	if want.EndOffset != got.EndOffset || want.ProducerIDsEnd != got.ProducerIDsEnd || !reflect.DeepEqual(want.Records(), got.Records()) {
		return fmt.Errorf("image of the last acknowledged change lost:\n got %s\nwant %s", dump(got), dump(want))
	}
	return nil
}
