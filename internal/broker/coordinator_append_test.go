package broker

import (
	"errors"
	"testing"
)

// TestCoordinatorBatchWithoutSequence: the group coordinator's
// transactional offset batches carry no sequence (-1), as Kafka checks a
// coordinator's append: every one is written (none is taken for a retry of
// the last), and only the producer's epoch is checked.
func TestCoordinatorBatchWithoutSequence(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	const pid = 77
	first := appendBatch(t, p, producerBatch(t, pid, 2, -1, 1))
	second := appendBatch(t, p, producerBatch(t, pid, 2, -1, 1))
	if second.Duplicate || second.BaseOffset != first.BaseOffset+1 {
		t.Fatalf("second batch: %+v after %+v", second, first)
	}
	appendBatch(t, p, producerBatch(t, pid, 3, -1, 2)) // a newer epoch
	if _, err := p.Append(producerBatch(t, pid, 2, -1, 1), 1<<20, false); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("an older epoch: %v", err)
	}
	// The producer's own batches still follow the sequence rules.
	appendBatch(t, p, producerBatch(t, pid, 4, 0, 1))
	if _, err := p.Append(producerBatch(t, pid, 4, 5, 1), 1<<20, false); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("a gap in the sequence: %v", err)
	}
}
