package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Workload is Jepsen's Kafka queue workload cut to what strata has today:
// idempotent producers sending unique values "p<producer>-<n>" with
// acks=all on many keys, consumers reading assigned partitions and as a
// consumer group, and, after the faults, one full read of every partition.
type Workload struct {
	Addrs      []string // seed brokers: every node of the cluster
	Topic      string
	Group      string
	Partitions int
	RF         int // replication factor of the topic (0: 1)
	MinISR     int // the topic's min.insync.replicas (0: the broker's default)
	Producers  int
	Keys       int // distinct keys; the key picks the partition (murmur2, as Kafka's default partitioner)
	Rate       int // records a second per producer
	MaxRecords int // per producer
	Assigned   int // consumers with all partitions assigned
	Grouped    int // consumers in Group
	Seed       uint64
	// Txn, when positive, makes the producers transactional: each sends
	// transactions of Txn records (one transactional id per producer),
	// aborts one in five on purpose, and every consumer and the final read
	// are read_committed.
	Txn int
	H   *History
}

func (w *Workload) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(w.Addrs...),
		// Reconnect promptly after a restart: by default a client waits at
		// least 5 s between metadata refreshes.
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		// A broker killed just after a connection was made closes it
		// before the first response: franz-go takes that EOF for a
		// missing SASL setup and fails the records at once (136
		// indeterminate sends in one 3-minute run of leader kills).
		// There is no SASL here; retry as for any other EOF.
		kgo.AlwaysRetryEOF(),
	}, opts...)...)
}

// CreateTopic creates the topic, retrying while the broker starts.
func (w *Workload) CreateTopic(ctx context.Context) error {
	cl, err := w.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var configs map[string]*string
	if w.MinISR > 0 {
		v := strconv.Itoa(w.MinISR)
		configs = map[string]*string{"min.insync.replicas": &v}
	}
	for {
		resp, err := adm.CreateTopic(ctx, int32(w.Partitions), int16(max(w.RF, 1)), configs, w.Topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			// Already exists: an earlier try's answer was lost to a
			// restart, or a controller failover replayed it.
			return nil
		}
		if errors.Is(err, kerr.InvalidReplicationFactor) || errors.Is(err, kerr.InvalidConfig) {
			return fmt.Errorf("chaos: create topic %s with replication factor %d: %w", w.Topic, max(w.RF, 1), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: create topic %s: %w", w.Topic, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Produce runs producer i until ctx ends or it has sent MaxRecords, then
// flushes for up to flush and closes its client, which fails whatever is
// still unacknowledged (an indeterminate "fail" in the history).
func (w *Workload) Produce(ctx context.Context, i int, flush time.Duration) error {
	if w.Txn > 0 {
		return w.produceTxn(ctx, i)
	}
	proc := fmt.Sprintf("p%d", i)
	// acks=all and idempotence are franz-go's defaults; set them anyway so
	// the guarantee the checker relies on is visible here. Retries are
	// bounded by the delivery timeout, longer than any planned fault.
	cl, err := w.client(
		kgo.DefaultProduceTopic(w.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.MaxBufferedRecords(2000),
	)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(w.Seed, uint64(i)+1))
	tick := time.NewTicker(time.Second / time.Duration(max(w.Rate, 1)))
	defer tick.Stop()
	var wg sync.WaitGroup
loop:
	for n := 0; n < w.MaxRecords; n++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		v := fmt.Sprintf("p%d-%d", i, n)
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", rng.IntN(max(w.Keys, 1))), Value: []byte(v)}
		w.H.Add(Event{Kind: KindSend, Proc: proc, Part: -1, Off: -1, Value: v, Info: string(r.Key)})
		wg.Add(1)
		// context.Background: a record's fate is decided by the client's
		// delivery timeout and Close, never by the end of the send window.
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				w.H.Add(Event{Kind: KindFail, Proc: proc, Part: r.Partition, Off: -1, Value: v, Err: err.Error()})
				return
			}
			w.H.Add(Event{Kind: KindAck, Proc: proc, Part: r.Partition, Off: r.Offset, Value: v})
		})
	}
	fctx, cancel := context.WithTimeout(context.Background(), flush)
	ferr := cl.Flush(fctx)
	cancel()
	cl.Close()
	wg.Wait()
	if ferr != nil {
		return fmt.Errorf("chaos: producer %s flush: %w", proc, ferr)
	}
	return nil
}

// Consume runs consumer proc until ctx ends. Assigned consumers read every
// partition from the start; grouped ones join w.Group, commit what they
// polled after each poll, and record every assignment and revocation, since
// after one a consumer legitimately resumes from the committed offset.
func (w *Workload) Consume(ctx context.Context, proc string, grouped bool) error {
	opts := []kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond)}
	if w.Txn > 0 {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if grouped {
		opts = append(opts,
			kgo.ConsumerGroup(w.Group),
			kgo.ConsumeTopics(w.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
			// No rebalance between a poll and its commit: the history then
			// orders each poll before the revocation that ends it.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(w.rebalance(proc, KindAssign)),
			kgo.OnPartitionsRevoked(w.rebalance(proc, KindRevoke)),
			kgo.OnPartitionsLost(w.rebalance(proc, KindRevoke)),
		)
	} else {
		offs := map[int32]kgo.Offset{}
		for p := 0; p < w.Partitions; p++ {
			offs[int32(p)] = kgo.NewOffset().AtStart()
			w.H.Add(Event{Kind: KindAssign, Proc: proc, Part: int32(p), Off: -1})
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.Topic: offs}))
	}
	cl, err := w.client(opts...)
	if err != nil {
		return err
	}
	defer func() {
		// With BlockRebalanceOnPoll, leaving the group on Close waits for
		// AllowRebalance: without this, Close after a cancelled poll hangs.
		if grouped {
			cl.AllowRebalance()
		}
		cl.Close()
	}()
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.H.Add(Event{Kind: KindPollErr, Proc: proc, Part: p, Off: -1, Err: err.Error()})
			}
		})
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, r)
			w.H.Add(Event{Kind: KindPoll, Proc: proc, Part: r.Partition, Off: r.Offset, Value: string(r.Value)})
		})
		if grouped && len(recs) > 0 {
			w.commit(ctx, cl, proc, recs)
		}
		if grouped {
			cl.AllowRebalance()
		}
	}
	return nil
}

func (w *Workload) commit(ctx context.Context, cl *kgo.Client, proc string, recs []*kgo.Record) {
	next := map[int32]int64{}
	for _, r := range recs {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := cl.CommitRecords(cctx, recs...)
	cancel()
	for p, off := range next {
		e := Event{Kind: KindCommit, Proc: proc, Part: p, Off: off}
		if err != nil {
			e.Err = err.Error()
		}
		w.H.Add(e)
	}
}

func (w *Workload) rebalance(proc, kind string) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		for _, p := range m[w.Topic] {
			w.H.Add(Event{Kind: kind, Proc: proc, Part: p, Off: -1})
		}
	}
}

// FinalRead reads every partition from its start to its end offset, as
// Jepsen's final polls do once the faults are healed, so that an
// acknowledged record missing here is lost.
func (w *Workload) FinalRead(ctx context.Context) error {
	cl, err := w.client()
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	for {
		ends, err = adm.ListEndOffsets(ctx, w.Topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			cl.Close()
			return fmt.Errorf("chaos: final read: list end offsets: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cl.Close()
	end := map[int32]int64{}
	offs := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		offs[o.Partition] = kgo.NewOffset().AtStart()
		w.H.Add(Event{Kind: KindAssign, Proc: "final", Part: o.Partition, Off: -1})
	})
	w.H.Add(Event{Kind: KindInfo, Proc: "final", Part: -1, Off: -1, Info: fmt.Sprintf("end offsets %v", end)})
	fopts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.Topic: offs}), kgo.FetchMaxWait(500 * time.Millisecond)}
	if w.Txn > 0 {
		fopts = append(fopts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	c, err := w.client(fopts...)
	if err != nil {
		return err
	}
	defer c.Close()
	next := map[int32]int64{}
	progress := time.Now()
	done := func() bool {
		// Transaction markers take offsets a reader never gets a
		// record for, the last ones too: a transactional run's read is
		// complete once nothing new came for longer than a transaction
		// left open by a dead producer can block the last stable offset
		// (finalIdle > the producers' transaction timeout).
		if w.Txn > 0 && time.Since(progress) > finalIdle {
			return true
		}
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := c.PollRecords(pctx, 5000)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("chaos: final read incomplete (read up to %v of end offsets %v): %w", next, end, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				w.H.Add(Event{Kind: KindPollErr, Proc: "final", Part: p, Off: -1, Err: err.Error()})
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return // written after the end was taken: not part of the final read
			}
			next[r.Partition] = r.Offset + 1
			progress = time.Now()
			w.H.Add(Event{Kind: KindFinal, Proc: "final", Part: r.Partition, Off: r.Offset, Value: string(r.Value)})
		})
	}
	return nil
}

// txnTimeout is the transactional producers' transaction.timeout.ms: a
// transaction its producer could not end (killed broker, failed EndTxn) is
// aborted by the coordinator after it, which unblocks read_committed
// readers. finalIdle must exceed it.
const (
	txnTimeout = 10 * time.Second
	finalIdle  = 25 * time.Second
)

// produceTxn is Produce for a transactional producer: transactions of
// w.Txn records, one in five aborted on purpose. Values of a committed
// transaction get "ack" events (with their offsets), of an aborted one
// "abort" events; when the outcome is unknown (the commit's answer was
// lost), "fail" events: indeterminate, as a failed idempotent send. Every
// send's Info names its transaction ("t<producer>-<n>"), so the checker can
// tell a torn transaction.
func (w *Workload) produceTxn(ctx context.Context, i int) error {
	proc := fmt.Sprintf("p%d", i)
	newClient := func() (*kgo.Client, error) {
		return w.client(
			kgo.DefaultProduceTopic(w.Topic),
			kgo.TransactionalID(fmt.Sprintf("chaos-%d-%s", w.Seed, proc)),
			kgo.TransactionTimeout(txnTimeout),
			kgo.RecordDeliveryTimeout(time.Minute),
		)
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	rng := rand.New(rand.NewPCG(w.Seed, uint64(i)+1))
	tick := time.NewTicker(time.Second / time.Duration(max(w.Rate, 1)))
	defer tick.Stop()
	type sent struct {
		v         string
		part      int32
		off       int64
		err       error
		delivered bool
	}
	for n, txn := 0, 0; n < w.MaxRecords && ctx.Err() == nil; txn++ {
		if err := cl.BeginTransaction(); err != nil {
			// A fatal producer id (PRODUCER_FENCED after the
			// coordinator aborted a timed-out transaction and bumped
			// the epoch, as Kafka does before transaction version 2)
			// fails every later Begin: a real application makes a new
			// producer, and so does the workload. Returning here
			// stopped the producer for the rest of the run.
			w.H.Add(Event{Kind: KindInfo, Proc: proc, Part: -1, Off: -1, Info: fmt.Sprintf("begin transaction: %v; new client", err)})
			cl.Close()
			select { // no spin if the new one fails the same way
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			if cl, err = newClient(); err != nil {
				return err
			}
			continue
		}
		tid := fmt.Sprintf("t%d-%d", i, txn)
		recs := make([]*sent, 0, w.Txn)
		var wg sync.WaitGroup
		for k := 0; k < w.Txn && n < w.MaxRecords; k, n = k+1, n+1 {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			s := &sent{v: fmt.Sprintf("p%d-%d", i, n)}
			recs = append(recs, s)
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", rng.IntN(max(w.Keys, 1))), Value: []byte(s.v)}
			w.H.Add(Event{Kind: KindSend, Proc: proc, Part: -1, Off: -1, Value: s.v, Info: tid})
			wg.Add(1)
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				defer wg.Done()
				s.part, s.off, s.err, s.delivered = r.Partition, r.Offset, err, err == nil
			})
		}
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		ferr := cl.Flush(fctx)
		cancel()
		wg.Wait()
		allDelivered := ferr == nil
		for _, s := range recs {
			allDelivered = allDelivered && s.delivered
		}
		commit := kgo.TransactionEndTry(allDelivered && rng.IntN(5) != 0)
		ectx, cancel := context.WithTimeout(context.Background(), time.Minute)
		eerr := cl.EndTransaction(ectx, commit)
		cancel()
		for _, s := range recs {
			switch {
			case eerr == nil && commit == kgo.TryCommit:
				w.H.Add(Event{Kind: KindAck, Proc: proc, Part: s.part, Off: s.off, Value: s.v, Info: tid})
			case eerr == nil:
				w.H.Add(Event{Kind: KindAbort, Proc: proc, Part: s.part, Off: -1, Value: s.v, Info: tid})
			default:
				w.H.Add(Event{Kind: KindFail, Proc: proc, Part: s.part, Off: -1, Value: s.v, Err: fmt.Sprintf("end transaction (commit %v): %v", commit == kgo.TryCommit, eerr), Info: tid})
			}
		}
		if eerr != nil {
			// The client may be unusable (fenced, or its epoch bumped
			// under it): start over with the same transactional id,
			// which aborts whatever the old one left open.
			cl.Close()
			if cl, err = newClient(); err != nil {
				return err
			}
		}
	}
	return nil
}
