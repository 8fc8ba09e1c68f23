package strata_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
)

// TestTxnExactlyOnceChainWithKills runs a consume-transform-produce loop
// (franz-go's GroupTransactSession: records read from eos-in in a group,
// written to eos-out in a transaction together with the group's offsets)
// on a 3-node cluster while the transaction coordinator, and then the
// leader of an output partition, are killed and restarted. A
// read_committed read of eos-out must then hold every input record exactly
// once: no record lost, none duplicated by a retried or zombie
// transaction, none from an aborted one.
func TestTxnExactlyOnceChainWithKills(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster with kills")
	}
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	createReplicated(t, ctx, c, "eos-in", 4, nil)
	createReplicated(t, ctx, c, "eos-out", 4, nil)

	// The input arrives over about 20 s, so that the kills below land
	// while the chain is busy.
	const n = 3000
	in := newClient(t, c.Bootstrap()[0], kgo.DefaultProduceTopic("eos-in"), kgo.RequiredAcks(kgo.AllISRAcks()))
	inErr := make(chan error, 1)
	go func() {
		for i := range n {
			in.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "v%d", i)}, nil)
			if i%30 == 29 {
				time.Sleep(200 * time.Millisecond)
			}
		}
		inErr <- in.Flush(ctx)
	}()

	const txnID = "eos-etl"
	var (
		committed atomic.Int64 // records in committed transactions, as the session saw them
		aborted   atomic.Int64
		etlErr    = make(chan error, 1)
	)
	go func() {
		etlErr <- runETL(ctx, c, txnID, n, &committed, &aborted)
	}()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s (committed %d, aborted %d)", what, committed.Load(), aborted.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	adm := kadm.NewClient(newClient(t, c.Bootstrap()[0]))

	// Kill the transaction coordinator mid-run.
	waitFor("a first commit", func() bool { return committed.Load() > n/5 })
	coordinator := int32(-1)
	for coordinator < 0 {
		for _, r := range adm.FindTxnCoordinators(ctx, txnID) {
			if r.Err == nil {
				coordinator = r.NodeID
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no transaction coordinator found")
		}
	}
	t.Logf("killing transaction coordinator %d at %d committed", coordinator, committed.Load())
	c.Node(coordinator).Kill()
	time.Sleep(2 * time.Second)
	if err := c.Node(coordinator).Restart(); err != nil {
		t.Fatal(err)
	}

	// Then the leader of eos-out partition 0.
	mark := committed.Load()
	waitFor("progress after the coordinator kill", func() bool { return committed.Load() > mark+n/10 })
	leader := int32(-1)
	for _, node := range c.Nodes() {
		md, err := kadm.NewClient(newClient(t, node.Addr())).Metadata(ctx, "eos-out")
		if err == nil {
			if p, ok := md.Topics["eos-out"].Partitions[0]; ok && p.Leader >= 0 {
				leader = p.Leader
				break
			}
		}
	}
	if leader < 0 {
		t.Fatal("no leader for eos-out-0")
	}
	t.Logf("killing eos-out-0 leader %d at %d committed", leader, committed.Load())
	c.Node(leader).Kill()
	time.Sleep(2 * time.Second)
	if err := c.Node(leader).Restart(); err != nil {
		t.Fatal(err)
	}

	if err := <-inErr; err != nil {
		t.Fatalf("input: %v", err)
	}
	if err := <-etlErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("session: %d records committed, %d aborted", committed.Load(), aborted.Load())

	// Every input exactly once in what read_committed sees.
	seen := map[string]int{}
	out := newClient(t, c.Bootstrap()[1], kgo.ConsumeTopics("eos-out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	total := 0
	idle := time.Now()
	for total < n || time.Since(idle) < 3*time.Second {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := out.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
			idle = time.Now()
		})
	}
	var missing, dup []string
	for i := range n {
		v := fmt.Sprintf("out-v%d", i)
		switch seen[v] {
		case 1:
		case 0:
			missing = append(missing, v)
		default:
			dup = append(dup, v)
		}
		delete(seen, v)
	}
	if len(missing) > 0 || len(dup) > 0 || len(seen) > 0 {
		t.Fatalf("read_committed eos-out: %d records, %d missing (%v), %d duplicated (%v), %d unexpected",
			total, len(missing), head(missing), len(dup), head(dup), len(seen))
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// runETL transforms eos-in into eos-out in transactions until the
// session has committed n records. A session that fails fatally (fenced,
// say, after a coordinator change) is replaced by a new one with the same
// transactional id, as an application would.
func runETL(ctx context.Context, c *strata.Cluster, txnID string, n int64, committed, aborted *atomic.Int64) error {
	newSession := func() (*kgo.GroupTransactSession, error) {
		return kgo.NewGroupTransactSession(
			kgo.SeedBrokers(c.Bootstrap()...),
			kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup("eos-g"),
			kgo.ConsumeTopics("eos-in"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.RequestTimeoutOverhead(3*time.Second),
			kgo.DefaultProduceTopic("eos-out"),
		)
	}
	s, err := newSession()
	if err != nil {
		return err
	}
	defer func() { s.Close() }()
	for committed.Load() < n {
		if ctx.Err() != nil {
			return fmt.Errorf("etl: %d of %d committed: %w", committed.Load(), n, ctx.Err())
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := s.PollFetches(pctx)
		pcancel()
		if err := s.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		var batch int64
		fs.EachRecord(func(r *kgo.Record) {
			batch++
			s.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...), Partition: r.Partition}, nil)
		})
		ok, err := s.End(ctx, kgo.TryCommit)
		switch {
		case ok && err == nil:
			committed.Add(batch)
		default:
			aborted.Add(batch)
		}
		if err != nil && isFatalTxn(err) {
			s.Close()
			if s, err = newSession(); err != nil {
				return err
			}
		}
	}
	return nil
}

// isFatalTxn: errors after which franz-go's producer cannot go on.
func isFatalTxn(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}
