package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Target is what nemeses act on: a Cluster of one node or more. Nemeses
// that need more than the nodes (the links between them) ask for a wider
// interface by type assertion (Cutter), so the scheduler does not change.
type Target interface {
	Nodes() []*Node
}

// Cutter is a Target whose nodes' network can be cut (a Cluster in a Lab).
type Cutter interface {
	Cut(victim int, clients bool) error
	HealCut(victim int) error
}

// Filler is a Target whose nodes' disks can be filled (a Cluster on Disks).
type Filler interface {
	FillDisk(victim int) error
	FreeDisk(victim int) error
}

// victimFinder is a Target that can name the node playing a role now.
type victimFinder interface {
	Controller(ctx context.Context) (int, string, error)
	BusiestLeader(ctx context.Context) (int, string, error)
}

// Victim rules: how a planned fault picks its node. The rule is drawn with
// the plan, from the seed; the node it names is resolved when the fault
// starts (who leads the busiest partition, who is the active controller)
// and recorded in the history.
const (
	VictimAny        = "any"        // any node, drawn
	VictimLeader     = "leader"     // the leader of the busiest partition, from Metadata
	VictimController = "controller" // the active controller, from Metadata
)

// ParseVictims turns "any,leader,controller" (or "all") into rules.
func ParseVictims(s string) ([]string, error) {
	if s == "" || s == "all" {
		return []string{VictimAny, VictimLeader, VictimController}, nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		switch r = strings.TrimSpace(r); r {
		case VictimAny, VictimLeader, VictimController:
			out = append(out, r)
		default:
			return nil, fmt.Errorf("chaos: unknown victim rule %q (have any, leader, controller)", r)
		}
	}
	return out, nil
}

// resolveVictim names the node that rule picks now. When the role has no
// known holder (no leader elected yet, metadata unreachable), it falls back
// to a drawn node and says so.
func resolveVictim(ctx context.Context, t Target, rule string, rng *rand.Rand) (int, string) {
	n := len(t.Nodes())
	drawn := rng.IntN(n)
	f, ok := t.(victimFinder)
	if rule == "" || rule == VictimAny || !ok {
		return drawn, fmt.Sprintf("node %d (any)", drawn+1)
	}
	var (
		i   int
		why string
		err error
	)
	if rule == VictimLeader {
		i, why, err = f.BusiestLeader(ctx)
	} else {
		i, why, err = f.Controller(ctx)
	}
	if err != nil || i < 0 || i >= n {
		return drawn, fmt.Sprintf("node %d (%s unknown: %v; drawn instead)", drawn+1, rule, err)
	}
	return i, fmt.Sprintf("node %d (%s)", i+1, why)
}

// Heal undoes one injected fault: restart the killed process, SIGCONT the
// paused one, remove the iptables rules.
type Heal func(ctx context.Context) error

// Nemesis injects one kind of fault on node victim of t (an index into
// t.Nodes(), resolved by the plan's victim rule) and returns the Heal that
// ends it. Nemeses are used by one goroutine at a time.
type Nemesis interface {
	Name() string
	Inject(ctx context.Context, t Target, victim int) (heal Heal, err error)
}

// KillNemesis SIGKILLs a node and restarts it when healed. A SIGKILL keeps
// the page cache, so in strata's default page-cache mode a single node must
// still keep every acknowledged record (Kafka's durability on one node rests
// on the same fact); losing the machine's power is another fault.
type KillNemesis struct{}

func (KillNemesis) Name() string { return "kill" }

func (KillNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	n := t.Nodes()[victim]
	n.Kill()
	return func(ctx context.Context) error { return n.Start(ctx) }, nil
}

// TermNemesis stops a node with SIGTERM (a controlled shutdown: in-flight
// requests finish, logs are flushed) and restarts it when healed.
type TermNemesis struct{ Wait time.Duration }

func (TermNemesis) Name() string { return "term" }

func (m TermNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	n := t.Nodes()[victim]
	wait := m.Wait
	if wait == 0 {
		wait = 60 * time.Second
	}
	heal := func(ctx context.Context) error { return n.Start(ctx) }
	// The process is gone either way (killed after the wait); a slow or
	// failed clean shutdown is a finding, and the node still restarts.
	return heal, n.Term(wait)
}

// PauseNemesis SIGSTOPs a node and SIGCONTs it when healed: requests hang
// with their connections open, as in Jepsen's pause nemesis, and the
// clients' request timeouts and retries are exercised.
type PauseNemesis struct{}

func (PauseNemesis) Name() string { return "pause" }

func (PauseNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	n := t.Nodes()[victim]
	if err := n.Pause(); err != nil {
		return nil, err
	}
	return func(context.Context) error { return n.Resume() }, nil
}

// CutNemesis cuts a node off from the other nodes (cut), or from the other
// nodes and the clients (isolate), with iptables DROP rules in the node's
// network namespace; healing removes them. Cut alone is the case where a
// leader still hears its producers but cannot reach its followers or the
// controller: with acks=all it must not acknowledge what it cannot
// replicate, and the controller must move leadership away (Jepsen's
// partition nemesis; Kafka's "isolated leader" case).
type CutNemesis struct{ Clients bool }

func (m CutNemesis) Name() string {
	if m.Clients {
		return "isolate"
	}
	return "cut"
}

// NeedsLab says that the nemesis needs the nodes in network namespaces.
func (CutNemesis) NeedsLab() bool { return true }

func (m CutNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	c, ok := t.(Cutter)
	if !ok {
		return nil, ErrNoLab
	}
	heal := func(context.Context) error { return c.HealCut(victim) }
	if err := c.Cut(victim, m.Clients); err != nil {
		// Rules added before the error are removed by the heal.
		return heal, err
	}
	return heal, nil
}

// DiskFullNemesis fills the victim's disk (its log dir's own small tmpfs)
// with a ballast file that leaves almost no space, and healing removes the
// ballast: no restart. Meanwhile the broker must refuse what it cannot
// write (KAFKA_STORAGE_ERROR, as Kafka), acknowledge nothing it did not
// keep, corrupt nothing, and take writes again once space is freed. In a
// cluster the victim's raft log and the followers' fetches fill up too.
type DiskFullNemesis struct{}

func (DiskFullNemesis) Name() string { return "diskfull" }

// NeedsDisks says that the nemesis needs each node on a tmpfs of its own.
func (DiskFullNemesis) NeedsDisks() bool { return true }

func (DiskFullNemesis) Inject(ctx context.Context, t Target, victim int) (Heal, error) {
	f, ok := t.(Filler)
	if !ok {
		return nil, ErrNoDisks
	}
	// A ballast half made is removed by the heal too.
	heal := func(context.Context) error { return f.FreeDisk(victim) }
	return heal, f.FillDisk(victim)
}

// needsDisks reports whether m needs the nodes on small disks.
func needsDisks(m Nemesis) bool {
	l, ok := m.(interface{ NeedsDisks() bool })
	return ok && l.NeedsDisks()
}

// needsLab reports whether m needs network namespaces.
func needsLab(m Nemesis) bool {
	l, ok := m.(interface{ NeedsLab() bool })
	return ok && l.NeedsLab()
}

// Nemeses maps names to the nemeses built so far.
func Nemeses() map[string]Nemesis {
	return map[string]Nemesis{"kill": KillNemesis{}, "term": TermNemesis{}, "pause": PauseNemesis{},
		"cut": CutNemesis{}, "isolate": CutNemesis{Clients: true}, "diskfull": DiskFullNemesis{}}
}

// ParseMix turns "kill,pause,term,cut,isolate,diskfull" (or "all" for the process
// nemeses kill,pause,term, or "none") into nemeses.
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
	// Victim is the rule that picks the node (VictimAny, VictimLeader,
	// VictimController); empty means any.
	Victim string
}

func (s Step) String() string {
	v := ""
	if s.Victim != "" {
		v = " on " + s.Victim
	}
	return fmt.Sprintf("at %v %s%s for %v (pick %d)", s.At.Round(time.Millisecond), s.Nemesis, v, s.Hold.Round(time.Millisecond), s.Pick)
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
	return s.PlanVictims(seed, duration, names, nil)
}

// PlanVictims is Plan with a victim rule drawn for each step from victims
// (none: any node). The rules come from a second generator of the seed, so
// a seed's times, nemeses and picks are the same with or without them.
func (s Schedule) PlanVictims(seed uint64, duration time.Duration, names, victims []string) []Step {
	if len(names) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	vrng := rand.New(rand.NewPCG(seed^0x5bd1e9955bd1e995, seed))
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
		if len(victims) > 0 {
			st.Victim = victims[vrng.IntN(len(victims))]
		}
		if st.At+st.Hold > duration {
			return plan
		}
		plan = append(plan, st)
		at += st.Hold
	}
}

// describe names a nemesis as the history has always named it; cut and
// isolate keep their flag names.
func describe(name string) string {
	switch name {
	case "kill":
		return "kill -9"
	case "pause":
		return "SIGSTOP"
	case "term":
		return "SIGTERM"
	}
	return name
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
		victim, who := resolveVictim(ctx, t, st.Victim, rand.New(rand.NewPCG(st.Pick, 0)))
		desc := fmt.Sprintf("%s %s", describe(st.Nemesis), who)
		heal, err := m.Inject(ctx, t, victim)
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
