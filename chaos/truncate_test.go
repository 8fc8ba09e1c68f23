package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// truncateNemesis SIGKILLs the node and cuts the newest segment of one
// partition to half its length before the restart: what a disk that lied
// about a write would do. It exists to show that the harness end to end
// (history, heal, final read, checker) catches lost acknowledged records,
// so that a clean TestShortRun means something.
type truncateNemesis struct{ part int }

func (truncateNemesis) Name() string { return "truncate" }

func (m truncateNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	n := t.Nodes()[victim]
	n.Kill()
	heal := func(ctx context.Context) error { return n.Start(ctx) }
	segs, _ := filepath.Glob(filepath.Join(n.Dir, fmt.Sprintf("chaos-%d", m.part), "*.log"))
	if len(segs) == 0 {
		return heal, fmt.Errorf("no segment of partition %d in %s", m.part, n.Dir)
	}
	sort.Strings(segs)
	seg := segs[len(segs)-1]
	fi, err := os.Stat(seg)
	if err != nil {
		return heal, err
	}
	if err := os.Truncate(seg, fi.Size()/2); err != nil {
		return heal, err
	}
	return heal, fmt.Errorf("truncated %s from %d to %d bytes", filepath.Base(seg), fi.Size(), fi.Size()/2)
}

func TestHarnessCatchesTruncatedLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real broker for about 15 s; skipped with -short")
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, _, err := Run(ctx, Config{
		Bin: bin, Dir: t.TempDir(), Seed: 1, Duration: 8 * time.Second, Nemeses: []Nemesis{truncateNemesis{part: 0}},
		// One fault, at 5-6 s, held 1 s: several hundred records acked on
		// partition 0 before it.
		Schedule:   Schedule{QuietMin: 5 * time.Second, QuietMax: 6 * time.Second, HoldMin: time.Second, HoldMax: time.Second},
		Partitions: 2, Producers: 2, Rate: 100, Assigned: 1, Grouped: 1,
		Logf: t.Logf,
	})
	if res == nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("run error (expected to be nil or about the truncation): %v\n%s", err, res.Table(3))
	if res.Faults != 2 {
		t.Fatalf("%d nemesis events, want the truncation and its heal", res.Faults)
	}
	if res.Count(AnomalyLost) == 0 {
		t.Errorf("half of partition 0's newest segment was cut off, yet no acknowledged record was reported lost")
	}
}
