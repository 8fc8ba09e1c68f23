package kafka

// Produce: v0-12
//
// Behavior:
//   - Each partition's records are appended as the producer built them:
//     validated in place (length, magic 2, CRC) and written without a copy.
//   - Every record is walked first, as Kafka's LogValidator does
//     (broker.ValidateProduced; compressed batches through a streaming
//     decoder): records that contradict their batch's header are
//     INVALID_RECORD, streams that do not decompress (or decompress past
//     record.MaxDecompressedSize) CORRUPT_MESSAGE, and CreateTime records
//     outside message.timestamp.before/after.max.ms INVALID_TIMESTAMP
//     (KIP-937).
//   - Except when the topic's compression.type names a codec other than a
//     batch's ("uncompressed" is none): then the batch is decoded and its
//     records re-encoded with that codec (record.Recompress), the one copy on
//     the produce path, as Kafka's LogValidator rebuilds it. Header fields
//     (producer id, epoch, sequence, timestamps, transactional bit) are kept.
//     Records that do not decode are CORRUPT_MESSAGE. max.message.bytes
//     applies to the batch as produced and again as stored, after
//     recompression, as Kafka checks both.
//   - acks=0 gets no response; acks=1 answers after the local append;
//     acks=-1 (all) answers once the high watermark passes the batch, that
//     is once every in-sync replica has it (on one node, or with the
//     leader alone in the ISR, at once). The wait happens on the
//     connection's writer, as fsync waits do; past the request's timeout
//     it is REQUEST_TIMED_OUT. An acks=-1 write to a partition with fewer
//     in-sync replicas than min.insync.replicas is NOT_ENOUGH_REPLICAS,
//     not appended; one whose ISR shrank below it while waiting is
//     NOT_ENOUGH_REPLICAS_AFTER_APPEND; one whose leader changed while
//     waiting is NOT_LEADER_OR_FOLLOWER (the new leader may or may not
//     keep it: an idempotent retry gets its offsets back if it does).
//   - v0-2 carry message formats v0/v1, which strata refuses as Kafka 4
//     does: UNSUPPORTED_FOR_MESSAGE_FORMAT. v0+ is still advertised because
//     librdkafka turns compression off when Produce v0 is missing
//     (KAFKA-18659). In v3+ a batch of magic 0/1 is INVALID_RECORD, as
//     Kafka's ProduceRequest.validateRecords answers it.
//   - Errors are per partition; one bad partition does not fail the others.
//   - Idempotent producers: duplicates of the last 5 batches are answered
//     with their original offsets; gaps are OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - Unknown topics are UNKNOWN_TOPIC_OR_PARTITION: as in Kafka, only
//     Metadata (auto.create.topics.enable) and CreateTopics create topics,
//     so a produce racing a delete cannot bring the topic back.
//   - acks other than -1, 0 and 1 are INVALID_REQUIRED_ACKS for every
//     partition, nothing appended (Kafka's ReplicaManager.appendRecords).
//   - v10+ (KIP-951): a partition this node does not lead is
//     NOT_LEADER_OR_FOLLOWER with its current leader and leader epoch, and
//     the response lists that leader's endpoint (leader_hints.go).
//   - Transactional batches are taken from a request that carries a
//     transactional id (with an authorizer, WRITE on it); a request with a
//     transactional batch and no transactional id (or without the WRITE)
//     is TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition, as
//     Kafka's KafkaApis.handleProduceRequest answers. The first
//     transactional batch of a producer opens its transaction on the
//     partition (the LSO stays at its first offset until the coordinator's
//     marker, WriteTxnMarkers); a non-transactional batch from a producer
//     with a transaction open there is INVALID_TXN_STATE.
//   - KIP-890 part 1 (txn_verify.go; transaction.partition.verification.
//     enable): before the first transactional batch of a producer with no
//     transaction open on the partition, the leader asks the coordinator
//     of the transactional id (AddPartitionsToTxn VerifyOnly; v12: adds
//     it, as transaction version 2) whether the partition is in the
//     producer's transaction. If not: INVALID_TXN_STATE (v0-10) or
//     TRANSACTION_ABORTABLE (v11+); PRODUCER_FENCED is
//     INVALID_PRODUCER_EPOCH; a coordinator that cannot answer is
//     NOT_ENOUGH_REPLICAS (retriable, no metadata refresh), as Kafka's
//     ReplicaManager answers. Several producers in one transactional
//     request are INVALID_PRODUCER_ID_MAPPING for every partition. No
//     partition lock is held while the coordinator answers, and
//     non-transactional requests do none of this.
//   - With an authorizer (authz.go): WRITE on each topic, else its
//     partitions are TOPIC_AUTHORIZATION_FAILED (before existence, as
//     Kafka). Idempotent producers are authorized at InitProducerId.
//
// The verification holds a guard on the partition (Kafka's
// VerificationGuard): a marker of the producer written while the
// coordinator answers voids it, and the batch is INVALID_TXN_STATE.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

func init() { register(0, 0, 12, (*Handler).handleProduce) }

func (h *Handler) handleProduce(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	ac := h.auth(ctx, sr)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	transactional := hasTransactionalBatch(req)
	if transactional && (req.TransactionID == nil || !ac.txn(acl.OpWrite, *req.TransactionID)) {
		// Kafka: a transactional produce needs a transactional id
		// the client may WRITE.
		return h.encode(produceError(req, kerr.TransactionalIDAuthorizationFailed.Code)), nil
	}
	if req.Acks != -1 && req.Acks != 0 && req.Acks != 1 {
		return h.encode(produceError(req, kerr.InvalidRequiredAcks.Code)), nil
	}
	// KIP-890 part 1: a producer's first transactional batch on a
	// partition is checked with its transaction coordinator first
	// (txn_verify.go). Non-transactional requests skip this.
	var verified map[txn.TopicPartition]produceTxnVerified
	if transactional {
		var code int16
		if verified, code = h.verifyProduceTxn(ctx, ac, req); code != 0 {
			return h.encode(produceError(req, code)), nil
		}
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	// Partitions whose appends must be fsynced before the answer
	// (flush.messages): every partition is written first, so their fsyncs
	// run at once, and the wait happens on the connection's writer, so
	// the next request is appended meanwhile and shares the fsync.
	var syncs []durableWait
	// Partitions whose acks=all answer waits for the followers: the
	// high watermark must pass the batch.
	var repls []replicatedWait
	deadline := time.Now().Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
	// First every partition's answer is laid out and its append planned;
	// then the appends run (appendAll: at once for a large request of
	// several partitions); then their results fill the answers.
	// One allocation for every partition's job, not one per doubling.
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	jobs := make([]produceAppend, 0, n)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		t, code := h.topic(rt.Topic, false)
		if internalTopic(rt.Topic) {
			code = kerr.InvalidTopicException.Code // Kafka: "Cannot append to internal topic"
		}
		if !ac.topic(acl.OpWrite, rt.Topic) {
			// Before existence, as Kafka: an unauthorized client
			// learns nothing of which topics exist.
			code = codeTopicAuth
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			if code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, tc, pcode := h.partition(t, rp.Partition)
			if pcode != 0 {
				sp.ErrorCode = pcode
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			var guard uint64 // KIP-890: the verification to hold to
			if verified != nil {
				if v, ok := verified[txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}]; ok {
					if v.code != 0 {
						sp.ErrorCode, sp.ErrorMessage = v.code, v.msg
						st.Partitions = append(st.Partitions, sp)
						continue
					}
					guard = v.guard
				}
			}
			jobs = append(jobs, produceAppend{p: p, tc: tc, guard: guard, data: rp.Records, topic: len(resp.Topics), partition: len(st.Partitions)})
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	appendAll(jobs, req.Version, req.Acks)
	for i := range jobs {
		j := &jobs[i]
		sp := &resp.Topics[j.topic].Partitions[j.partition]
		res, err := j.res, j.err
		if err == nil && res.SyncTo > 0 {
			syncs = append(syncs, durableWait{j.p, res.SyncTo, res.SyncGen, j.topic, j.partition})
		}
		if err == nil && req.Acks == -1 {
			if w, ok := j.p.WaitFor(res.NextOffset); ok {
				repls = append(repls, replicatedWait{j.p, w, j.topic, j.partition})
			}
		}
		if err != nil {
			sp.ErrorCode = errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			if sp.ErrorCode == kerr.UnknownServerError.Code || sp.ErrorCode == kerr.KafkaStorageError.Code {
				h.logger.Error("produce failed", "partition", j.p.TP, "err", err)
			}
			continue
		}
		if !res.Duplicate && len(j.stored) >= record.HeaderSize {
			h.cfg.Metrics.Produced(resp.Topics[j.topic].Topic, len(j.stored), int(j.stored.RecordCount()))
		}
		sp.BaseOffset = res.BaseOffset
		sp.LogAppendTime = res.LogAppendTime
		sp.LogStartOffset = res.LogStartOffset
	}
	if req.Acks == 0 {
		// Nobody waits: the fsyncs run anyway, and the records become
		// visible when they are done.
		return noResponse, nil
	}
	if len(syncs) == 0 && len(repls) == 0 {
		h.fillProduceLeaderHints(resp, h.listenerOf(sr))
		return h.encode(resp), nil
	}
	// The answer is encoded once the fsyncs are done, on the connection's
	// writer, so that a partition whose fsync failed answers
	// KAFKA_STORAGE_ERROR while the others succeed.
	r := &server.Response{}
	r.Wait = func() error {
		fail := func(topic, partition int, err error) {
			sp := &resp.Topics[topic].Partitions[partition]
			sp.ErrorCode = errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
		}
		for _, w := range syncs {
			if err := w.p.WaitDurable(w.syncTo, w.syncGen); err != nil {
				h.logger.Error("produce failed", "partition", w.p.TP, "err", err)
				fail(w.topic, w.partition, err)
			}
		}
		for _, w := range repls {
			if resp.Topics[w.topic].Partitions[w.partition].ErrorCode != 0 {
				continue // its fsync failed
			}
			if err := w.p.WaitReplicated(w.w, deadline); err != nil {
				fail(w.topic, w.partition, err)
			}
		}
		h.fillProduceLeaderHints(resp, h.listenerOf(sr))
		enc := h.encode(resp)
		r.HeaderFlexible, r.Parts, r.Release = enc.HeaderFlexible, enc.Parts, enc.Release
		return nil
	}
	return r, nil
}

// produceAppend is one partition's part of a produce request: what to
// append where, and how it went.
type produceAppend struct {
	p     *broker.Partition
	tc    broker.TopicConfig
	guard uint64 // KIP-890 verification to hold to
	data  []byte // the records as produced

	topic, partition int // the answer's place in the response

	stored record.Batch // as appended: validated, maybe recompressed
	res    broker.AppendResult
	err    error
}

// parallelAppendBytes is the size from which a request's partitions are
// appended at once, each on its own goroutine (up to GOMAXPROCS at a
// time): validating and copying a few MiB into the page cache takes
// milliseconds, and a producer has few requests in flight per broker (5
// for an idempotent one), so how soon it is answered bounds its
// throughput. Below it, goroutines cost more than they save.
const parallelAppendBytes = 512 << 10

// appendAll runs jobs' appends: in order on this goroutine, or at once
// when there are several and together they reach parallelAppendBytes.
// Partitions are independent: only one request of a connection is
// handled at a time, so the order of appends to any one partition is
// still the order of the requests.
func appendAll(jobs []produceAppend, version int16, acks int16) {
	total := 0
	for i := range jobs {
		total += len(jobs[i].data)
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	if workers < 2 || total < parallelAppendBytes || repeatsPartition(jobs) {
		for i := range jobs {
			jobs[i].run(version, acks)
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(jobs)); i = next.Add(1) - 1 {
			jobs[i].run(version, acks)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work() // this goroutine is the last worker
	wg.Wait()
}

// repeatsPartition reports whether two jobs append to the same partition
// (a request naming a partition twice): those appends keep the request's
// order, so the request runs in order.
func repeatsPartition(jobs []produceAppend) bool {
	seen := make(map[*broker.Partition]struct{}, len(jobs))
	for i := range jobs {
		if _, ok := seen[jobs[i].p]; ok {
			return true
		}
		seen[jobs[i].p] = struct{}{}
	}
	return false
}

// run validates j's records (once: the batch is parsed and its CRC
// checked once on this path), stores them as they came or as the topic's
// codec re-encodes them, and appends them.
func (j *produceAppend) run(version int16, acks int16) {
	// The batches as produced must fit, and (checked by Append) so must
	// what is stored after any recompression.
	err := checkProducedSizes(j.data, j.tc.MaxMessageBytes)
	var records record.Batch
	if err == nil {
		records, err = validateProduce(version, j.data, j.tc)
	}
	if err == nil {
		records, err = recompress(records, j.tc.Compression)
	}
	if err == nil && acks == -1 && j.p.InSyncReplicas() < j.tc.MinInsyncReplicas {
		// Kafka checks before appending: an acks=all write that
		// cannot be replicated as asked is refused.
		err = fmt.Errorf("%w: %d in sync, min.insync.replicas is %d", broker.ErrNotEnoughReplicas, j.p.InSyncReplicas(), j.tc.MinInsyncReplicas)
	}
	if err == nil {
		j.res, err = j.p.AppendVerifiedNoWait(records, j.tc.MaxMessageBytes, j.tc.LogAppendTime, j.guard)
	}
	j.stored, j.err = records, err
}

// produceError answers every partition of req with code, appending nothing.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// hasTransactionalBatch reports whether a partition of req holds a batch
// with the transactional bit (Kafka's ProduceRequest.hasTransactionalRecords
// looks at the first batch of each).
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if len(rp.Records) >= record.HeaderSize && record.Batch(rp.Records).IsTransactional() {
				return true
			}
		}
	}
	return false
}

// durableWait is an append to fsync before acknowledging, and where its
// answer is in the response.
type durableWait struct {
	p                *broker.Partition
	syncTo           int64
	syncGen          uint64 // truncation generation of the append
	topic, partition int
}

// replicatedWait is an acks=all append to see replicated before
// acknowledging, and where its answer is in the response.
type replicatedWait struct {
	p                *broker.Partition
	w                broker.ReplicationWait
	topic, partition int
}

// topicCodecs maps a compression.type other than "producer" to its codec.
var topicCodecs = map[string]record.Codec{
	"uncompressed": record.CodecNone,
	"gzip":         record.CodecGzip,
	"snappy":       record.CodecSnappy,
	"lz4":          record.CodecLZ4,
	"zstd":         record.CodecZstd,
}

// checkProducedSizes walks the batch headers (no CRC: Append validates) and
// refuses a batch larger than max.message.bytes. Malformed framing is left
// for Append to report with its precise error.
func checkProducedSizes(data []byte, maxMessageBytes int) error {
	for len(data) >= record.HeaderSize {
		size := int64(record.Batch(data).Length()) + record.LogOverhead
		if size < record.HeaderSize || size > int64(len(data)) {
			return nil // corrupt framing: Append says CORRUPT_MESSAGE
		}
		if size > int64(maxMessageBytes) {
			return fmt.Errorf("%w: %d bytes as produced, max.message.bytes is %d", broker.ErrMessageTooLarge, size, maxMessageBytes)
		}
		data = data[size:]
	}
	return nil
}

// validateProduce is broker.ValidateProduced with Kafka's answer for a
// legacy batch in a v3+ request: ProduceRequest.validateRecords throws
// InvalidRecordException ("Produce requests with version N are only allowed
// to contain record batches with magic version 2"), so INVALID_RECORD, not
// UNSUPPORTED_FOR_MESSAGE_FORMAT.
func validateProduce(version int16, data []byte, tc broker.TopicConfig) (record.Batch, error) {
	b, err := broker.ValidateProduced(data, tc, time.Now())
	if version >= 3 && errors.Is(err, record.ErrUnsupportedMagic) {
		return nil, fmt.Errorf("%w: produce v%d requests may only hold magic 2 batches (%v)", record.ErrInvalidRecord, version, err)
	}
	return b, err
}

// recompress returns a validated produced batch as the topic stores it:
// unchanged (not copied) when compression.type is "producer" or the batch
// already has the topic's codec, else re-encoded with that codec.
func recompress(b record.Batch, compression string) (record.Batch, error) {
	if compression == "producer" || compression == "" { // "": a zero TopicConfig
		return b, nil
	}
	to, ok := topicCodecs[compression]
	if !ok {
		// ParseTopicConfig accepts only the names above: a bug, logged
		// as UNKNOWN_SERVER_ERROR.
		return nil, fmt.Errorf("kafka: unknown compression.type %q", compression)
	}
	if b.Codec() == to || b.IsControl() {
		return b, nil
	}
	return record.Recompress(b, to)
}
