package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Anomaly is one finding of the checker.
type Anomaly struct {
	Kind   string // lost, duplicate, out-of-order, inconsistent, poll-skip, nonmonotonic, unexpected, diverged, aborted-read, torn-transaction
	Part   int32
	Off    int64
	Value  string
	Proc   string
	Detail string
}

func (a Anomaly) String() string {
	return fmt.Sprintf("%s partition %d offset %d %q %s: %s", strings.ToUpper(a.Kind), a.Part, a.Off, a.Value, a.Proc, a.Detail)
}

// Anomaly kinds, in the order the table prints them.
const (
	AnomalyLost         = "lost"
	AnomalyDuplicate    = "duplicate"
	AnomalyOutOfOrder   = "out-of-order"
	AnomalyInconsistent = "inconsistent"
	AnomalyPollSkip     = "poll-skip"
	AnomalyNonmonotonic = "nonmonotonic"
	AnomalyUnexpected   = "unexpected"
	AnomalyDiverged     = "diverged"
	// With transactional producers: a value of an aborted transaction
	// read by a read_committed reader (Jepsen's G1a, aborted read), and a
	// transaction of which the final read holds some values but not all
	// (torn: atomicity broken, whether it committed or not).
	AnomalyAbortedRead = "aborted-read"
	AnomalyTorn        = "torn-transaction"
)

var anomalyKinds = []string{AnomalyLost, AnomalyDuplicate, AnomalyOutOfOrder, AnomalyInconsistent,
	AnomalyPollSkip, AnomalyNonmonotonic, AnomalyUnexpected, AnomalyDiverged, AnomalyAbortedRead, AnomalyTorn}

// WritableTarget is how soon after a fault every partition should take
// writes again (issue 13's target for a replicated cluster). A longer gap
// is reported, not counted as an anomaly: the suite asserts safety, and a
// slow machine makes acks late, not wrong.
const WritableTarget = 10 * time.Second

// Gap is how long one fault kept the workload's partitions from taking
// writes: from the fault's start to the first acknowledgement after it on
// the slowest partition (every partition that had acknowledgements in the
// run counts; acks of the final flush too). Open means that partition had
// no acknowledgement after the fault at all; Gap then runs to the end of
// the history.
type Gap struct {
	At   time.Duration // the fault's start, since the history began
	Desc string        // the nemesis event ("kill -9 node 2 (leader 2 of chaos-5 ...)")
	Gap  time.Duration
	Part int32 // the slowest partition
	Open bool
}

func (g Gap) String() string {
	open := ""
	if g.Open {
		open = " (no ack after it at all)"
	}
	return fmt.Sprintf("at %v %s: partition %d writable again after %v%s", g.At.Round(time.Millisecond), g.Desc, g.Part, g.Gap.Round(time.Millisecond), open)
}

// Result is the checker's report on one history.
type Result struct {
	Sends, Acks, Fails, Polls, Commits, FailedCommits, Finals int
	// Aborted counts values written in transactions that aborted;
	// Transactions the transactions the history names.
	Aborted, Transactions int
	Faults                int // nemesis events
	// PartitionsAcked counts partitions with at least one acknowledged
	// record: a partition the workload never wrote tests nothing.
	PartitionsAcked int
	Rebalances      int // assign and revoke events
	// FailedButRead counts sends that failed (indeterminate) yet were read:
	// legal, as in Jepsen's "info" operations, and reported for interest.
	FailedButRead int
	// FinalRead says whether the history has a final full read; without
	// one, lost records cannot be judged and Lost stays empty.
	FinalRead bool

	// Duration is the measured window, from the first send to the stop
	// event (or the last event). Unavailable is the longest time within it
	// without a successful acknowledgement, starting at UnavailableAt.
	Duration, Unavailable, UnavailableAt time.Duration
	AckRate                              float64 // acknowledged records per second over Duration

	// Gaps has one entry per fault started within the measured window, in
	// time order; MaxGap is the longest.
	Gaps   []Gap
	MaxGap Gap
	// FaultKinds counts the faults started, by nemesis and by the role of
	// the node hit ("kill -9 on leader", "SIGSTOP on any", ...).
	FaultKinds map[string]int
	// ReplicaChecks counts partitions whose replicas were compared on disk
	// after the run (KindReplica events).
	ReplicaChecks int

	Anomalies map[string][]Anomaly
}

// Count returns how many anomalies of kind the checker found.
func (r *Result) Count(kind string) int { return len(r.Anomalies[kind]) }

// OK reports whether the history shows none of the anomalies strata
// promises to avoid. Every kind counts: strata has no compaction, and
// idempotence is on (transactional producers are idempotent too), so even
// poll-skip and out-of-order are faults here, unlike in Jepsen's Kafka
// analysis where some are expected.
func (r *Result) OK() bool {
	for _, k := range anomalyKinds {
		if r.Count(k) > 0 {
			return false
		}
	}
	return r.FinalRead
}

// Table renders the result as a fixed-width table, with up to show
// examples of each anomaly.
func (r *Result) Table(show int) string {
	var b strings.Builder
	row := func(k string, v any) { fmt.Fprintf(&b, "%-28s %v\n", k, v) }
	row("window", r.Duration.Round(time.Millisecond))
	row("sends", r.Sends)
	row("acks", r.Acks)
	row("partitions with acks", r.PartitionsAcked)
	if r.Transactions > 0 {
		row("transactions", r.Transactions)
		row("aborted values", r.Aborted)
	}
	row("send failures (indeterminate)", r.Fails)
	row("  of them read anyway", r.FailedButRead)
	row("polled records", r.Polls)
	row("final read records", r.Finals)
	row("commits (failed)", fmt.Sprintf("%d (%d)", r.Commits, r.FailedCommits))
	row("assign/revoke events", r.Rebalances)
	row("nemesis events", r.Faults)
	if len(r.FaultKinds) > 0 {
		var ks []string
		for k, n := range r.FaultKinds {
			ks = append(ks, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(ks)
		row("faults", strings.Join(ks, ", "))
	}
	row("throughput (acks/s)", fmt.Sprintf("%.1f", r.AckRate))
	row("longest without an ack", fmt.Sprintf("%v (from %v)", r.Unavailable.Round(time.Millisecond), r.UnavailableAt.Round(time.Millisecond)))
	if len(r.Gaps) > 0 {
		row("writability gap, max", fmt.Sprintf("%v (partition %d, fault at %v)", r.MaxGap.Gap.Round(time.Millisecond), r.MaxGap.Part, r.MaxGap.At.Round(time.Millisecond)))
		row(fmt.Sprintf("faults writable > %v", WritableTarget), fmt.Sprintf("%d of %d", len(r.GapsOver(WritableTarget)), len(r.Gaps)))
	}
	row("partitions replica-checked", r.ReplicaChecks)
	if !r.FinalRead {
		row("final read", "MISSING: lost records not judged")
	}
	for _, k := range anomalyKinds {
		row(k, r.Count(k))
	}
	if len(r.Gaps) > 0 {
		// Every gap over the target, then the longest others, up to show.
		gs := append([]Gap(nil), r.Gaps...)
		sort.SliceStable(gs, func(i, j int) bool { return gs[i].Gap > gs[j].Gap })
		over := len(r.GapsOver(WritableTarget))
		fmt.Fprintf(&b, "writability gaps (longest first, %d of %d shown):\n", min(len(gs), max(show, over)), len(gs))
		for i, g := range gs {
			if i >= max(show, over) {
				break
			}
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	for _, k := range anomalyKinds {
		for i, a := range r.Anomalies[k] {
			if i == show {
				fmt.Fprintf(&b, "  ... %d more %s\n", len(r.Anomalies[k])-show, k)
				break
			}
			fmt.Fprintf(&b, "  %s\n", a)
		}
	}
	verdict := "OK"
	if !r.OK() {
		verdict = "FAIL"
	}
	row("verdict", verdict)
	return b.String()
}

// faultKind names a fault by its nemesis and the role of its victim, from
// the nemesis event's description ("kill -9 node 2 (leader 2 of chaos-5
// ...)" is "kill -9 on leader").
func faultKind(desc string) string {
	name, rest, ok := strings.Cut(desc, " node ")
	if !ok {
		return desc
	}
	name = strings.TrimSuffix(strings.TrimSpace(name), ":")
	switch {
	case strings.Contains(rest, "drawn instead"):
		return name + " on a drawn node (role unknown)"
	case strings.Contains(rest, "(leader "):
		return name + " on leader"
	case strings.Contains(rest, "(active controller "):
		return name + " on controller"
	case strings.Contains(rest, "(any)"):
		return name + " on any"
	}
	return name
}

// GapsOver returns the faults whose writability gap exceeded d.
func (r *Result) GapsOver(d time.Duration) []Gap {
	var out []Gap
	for _, g := range r.Gaps {
		if g.Gap > d {
			out = append(out, g)
		}
	}
	return out
}

// parseValue splits a workload value "p<producer>-<n>".
func parseValue(v string) (producer, n int, ok bool) {
	if _, err := fmt.Sscanf(v, "p%d-%d", &producer, &n); err != nil || n < 0 {
		return 0, 0, false
	}
	return producer, n, fmt.Sprintf("p%d-%d", producer, n) == v
}

type partOff struct {
	part int32
	off  int64
}

// Check analyses a history. Like Jepsen's queue checker it first builds a
// version order, every (partition, offset) -> values known from
// acknowledgements, polls and the final read, and then judges each
// consumer's reads against it.
func Check(events []Event) *Result {
	r := &Result{Anomalies: map[string][]Anomaly{}, FaultKinds: map[string]int{}}
	add := func(a Anomaly) { r.Anomalies[a.Kind] = append(r.Anomalies[a.Kind], a) }

	sent := map[string]bool{}
	failed := map[string]bool{}
	aborted := map[string]bool{}
	txnOf := map[string]string{}       // value -> its transaction, for transactional sends
	txnValues := map[string][]string{} // transaction -> its values, in send order
	acked := map[string]partOff{}
	var ackOrder []string
	versions := map[partOff]map[string]bool{} // offset -> values seen there
	places := map[string]map[partOff]bool{}   // value -> offsets it was seen at
	final := map[string]bool{}
	read := map[string]bool{}
	var ackTimes []int64
	ackTimesByPart := map[int32][]int64{}
	type faultStart struct {
		t    int64
		desc string
	}
	var faults []faultStart
	first, stop, last := int64(-1), int64(-1), int64(0)
	see := func(v string, po partOff) {
		if versions[po] == nil {
			versions[po] = map[string]bool{}
		}
		versions[po][v] = true
		if places[v] == nil {
			places[v] = map[partOff]bool{}
		}
		places[v][po] = true
	}
	for _, e := range events {
		last = max(last, e.T)
		switch e.Kind {
		case KindSend:
			r.Sends++
			sent[e.Value] = true
			if strings.HasPrefix(e.Info, "t") {
				txnOf[e.Value] = e.Info
				txnValues[e.Info] = append(txnValues[e.Info], e.Value)
			}
			if first < 0 {
				first = e.T
			}
		case KindAck:
			r.Acks++
			po := partOff{e.Part, e.Off}
			acked[e.Value] = po
			ackOrder = append(ackOrder, e.Value)
			ackTimes = append(ackTimes, e.T)
			ackTimesByPart[e.Part] = append(ackTimesByPart[e.Part], e.T)
			see(e.Value, po)
		case KindFail:
			r.Fails++
			failed[e.Value] = true
		case KindAbort:
			r.Aborted++
			aborted[e.Value] = true
		case KindPoll, KindFinal:
			if e.Kind == KindPoll {
				r.Polls++
			} else {
				r.Finals++
				r.FinalRead = true
				final[e.Value] = true
			}
			read[e.Value] = true
			see(e.Value, partOff{e.Part, e.Off})
		case KindCommit:
			r.Commits++
			if e.Err != "" {
				r.FailedCommits++
			}
		case KindAssign, KindRevoke:
			r.Rebalances++
		case KindNemesis:
			r.Faults++
			if d, ok := strings.CutPrefix(e.Info, "start "); ok {
				faults = append(faults, faultStart{e.T, d})
				r.FaultKinds[faultKind(d)]++
			}
		case KindReplica:
			r.ReplicaChecks++
			if e.Err != "" {
				add(Anomaly{Kind: AnomalyDiverged, Part: e.Part, Off: e.Off, Proc: e.Proc, Detail: e.Err})
			}
		case KindStop:
			if stop < 0 {
				stop = e.T
			}
		}
	}
	ackedParts := map[int32]bool{}
	for _, po := range acked {
		ackedParts[po.part] = true
	}
	r.PartitionsAcked = len(ackedParts)
	for v := range failed {
		if read[v] {
			r.FailedButRead++
		}
	}

	// Values read that no producer sent: corruption, or another writer.
	unexpected := map[string]bool{}
	for v, ps := range places {
		if !sent[v] {
			unexpected[v] = true
			for po := range ps {
				add(Anomaly{Kind: AnomalyUnexpected, Part: po.part, Off: po.off, Value: v, Detail: "read but never sent"})
			}
		}
	}

	// Lost: acknowledged, yet absent from the final read of every partition
	// from its start. Jepsen's "lost" is the same idea (acked, but not in
	// the version order below the highest read offset); a full read after
	// the faults makes it simpler and stricter.
	if r.FinalRead {
		reported := map[string]bool{}
		for _, v := range ackOrder {
			if !final[v] && !reported[v] {
				po := acked[v]
				add(Anomaly{Kind: AnomalyLost, Part: po.part, Off: po.off, Value: v, Detail: "acknowledged, not in the final read"})
				reported[v] = true
			}
		}
	}

	// Aborted reads: every reader is read_committed in a transactional
	// run, so a value of an aborted transaction must never be read.
	r.Transactions = len(txnValues)
	for v, ps := range places {
		if aborted[v] {
			for po := range ps {
				add(Anomaly{Kind: AnomalyAbortedRead, Part: po.part, Off: po.off, Value: v, Detail: fmt.Sprintf("written in aborted transaction %s", txnOf[v])})
			}
		}
	}
	// Torn transactions: the final read holds all of a transaction's
	// values or none.
	if r.FinalRead {
		var tids []string
		for tid := range txnValues {
			tids = append(tids, tid)
		}
		sort.Strings(tids)
		for _, tid := range tids {
			var in, out []string
			for _, v := range txnValues[tid] {
				if final[v] {
					in = append(in, v)
				} else {
					out = append(out, v)
				}
			}
			if len(in) > 0 && len(out) > 0 {
				po := sortedPartOffs(places[in[0]])[0]
				add(Anomaly{Kind: AnomalyTorn, Part: po.part, Off: po.off, Value: in[0],
					Detail: fmt.Sprintf("transaction %s: final read holds %d of its %d values (missing %s)", tid, len(in), len(in)+len(out), strings.Join(out[:min(len(out), 3)], ", "))})
			}
		}
	}

	// Duplicates: one value at two offsets. Idempotent producers must never
	// cause this, since the broker answers a retried batch with its first
	// offsets (KIP-98).
	for v, ps := range places {
		if len(ps) > 1 && !unexpected[v] {
			offs := sortedPartOffs(ps)
			add(Anomaly{Kind: AnomalyDuplicate, Part: offs[0].part, Off: offs[0].off, Value: v, Detail: fmt.Sprintf("at %s", fmtPartOffs(offs))})
		}
	}

	// Inconsistent offsets: one offset holding different values across
	// acknowledgements and reads (Jepsen's "inconsistent-offsets").
	for po, vs := range versions {
		if len(vs) > 1 {
			add(Anomaly{Kind: AnomalyInconsistent, Part: po.part, Off: po.off, Detail: fmt.Sprintf("values %s", strings.Join(sortedKeys(vs), ", "))})
		}
	}

	// Out of order: per partition, one producer's values must appear at
	// increasing offsets in the order it sent them, because an idempotent
	// producer's sequence numbers order its batches per partition.
	byPart := map[int32][]int64{}
	for po := range versions {
		byPart[po.part] = append(byPart[po.part], po.off)
	}
	for part, offs := range byPart {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		lastN := map[int]int{}
		lastOff := map[int]int64{}
		for _, off := range offs {
			for _, v := range sortedKeys(versions[partOff{part, off}]) {
				p, n, ok := parseValue(v)
				if !ok {
					continue
				}
				if prev, seen := lastN[p]; seen && n < prev {
					add(Anomaly{Kind: AnomalyOutOfOrder, Part: part, Off: off, Value: v,
						Detail: fmt.Sprintf("after p%d-%d at offset %d", p, prev, lastOff[p])})
					continue
				}
				lastN[p], lastOff[p] = n, off
			}
		}
	}

	// Per consumer and partition: each poll must follow the previous one at
	// the next offset that exists (poll-skip otherwise), and never go back
	// unless the consumer was (re)assigned the partition in between
	// (nonmonotonic otherwise). Jepsen's checker does the same per process
	// (jepsen.tests.kafka, poll-skip and nonmonotonic-poll).
	type procPart struct {
		proc string
		part int32
	}
	pos := map[procPart]int64{}
	// Group consumers resume a newly assigned partition at the group's
	// committed offset. committed is the highest offset any member tried to
	// commit per partition (failed commits too: a commit that timed out may
	// have been stored), so a first poll beyond it skipped records nobody
	// in the group polled. The workload has one group; every commit event
	// belongs to it. resumed marks (proc, partition) pairs assigned by a
	// rebalance whose first poll is still to come.
	committed := map[int32]int64{}
	resumed := map[procPart]bool{}
	for _, e := range events {
		switch e.Kind {
		case KindCommit:
			committed[e.Part] = max(committed[e.Part], e.Off)
		case KindAssign, KindRevoke:
			if e.Kind == KindAssign && e.Part >= 0 {
				resumed[procPart{e.Proc, e.Part}] = true
			}
			if e.Part < 0 {
				for k := range pos {
					if k.proc == e.Proc {
						delete(pos, k)
					}
				}
			} else {
				delete(pos, procPart{e.Proc, e.Part})
			}
		case KindPoll, KindFinal:
			k := procPart{e.Proc, e.Part}
			prev, ok := pos[k]
			pos[k] = e.Off
			if resumed[k] {
				delete(resumed, k)
				if c, grouped := committed[e.Part]; grouped && e.Kind == KindPoll && e.Off > c {
					if skipped := existing(versions, e.Part, c, e.Off); len(skipped) > 0 {
						add(Anomaly{Kind: AnomalyPollSkip, Part: e.Part, Off: e.Off, Value: e.Value, Proc: e.Proc,
							Detail: fmt.Sprintf("first poll after an assignment, beyond the group's committed offset %d, skipping %d existing offsets", c, len(skipped))})
					}
				}
			}
			if !ok {
				continue
			}
			switch {
			case e.Off <= prev:
				add(Anomaly{Kind: AnomalyNonmonotonic, Part: e.Part, Off: e.Off, Value: e.Value, Proc: e.Proc,
					Detail: fmt.Sprintf("read after offset %d without a reassignment", prev)})
			case e.Off > prev+1:
				if skipped := existing(versions, e.Part, prev+1, e.Off); len(skipped) > 0 {
					add(Anomaly{Kind: AnomalyPollSkip, Part: e.Part, Off: e.Off, Value: e.Value, Proc: e.Proc,
						Detail: fmt.Sprintf("after offset %d, skipping %d existing offsets from %d", prev, len(skipped), skipped[0])})
				}
			}
		}
	}

	// Availability: the longest stretch of the measured window without an
	// acknowledgement, as Jepsen reports unavailability around faults.
	if stop < 0 {
		stop = last
	}
	if first >= 0 && stop > first {
		r.Duration = time.Duration(stop - first)
		r.AckRate = float64(r.Acks) / r.Duration.Seconds()
		prev := first
		for _, t := range append(ackTimes, stop) {
			if t > stop {
				t = stop
			}
			if gap := time.Duration(t - prev); gap > r.Unavailable {
				r.Unavailable, r.UnavailableAt = gap, time.Duration(prev)
			}
			prev = max(prev, t)
		}
	}
	// Writability per fault: from its start to the first ack after it on
	// each partition that took writes in the run; the slowest partition
	// gives the fault's gap. Acks of the flush after the send window count:
	// a fault healed just before the window closed is measured by the
	// retried records its partitions then take.
	if first >= 0 {
		parts := make([]int32, 0, len(ackTimesByPart))
		for p, ts := range ackTimesByPart {
			parts = append(parts, p)
			sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, f := range faults {
			if f.t > stop {
				continue
			}
			g := Gap{At: time.Duration(f.t), Desc: f.desc, Part: -1}
			for _, p := range parts {
				ts := ackTimesByPart[p]
				i := sort.Search(len(ts), func(i int) bool { return ts[i] >= f.t })
				d, open := last-f.t, true
				if i < len(ts) {
					d, open = ts[i]-f.t, false
				}
				if g.Part < 0 || time.Duration(d) > g.Gap {
					g.Gap, g.Part, g.Open = time.Duration(d), p, open
				}
			}
			r.Gaps = append(r.Gaps, g)
			if g.Gap > r.MaxGap.Gap || len(r.Gaps) == 1 {
				r.MaxGap = g
			}
		}
	}
	for _, as := range r.Anomalies {
		sort.SliceStable(as, func(i, j int) bool {
			if as[i].Part != as[j].Part {
				return as[i].Part < as[j].Part
			}
			return as[i].Off < as[j].Off
		})
	}
	return r
}

// existing lists the offsets in [from, to) of part that the version order
// knows.
func existing(versions map[partOff]map[string]bool, part int32, from, to int64) []int64 {
	var offs []int64
	for o := from; o < to; o++ {
		if versions[partOff{part, o}] != nil {
			offs = append(offs, o)
		}
	}
	return offs
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedPartOffs(m map[partOff]bool) []partOff {
	ps := make([]partOff, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].part != ps[j].part {
			return ps[i].part < ps[j].part
		}
		return ps[i].off < ps[j].off
	})
	return ps
}

func fmtPartOffs(ps []partOff) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d/%d", p.part, p.off)
	}
	return strings.Join(s, ", ")
}
