package chaos

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hist builds a hand-made history; each event is one step of a millisecond.
type hist []Event

func (h *hist) add(kind, proc string, part int32, off int64, value string) *hist {
	*h = append(*h, Event{T: int64(len(*h)) * int64(time.Millisecond), Kind: kind, Proc: proc, Part: part, Off: off, Value: value})
	return h
}

// clean is a history with no anomaly: producer 0 writes three values to
// partition 0, a consumer polls them and the final read finds them.
func clean() *hist {
	h := &hist{}
	h.add(KindSend, "p0", -1, -1, "p0-0").add(KindSend, "p0", -1, -1, "p0-1").add(KindSend, "p0", -1, -1, "p0-2")
	h.add(KindAck, "p0", 0, 0, "p0-0").add(KindAck, "p0", 0, 1, "p0-1").add(KindAck, "p0", 0, 2, "p0-2")
	h.add(KindAssign, "c0", 0, -1, "")
	h.add(KindPoll, "c0", 0, 0, "p0-0").add(KindPoll, "c0", 0, 1, "p0-1").add(KindPoll, "c0", 0, 2, "p0-2")
	h.add(KindStop, "", -1, -1, "")
	h.add(KindAssign, "final", 0, -1, "")
	h.add(KindFinal, "final", 0, 0, "p0-0").add(KindFinal, "final", 0, 1, "p0-1").add(KindFinal, "final", 0, 2, "p0-2")
	return h
}

func TestCheckClean(t *testing.T) {
	r := Check(*clean())
	if !r.OK() {
		t.Fatalf("clean history judged not OK:\n%s", r.Table(5))
	}
	if r.Sends != 3 || r.Acks != 3 || r.Polls != 3 || r.Finals != 3 || r.PartitionsAcked != 1 {
		t.Errorf("counts: %+v", r)
	}
}

// edit returns clean() changed by f; each case checks that exactly the
// anomaly it plants is found, so removing a detection fails its case.
func TestCheckAnomalies(t *testing.T) {
	cases := []struct {
		name string
		kind string
		n    int
		edit func(h hist) hist
	}{
		{"lost: acked, missing from the final read", AnomalyLost, 1, func(h hist) hist {
			// The log's tail was truncated after the consumer read it.
			return drop(h, func(e Event) bool { return e.Kind == KindFinal && e.Value == "p0-2" })
		}},
		{"duplicate: a value at two offsets", AnomalyDuplicate, 1, func(h hist) hist {
			// p0-2 written twice, at 2 and 3, read at both.
			h = append(h, Event{Kind: KindFinal, Proc: "final", Part: 0, Off: 3, Value: "p0-2"})
			return h
		}},
		{"out of order: p0-2 before p0-1", AnomalyOutOfOrder, 1, func(h hist) hist {
			return mapEv(h, func(e Event) Event {
				if e.Part == 0 && e.Off == 1 {
					e.Value = "p0-2"
				} else if e.Part == 0 && e.Off == 2 {
					e.Value = "p0-1"
				}
				return e
			})
		}},
		{"inconsistent: offset 1 read as another value", AnomalyInconsistent, 1, func(h hist) hist {
			// The consumer reads offset 1 as p0-1, a second reader as p1-0
			// (a value that was sent, so it is not "unexpected").
			h = append(hist{{Kind: KindSend, Proc: "p1", Part: -1, Off: -1, Value: "p1-0"}, {Kind: KindFail, Proc: "p1", Part: -1, Off: -1, Value: "p1-0"}}, h...)
			h = append(h, Event{Kind: KindAssign, Proc: "c1", Part: 0, Off: -1}, Event{Kind: KindPoll, Proc: "c1", Part: 0, Off: 1, Value: "p1-0"})
			return h
		}},
		{"poll-skip: consumer jumps from 0 to 2", AnomalyPollSkip, 1, func(h hist) hist {
			return drop(h, func(e Event) bool { return e.Kind == KindPoll && e.Off == 1 })
		}},
		{"nonmonotonic: consumer rereads 1 without reassignment", AnomalyNonmonotonic, 1, func(h hist) hist {
			return insertAfter(h, func(e Event) bool { return e.Kind == KindPoll && e.Off == 2 },
				Event{Kind: KindPoll, Proc: "c0", Part: 0, Off: 1, Value: "p0-1"})
		}},
		{"unexpected: a value nobody sent", AnomalyUnexpected, 1, func(h hist) hist {
			return append(h, Event{Kind: KindFinal, Proc: "final", Part: 0, Off: 3, Value: "garbage"})
		}},
		{"diverged: replicas differ on disk below the HW", AnomalyDiverged, 1, func(h hist) hist {
			// What CompareReplicas records after the run; a partition
			// whose replicas agree adds an event without Err.
			return append(h,
				Event{Kind: KindReplica, Proc: "replicas", Part: 0, Off: 3, Err: "node 2 differs from node 1 below offset 3: batch at offset 1 has other bytes"},
				Event{Kind: KindReplica, Proc: "replicas", Part: 1, Off: 0, Info: "1 replica(s)"})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.edit(*clean()))
			for _, k := range anomalyKinds {
				want := 0
				if k == c.kind {
					want = c.n
				}
				if got := r.Count(k); got != want {
					t.Errorf("%s: got %d, want %d\n%s", k, got, want, r.Table(5))
				}
			}
			if r.OK() {
				t.Errorf("history with %s judged OK", c.kind)
			}
		})
	}
}

// A reread after a reassignment (a rebalance, or a consumer restarting
// from its committed offset) is allowed; after a skip over offsets nobody
// ever saw (say, a failed send's offset never written) is not a poll-skip.
func TestCheckRebalanceAndHoles(t *testing.T) {
	h := *clean()
	h = insertAfter(h, func(e Event) bool { return e.Kind == KindPoll && e.Off == 2 },
		Event{Kind: KindRevoke, Proc: "c0", Part: 0, Off: -1},
		Event{Kind: KindAssign, Proc: "c0", Part: 0, Off: -1},
		Event{Kind: KindPoll, Proc: "c0", Part: 0, Off: 1, Value: "p0-1"},
		Event{Kind: KindPoll, Proc: "c0", Part: 0, Off: 2, Value: "p0-2"},
		Event{Kind: KindPoll, Proc: "c0", Part: 0, Off: 5, Value: "p0-3"},
	)
	h = append(hist{{Kind: KindSend, Proc: "p0", Part: -1, Off: -1, Value: "p0-3"}}, h...)
	h = append(h, Event{Kind: KindFinal, Proc: "final", Part: 0, Off: 5, Value: "p0-3"})
	h = mapEv(h, func(e Event) Event { return e }) // keep T increasing
	r := Check(h)
	if !r.OK() {
		t.Fatalf("rebalance reread or hole judged an anomaly:\n%s", r.Table(5))
	}
	// The same reread without the reassignment is nonmonotonic.
	h = drop(h, func(e Event) bool { return e.Kind == KindAssign && e.Proc == "c0" || e.Kind == KindRevoke })
	if r := Check(h); r.Count(AnomalyNonmonotonic) != 1 {
		t.Fatalf("nonmonotonic %d, want 1:\n%s", r.Count(AnomalyNonmonotonic), r.Table(5))
	}
}

// A group consumer newly assigned a partition must start at or below the
// group's committed offset: starting beyond it skips records that no member
// polled, which the per-consumer poll-skip check cannot see because the
// assignment resets the consumer's position.
func TestCheckGroupResumeSkip(t *testing.T) {
	group := func(firstPoll int64) hist {
		h := hist{}
		for n := range 6 {
			h.add(KindSend, "p0", -1, -1, fmt.Sprintf("p0-%d", n))
			h.add(KindAck, "p0", 0, int64(n), fmt.Sprintf("p0-%d", n))
		}
		h.add(KindAssign, "g0", 0, -1, "")
		h.add(KindPoll, "g0", 0, 0, "p0-0").add(KindPoll, "g0", 0, 1, "p0-1").add(KindPoll, "g0", 0, 2, "p0-2")
		h.add(KindCommit, "g0", 0, 3, "")
		h.add(KindRevoke, "g0", 0, -1, "")
		h.add(KindAssign, "g1", 0, -1, "")
		for o := firstPoll; o < 6; o++ {
			h.add(KindPoll, "g1", 0, o, fmt.Sprintf("p0-%d", o))
		}
		h.add(KindStop, "", -1, -1, "")
		for o := range int64(6) {
			h.add(KindFinal, "final", 0, o, fmt.Sprintf("p0-%d", o))
		}
		return h
	}
	for first, want := range map[int64]int{3: 0, 2: 0, 5: 1} {
		r := Check(group(first))
		if got := r.Count(AnomalyPollSkip); got != want {
			t.Errorf("g1 resumes at %d after a commit of 3: %d poll-skips, want %d\n%s", first, got, want, r.Table(5))
		}
		if want == 0 && !r.OK() {
			t.Errorf("g1 resumes at %d after a commit of 3: judged not OK\n%s", first, r.Table(5))
		}
	}
}

func TestCheckNoFinalRead(t *testing.T) {
	h := drop(*clean(), func(e Event) bool { return e.Kind == KindFinal })
	if r := Check(h); r.OK() || r.FinalRead {
		t.Fatalf("history without a final read judged OK:\n%s", r.Table(5))
	}
}

func TestCheckUnavailability(t *testing.T) {
	ms := int64(time.Millisecond)
	h := []Event{
		{T: 0, Kind: KindSend, Value: "p0-0", Part: -1, Off: -1},
		{T: 100 * ms, Kind: KindAck, Value: "p0-0", Part: 0, Off: 0},
		{T: 200 * ms, Kind: KindSend, Value: "p0-1", Part: -1, Off: -1},
		{T: 3200 * ms, Kind: KindAck, Value: "p0-1", Part: 0, Off: 1},
		{T: 4000 * ms, Kind: KindStop, Part: -1, Off: -1},
	}
	r := Check(h)
	if r.Unavailable != 3100*time.Millisecond || r.UnavailableAt != 100*time.Millisecond {
		t.Errorf("unavailable %v from %v, want 3.1s from 100ms", r.Unavailable, r.UnavailableAt)
	}
	if r.Duration != 4*time.Second || r.AckRate != 0.5 {
		t.Errorf("duration %v rate %v, want 4s and 0.5/s", r.Duration, r.AckRate)
	}
}

// Each fault's writability gap runs from its start to the first ack after
// it on the slowest partition (acks of the flush after the window count);
// a partition with no ack after the fault keeps the gap open to the end.
func TestCheckWritabilityGaps(t *testing.T) {
	ms := int64(time.Millisecond)
	ack := func(at int64, part int32, off int64, v string) Event {
		return Event{T: at * ms, Kind: KindAck, Part: part, Off: off, Value: v}
	}
	nemesis := func(at int64, info string) Event {
		return Event{T: at * ms, Kind: KindNemesis, Info: info, Part: -1, Off: -1}
	}
	var h []Event
	for i := range 7 {
		h = append(h, Event{Kind: KindSend, Value: fmt.Sprintf("p0-%d", i), Part: -1, Off: -1})
	}
	h = append(h,
		ack(10, 0, 0, "p0-0"), ack(20, 1, 0, "p0-1"),
		nemesis(1000, "start kill -9 node 2 (leader 2 of chaos-1)"),
		// Partition 0 is led elsewhere and writable at once; partition 1
		// only after 12 s, beyond the 10 s target.
		ack(1050, 0, 1, "p0-2"),
		nemesis(4000, "heal kill -9 node 2 (leader 2 of chaos-1)"),
		ack(13000, 1, 1, "p0-3"),
		nemesis(14000, "start SIGSTOP node 1 (any)"),
		ack(15000, 1, 2, "p0-4"),
		nemesis(16000, "start cut node 3 (any)"),
		Event{T: 20000 * ms, Kind: KindStop, Part: -1, Off: -1},
		// Partition 0's retried record, acked in the flush after the
		// window; partition 1 takes nothing after the cut.
		ack(21000, 0, 3, "p0-5"),
		Event{T: 22000 * ms, Kind: KindInfo, Part: -1, Off: -1},
	)
	r := Check(h)
	want := []Gap{
		{At: time.Second, Desc: "kill -9 node 2 (leader 2 of chaos-1)", Gap: 12 * time.Second, Part: 1},
		{At: 14 * time.Second, Desc: "SIGSTOP node 1 (any)", Gap: 7 * time.Second, Part: 0},
		{At: 16 * time.Second, Desc: "cut node 3 (any)", Gap: 6 * time.Second, Part: 1, Open: true},
	}
	if !reflect.DeepEqual(r.Gaps, want) {
		t.Fatalf("gaps %+v, want %+v", r.Gaps, want)
	}
	if r.MaxGap != want[0] {
		t.Errorf("max gap %+v, want %+v", r.MaxGap, want[0])
	}
	if over := r.GapsOver(WritableTarget); len(over) != 1 || over[0] != want[0] {
		t.Errorf("gaps over %v: %+v", WritableTarget, over)
	}
	if want := map[string]int{"kill -9 on leader": 1, "SIGSTOP on any": 1, "cut on any": 1}; !reflect.DeepEqual(r.FaultKinds, want) {
		t.Errorf("fault kinds %v, want %v", r.FaultKinds, want)
	}
	tab := r.Table(5)
	for _, s := range []string{"writability gap, max         12s (partition 1", "faults writable > 10s        1 of 3", "no ack after it at all"} {
		if !strings.Contains(tab, s) {
			t.Errorf("table lacks %q:\n%s", s, tab)
		}
	}
	// A long gap is reported, never an anomaly: availability is not
	// asserted.
	for _, k := range anomalyKinds {
		if r.Count(k) != 0 {
			t.Errorf("%d %s anomalies in a history with only slow writes", r.Count(k), k)
		}
	}
}

func TestHistoryJSONLRoundTrip(t *testing.T) {
	h := *clean()
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, h); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(h) {
		t.Fatalf("%d lines for %d events", n, len(h))
	}
	got, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]Event(h), got) {
		t.Fatalf("round trip changed the history:\n%v\n%v", h, got)
	}
}

func drop(h hist, f func(Event) bool) hist {
	var out hist
	for _, e := range h {
		if !f(e) {
			out = append(out, e)
		}
	}
	return out
}

func mapEv(h hist, f func(Event) Event) hist {
	out := make(hist, len(h))
	for i, e := range h {
		out[i] = f(e)
		out[i].T = int64(i) * int64(time.Millisecond)
	}
	return out
}

func insertAfter(h hist, at func(Event) bool, es ...Event) hist {
	var out hist
	for _, e := range h {
		out = append(out, e)
		if at(e) {
			out = append(out, es...)
		}
	}
	return mapEv(out, func(e Event) Event { return e })
}

// txnHistory: producer 0 commits transaction t0-0 (p0-0, p0-1 on
// partitions 0 and 1) and aborts t0-1 (p0-2); a read_committed consumer
// and the final read see the committed pair only.
func txnHistory() *hist {
	h := &hist{}
	send := func(v, tid string) {
		h.add(KindSend, "p0", -1, -1, v)
		(*h)[len(*h)-1].Info = tid
	}
	send("p0-0", "t0-0")
	send("p0-1", "t0-0")
	h.add(KindAck, "p0", 0, 0, "p0-0").add(KindAck, "p0", 1, 0, "p0-1")
	send("p0-2", "t0-1")
	h.add(KindAbort, "p0", 0, -1, "p0-2")
	h.add(KindAssign, "c0", 0, -1, "").add(KindAssign, "c0", 1, -1, "")
	h.add(KindPoll, "c0", 0, 0, "p0-0").add(KindPoll, "c0", 1, 0, "p0-1")
	h.add(KindStop, "", -1, -1, "")
	h.add(KindAssign, "final", 0, -1, "").add(KindAssign, "final", 1, -1, "")
	h.add(KindFinal, "final", 0, 0, "p0-0").add(KindFinal, "final", 1, 0, "p0-1")
	return h
}

func TestCheckTransactions(t *testing.T) {
	r := Check(*txnHistory())
	if !r.OK() || r.Transactions != 2 || r.Aborted != 1 {
		t.Fatalf("clean transactional history: transactions %d aborted %d\n%s", r.Transactions, r.Aborted, r.Table(5))
	}
	// The aborted value read by the consumer (at offset 1, where the
	// marker-free reader would never find it): an aborted read.
	h := append(hist(nil), *txnHistory()...)
	h = append(h, Event{T: h[len(h)-1].T + 1, Kind: KindPoll, Proc: "c0", Part: 0, Off: 1, Value: "p0-2"})
	r = Check(h)
	if r.Count(AnomalyAbortedRead) != 1 || r.OK() {
		t.Errorf("aborted read: %d found\n%s", r.Count(AnomalyAbortedRead), r.Table(5))
	}
	// The committed transaction half gone from the final read: torn (and
	// the missing half lost).
	h = drop(*txnHistory(), func(e Event) bool { return e.Kind == KindFinal && e.Value == "p0-1" })
	r = Check(h)
	if r.Count(AnomalyTorn) != 1 || r.Count(AnomalyLost) != 1 {
		t.Errorf("torn: %d torn, %d lost\n%s", r.Count(AnomalyTorn), r.Count(AnomalyLost), r.Table(5))
	}
}
