package kafka

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/txn"
)

// KIP-890 part 1: the partition leader's check, before it appends the
// first transactional batch of a producer on a partition, that the
// producer's transaction coordinator has the partition in the producer's
// ongoing transaction (Kafka's ReplicaManager.appendRecordsWithTransaction
// Verification and AddPartitionsToTxnManager). Without it a producer that
// never sent AddPartitionsToTxn (a bug, or a zombie whose transaction was
// aborted meanwhile) opens a transaction the coordinator will never write
// a marker for, and the partition's LSO is stuck until it is aborted by
// hand.

// produceTxnVerifyTimeout bounds one verification round trip (Kafka's
// request.timeout.ms for its AddPartitionsToTxn sender).
const produceTxnVerifyTimeout = 30 * time.Second

// produceTxnAddPartitionVersion is the first Produce version whose
// transactional batches are added to the transaction by the leader rather
// than only verified (transaction version 2, KIP-890 part 2: Kafka's
// AddPartitionsToTxnManager.produceRequestVersionToTransactionSupportedOperation
// gives ADD_PARTITION above v11).
const produceTxnAddPartitionVersion = 12

// produceTxnAbortableVersion is the first Produce version whose clients
// know TRANSACTION_ABORTABLE (GENERIC_ERROR_SUPPORTED above v10, KIP-1050);
// older ones get INVALID_TXN_STATE for a partition not in the transaction.
const produceTxnAbortableVersion = 11

// verifyProduceTxn checks the transactional batches of req whose producer
// has no transaction open on their partition with the coordinator of the
// request's transactional id. It returns, for each partition checked, its
// verification guard (broker.Partition.StartTxnVerification) or its
// produce error; a code for the whole request; nil when no partition
// needed the check. Only called for a request that holds a transactional
// batch and a transactional id; no partition lock is held while it waits.
func (h *Handler) verifyProduceTxn(ctx context.Context, ac authCtx, req *kmsg.ProduceRequest) (map[txn.TopicPartition]produceTxnVerified, int16) {
	if h.cfg.Txn.NoPartitionVerification {
		return nil, 0
	}
	type checked struct {
		tp    txn.TopicPartition
		p     *broker.Partition
		guard uint64
	}
	var todo []checked
	pid, epoch := int64(-1), int16(-1)
	for _, rt := range req.Topics {
		if internalTopic(rt.Topic) || !ac.topic(acl.OpWrite, rt.Topic) {
			continue // answered by the append loop
		}
		t, code := h.topic(rt.Topic, false)
		if code != 0 {
			continue
		}
		for _, rp := range rt.Partitions {
			if len(rp.Records) < record.HeaderSize {
				continue
			}
			b := record.Batch(rp.Records)
			if !b.IsTransactional() || !b.HasProducerID() {
				continue
			}
			p, _, code := h.partition(t, rp.Partition)
			if code != 0 {
				continue // not led here: the append loop says so
			}
			if pid >= 0 && (pid != b.ProducerID() || epoch != b.ProducerEpoch()) {
				// Kafka's ReplicaManager: "Transactional records
				// contained more than one producer ID".
				for _, c := range todo {
					c.p.AbandonTxnVerification(pid, c.guard)
				}
				return nil, kerr.InvalidProducerIDMapping.Code
			}
			pid, epoch = b.ProducerID(), b.ProducerEpoch()
			guard, needed := p.StartTxnVerification(pid)
			if !needed {
				continue // verified when its transaction began here
			}
			todo = append(todo, checked{txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, p, guard})
		}
	}
	if len(todo) == 0 {
		return nil, 0
	}
	tps := make([]txn.TopicPartition, len(todo))
	for i, c := range todo {
		tps[i] = c.tp
	}
	ctx, cancel := context.WithTimeout(ctx, produceTxnVerifyTimeout)
	defer cancel()
	add := req.Version >= produceTxnAddPartitionVersion
	codes := h.verifyTxnPartitions(ctx, *req.TransactionID, pid, epoch, add, tps)
	out := make(map[txn.TopicPartition]produceTxnVerified, len(todo))
	for _, c := range todo {
		code := codes[c.tp]
		if code == 0 {
			out[c.tp] = produceTxnVerified{guard: c.guard}
			continue
		}
		c.p.AbandonTxnVerification(pid, c.guard)
		out[c.tp] = produceVerifyError(req.Version, code)
	}
	return out, 0
}

// produceTxnVerified is a verified partition's guard, or its answer when
// its verification failed.
type produceTxnVerified struct {
	guard uint64
	code  int16
	msg   *string
}

// produceVerifyError maps the coordinator's answer for a partition to
// what the producer is told, as Kafka's AddPartitionsToTxnManager and
// ReplicaManager.handleProduceAppend do:
//   - PRODUCER_FENCED is INVALID_PRODUCER_EPOCH (producers expect it here);
//     CLUSTER_AUTHORIZATION_FAILED (this broker may not ask) is
//     INVALID_TXN_STATE;
//   - TRANSACTION_ABORTABLE (the partition is not in the transaction) is
//     INVALID_TXN_STATE for Produce v0-10, whose clients do not know it;
//   - the coordinator being unreachable, moving or loading
//     (NETWORK_EXCEPTION, COORDINATOR_LOAD_IN_PROGRESS,
//     COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR), and
//     CONCURRENT_TRANSACTIONS before transaction version 2 (Produce v0-11),
//     are NOT_ENOUGH_REPLICAS: retriable for every client, and without the
//     metadata refresh a NOT_LEADER would cause;
//   - anything else (INVALID_PRODUCER_ID_MAPPING, say) as it is.
func produceVerifyError(version int16, code int16) produceTxnVerified {
	switch code {
	case kerr.ProducerFenced.Code:
		code = kerr.InvalidProducerEpoch.Code
	case kerr.ClusterAuthorizationFailed.Code:
		code = kerr.InvalidTxnState.Code
	case kerr.TransactionAbortable.Code:
		if version < produceTxnAbortableVersion {
			code = kerr.InvalidTxnState.Code
		}
	}
	var msg string
	switch code {
	case kerr.NetworkException.Code, kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code:
		msg = "Unable to verify the partition has been added to the transaction. Underlying error: " + kerr.ErrorForCode(code).(*kerr.Error).Message
		code = kerr.NotEnoughReplicas.Code
	case kerr.ConcurrentTransactions.Code:
		if version < produceTxnAddPartitionVersion {
			msg = "Unable to verify the partition has been added to the transaction. Underlying error: " + kerr.ConcurrentTransactions.Message
			code = kerr.NotEnoughReplicas.Code
		}
	case kerr.InvalidTxnState.Code, kerr.TransactionAbortable.Code:
		msg = "Partition was not added to the transaction"
	}
	e := produceTxnVerified{code: code}
	if msg != "" {
		e.msg = &msg
	}
	return e
}

// verifyTxnPartitions asks the coordinator of id whether tps are in the
// ongoing transaction of producer pid at epoch (AddPartitionsToTxn v4
// VerifyOnly), or with add adds them to it (v5, transaction version 2),
// and returns each partition's code as the coordinator answers it (0: in
// the transaction). The coordinator is the leader of id's partition of
// __transaction_state, as FindCoordinator finds it: called directly when
// that is this node, over the inter-broker client otherwise.
func (h *Handler) verifyTxnPartitions(ctx context.Context, id string, pid int64, epoch int16, add bool, tps []txn.TopicPartition) map[txn.TopicPartition]int16 {
	out := make(map[txn.TopicPartition]int16, len(tps))
	fill := func(code int16) map[txn.TopicPartition]int16 {
		for _, tp := range tps {
			out[tp] = code
		}
		return out
	}
	im := h.meta.Image()
	t := im.Topic(txn.Topic)
	if t == nil {
		// No transaction was ever begun in the cluster.
		return fill(kerr.CoordinatorNotAvailable.Code)
	}
	p := txn.PartitionFor(id, h.txns.coord.Partitions())
	if p < 0 || p >= t.Partitions || t.PartitionStates[p] == nil || t.PartitionStates[p].Leader < 0 {
		return fill(kerr.CoordinatorNotAvailable.Code)
	}
	leader := t.PartitionStates[p].Leader
	if leader == h.cfg.NodeID {
		if add {
			return fill(errorCode(h.txns.coord.AddPartitions(id, pid, epoch, tps)))
		}
		res, err := h.txns.coord.VerifyPartitions(id, pid, epoch, tps)
		if err != nil {
			return fill(errorCode(err))
		}
		for _, tp := range tps {
			out[tp] = errorCode(res[tp])
		}
		return out
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	if add {
		req.Version = 5
	}
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, pid, epoch, !add
	byTopic(tps, func(topic string, parts []int32) {
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = topic, parts
		tx.Topics = append(tx.Topics, rt)
	})
	req.Transactions = append(req.Transactions, tx)
	kresp, err := h.sendInterBroker(ctx, im, leader, req)
	if err != nil {
		h.logger.Debug("verifying transactional produce", "coordinator", leader, "err", err)
		return fill(kerr.NetworkException.Code)
	}
	resp, ok := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if !ok {
		return fill(kerr.NetworkException.Code)
	}
	if resp.ErrorCode != 0 {
		return fill(resp.ErrorCode)
	}
	fill(kerr.UnknownServerError.Code) // partitions the answer leaves out
	for _, rtx := range resp.Transactions {
		if rtx.TransactionalID != id {
			continue
		}
		for _, rt := range rtx.Topics {
			for _, rp := range rt.Partitions {
				tp := txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				if _, ok := out[tp]; ok {
					out[tp] = rp.ErrorCode
				}
			}
		}
	}
	return out
}

// sendInterBroker sends req to broker id's inter-broker listener, over the
// client kept per broker for the coordinator's requests (re-made when its
// address changes).
func (h *Handler) sendInterBroker(ctx context.Context, im *cluster.Image, id int32, req kmsg.Request) (kmsg.Response, error) {
	b := im.Broker(id)
	if b == nil || b.Fenced {
		return nil, fmt.Errorf("broker %d: %w", id, kerr.BrokerNotAvailable)
	}
	listener := cmp.Or(h.cfg.InterBrokerListener, h.cfg.Listener, "PLAINTEXT")
	ep, ok := endpoint(b, listener)
	if !ok {
		return nil, fmt.Errorf("broker %d has no %s listener: %w", id, listener, kerr.BrokerNotAvailable)
	}
	addr := net.JoinHostPort(ep.host, strconv.Itoa(int(ep.port)))
	cl, err := h.markerClient(id, addr)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("broker %d: no connection", id)
	}
	return seeds[0].Request(ctx, req)
}
