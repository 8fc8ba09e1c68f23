package strata_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// verifyProduce sends one transactional batch of producer pid to
// partition of topic at addr with a raw Produce of the given version and
// transactional id, and returns the partition's answer.
func verifyProduce(t *testing.T, addr string, version int16, txnID, topic string, partition int32, pid int64, epoch int16, seq int32) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	batch, err := record.Build(record.BuildOptions{ProducerID: 1, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true},
		record.NewRecord{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	// Build takes producer id 0 for none; the first one allocated is 0.
	binary.BigEndian.PutUint64(batch[43:], uint64(pid)) // Kafka's PRODUCER_ID_OFFSET
	batch.UpdateCRC()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, -1, 5000
	req.TransactionID = &txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrProduceResponse()
	rawRoundTrip(t, addr, req, resp)
	return resp.Topics[0].Partitions[0]
}

// initTxnID finds the coordinator of id (waiting for __transaction_state
// to be led) and returns its node and a producer id and epoch from
// InitProducerId.
func initTxnID(t *testing.T, ctx context.Context, cl *kgo.Client, id string) (node int32, pid int64, epoch int16) {
	t.Helper()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey = 1, id
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := txnRequest[*kmsg.FindCoordinatorResponse](t, ctx, cl, fc)
		if r.ErrorCode == 0 && r.NodeID >= 0 {
			node = r.NodeID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FindCoordinator %s: %v", id, kerr.ErrorForCode(r.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr(id)
	init.TransactionTimeoutMillis = 60000
	for {
		ir := txnRequest[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
		if ir.ErrorCode == 0 {
			return node, ir.ProducerID, ir.ProducerEpoch
		}
		if time.Now().After(deadline) {
			t.Fatalf("InitProducerId %s: %v", id, kerr.ErrorForCode(ir.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addTxnPartitions adds partitions of topic to id's transaction as a
// producer does (AddPartitionsToTxn v3).
func addTxnPartitions(t *testing.T, ctx context.Context, cl *kgo.Client, id string, pid int64, epoch int16, topic string, partitions ...int32) {
	t.Helper()
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, partitions
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{at}
	ar := txnRequest[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, add)
	n := 0
	check := func(topic string, p int32, code int16) {
		n++
		if code != 0 {
			t.Fatalf("AddPartitionsToTxn %s-%d: %v", topic, p, kerr.ErrorForCode(code))
		}
	}
	// kgo answers the v3 form with the batched one (v4+) when the broker
	// has it, and may fill both.
	if len(ar.Transactions) == 0 {
		for _, rt := range ar.Topics {
			for _, rp := range rt.Partitions {
				check(rt.Topic, rp.Partition, rp.ErrorCode)
			}
		}
	}
	for _, tx := range ar.Transactions {
		for _, rt := range tx.Topics {
			for _, rp := range rt.Partitions {
				check(rt.Topic, rp.Partition, rp.ErrorCode)
			}
		}
	}
	if n != len(partitions) {
		t.Fatalf("AddPartitionsToTxn answered %d partitions, want %d", n, len(partitions))
	}
}

// TestTxnProduceVerification: KIP-890 part 1 on one node. A
// transactional batch for a partition the producer did not add to its
// transaction is refused (INVALID_TXN_STATE for Produce v9,
// TRANSACTION_ABORTABLE for v11) and nothing is appended; once added with
// AddPartitionsToTxn it is taken. A stale epoch is INVALID_PRODUCER_EPOCH,
// an unknown producer id INVALID_PRODUCER_ID_MAPPING, and after the
// transaction commits a zombie batch of the same epoch is refused again.
func TestTxnProduceVerification(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, b.Addr(), kgo.RetryTimeout(20*time.Second))
	const topic = "verify"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	const id = "tx-verify"
	_, pid, epoch := initTxnID(t, ctx, cl, id)

	if got := verifyProduce(t, b.Addr(), 9, id, topic, 0, pid, epoch, 0); got.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("v9 produce to a partition not in the transaction: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := verifyProduce(t, b.Addr(), 11, id, topic, 0, pid, epoch, 0); got.ErrorCode != kerr.TransactionAbortable.Code {
		t.Fatalf("v11 produce to a partition not in the transaction: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if hw := listLatestP(t, cl, topic, 0); hw != 0 {
		t.Fatalf("refused batches appended: end offset %d", hw)
	}

	addTxnPartitions(t, ctx, cl, id, pid, epoch, topic, 0, 1)
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 0, pid, epoch, 0); got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("produce to an added partition: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	// The transaction is open there now: the next batch is not checked
	// again.
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 0, pid, epoch, 1); got.ErrorCode != 0 || got.BaseOffset != 1 {
		t.Fatalf("second batch: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	// Partition 2 was never added, 1 was.
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 2, pid, epoch, 0); got.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to partition 2: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 1, pid, epoch+1, 0); got.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce with another epoch: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 1, pid+1000, epoch, 0); got.ErrorCode != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("produce with an unknown producer id: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := verifyProduce(t, b.Addr(), 9, id, topic, 1, pid, epoch, 0); got.ErrorCode != 0 {
		t.Fatalf("produce to added partition 1: %v", kerr.ErrorForCode(got.ErrorCode))
	}

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, true
	r := txnRequest[*kmsg.EndTxnResponse](t, ctx, cl, end)
	if r.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	next := epoch
	if r.Version >= 5 && r.ProducerEpoch >= 0 {
		next = r.ProducerEpoch // KIP-890 part 2: bumped at the end
	}
	// A batch of the producer's next transaction for a partition it has
	// not added: refused once the markers are written
	// (NOT_ENOUGH_REPLICAS, retriable, while they are pending).
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := verifyProduce(t, b.Addr(), 9, id, topic, 2, pid, next, 0)
		if got.ErrorCode == kerr.InvalidTxnState.Code {
			break
		}
		if got.ErrorCode != kerr.NotEnoughReplicas.Code || time.Now().After(deadline) {
			t.Fatalf("produce after the commit: %v", kerr.ErrorForCode(got.ErrorCode))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if next != epoch {
		// A zombie of the committed transaction's epoch.
		if got := verifyProduce(t, b.Addr(), 9, id, topic, 2, pid, epoch, 0); got.ErrorCode != kerr.InvalidProducerEpoch.Code {
			t.Fatalf("zombie produce after the commit: %v", kerr.ErrorForCode(got.ErrorCode))
		}
	}
}

// TestTxnProduceVerificationDisabled: with
// transaction.partition.verification.enable=false a batch for a
// partition not in the transaction is taken, as before KIP-890.
func TestTxnProduceVerificationDisabled(t *testing.T) {
	b := startBroker(t, t.TempDir(), noTxnVerify())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := newClient(t, b.Addr(), kgo.RetryTimeout(20*time.Second))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "noverify"); err != nil {
		t.Fatal(err)
	}
	_, pid, epoch := initTxnID(t, ctx, cl, "tx-noverify")
	if got := verifyProduce(t, b.Addr(), 9, "tx-noverify", "noverify", 0, pid, epoch, 0); got.ErrorCode != 0 {
		t.Fatalf("produce without verification: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

// listLatestP is partition p's log end offset.
func listLatestP(t *testing.T, c *kgo.Client, topic string, p int32) int64 {
	t.Helper()
	offs, err := kadm.NewClient(c).ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, p)
	if !ok || o.Err != nil {
		t.Fatalf("ListOffsets %s-%d: %v", topic, p, o.Err)
	}
	return o.Offset
}

// TestClusterTxnProduceVerification: on 3 nodes, the partition leader
// asks a coordinator on another node over the inter-broker client: a
// batch for a partition not added is refused, one added is taken, and
// franz-go's transactional producer commits through the same path.
func TestClusterTxnProduceVerification(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, c.Bootstrap()[0], kgo.SeedBrokers(c.Bootstrap()...), kgo.RetryTimeout(25*time.Second))
	adm := kadm.NewClient(cl)
	const topic = "cverify"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var leader int32 = -1
	for leader < 0 && ctx.Err() == nil {
		if td, err := adm.ListTopics(ctx, topic); err == nil && td[topic].Err == nil && td[topic].Partitions[0].Leader >= 0 {
			leader = td[topic].Partitions[0].Leader
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if leader < 0 {
		t.Fatal("no leader")
	}
	// A transactional id coordinated by another node.
	var id string
	var pid int64
	var epoch int16
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("every transactional id tried is coordinated by the partition's leader")
		}
		cand := fmt.Sprintf("tx-remote-%d", i)
		node, p, e := initTxnID(t, ctx, cl, cand)
		if node != leader {
			id, pid, epoch = cand, p, e
			t.Logf("partition leader %d, coordinator of %s %d", leader, id, node)
			break
		}
	}
	laddr := c.Node(leader).Addr()
	if got := verifyProduce(t, laddr, 9, id, topic, 0, pid, epoch, 0); got.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not in the transaction: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := verifyProduce(t, laddr, 11, id, topic, 0, pid, epoch, 0); got.ErrorCode != kerr.TransactionAbortable.Code {
		t.Fatalf("v11 produce to a partition not in the transaction: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	addTxnPartitions(t, ctx, cl, id, pid, epoch, topic, 0)
	if got := verifyProduce(t, laddr, 9, id, topic, 0, pid, epoch, 0); got.ErrorCode != 0 {
		t.Fatalf("produce to an added partition: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid, epoch, false
	if r := txnRequest[*kmsg.EndTxnResponse](t, ctx, cl, end); r.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// franz-go's transactional producer, end to end.
	pcl := newClient(t, c.Bootstrap()[0], kgo.SeedBrokers(c.Bootstrap()...), kgo.TransactionalID("tx-kgo-verify"),
		kgo.DefaultProduceTopic(topic), kgo.RetryTimeout(25*time.Second))
	for i := range 3 {
		if err := pcl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := pcl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint("committed-", i))).FirstErr(); err != nil {
			t.Fatalf("transactional produce %d: %v", i, err)
		}
		if err := pcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
}
