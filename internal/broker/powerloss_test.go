package broker

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/fs"
)

// TestPowerLossProducerState: idempotent producers append with
// flush.messages=1 across rolls (which write producer-state snapshots), the
// power goes at a random point, and the reopened broker must know every
// producer's last acknowledged batch: its retry is a duplicate at the same
// offset, and the next sequence is accepted at the log end. The
// "snapshot-syncs-dropped" variant deletes the snapshots' fsyncs (file and
// directory): snapshots then vanish or come back empty, and the broker must
// fall back to an older one or to replaying the log, so the same checks
// hold. STRATA_POWERLOSS_SEEDS sets the seeds (default 6).
func TestPowerLossProducerState(t *testing.T) {
	seeds := 6
	if s := os.Getenv("STRATA_POWERLOSS_SEEDS"); s != "" {
		var err error
		if seeds, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	snapshotSync := func(site string) bool { return strings.Contains(site, "broker.(*Partition).writeSnapshotSnapLocked") }
	for _, variant := range []struct {
		name string
		drop func(string) bool
	}{{"all-syncs", nil}, {"snapshot-syncs-dropped", snapshotSync}} {
		t.Run(variant.name, func(t *testing.T) {
			hits := 0
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				sites, err := producerPowerLoss(t, seed, variant.drop)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				for s, n := range sites {
					if snapshotSync(s) {
						hits += n
					}
				}
			}
			if hits == 0 {
				t.Fatal("no producer-state snapshot was synced: the scenario does not reach them")
			}
		})
	}
}

type producerAck struct {
	seq, n int32
	offset int64
}

func producerPowerLoss(t *testing.T, seed uint64, drop func(string) bool) (map[string]int, error) {
	rng := rand.New(rand.NewPCG(seed, 42))
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
	p, err := b.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int64{7, 1000, 31337}
	last := map[int64]producerAck{}
	next := map[int64]int32{}
	for range 20 + rng.IntN(150) {
		pid := pids[rng.IntN(len(pids))]
		n := int32(1 + rng.IntN(3))
		res := appendBatch(t, p, producerBatch(t, pid, 0, next[pid], int(n)))
		last[pid] = producerAck{next[pid], n, res.BaseOffset}
		next[pid] += n
	}
	var tear *rand.Rand
	if seed%2 == 0 {
		tear = rng
	}
	dst := filepath.Join(t.TempDir(), "gen1")
	after, err := cfs.CrashClone(dst, tear)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	sites := cfs.Sites()
	after.SetDropSync(drop)
	b2, err := Open(Config{LogDirs: []string{filepath.Join(dst, "data")}, Manager: quietManager(after)})
	if err != nil {
		return sites, fmt.Errorf("reopen after power loss: %w", err)
	}
	defer b2.Close()
	p2, err := b2.CreatePartition(testTP, cfg)
	if err != nil {
		return sites, err
	}
	for pid, a := range last {
		res, err := p2.Append(producerBatch(t, pid, 0, a.seq, int(a.n)), 1<<20, false)
		if err != nil || !res.Duplicate || res.BaseOffset != a.offset {
			return sites, fmt.Errorf("producer %d: retry of its last acknowledged batch (seq %d at %d): %+v, %v", pid, a.seq, a.offset, res, err)
		}
	}
	for pid, seq := range next {
		leo := p2.Log.LogEndOffset()
		res, err := p2.Append(producerBatch(t, pid, 0, seq, 1), 1<<20, false)
		if err != nil || res.Duplicate || res.BaseOffset != leo {
			return sites, fmt.Errorf("producer %d: next sequence %d after power loss: %+v, %v (log end %d)", pid, seq, res, err, leo)
		}
	}
	return sites, nil
}
