package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/log"
)

// Sync sites of leader-epoch-checkpoint (fs.WriteAtomic's "sync" of the
// temporary file and "syncdir" after the rename), by the function that
// writes the checkpoint.
const (
	epochSiteBecomeLeader = "broker.(*Partition).becomeLeaderLocked"
	epochSiteFollower     = "broker.(*Partition).writeEpochsLocked < broker.(*Partition).AppendAsFollower"
	epochSiteTruncate     = "broker.(*Partition).writeEpochsLocked < broker.(*Partition).afterTruncateLocked"
	epochSiteLoad         = "broker.(*Partition).loadEpochsLocked"
)

// dropSite drops the syncs of op ("sync" or "syncdir") whose call chain
// contains site.
func dropSite(op, site string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, op+" ") && strings.Contains(s, site) }
}

// TestPowerLossEpochCheckpoint: leader-epoch-checkpoint is the only record
// of where each leader epoch starts. Loading trims it to the log (entries
// above the log end or below its start) but rebuilds nothing from the
// batches' partition leader epochs, so an epoch whose entry is lost is
// gone: after a reboot the partition leads in an older epoch, and
// OffsetForLeaderEpoch answers the older epoch's end offset with the log end,
// so a follower that diverged in that epoch keeps its diverged tail. Hence
// BecomeLeader and AppendAsFollower write the checkpoint durably before the
// first batch of a new epoch. Each case below drops one sync and must fail;
// with every sync in place they pass.
//
// The other writers are defence in depth, and dropping their syncs must
// not fail: the first checkpoint of a new partition (epoch 0 at the log
// start offset, which loading writes again when the file is missing or
// unreadable), and a follower's truncation (the entries it removes lie at
// or above the new log end, which loading trims: truncateFromEnd).
func TestPowerLossEpochCheckpoint(t *testing.T) {
	leaderCase := func(t *testing.T, drop func(string) bool) error {
		return epochLeaderPowerLoss(t, drop)
	}
	// The leader of the follower cases: epoch 0, then epoch 3.
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	for i := 0; i < 4; i++ {
		appendBatch(t, leader, producerBatch(t, 0, 0, 0, 2))
	}
	if err := leader.BecomeLeader(3); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		appendBatch(t, leader, producerBatch(t, 0, 0, 0, 2))
	}
	followerCase := func(t *testing.T, drop func(string) bool) error {
		return epochFollowerPowerLoss(t, leader, drop)
	}

	for _, tc := range []struct {
		name     string
		scenario func(*testing.T, func(string) bool) error
		op, site string // the syncs dropped; none if site is ""
		caught   bool
	}{
		{"leader, all syncs", leaderCase, "", "", false},
		{"follower, all syncs", followerCase, "", "", false},
		{"BecomeLeader, file sync dropped", leaderCase, "sync", epochSiteBecomeLeader, true},
		{"BecomeLeader, dir sync dropped", leaderCase, "syncdir", epochSiteBecomeLeader, true},
		{"AppendAsFollower, file sync dropped", followerCase, "sync", epochSiteFollower, true},
		{"AppendAsFollower, dir sync dropped", followerCase, "syncdir", epochSiteFollower, true},
		{"new partition, file sync dropped", leaderCase, "sync", epochSiteLoad, false},
		{"new partition, dir sync dropped", leaderCase, "syncdir", epochSiteLoad, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drop func(string) bool
			var reached atomic.Int64 // drop runs under two CrashFS's locks
			if tc.site != "" {
				d := dropSite(tc.op, tc.site)
				drop = func(s string) bool {
					if d(s) {
						reached.Add(1)
						return true
					}
					return false
				}
			}
			err := tc.scenario(t, drop)
			if tc.site != "" && reached.Load() == 0 {
				t.Fatalf("no %s at %s: the scenario does not reach it", tc.op, tc.site)
			}
			switch {
			case tc.caught && err == nil:
				t.Fatalf("%s at %s dropped, and nothing noticed", tc.op, tc.site)
			case tc.caught:
				t.Logf("%s dropped: %v", tc.op, err)
			case err != nil:
				t.Fatal(err)
			}
		})
	}

	// No case drops the syncs of the checkpoint a follower's truncation
	// writes: they are needed, but no scenario catches their loss every
	// time. Dropped, the new file's rename can still become durable
	// through a later sync of the partition's directory by another
	// write, while its content is not: epoch entries below the
	// truncation point are lost. An earlier version of this test claimed
	// the drop harmless and failed about one run in ten.
}

// crashBroker opens a broker on a CrashFS under a new directory, dropping
// the syncs drop names.
func crashBroker(t *testing.T, drop func(string) bool) (*fs.CrashFS, *Broker, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "gen0")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	b, err := Open(Config{LogDirs: []string{filepath.Join(root, "data")}, Manager: quietManager(cfs)})
	if err != nil {
		t.Fatal(err)
	}
	return cfs, b, root
}

// powerLoss clones the synced state of cfs (strictly: nothing unsynced
// survives) and opens a broker on it, as the rebooted machine.
func powerLoss(t *testing.T, cfs *fs.CrashFS, drop func(string) bool) (*Broker, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "gen1")
	after, err := cfs.CrashClone(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	after.SetDropSync(drop)
	b, err := Open(Config{LogDirs: []string{filepath.Join(dst, "data")}, Manager: quietManager(after)})
	if err != nil {
		return nil, fmt.Errorf("reopen after power loss: %w", err)
	}
	return b, nil
}

func fsyncMode() log.Config {
	cfg := log.DefaultConfig()
	cfg.FlushMessages = 1
	return cfg
}

// epochLeaderPowerLoss: a partition in fsync mode takes acknowledged
// batches in epoch 0, becomes leader in epoch 3 and takes more; the power
// goes. The rebooted partition must lead in epoch 3 and answer
// OffsetForLeaderEpoch as before.
func epochLeaderPowerLoss(t *testing.T, drop func(string) bool) error {
	cfs, b, _ := crashBroker(t, drop)
	defer b.Close()
	p, err := b.CreatePartition(testTP, fsyncMode())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
	}
	start3 := p.Log.LogEndOffset()
	if err := p.BecomeLeader(3); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
	}
	end := p.Log.LogEndOffset()

	b2, err := powerLoss(t, cfs, drop)
	if err != nil {
		return err
	}
	defer closeBroker(t, b2)
	p2, err := b2.CreatePartition(testTP, fsyncMode())
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Log.LogEndOffset(); got != end {
		return fmt.Errorf("log end offset %d after power loss, want %d: acknowledged batches lost", got, end)
	}
	var errs []error
	if got := p2.LeaderEpoch(); got != 3 {
		errs = append(errs, fmt.Errorf("leads in epoch %d after power loss, want 3 (epoch cache %v)", got, p2.epochs.snapshot()))
	}
	if e, off := p2.EndOffsetForEpoch(0); e != 0 || off != start3 {
		errs = append(errs, fmt.Errorf("OffsetForLeaderEpoch(0) = epoch %d end %d, want epoch 0 end %d", e, off, start3))
	}
	if e, off := p2.EndOffsetForEpoch(3); e != 3 || off != end {
		errs = append(errs, fmt.Errorf("OffsetForLeaderEpoch(3) = epoch %d end %d, want epoch 3 end %d", e, off, end))
	}
	return errors.Join(errs...)
}

// epochFollowerPowerLoss: a follower in fsync mode fetches leader's log
// (epochs 0 and 3); the power goes. The rebooted follower must have the
// leader's epoch cache: it is what it sends as its last fetched epoch and
// what it answers OffsetForLeaderEpoch with once it leads.
func epochFollowerPowerLoss(t *testing.T, leader *Partition, drop func(string) bool) error {
	cfs, b, _ := crashBroker(t, drop)
	defer b.Close()
	p, err := b.CreatePartition(testTP, fsyncMode())
	if err != nil {
		t.Fatal(err)
	}
	end := leader.Log.LogEndOffset()
	copyToFollower(t, leader, p, end)

	b2, err := powerLoss(t, cfs, drop)
	if err != nil {
		return err
	}
	defer closeBroker(t, b2)
	p2, err := b2.CreatePartition(testTP, fsyncMode())
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Log.LogEndOffset(); got != end {
		return fmt.Errorf("log end offset %d after power loss, want %d: fetched batches lost", got, end)
	}
	if got, want := p2.epochs.snapshot(), leader.epochs.snapshot(); !slices.Equal(got, want) {
		e, off := p2.EndOffsetForEpoch(0)
		we, woff := leader.EndOffsetForEpoch(0)
		return fmt.Errorf("epoch cache %v after power loss, the leader's is %v: OffsetForLeaderEpoch(0) = epoch %d end %d, the leader answers epoch %d end %d", got, want, e, off, we, woff)
	}
	return nil
}

// quietManager is the log manager config of the power-loss scenarios: its
// background flushes, checkpoints and retention wait an hour, so that what
// is durable when the power goes is what the scenario synced, not what a
// timer happened to sync meanwhile (a background flush syncs directories
// too, and made the scenarios that must notice a dropped sync pass about
// one run in a hundred).
func quietManager(fsys fs.FS) log.ManagerConfig {
	return log.ManagerConfig{FS: fsys, CheckpointInterval: time.Hour, FlushCheckInterval: time.Hour, RetentionCheckInterval: time.Hour}
}
