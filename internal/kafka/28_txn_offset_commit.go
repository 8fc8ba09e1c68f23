package kafka

// TxnOffsetCommit: v0-4
//
// Behavior:
//   - The offsets are written to the group's __consumer_offsets partition
//     as one transactional batch of the request's producer id and epoch
//     (the partition refuses an epoch older than the producer's:
//     INVALID_PRODUCER_EPOCH), and kept pending: OffsetFetch does not
//     return them until the transaction's COMMIT marker is written to that
//     partition (WriteTxnMarkers calls group.Coordinator.CompleteTxn); an
//     ABORT drops them. With require_stable (OffsetFetch v7+), a partition
//     with pending offsets answers UNSTABLE_OFFSET_COMMIT.
//   - Checks as Kafka's group coordinator: INVALID_GROUP_ID for an empty
//     group id, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS; v3+ carry a
//     member id, generation and instance id, checked when given (classic
//     groups: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION;
//     KIP-848 consumer groups: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION for
//     another member epoch); an unknown group with a generation is
//     ILLEGAL_GENERATION. Per partition: UNKNOWN_TOPIC_OR_PARTITION (before
//     the group's checks, as Kafka's KafkaApis filters them first),
//     OFFSET_METADATA_TOO_LARGE. A negative producer id is
//     INVALID_PRODUCER_ID_MAPPING.
//   - Group deletion and OffsetDelete delete pending offsets too (a
//     tombstone); offset expiration skips a partition with a pending
//     offset and keeps a group with an open transaction, as Kafka's
//     OffsetMetadataManager.
//   - Not done (KIP-890): the transaction is not verified with the
//     transaction coordinator before the write; v5 (implicit
//     AddOffsetsToTxn) is not served.
//   - With an authorizer, as Kafka: WRITE on the transactional id (else
//     every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on
//     the group (else GROUP_AUTHORIZATION_FAILED) and READ on each topic
//     (else its partitions are TOPIC_AUTHORIZATION_FAILED, not committed).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(28, 0, 4, (*Handler).handleTxnOffsetCommit) }

func (h *Handler) handleTxnOffsetCommit(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	ac := h.auth(ctx, sr)
	if !ac.enabled() {
		return h.encode(h.groups.TxnCommit(req)), nil
	}
	fail := func(code int16) (*server.Response, error) {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		resp.Topics = txnOffsetCommitErrors(req.Topics, code)
		return h.encode(resp), nil
	}
	if !ac.txn(acl.OpWrite, req.TransactionalID) {
		return fail(kerr.TransactionalIDAuthorizationFailed.Code)
	}
	if !ac.group(acl.OpRead, req.Group) {
		return fail(codeGroupAuth)
	}
	var kept, denied []kmsg.TxnOffsetCommitRequestTopic
	for _, t := range req.Topics {
		if ac.topic(acl.OpRead, t.Topic) {
			kept = append(kept, t)
		} else {
			denied = append(denied, t)
		}
	}
	req.Topics = kept
	resp := h.groups.TxnCommit(req)
	resp.Topics = append(resp.Topics, txnOffsetCommitErrors(denied, codeTopicAuth)...)
	return h.encode(resp), nil
}

// txnOffsetCommitErrors answers every partition of topics with code.
func txnOffsetCommitErrors(topics []kmsg.TxnOffsetCommitRequestTopic, code int16) []kmsg.TxnOffsetCommitResponseTopic {
	out := make([]kmsg.TxnOffsetCommitResponseTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}
