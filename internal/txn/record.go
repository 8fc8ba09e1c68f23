package txn

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrCorrupt marks a record of __transaction_state that does not decode.
var ErrCorrupt = errors.New("txn: corrupt __transaction_state record")

// encodeKey is Kafka's TransactionLogKey, version 0.
func encodeKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// encodeValue is Kafka's TransactionLogValue: version 1 (flexible, with
// the KIP-890 tagged fields) for clients of transaction version 2, as
// Kafka 4 writes it, version 0 otherwise so that older readers of the
// topic understand it.
func encodeValue(m *meta) []byte {
	v := kmsg.NewTxnMetadataValue()
	if m.txnVersion >= 2 {
		v.Version = 1
		v.PreviousProducerID = m.prevProducerID
		v.NextProducerID = m.nextProducerID
		v.ClientTransactionVersion = m.txnVersion
	}
	v.ProducerID = m.producerID
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = m.timeoutMs
	v.State = kmsg.TransactionState(m.state)
	v.LastUpdateTimestamp = m.lastUpdate
	v.StartTimestamp = m.start
	byTopic := map[string][]int32{}
	for tp := range m.partitions {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	for _, topic := range slices.Sorted(maps.Keys(byTopic)) {
		t := kmsg.NewTxnMetadataValueTopic()
		t.Topic = topic
		t.Partitions = byTopic[topic]
		slices.Sort(t.Partitions)
		v.Topics = append(v.Topics, t)
	}
	return v.AppendTo(nil)
}

// decodeRecord reads one record of __transaction_state: the transactional
// id and, unless the value is a tombstone (nil), its metadata.
func decodeRecord(key, value []byte) (string, *meta, error) {
	if len(key) < 2 {
		return "", nil, fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(key))
	}
	k := kmsg.NewTxnMetadataKey()
	if err := k.ReadFrom(key); err != nil {
		return "", nil, fmt.Errorf("%w: key: %v", ErrCorrupt, err)
	}
	if k.Version != 0 {
		return "", nil, fmt.Errorf("%w: key version %d", ErrCorrupt, k.Version)
	}
	if value == nil {
		return k.TransactionalID, nil, nil
	}
	if len(value) < 2 || value[0] != 0 || value[1] > 1 {
		return "", nil, fmt.Errorf("%w: value of transactional id %q: unknown version", ErrCorrupt, k.TransactionalID)
	}
	v := kmsg.NewTxnMetadataValue()
	if err := v.ReadFrom(value); err != nil {
		return "", nil, fmt.Errorf("%w: value of transactional id %q: %v", ErrCorrupt, k.TransactionalID, err)
	}
	if v.State < 0 || v.State > kmsg.TransactionStatePrepareEpochFence {
		return "", nil, fmt.Errorf("%w: transactional id %q: unknown state %d", ErrCorrupt, k.TransactionalID, v.State)
	}
	m := &meta{
		id:             k.TransactionalID,
		producerID:     v.ProducerID,
		prevProducerID: -1,
		nextProducerID: -1,
		epoch:          v.ProducerEpoch,
		lastEpoch:      -1,
		timeoutMs:      v.TimeoutMillis,
		state:          State(v.State),
		partitions:     map[TopicPartition]struct{}{},
		start:          v.StartTimestamp,
		lastUpdate:     v.LastUpdateTimestamp,
	}
	if v.Version >= 1 {
		m.prevProducerID = v.PreviousProducerID
		m.nextProducerID = v.NextProducerID
		m.txnVersion = v.ClientTransactionVersion
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.partitions[TopicPartition{Topic: t.Topic, Partition: p}] = struct{}{}
		}
	}
	return m.id, m, nil
}

// State is a transaction's state, numbered as Kafka's TransactionState
// (the id written in __transaction_state).
type State int8

const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String is Kafka's name of the state, as DescribeTransactions and
// ListTransactions answer it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// ParseState reads a state name as ListTransactions filters name them
// (case-insensitive, as Kafka's TransactionState.fromName).
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if strings.EqualFold(n, name) {
			return State(i), true
		}
	}
	return 0, false
}
