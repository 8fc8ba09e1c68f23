package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProduceVerifyError: the coordinator's answers as a producer is told
// them, per Produce version (Kafka's AddPartitionsToTxnManager and
// ReplicaManager.handleProduceAppend).
func TestProduceVerifyError(t *testing.T) {
	for _, c := range []struct {
		version  int16
		in, want *kerr.Error
		msg      bool
	}{
		{9, kerr.TransactionAbortable, kerr.InvalidTxnState, true},
		{10, kerr.TransactionAbortable, kerr.InvalidTxnState, true},
		{11, kerr.TransactionAbortable, kerr.TransactionAbortable, true},
		{12, kerr.TransactionAbortable, kerr.TransactionAbortable, true},
		{9, kerr.InvalidTxnState, kerr.InvalidTxnState, true},
		{9, kerr.ProducerFenced, kerr.InvalidProducerEpoch, false},
		{11, kerr.ProducerFenced, kerr.InvalidProducerEpoch, false},
		{9, kerr.ClusterAuthorizationFailed, kerr.InvalidTxnState, true},
		{9, kerr.NotCoordinator, kerr.NotEnoughReplicas, true},
		{11, kerr.CoordinatorLoadInProgress, kerr.NotEnoughReplicas, true},
		{12, kerr.CoordinatorNotAvailable, kerr.NotEnoughReplicas, true},
		{12, kerr.NetworkException, kerr.NotEnoughReplicas, true},
		{9, kerr.ConcurrentTransactions, kerr.NotEnoughReplicas, true},
		{11, kerr.ConcurrentTransactions, kerr.NotEnoughReplicas, true},
		{12, kerr.ConcurrentTransactions, kerr.ConcurrentTransactions, false},
		{9, kerr.InvalidProducerIDMapping, kerr.InvalidProducerIDMapping, false},
	} {
		got := produceVerifyError(c.version, c.in.Code)
		if got.code != c.want.Code || (got.msg != nil) != c.msg {
			t.Errorf("v%d %s: got %v (message %v), want %s", c.version, c.in.Message, kerr.ErrorForCode(got.code), got.msg != nil, c.want.Message)
		}
	}
}
