package strata_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// TestClusterTxnCoordinator: in a 3-node cluster, __transaction_state is
// created through the controller (replication factor 3,
// min.insync.replicas 2), each transactional id is coordinated by the
// leader of its partition, loaded there, and another node answers
// NOT_COORDINATOR.
func TestClusterTxnCoordinator(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := c.Nodes()[0]
	ctx := ctxT(t)
	cl := newClient(t, n.Addr())
	coordinators := map[int32]bool{}
	for i := range 6 {
		id := fmt.Sprintf("tx-%d", i)
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(id), 30000
		resp, err := cl.Request(ctx, init)
		if err != nil {
			t.Fatal(err)
		}
		if r := resp.(*kmsg.InitProducerIDResponse); r.ErrorCode != 0 || r.ProducerEpoch != 0 {
			t.Fatalf("%s: InitProducerId %v epoch %d", id, kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorType, fc.CoordinatorKey = 1, id
		fr, err := fc.RequestWith(ctx, cl)
		if err != nil || fr.ErrorCode != 0 {
			t.Fatalf("%s: FindCoordinator %v %v", id, err, kerr.ErrorForCode(fr.ErrorCode))
		}
		coordinators[fr.NodeID] = true
		// Another node is not its coordinator.
		for _, other := range c.Nodes() {
			if other.ID() == fr.NodeID {
				continue
			}
			init := kmsg.NewPtrInitProducerIDRequest()
			init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(id), 30000
			r, err := init.RequestWith(ctx, cl.Broker(int(other.ID())))
			if err != nil {
				t.Fatal(err)
			}
			if r.ErrorCode != kerr.NotCoordinator.Code {
				t.Fatalf("%s on broker %d (coordinator %d): %v", id, other.ID(), fr.NodeID, kerr.ErrorForCode(r.ErrorCode))
			}
			break
		}
		dr := kmsg.NewPtrDescribeTransactionsRequest()
		dr.TransactionalIDs = []string{id}
		d, err := dr.RequestWith(ctx, cl)
		if err != nil || len(d.TransactionStates) != 1 || d.TransactionStates[0].State != "Empty" {
			t.Fatalf("%s: DescribeTransactions %v %+v", id, err, d)
		}
	}
	if len(coordinators) < 2 {
		t.Errorf("6 transactional ids all on brokers %v", coordinators)
	}
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, "__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics["__transaction_state"]
	if !td.IsInternal || len(td.Partitions) != 50 || len(td.Partitions[0].Replicas) != 3 {
		t.Fatalf("__transaction_state: internal %v, %d partitions, replicas %v", td.IsInternal, len(td.Partitions), td.Partitions[0].Replicas)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On("__transaction_state", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range cfg.Configs {
		if kv.Key == "min.insync.replicas" {
			found = true
			if kv.Value == nil || *kv.Value != "2" {
				t.Fatalf("min.insync.replicas %v", kv.MaybeValue())
			}
		}
	}
	if !found {
		t.Fatal("no min.insync.replicas in the topic's configs")
	}
}

// TestClusterTxnCoordinatorFailover: an ongoing transaction survives the
// death of its coordinator: the new leader of its partition of
// __transaction_state loads it with the same producer id, epoch and
// partitions, and answers for it.
func TestClusterTxnCoordinatorFailover(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := ctxT(t)
	cl := newClient(t, c.Bootstrap()[0], kgo.SeedBrokers(c.Bootstrap()...), kgo.RetryTimeout(25*time.Second))
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, "t"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	const id = "failover"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr(id), 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2}}}
	ar, err := add.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range ar.Transactions {
		for _, rt := range tt.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("AddPartitionsToTxn: %v", kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey = 1, id
	fr, err := fc.RequestWith(ctx, cl)
	if err != nil || fr.ErrorCode != 0 {
		t.Fatalf("FindCoordinator: %v %v", err, kerr.ErrorForCode(fr.ErrorCode))
	}
	old := fr.NodeID
	c.Node(old).Kill()

	deadline := time.Now().Add(25 * time.Second)
	for {
		dr := kmsg.NewPtrDescribeTransactionsRequest()
		dr.TransactionalIDs = []string{id}
		fr, ferr := fc.RequestWith(ctx, cl)
		var d *kmsg.DescribeTransactionsResponse
		var err error
		if ferr == nil {
			// Straight to the coordinator named: kgo keeps asking
			// the dead one it cached.
			d, err = dr.RequestWith(ctx, cl.Broker(int(fr.NodeID)))
		}
		if ferr == nil && fr.ErrorCode == 0 && fr.NodeID != old && err == nil && len(d.TransactionStates) == 1 && d.TransactionStates[0].ErrorCode == 0 {
			st := d.TransactionStates[0]
			if st.State != "Ongoing" || st.ProducerID != ir.ProducerID || st.ProducerEpoch != ir.ProducerEpoch || len(st.Topics) != 1 || len(st.Topics[0].Partitions) != 3 {
				t.Fatalf("after failover to broker %d: %+v", fr.NodeID, st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new coordinator: find %v %+v, describe %v %+v", ferr, fr, err, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The producer carries on with the new coordinator.
	fr, err = fc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	add2 := kmsg.NewPtrAddOffsetsToTxnRequest()
	add2.TransactionalID, add2.ProducerID, add2.ProducerEpoch, add2.Group = id, ir.ProducerID, ir.ProducerEpoch, "g"
	if r, err := add2.RequestWith(ctx, cl.Broker(int(fr.NodeID))); err != nil || r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn after failover: %v %v", err, kerr.ErrorForCode(r.ErrorCode))
	}
}
