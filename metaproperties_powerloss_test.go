package strata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// TestPowerLossMetaProperties: a node's first start writes meta.properties
// (its cluster id) into a log dir it creates, then opens the log dir and
// takes an acknowledged write in fsync mode (as the metadata log's first
// change is); the power goes. The rebooted node must find the same cluster
// id and the write. Without meta.properties a node would make up a new
// cluster id; with an empty one it would not start. The file's sync and
// the log dir's sync in its parent are dropped in turn and must fail.
//
// The directory sync after the rename is defence in depth, and dropping it
// must not fail: the next change of the log dir (here the metadata log's
// partition directory, created before its first write is acknowledged;
// else the periodic recovery-point checkpoint) syncs the log dir, which
// makes the rename durable with it.
func TestPowerLossMetaProperties(t *testing.T) {
	for _, tc := range []struct {
		name   string
		site   string // the syncs dropped, "" for none
		caught bool
	}{
		{"all syncs", "", false},
		{"file sync dropped", "sync fs.WriteAtomic < strata.loadMetaProperties", true},
		{"dir sync dropped", "syncdir fs.WriteAtomic < strata.loadMetaProperties", false},
		{"log dir's sync in its parent dropped", "syncdir fs.MkdirAll < strata.loadMetaProperties", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reached atomic.Int64 // drop runs under two CrashFS's locks
			drop := func(s string) bool {
				if tc.site != "" && strings.HasPrefix(s, tc.site) {
					reached.Add(1)
					return true
				}
				return false
			}
			err := metaPropertiesPowerLoss(t, drop)
			switch {
			case tc.site != "" && reached.Load() == 0:
				t.Fatalf("no %q: the scenario does not reach it", tc.site)
			case !tc.caught && err != nil:
				t.Fatal(err)
			case !tc.caught:
			case err == nil:
				t.Fatalf("%q dropped, and nothing noticed", tc.site)
			default:
				t.Logf("dropped: %v", err)
			}
		})
	}
}

func metaPropertiesPowerLoss(t *testing.T, drop func(string) bool) error {
	root := filepath.Join(t.TempDir(), "gen0")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	logDir := filepath.Join(root, "node", "data") // neither exists yet
	id, err := loadMetaProperties(cfs, logDir, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := log.DefaultConfig()
	cfg.FlushMessages = 1
	m, err := log.OpenManager(log.ManagerConfig{Dirs: []string{logDir}, FS: cfs})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.GetOrCreate(log.TopicPartition{Topic: "__cluster_metadata", Partition: 0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte("first change")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(b, 0); err != nil {
		t.Fatal(err)
	}

	after, err := cfs.CrashClone(filepath.Join(t.TempDir(), "gen1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	logDir = filepath.Join(after.Root(), "node", "data")
	got, err := loadMetaProperties(after, logDir, 1, "")
	if err != nil {
		return fmt.Errorf("after power loss: %w", err)
	}
	if got != id {
		return fmt.Errorf("cluster id %s after power loss, was %s", got, id)
	}
	m2, err := log.OpenManager(log.ManagerConfig{Dirs: []string{logDir}, FS: after})
	if err != nil {
		return fmt.Errorf("reopen log dir after power loss: %w", err)
	}
	defer m2.Close()
	l2, err := m2.GetOrCreate(log.TopicPartition{Topic: "__cluster_metadata", Partition: 0}, cfg)
	if err != nil {
		return err
	}
	if end := l2.LogEndOffset(); end != 1 {
		return fmt.Errorf("log end offset %d after power loss: the acknowledged write is lost", end)
	}
	return nil
}
