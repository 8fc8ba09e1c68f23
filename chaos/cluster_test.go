package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envInt reads an integer setting of the cluster test, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// TestClusterRun is the three-node CI run: three strata serve processes,
// 30 s of kill -9 and SIGSTOP on victims picked by every rule (any node,
// the leader of the busiest partition, the active controller), and, where
// network namespaces can be made (root, ip, iptables), cut and isolate
// too, and where a tmpfs can be mounted (root), a full disk. Like TestShortRun it asserts safety only: no anomaly, replicas
// equal on disk up to the HW; writability gaps are logged, not asserted.
//
// The topic has 3 replicas with min.insync.replicas 2;
// STRATA_CHAOS_RF and STRATA_CHAOS_MIN_ISR run the same test otherwise:
//
//	STRATA_CHAOS_RF=1 STRATA_CHAOS_MIN_ISR=1 go test ./chaos -run TestClusterRun -v
func TestClusterRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three strata serve processes under faults for about 45 s; skipped with -short")
	}
	rf := envInt(t, "STRATA_CHAOS_RF", 3)
	minISR := envInt(t, "STRATA_CHAOS_MIN_ISR", 2)
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mix := "kill,pause,cut,isolate"
	if err := LabAvailable(); err != nil {
		t.Logf("network nemeses skipped: %v", err)
		mix = "kill,pause"
	}
	if err := probeDisks(t.TempDir()); err != nil {
		t.Logf("diskfull skipped: %v", err)
	} else {
		mix += ",diskfull"
	}
	ms, err := ParseMix(mix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name())
	}
	// Seed 11 plans 7 faults in 30 s with each mix (kill,pause;
	// kill,pause,cut,isolate; either with diskfull, once), every nemesis
	// and every victim rule among them (TestPlanVictims keeps plans stable).
	const seed, dur = 11, 30 * time.Second
	sched := Schedule{QuietMin: time.Second, QuietMax: 3 * time.Second, HoldMin: time.Second, HoldMax: 4 * time.Second}
	victims := []string{VictimAny, VictimLeader, VictimController}
	plan := sched.PlanVictims(seed, dur, names, victims)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, events, err := Run(ctx, Config{
		Bin: bin, Dir: t.TempDir(), Seed: seed, Duration: dur, Nemeses: ms, Schedule: sched,
		Nodes: 3, RF: rf, MinISR: minISR, Victims: victims, DiskSize: 64 << 20,
		Partitions: 6, Producers: 2, Rate: 100, Assigned: 1, Grouped: 2,
		Logf: t.Logf,
	})
	if res != nil {
		t.Logf("seed %d, nemeses %s, rf %d:\n%s", seed, mix, rf, res.Table(10))
	}
	if err != nil || res == nil || !res.OK() {
		f := filepath.Join(os.TempDir(), "strata-chaos-"+t.Name()+".jsonl")
		if out, ferr := os.Create(f); ferr == nil {
			_ = WriteJSONL(out, events)
			out.Close()
			t.Logf("history saved to %s", f)
		}
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !res.OK() {
		t.Errorf("anomalies with seed %d, nemeses %s (see the table above)", seed, mix)
	}
	if len(plan) < 6 || res.Faults != 2*len(plan) || len(res.Gaps) != len(plan) {
		t.Errorf("%d nemesis events and %d gaps for %d planned faults", res.Faults, len(res.Gaps), len(plan))
	}
	if res.PartitionsAcked != 6 || res.ReplicaChecks != 6 {
		t.Errorf("acks on %d of 6 partitions, replicas compared for %d", res.PartitionsAcked, res.ReplicaChecks)
	}
	// The roles were resolved from Metadata at fault time, not drawn (a
	// lookup that failed, say during an election, says so and counts).
	var starts []string
	for _, e := range events {
		if e.Kind == KindNemesis && strings.HasPrefix(e.Info, "start ") {
			starts = append(starts, e.Info)
		}
	}
	joined := strings.Join(starts, "\n")
	for _, want := range [][]string{{"(leader ", "(leader unknown"}, {"(active controller ", "(controller unknown"}, {"(any)"}} {
		found := false
		for _, w := range want {
			found = found || strings.Contains(joined, w)
		}
		if !found {
			t.Errorf("no fault resolved to %q:\n%s", want[0], joined)
		}
	}
	// The disks are unmounted.
	for _, m := range chaosMounts() {
		if m.pid == os.Getpid() {
			t.Errorf("disk left mounted: %s", m.dir)
		}
	}
	// The lab is gone: no bridge of this process is left.
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output(); err == nil {
		if s := string(out); strings.Contains(s, fmt.Sprintf("%s%d ", labAliasPrefix, os.Getpid())) || strings.HasSuffix(strings.TrimSpace(s), fmt.Sprintf("%s%d", labAliasPrefix, os.Getpid())) {
			t.Errorf("lab bridge left behind:\n%s", s)
		}
	}
}

// probeDisks says whether Run can mount the diskfull nemesis's disks here
// (root, and mount(2) allowed), by mounting one under dir and unmounting it.
func probeDisks(dir string) error {
	d, err := MountDisks([]string{filepath.Join(dir, "probe")}, 1<<20)
	if err != nil {
		return err
	}
	return d.Close()
}
