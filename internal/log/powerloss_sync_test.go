package log

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/fs"
)

// syncSite is one fsync call on the log's write path, named by the
// CrashFS call-site chain it appears under (substrings that must all match),
// and the power-loss scenario that must fail once the call is dropped.
type syncSite struct {
	name  string
	match []string
	// run returns the scenario's violation (nil: it held) and the sites
	// it saw.
	run func(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error)
	// scripted: the scenario is not TestPowerLoss, so it is also run
	// with nothing dropped and must pass.
	scripted bool
}

func powerScenario(fsync bool, cycles int) func(*testing.T, uint64, func(string) bool) (map[string]int, error) {
	return func(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
		// Strict crashes: exactly the synced state, so a dropped sync
		// loses all it covered.
		return runPowerLoss(t, seed, fsync, true, cycles, drop)
	}
}

// logSyncSites lists every sync of the log package's write path. Docs:
// docs/RELIABILITY.md has the same table.
var logSyncSites = []syncSite{
	{"segment fdatasync, group commit", []string{"datasync log.(*segment).syncData < log.(*Log).syncData"}, powerScenario(true, 2), false},
	{"segment fdatasync, flush (roll, flush.ms, Close)", []string{"datasync log.(*segment).syncData < log.(*segment).flush < log.(*Log).flushTo"}, powerScenario(false, 2), false},
	{"index fsync, flush (roll, flush.ms, Close)", []string{"sync log.(*index).flush < log.(*segment).flush < log.(*Log).flushTo"}, powerScenario(true, 2), false},
	{"index fsync after recovery", []string{"sync log.(*index).flush < log.(*segment).flush < log.(*Log).recoverUnflushed"}, recoveryFlushScenario, true},
	{"dir fsync after creating a segment (roll)", []string{"syncdir log.(*Log).newActiveSegment"}, powerScenario(true, 1), false},
	{"dir fsync after creating a log dir", []string{"syncdir fs.MkdirAll < log.(*Manager).loadDir"}, powerScenario(true, 1), false},
	{"dir fsync after creating a partition dir", []string{"syncdir fs.MkdirAll < log.Open"}, newPartitionScenario, true},
	{"dir fsync after a new log's first segment", []string{"syncdir log.(*Log).load"}, newPartitionScenario, true},
	{"dir fsync after removing the clean-shutdown marker", []string{"syncdir log.(*Manager).loadDir"}, markerScenario, true},
	{"index fsync after rebuilding a closed segment's indexes", []string{"sync log.(*index).flush < log.(*segment).rebuildIndexes"}, rebuildScenario, true},
}

// rebuildScenario: a closed segment's offset index fails the sanity check
// (an entry past the end of the segment), so opening the segment rebuilds
// both indexes into new files; a roll then syncs the directory, and the
// power goes. The rebuilt files must have been synced: empty, they would
// pass the sanity check.
func rebuildScenario(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
	h := newScenario(t, seed, drop)
	m := h.open(t)
	l, err := m.GetOrCreate(powerTPs[0], powerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	h.fill(t, l, 2)
	first := l.SegmentBaseOffsets()[0]
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	bad := []byte{0, 0, 0, 1, 0, 1, 0, 0} // offset base+1 at position 65536
	index := filepath.Join(h.root, "data", powerTPs[0].String(), segmentName(first)+indexSuffix)
	if err := os.WriteFile(index, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	// The corruption is on disk before the model starts.
	cfs, err := fs.NewCrashFS(h.root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	h.cfs = cfs
	m = h.open(t)
	l = m.Get(powerTPs[0])
	if _, err := checkLog(l, 0); err != nil { // opens, so rebuilds, segment first
		t.Fatal(err)
	}
	h.fill(t, l, 1)
	h.crash(t, m)
	m = h.open(t)
	defer m.Close()
	_, err = checkLog(m.Get(powerTPs[0]), 0)
	return h.sites, err
}

// rollFlushSite is the background flush a roll starts. Dropping it
// emulates a power loss before that flush ran (a window that is short and
// timing-dependent): the scenarios below use that so that they need no
// luck. It does not by itself break what they check while the recovery
// point checkpoint is not rewritten after it.
const rollFlushSite = "log.(*Log).roll.func1"

// recoveryFlushScenario: rolled segments whose roll flush never ran (index
// files never synced), a power loss, recovery (which rebuilds those
// indexes and moves the recovery point past them), a checkpoint, and a
// second power loss. The second open trusts everything below the recovery
// point, so the rebuilt indexes must have been synced.
func recoveryFlushScenario(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
	h := newScenario(t, seed, func(s string) bool { return strings.Contains(s, rollFlushSite) || drop(s) })
	m := h.open(t)
	l, err := m.GetOrCreate(powerTPs[0], powerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	h.fill(t, l, 3)
	h.crash(t, m)
	m = h.open(t) // recovers from offset 0: no checkpoint yet
	if err := m.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	h.crash(t, m)
	m = h.open(t)
	defer m.Close()
	_, err = checkLog(m.Get(powerTPs[0]), 0)
	return h.sites, err
}

// markerScenario: a clean shutdown, a restart (which removes the marker),
// rolls whose flushes never ran, a power loss. The marker must not come
// back, or the next start trusts the unflushed segments.
func markerScenario(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
	h := newScenario(t, seed, func(s string) bool { return strings.Contains(s, rollFlushSite) || drop(s) })
	m := h.open(t)
	l, err := m.GetOrCreate(powerTPs[0], powerConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	h.fill(t, l, 1)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = h.open(t)
	h.fill(t, m.Get(powerTPs[0]), 3)
	h.crash(t, m)
	m = h.open(t)
	defer m.Close()
	_, err = checkLog(m.Get(powerTPs[0]), 0)
	return h.sites, err
}

// scenario runs a scripted sequence of opens and strict power losses.
type scenario struct {
	rng   *rand.Rand
	drop  func(string) bool
	cfs   *fs.CrashFS
	root  string
	sites map[string]int
	ts    int64
}

func newScenario(t *testing.T, seed uint64, drop func(string) bool) *scenario {
	root := t.TempDir()
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	return &scenario{rng: rand.New(rand.NewPCG(seed, 7)), drop: drop, cfs: cfs, root: root, sites: map[string]int{}, ts: 1_700_000_000_000}
}

func (h *scenario) open(t *testing.T) *Manager {
	m, err := OpenManager(ManagerConfig{Dirs: []string{filepath.Join(h.root, "data")}, FS: h.cfs,
		ConfigFor: func(TopicPartition) Config { return powerConfig(true) }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fill appends until the log has rolled n times.
func (h *scenario) fill(t *testing.T, l *Log, n int) {
	for rolls := l.NumSegments() + n; l.NumSegments() < rolls; {
		h.ts++
		mustAppend(t, l, powerBatch(t, h.rng, h.ts))
	}
}

// crash clones the synced state, shuts the old manager down and moves to
// the clone.
func (h *scenario) crash(t *testing.T, m *Manager) {
	dst := filepath.Join(t.TempDir(), "after")
	next, err := h.cfs.CrashClone(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	for s, n := range h.cfs.Sites() {
		h.sites[s] += n
	}
	next.SetDropSync(h.drop)
	h.cfs, h.root = next, dst
}

// newPartitionScenario: a partition created, one fsynced append, power
// loss before any roll. The append must survive.
func newPartitionScenario(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
	root := t.TempDir()
	cfs, err := fs.NewCrashFS(root)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetDropSync(drop)
	m, err := OpenManager(ManagerConfig{Dirs: []string{filepath.Join(root, "data")}, FS: cfs})
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"new", int32(seed)}
	l, err := m.GetOrCreate(tp, powerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	info := mustAppend(t, l, batchOf(t, "acked", 3, 1000))
	dst := filepath.Join(t.TempDir(), "after")
	next, err := cfs.CrashClone(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	sites := cfs.Sites()
	m2, err := OpenManager(ManagerConfig{Dirs: []string{filepath.Join(dst, "data")}, FS: next})
	if err != nil {
		return sites, err
	}
	defer m2.Close()
	l2 := m2.Get(tp)
	if l2 == nil {
		return sites, fmt.Errorf("partition %s lost", tp)
	}
	if l2.LogEndOffset() <= info.LastOffset {
		return sites, fmt.Errorf("acknowledged offsets %d-%d lost: log ends at %d", info.FirstOffset, info.LastOffset, l2.LogEndOffset())
	}
	return sites, nil
}

func siteMatches(site string, match []string) bool {
	for _, m := range match {
		if !strings.Contains(site, m) {
			return false
		}
	}
	return true
}

// TestPowerLossNeedsEverySync drops one sync call site at a time (as if
// the call were deleted) and checks that a power-loss scenario then fails:
// no sync on the list is untested. The site must also be reached, so a
// renamed function cannot make the check pass vacuously. Each runs up to
// STRATA_POWERLOSS_MUTATION_SEEDS seeds (default 6) until one fails.
func TestPowerLossNeedsEverySync(t *testing.T) {
	budget := 6
	if s := os.Getenv("STRATA_POWERLOSS_MUTATION_SEEDS"); s != "" {
		fmt.Sscan(s, &budget)
	}
	for _, site := range logSyncSites {
		t.Run(site.name, func(t *testing.T) {
			if site.scripted {
				if _, err := site.run(t, 1, func(string) bool { return false }); err != nil {
					t.Fatalf("scenario fails with every sync in place: %v", err)
				}
			}
			drop := func(s string) bool { return siteMatches(s, site.match) }
			hit := 0
			for seed := uint64(1); seed <= uint64(budget); seed++ {
				sites, err := site.run(t, seed, drop)
				for s, n := range sites {
					if drop(s) {
						hit += n
					}
				}
				if err != nil {
					t.Logf("caught with seed %d: %v", seed, err)
					return
				}
			}
			if hit == 0 {
				t.Fatalf("no sync matched %q: the site moved; update the list and docs/RELIABILITY.md", site.match)
			}
			t.Fatalf("dropping %q (%d calls) went unnoticed in %d seeds", site.match, hit, budget)
		})
	}
}
