package strata_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnRequest sends req to the transaction coordinator of its id (kgo
// finds it with FindCoordinator key type TRANSACTION) and fails the test
// on a transport error.
func txnRequest[R kmsg.Response](t *testing.T, ctx context.Context, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

// TestTxnCoordinator drives the coordinator with raw requests on a single
// node: InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions, and
// a restart that reloads the transaction from __transaction_state. Until
// WriteTxnMarkers (API 27) is served the markers cannot be written, so
// the committed transaction stays PrepareCommit: that state, and its
// CONCURRENT_TRANSACTIONS answers, are what is checked here.
func TestTxnCoordinator(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, b.Addr(), kgo.RetryTimeout(20*time.Second))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey = 1, "tx1"
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := txnRequest[*kmsg.FindCoordinatorResponse](t, ctx, cl, fc)
		if r.ErrorCode == 0 && r.NodeID >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FindCoordinator: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr("tx1")
	init.TransactionTimeoutMillis = 60000
	ir := txnRequest[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
	if ir.ErrorCode != 0 || ir.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: %v epoch %d", kerr.ErrorForCode(ir.ErrorCode), ir.ProducerEpoch)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	init.TransactionTimeoutMillis = 900001
	if r := txnRequest[*kmsg.InitProducerIDResponse](t, ctx, cl, init); r.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above transaction.max.timeout.ms: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx1", pid, epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0, 1}
	unknown := kmsg.NewAddPartitionsToTxnRequestTopic()
	unknown.Topic, unknown.Partitions = "nope", []int32{0}
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{at, unknown}
	ar := txnRequest[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, add)
	want := map[string]int16{"t": kerr.OperationNotAttempted.Code, "nope": kerr.UnknownTopicOrPartition.Code}
	for _, rt := range ar.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != want[rt.Topic] {
				t.Fatalf("AddPartitionsToTxn with an unknown topic: %s-%d %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	// kgo sends the batched form (v4+) when the broker has it, filling
	// Transactions in the request it was given: a new request.
	add = kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx1", pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{at}
	ar = txnRequest[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, add)
	for _, rt := range ar.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("AddPartitionsToTxn: %s-%d %v", rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "tx1", pid, epoch, "g"
	if r := txnRequest[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, ao); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A stale epoch is fenced.
	ao.ProducerEpoch = epoch - 1
	if r := txnRequest[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, ao); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("AddOffsetsToTxn with a stale epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	describe := func() kmsg.DescribeTransactionsResponseTransactionState {
		t.Helper()
		dr := kmsg.NewPtrDescribeTransactionsRequest()
		dr.TransactionalIDs = []string{"tx1"}
		r := txnRequest[*kmsg.DescribeTransactionsResponse](t, ctx, cl, dr)
		if len(r.TransactionStates) != 1 {
			t.Fatalf("DescribeTransactions: %+v", r)
		}
		return r.TransactionStates[0]
	}
	if d := describe(); d.ErrorCode != 0 || d.State != "Ongoing" || d.ProducerID != pid || len(d.Topics) != 2 || d.TimeoutMillis != 60000 {
		t.Fatalf("DescribeTransactions while ongoing: %+v", d)
	}

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx1", pid, epoch, true
	er := txnRequest[*kmsg.EndTxnResponse](t, ctx, cl, end)
	if er.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(er.ErrorCode))
	}
	// kgo sends the highest version the broker has: v5 bumps the epoch
	// (KIP-890 part 2) and says so.
	if er.Version >= 5 {
		if er.ProducerID != pid || er.ProducerEpoch != epoch+1 {
			t.Fatalf("EndTxn v5: %d/%d, want %d/%d", er.ProducerID, er.ProducerEpoch, pid, epoch+1)
		}
		epoch++
	}
	// The coordinator writes the markers (to partitions of this node)
	// and completes the commit.
	deadline = time.Now().Add(20 * time.Second)
	for {
		d := describe()
		if d.State == "CompleteCommit" && d.ProducerEpoch == epoch {
			break
		}
		if (d.State != "PrepareCommit" && d.State != "CompleteCommit") || time.Now().After(deadline) {
			t.Fatalf("after EndTxn: %+v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A committed transaction cannot be aborted.
	end.Commit = false
	if r := txnRequest[*kmsg.EndTxnResponse](t, ctx, cl, end); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("abort while committing: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	lr := kmsg.NewPtrListTransactionsRequest()
	lr.StateFilters = []string{"CompleteCommit", "Bogus"}
	l, err := lr.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if l.ErrorCode != 0 || len(l.TransactionStates) != 1 || l.TransactionStates[0].TransactionalID != "tx1" || len(l.UnknownStateFilters) != 1 {
		t.Fatalf("ListTransactions: %+v", l)
	}

	// A restart loads the transaction's state back from
	// __transaction_state.
	addr := b.Addr()
	b.Close()
	b2, err := restartOn(t, dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	cl2 := newClient(t, addr, kgo.RetryTimeout(20*time.Second))
	cl = cl2
	deadline = time.Now().Add(20 * time.Second)
	for {
		d := describe()
		if d.ErrorCode == 0 {
			if d.State != "CompleteCommit" || d.ProducerID != pid || d.ProducerEpoch != epoch {
				t.Fatalf("after restart: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %v", kerr.ErrorForCode(d.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTxnProduceCommit is a transactional producer's whole cycle with
// franz-go: commit, abort, and a read_committed consumer seeing only the
// committed records.
func TestTxnProduceCommit(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b.Addr(), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	for i, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := "aborted"
		if commit {
			v = "committed"
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %d: %v", i, err)
		}
	}
	c := newClient(t, b.Addr(), kgo.ConsumeTopics("t"), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 2 {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for _, v := range got {
		if v != "committed" {
			t.Fatalf("read_committed consumer read %q", v)
		}
	}
}

// TestTxnTimeoutAborts: the coordinator aborts a transaction older than its
// transaction.timeout.ms, with a bumped epoch that fences its producer
// (transaction.abort.timed.out.transaction.cleanup.interval.ms set low).
func TestTxnTimeoutAborts(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "50"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, b.Addr(), kgo.RetryTimeout(20*time.Second))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("slow"), 300
	ir := txnRequest[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
	if ir.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "slow", ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	txnRequest[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, add)
	deadline := time.Now().Add(10 * time.Second)
	for {
		dr := kmsg.NewPtrDescribeTransactionsRequest()
		dr.TransactionalIDs = []string{"slow"}
		d := txnRequest[*kmsg.DescribeTransactionsResponse](t, ctx, cl, dr).TransactionStates[0]
		// CompleteAbort once WriteTxnMarkers exists; PrepareAbort
		// until then.
		if d.State == "PrepareAbort" || d.State == "CompleteAbort" {
			if d.ProducerEpoch != ir.ProducerEpoch+1 {
				t.Fatalf("aborted with epoch %d, want %d", d.ProducerEpoch, ir.ProducerEpoch+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not aborted: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "slow", ir.ProducerID, ir.ProducerEpoch, true
	// Fenced before v5; with transaction version 2 (v5) the old epoch is
	// that of a retried end, and committing the aborted transaction is
	// INVALID_TXN_STATE, as Kafka 4 answers.
	r := txnRequest[*kmsg.EndTxnResponse](t, ctx, cl, end)
	want := kerr.ProducerFenced.Code
	if r.Version >= 5 {
		want = kerr.InvalidTxnState.Code
	}
	if r.ErrorCode != want {
		t.Fatalf("commit v%d after the timeout: %v", r.Version, kerr.ErrorForCode(r.ErrorCode))
	}
}
