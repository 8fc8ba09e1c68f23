package broker

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-io/strata/internal/fs"
)

// TestPowerLossFollowerTruncation: a follower in fsync mode
// (flush.messages=1) that wrote records of its own as leader of an epoch
// nobody else saw truncates them, maybe fetches part of the leader's log
// again, and loses power. After the reboot its log is a prefix of the
// leader's (the truncated records do not come back: they were fsynced, so
// only a durable truncation keeps them away), its epoch cache and producer
// state are those of a follower that fetched exactly that prefix, and
// fetching the rest converges byte for byte.
func TestPowerLossFollowerTruncation(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	_, epoch5 := leaderWithEpochs(t, leader)
	end := leader.Log.LogEndOffset()
	var bases []int64 // batch bases of epoch 5, where a refetch may stop
	for _, b := range splitBatches(t, readLog(t, leader, epoch5, end)) {
		bases = append(bases, b.BaseOffset())
	}

	for _, tc := range []struct {
		name    string
		refetch int64 // fetch again up to here before the power goes
		tear    bool
	}{
		{"right after truncation", epoch5, false},
		{"right after truncation, torn", epoch5, true},
		{"after refetching", bases[len(bases)/2], false},
		{"after refetching, torn", bases[len(bases)/2], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := followerTruncationPowerLoss(t, leader, epoch5, end, tc.refetch, tc.tear, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Without the fsync of the truncated segment, the truncated records
	// come back.
	truncateSync := func(site string) bool { return strings.Contains(site, "log.(*Log).truncateSegment") }
	if err := followerTruncationPowerLoss(t, leader, epoch5, end, epoch5, false, truncateSync); err == nil {
		t.Fatal("the truncation's fsync dropped, and nothing noticed: the test does not reach it")
	} else {
		t.Logf("truncation fsync dropped: %v", err)
	}
}

// followerTruncationPowerLoss runs one case of TestPowerLossFollowerTruncation
// against leader (epoch 5 starts at epoch5, the log ends at end), dropping
// the syncs drop names, and returns the first violation.
func followerTruncationPowerLoss(t *testing.T, leader *Partition, epoch5, end, refetch int64, tear bool, drop func(string) bool) error {
	root := filepath.Join(t.TempDir(), "gen0")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	cfg := smallSegments()
	cfg.FlushMessages = 1
	b, err := Open(Config{LogDirs: []string{filepath.Join(root, "data")}, Manager: quietManager(cfs)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := b.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	copyToFollower(t, leader, p, epoch5)
	if err := p.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 25; i++ { // several segments of its own
		appendBatch(t, p, producerBatch(t, 77, 0, 3*i, 3))
	}
	// The log dir's recovery-point checkpoint names offsets
	// above the truncation point (as the periodic checkpoint
	// may); the truncation must lower it on disk, or recovery
	// trusts what lies below it.
	if err := p.Log.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.logs.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if rp := p.Log.RecoveryPoint(); rp <= epoch5 {
		t.Fatalf("recovery point %d: the test wants it above %d", rp, epoch5)
	}
	if err := p.TruncateTo(epoch5); err != nil {
		t.Fatal(err)
	}
	copyToFollower(t, leader, p, refetch)

	var rng *rand.Rand
	if tear {
		rng = rand.New(rand.NewPCG(uint64(refetch), 7))
	}
	dst := filepath.Join(t.TempDir(), "gen1")
	after, err := cfs.CrashClone(dst, rng)
	if err != nil {
		t.Fatal(err)
	}
	after.SetDropSync(drop)
	b2, err := Open(Config{LogDirs: []string{filepath.Join(dst, "data")}, Manager: quietManager(after)})
	if err != nil {
		return fmt.Errorf("reopen after power loss: %w", err)
	}
	defer closeBroker(t, b2)
	p2, err := b2.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := stateOf(p2)
	// Everything was fsynced before the power went.
	if got.leo != refetch {
		return fmt.Errorf("log end offset %d after power loss, want %d", got.leo, refetch)
	}
	if !bytes.Equal(readLog(t, p2, 0, got.leo), readLog(t, leader, 0, got.leo)) {
		return errors.New("the log is not a prefix of the leader's")
	}
	rb := openBroker(t, t.TempDir())
	ref := partition(t, rb)
	copyToFollower(t, leader, ref, got.leo)
	want := stateOf(ref)
	closeBroker(t, rb)
	if !slices.Equal(got.epochs, want.epochs) || !slices.Equal(got.producers, want.producers) {
		return fmt.Errorf("after power loss:\n got %+v\nwant %+v", got, want)
	}
	copyToFollower(t, leader, p2, end)
	checkSameAsLeader(t, leader, p2)
	return nil
}

// TestPowerLossTruncationInsideEpoch: a follower in fsync mode truncates
// inside its latest leader epoch, below several whole segments, and loses
// power. The segments above the truncation point were renamed away for
// deletion; unless those renames are durable, the segments come back with
// valid CRCs and recovery keeps them: the diverged records are back. The
// epoch cache does not change here (no entry starts above the truncation
// point), so no leader-epoch-checkpoint write syncs the directory for the
// log, as it happens to in TestPowerLossFollowerTruncation.
//
// What keeps them away is recovery: the truncated segment ends below the
// next one's base offset, and recovery cuts the log at such a hole, but
// only above the recovery point, which the truncation lowers in the log
// dir's checkpoint (Partition.afterTruncateLocked, as Kafka's
// LogManager.truncateTo). Without that checkpoint's syncs the old recovery
// point makes recovery trust the resurrected segments: the second case
// drops them and must fail.
func TestPowerLossTruncationInsideEpoch(t *testing.T) {
	if err := truncationInsideEpochPowerLoss(t, nil); err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64 // drop runs under two CrashFS's locks
	drop := func(s string) bool {
		if strings.Contains(s, "log.writeCheckpoint") && strings.Contains(s, "broker.(*Partition).afterTruncateLocked") {
			reached.Add(1)
			return true
		}
		return false
	}
	// The drop is noticed in most runs, not all: in about 6 runs of 100
	// the truncated segments do not come back after the power loss even
	// without these syncs (the cause is not found yet; the background
	// flush, checkpoint and retention timers are ruled out, quietManager).
	// So the scenario runs up to 10 times and must notice the drop at
	// least once: all 10 missing would be about one chance in 10^12.
	for run := 1; ; run++ {
		err := truncationInsideEpochPowerLoss(t, drop)
		if reached.Load() == 0 {
			t.Fatal("the truncation wrote no recovery-point checkpoint")
		}
		if err != nil {
			t.Logf("recovery-point checkpoint syncs dropped (run %d): %v", run, err)
			return
		}
		if run == 10 {
			t.Fatal("the recovery-point checkpoint's syncs after the truncation dropped, and nothing noticed in 10 runs")
		}
	}
}

func truncationInsideEpochPowerLoss(t *testing.T, drop func(string) bool) error {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	appendBatch(t, leader, producerBatch(t, 0, 0, 0, 2))
	if err := leader.BecomeLeader(2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ { // about four segments
		appendBatch(t, leader, producerBatch(t, 0, 0, 0, 2))
	}
	end := leader.Log.LogEndOffset()
	bases := splitBatches(t, readLog(t, leader, 0, end))
	cut := bases[12].BaseOffset() // in the second segment, in epoch 2

	cfs, b, _ := crashBroker(t, drop)
	defer b.Close()
	cfg := smallSegments()
	cfg.FlushMessages = 1
	p, err := b.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	copyToFollower(t, leader, p, end)
	if segs := p.Log.SegmentBaseOffsets(); len(segs) < 3 || segs[1] > cut || segs[2] <= cut {
		t.Fatalf("segments at %v: the test wants the truncation point %d in the second", segs, cut)
	}
	// The periodic checkpoint has recorded a recovery point above the
	// truncation point.
	if err := p.Log.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.logs.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	epochs := p.epochs.snapshot()
	if err := p.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if got := p.epochs.snapshot(); !slices.Equal(got, epochs) {
		t.Fatalf("the truncation changed the epoch cache (%v to %v): the test wants it unchanged", epochs, got)
	}
	b2, err := powerLoss(t, cfs, drop)
	if err != nil {
		return err
	}
	defer closeBroker(t, b2)
	p2, err := b2.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Log.LogEndOffset(); got != cut {
		return fmt.Errorf("log end offset %d after power loss, want %d: truncated records came back", got, cut)
	}
	return nil
}
