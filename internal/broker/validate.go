package broker

import (
	"fmt"
	"time"

	"github.com/strata-io/strata/internal/record"
)

// ValidateProduced applies Kafka's LogValidator to the records a client
// produced to one partition of a topic with config tc, before they are
// recompressed or appended: the batch's integrity (length, magic, CRC:
// CORRUPT_MESSAGE), validateProduced's header rules, and then every record
// (record.Batch.ValidateRecords): a batch whose records contradict its
// header is INVALID_RECORD, and with message.timestamp.type=CreateTime each
// record's timestamp must lie within message.timestamp.before.max.ms /
// after.max.ms of now (KIP-937, INVALID_TIMESTAMP). Nothing is copied or
// modified. Partition.Append still checks the header rules itself, for
// callers that append without this.
//
// Kafka walks the records of every produced batch the same way
// (LogValidator.validateMessagesAndAssignOffsets, decompressing compressed
// ones); without the walk, a batch with a valid CRC but lying records was
// stored and acknowledged, and consumers could no longer read the
// partition past it.
func ValidateProduced(data []byte, tc TopicConfig, now time.Time) (record.Batch, error) {
	b, err := parseProduced(data)
	if err != nil {
		return nil, err
	}
	// LogValidator.validateBatch: an idempotent or transactional batch
	// must carry a sequence number.
	if b.HasProducerID() && b.BaseSequence() < 0 {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d", record.ErrInvalidRecord, b.ProducerID(), b.BaseSequence())
	}
	// LogValidator.validateTimestamp: a producer may not claim
	// LogAppendTime for a LogAppendTime topic (the broker stamps it), nor
	// for records that carry no timestamp.
	if b.TimestampType() == record.LogAppendTime && (tc.LogAppendTime || b.MaxTimestamp() == record.NoTimestamp) {
		return nil, fmt.Errorf("%w: producers may not set the timestamp type to LogAppendTime", record.ErrInvalidTimestamp)
	}
	return b, b.ValidateRecords(record.Checks{
		Timestamps:  !tc.LogAppendTime,
		Now:         now.UnixMilli(),
		BeforeMaxMs: tc.TimestampBeforeMaxMs,
		AfterMaxMs:  tc.TimestampAfterMaxMs,
		// The same bound as every reader of stored batches
		// (record.Decompress), so what is accepted stays readable; the
		// walk streams, so the bound costs CPU time, not memory.
		MaxDecompressed: record.MaxDecompressedSize,
	})
}

// parseProduced checks what a produce request holds for one partition:
// exactly one batch, whole, with a valid CRC (record.Parse), that passes
// validateProduced's header rules. A plain loop: a callback collecting the
// batches would cost allocations on every produce.
func parseProduced(data []byte) (record.Batch, error) {
	var b record.Batch
	n := 0
	for rest := data; len(rest) > 0; n++ {
		next, r, err := record.Parse(rest)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			b = next
		}
		rest = r
	}
	if err := validateProduced(b, n); err != nil {
		return nil, err
	}
	return b, nil
}
