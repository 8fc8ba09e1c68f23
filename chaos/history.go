// Package chaos is strata's fault-injection suite: a workload of idempotent
// producers and consumers that records a history of everything the clients
// saw, nemeses that hurt a real `strata serve` process while the workload
// runs, and a checker that looks for the anomalies Jepsen's Kafka queue
// workload looks for (jepsen.tests.kafka: lost, duplicated, reordered and
// inconsistent records, poll-skip, nonmonotonic poll; with transactional
// producers, aborted reads and torn transactions too).
//
// The history is the contract between the three parts: the checker reads only
// events, so a run saved as JSON lines can be checked again later (Replay).
package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Event kinds. Every client operation is one event, written when the client
// learns its outcome.
const (
	KindStart   = "start"   // the workload starts; Info holds the run's settings
	KindSend    = "send"    // a producer hands Value to its client
	KindAck     = "ack"     // Value acknowledged at Part/Off (acks=all)
	KindFail    = "fail"    // Value's send failed with Err: indeterminate, it may still be in the log
	KindAbort   = "abort"   // Value was written in a transaction that aborted: no read_committed reader may see it
	KindPoll    = "poll"    // consumer Proc read Value at Part/Off
	KindPollErr = "pollerr" // consumer Proc's poll returned Err for Part
	KindAssign  = "assign"  // Proc (re)starts reading Part from a position it chose (assignment, rebalance, restart)
	KindRevoke  = "revoke"  // Proc no longer owns Part (revoked or lost in a rebalance)
	KindCommit  = "commit"  // group consumer Proc committed Off for Part (Err if the commit failed)
	KindFinal   = "final"   // the final full read found Value at Part/Off
	KindNemesis = "nemesis" // a fault was injected or healed; Info describes it
	KindStop    = "stop"    // the producers stopped sending (end of the measured window)
	KindReplica = "replica" // the stopped replicas of Part compared up to offset Off; Err if they diverged
	KindInfo    = "info"    // anything else worth keeping (end offsets, errors of the harness)
)

// Event is one line of a history. Part and Off are -1 when they do not
// apply. T is nanoseconds since the history began.
type Event struct {
	T     int64  `json:"t"`
	Kind  string `json:"kind"`
	Proc  string `json:"proc,omitempty"`
	Part  int32  `json:"part"`
	Off   int64  `json:"off"`
	Value string `json:"value,omitempty"`
	Err   string `json:"err,omitempty"`
	Info  string `json:"info,omitempty"`
}

// History records events in the order they happen. Safe for concurrent use:
// one mutex orders all events, so events of one process appear in the order
// that process recorded them, and T never decreases.
type History struct {
	start time.Time
	mu    struct {
		sync.Mutex
		events []Event
	}
}

// NewHistory starts an empty history; its clock starts now.
func NewHistory() *History { return &History{start: time.Now()} }

// Add records e, stamping its time.
func (h *History) Add(e Event) {
	h.mu.Lock()
	e.T = int64(time.Since(h.start))
	h.mu.events = append(h.mu.events, e)
	h.mu.Unlock()
}

// Events returns a copy of the events so far.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.mu.events...)
}

// WriteJSONL writes events as JSON lines, one event a line.
func WriteJSONL(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadJSONL reads a history written by WriteJSONL.
func ReadJSONL(r io.Reader) ([]Event, error) {
	var events []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("chaos: history line %d: %w", line, err)
		}
		events = append(events, e)
	}
	return events, sc.Err()
}
