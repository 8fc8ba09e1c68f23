package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShortRun is the suite's CI run: one node, fixed seeds, each nemesis
// on its own and then together, about a minute and a half in all on the
// shared 2-core machine. It asserts safety only (no lost acknowledged
// record, no duplicate, no inconsistent offset, order kept, no poll-skip or
// nonmonotonic poll), never availability: a slow machine makes acks late,
// not wrong. The default page-cache mode is enough here because SIGKILL
// and SIGSTOP leave the page cache intact; losing unsynced bytes (power
// loss) needs the crashable file system, not a process nemesis.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real broker under kill -9, SIGSTOP and SIGTERM for about 90 s; skipped with -short")
	}
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Faults every 1-3 s, held 1-4 s: three or four per subtest. Seed 6
	// plans pause, kill, term and kill for "all".
	sched := Schedule{QuietMin: time.Second, QuietMax: 3 * time.Second, HoldMin: time.Second, HoldMax: 4 * time.Second}
	for _, tc := range []struct {
		mix  string
		seed uint64
		dur  time.Duration
	}{
		{"kill", 1, 15 * time.Second},
		{"pause", 2, 15 * time.Second},
		{"term", 3, 15 * time.Second},
		{"all", 6, 20 * time.Second},
	} {
		t.Run(tc.mix, func(t *testing.T) {
			ms, err := ParseMix(tc.mix)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var names []string
			for _, m := range ms {
				names = append(names, m.Name())
			}
			plan := sched.Plan(tc.seed, tc.dur, names)
			res, events, err := Run(ctx, Config{
				Bin: bin, Dir: t.TempDir(), Seed: tc.seed, Duration: tc.dur, Nemeses: ms, Schedule: sched,
				Partitions: 6, Producers: 3, Rate: 100, Assigned: 1, Grouped: 2,
				Logf: t.Logf,
			})
			if res != nil {
				t.Logf("seed %d, nemeses %s:\n%s", tc.seed, tc.mix, res.Table(10))
			}
			if err != nil || res == nil || !res.OK() || res.Faults != 2*len(plan) || res.PartitionsAcked != 6 {
				// Keep the history for replay: go run ./chaos/cmd/chaos --replay FILE
				f := filepath.Join(os.TempDir(), "strata-chaos-"+strings.ReplaceAll(t.Name(), "/", "-")+".jsonl")
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
				t.Errorf("anomalies with seed %d, nemeses %s (see the table above)", tc.seed, tc.mix)
			}
			// Each planned fault is one injection and one heal event.
			if len(plan) < 3 || res.Faults != 2*len(plan) {
				t.Errorf("%d nemesis events for %d planned faults: the run did not test what it claims", res.Faults, len(plan))
			}
			if res.PartitionsAcked != 6 {
				t.Errorf("acknowledged records on %d of 6 partitions", res.PartitionsAcked)
			}
		})
	}
}

// The same seed plans the same faults; another seed, others.
func TestPlanReproducible(t *testing.T) {
	names := []string{"kill", "pause", "term"}
	a := DefaultSchedule.Plan(42, time.Minute, names)
	b := DefaultSchedule.Plan(42, time.Minute, names)
	c := DefaultSchedule.Plan(43, time.Minute, names)
	if len(a) == 0 {
		t.Fatal("empty plan for a minute")
	}
	if len(a) != len(b) {
		t.Fatalf("same seed, %d and %d steps", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, step %d differs: %v / %v", i, a[i], b[i])
		}
	}
	same := len(a) == len(c)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 42 and 43 plan the same faults")
	}
	kinds := map[string]bool{}
	for _, st := range a {
		kinds[st.Nemesis] = true
		if st.At+st.Hold > time.Minute {
			t.Errorf("step %v ends after the run", st)
		}
		if st.Hold < DefaultSchedule.HoldMin || st.Hold >= DefaultSchedule.HoldMax {
			t.Errorf("step %v held outside [%v, %v)", st, DefaultSchedule.HoldMin, DefaultSchedule.HoldMax)
		}
	}
	if len(kinds) != len(names) {
		t.Errorf("a minute of faults used only %v", kinds)
	}
}

// Victim rules are drawn from the seed too, from a second generator: the
// times, nemeses and picks of a seed stay what they were without rules, so
// old seeds still plan the same faults.
func TestPlanVictims(t *testing.T) {
	names := []string{"kill", "pause", "cut"}
	rules := []string{VictimAny, VictimLeader, VictimController}
	plain := DefaultSchedule.Plan(42, 2*time.Minute, names)
	a := DefaultSchedule.PlanVictims(42, 2*time.Minute, names, rules)
	b := DefaultSchedule.PlanVictims(42, 2*time.Minute, names, rules)
	if len(a) != len(plain) || len(a) != len(b) {
		t.Fatalf("%d, %d and %d steps", len(plain), len(a), len(b))
	}
	drawn := map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, step %d differs: %v / %v", i, a[i], b[i])
		}
		st := a[i]
		st.Victim = ""
		if st != plain[i] {
			t.Fatalf("rules changed step %d: %v, without rules %v", i, a[i], plain[i])
		}
		drawn[a[i].Victim]++
	}
	if len(drawn) != len(rules) {
		t.Errorf("two minutes of faults drew only %v", drawn)
	}
	if _, err := ParseVictims("leader,bogus"); err == nil {
		t.Error("ParseVictims accepted an unknown rule")
	}
	if vs, err := ParseVictims("all"); err != nil || len(vs) != 3 {
		t.Errorf("ParseVictims(all) = %v, %v", vs, err)
	}
}
