package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Target is what nemeses act on. Today it is one node; a cluster will offer
// the same method, and nemeses that need more (the leader of a partition,
// the active controller, the links between nodes) can ask for a wider
// interface by type assertion, so that the scheduler does not change.
type Target interface {
	Nodes() []*Node
}

// SingleNode is a Target of one node.
type SingleNode struct{ Node *Node }

func (s SingleNode) Nodes() []*Node { return []*Node{s.Node} }

// Heal undoes one injected fault: restart the killed process, SIGCONT the
// paused one, and later remove the iptables rule or free the filled disk.
type Heal func(ctx context.Context) error

// Nemesis injects one kind of fault. Inject picks its victim with rng, so a
// seed reproduces the choice, and returns a description for the history and
// the Heal that ends the fault. Nemeses are used by one goroutine at a time.
//
// Network cuts (iptables DROP in a network namespace, or a TCP proxy that
// the clients dial instead of the node) and disk full (the log dir on a
// small tmpfs, filled by a ballast file) fit the same shape: Inject adds the
// rule or the ballast, Heal removes it.
type Nemesis interface {
	Name() string
	Inject(ctx context.Context, t Target, rng *rand.Rand) (desc string, heal Heal, err error)
}

func pickNode(t Target, rng *rand.Rand) (*Node, int) {
	ns := t.Nodes()
	i := rng.IntN(len(ns))
	return ns[i], i
}

// KillNemesis SIGKILLs a node and restarts it when healed. A SIGKILL keeps
// the page cache, so in strata's default page-cache mode a single node must
// still keep every acknowledged record (Kafka's durability on one node rests
// on the same fact); losing the machine's power is another fault.
type KillNemesis struct{}

func (KillNemesis) Name() string { return "kill" }

func (KillNemesis) Inject(ctx context.Context, t Target, rng *rand.Rand) (string, Heal, error) {
	n, i := pickNode(t, rng)
	n.Kill()
	return fmt.Sprintf("kill -9 node %d", i), func(ctx context.Context) error { return n.Start(ctx) }, nil
}

// TermNemesis stops a node with SIGTERM (a controlled shutdown: in-flight
// requests finish, logs are flushed) and restarts it when healed.
type TermNemesis struct{ Wait time.Duration }

func (TermNemesis) Name() string { return "term" }

func (m TermNemesis) Inject(ctx context.Context, t Target, rng *rand.Rand) (string, Heal, error) {
	n, i := pickNode(t, rng)
	wait := m.Wait
	if wait == 0 {
		wait = 60 * time.Second
	}
	heal := func(ctx context.Context) error { return n.Start(ctx) }
	if err := n.Term(wait); err != nil {
		// The process is gone either way (killed after the wait); a slow or
		// failed clean shutdown is a finding, and the node still restarts.
		return fmt.Sprintf("SIGTERM node %d", i), heal, err
	}
	return fmt.Sprintf("SIGTERM node %d", i), heal, nil
}

// PauseNemesis SIGSTOPs a node and SIGCONTs it when healed: requests hang
// with their connections open, as in Jepsen's pause nemesis, and the
// clients' request timeouts and retries are exercised.
type PauseNemesis struct{}

func (PauseNemesis) Name() string { return "pause" }

func (PauseNemesis) Inject(ctx context.Context, t Target, rng *rand.Rand) (string, Heal, error) {
	n, i := pickNode(t, rng)
	if err := n.Pause(); err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("SIGSTOP node %d", i), func(context.Context) error { return n.Resume() }, nil
}

// Nemeses maps names to the nemeses built so far.
func Nemeses() map[string]Nemesis {
	return map[string]Nemesis{"kill": KillNemesis{}, "term": TermNemesis{}, "pause": PauseNemesis{}}
}

// ParseMix turns "kill,pause,term" (or "all", or "none") into nemeses.
func ParseMix(s string) ([]Nemesis, error) {
	all := Nemeses()
	if s == "none" || s == "" {
		return nil, nil
	}
	if s == "all" {
		s = "kill,pause,term"
	}
	var out []Nemesis
	for _, name := range strings.Split(s, ",") {
		m, ok := all[strings.TrimSpace(name)]
		if !ok {
			names := make([]string, 0, len(all))
			for k := range all {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("chaos: unknown nemesis %q (have %s)", name, strings.Join(names, ", "))
		}
		out = append(out, m)
	}
	return out, nil
}

// Step is one planned fault: at At after the workload starts, inject
// Nemesis on a victim chosen by a generator seeded with Pick, hold it for
// Hold, then heal it.
type Step struct {
	At, Hold time.Duration
	Nemesis  string
	Pick     uint64
}

func (s Step) String() string {
	return fmt.Sprintf("at %v %s for %v (pick %d)", s.At.Round(time.Millisecond), s.Nemesis, s.Hold.Round(time.Millisecond), s.Pick)
}

// Schedule shapes a plan: quiet time between faults and how long each is
// held, each drawn uniformly from [min, max].
type Schedule struct {
	QuietMin, QuietMax time.Duration
	HoldMin, HoldMax   time.Duration
}

// Plan draws the whole fault schedule for a run of duration from seed, up
// front, so that the same seed gives the same faults at the same planned
// times whatever the workload does. Faults start no later than duration
// minus their hold, so every fault is healed within the run.
func (s Schedule) Plan(seed uint64, duration time.Duration, names []string) []Step {
	if len(names) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	var plan []Step
	at := time.Duration(0)
	for {
		at += between(s.QuietMin, s.QuietMax)
		st := Step{At: at, Hold: between(s.HoldMin, s.HoldMax), Nemesis: names[rng.IntN(len(names))], Pick: rng.Uint64()}
		if st.At+st.Hold > duration {
			return plan
		}
		plan = append(plan, st)
		at += st.Hold
	}
}

// RunPlan executes plan against t, recording each injection and heal in h.
// Steps run at their planned time after start, or at once if the previous
// heal ran late (a slow restart on a busy machine). On ctx's end it heals
// the active fault and returns. Errors of injection or healing are recorded
// and the first one is returned at the end; a node that cannot be started
// again stops the plan, since every later fault would be meaningless.
func RunPlan(ctx context.Context, start time.Time, plan []Step, ms []Nemesis, t Target, h *History) error {
	byName := map[string]Nemesis{}
	for _, m := range ms {
		byName[m.Name()] = m
	}
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
		h.Add(Event{Kind: KindInfo, Proc: "nemesis", Part: -1, Off: -1, Err: err.Error()})
	}
	sleep := func(until time.Time) bool {
		select {
		case <-time.After(time.Until(until)):
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, st := range plan {
		if !sleep(start.Add(st.At)) {
			return first
		}
		for _, n := range t.Nodes() {
			if dead, out := n.Exited(); dead {
				note(fmt.Errorf("chaos: broker exited on its own before %s: %s", st, out))
				return first
			}
		}
		m := byName[st.Nemesis]
		desc, heal, err := m.Inject(ctx, t, rand.New(rand.NewPCG(st.Pick, 0)))
		h.Add(Event{Kind: KindNemesis, Proc: "nemesis", Part: -1, Off: -1, Info: "start " + desc})
		if err != nil {
			note(fmt.Errorf("%s: %w", desc, err))
		}
		if heal == nil {
			continue
		}
		held := sleep(time.Now().Add(st.Hold))
		// Heal even when ctx is done, with a fresh bound, so that no run ends
		// with a stopped or dead broker.
		hctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err = heal(hctx)
		cancel()
		h.Add(Event{Kind: KindNemesis, Proc: "nemesis", Part: -1, Off: -1, Info: "heal " + desc})
		if err != nil {
			note(fmt.Errorf("heal %s: %w", desc, err))
			return first
		}
		if !held {
			return first
		}
	}
	return first
}
