package kafka

// ListOffsets: v1-10
//
// Behavior:
//   - Timestamp -1: latest (the high watermark for consumers, replica id
//     -1; the log end offset for any other replica id, as in Kafka, where
//     only -1 is a client and -2 is the debugging replica id); -2:
//     earliest (log start offset); -3: the record with the
//     largest timestamp (KIP-734); -4: earliest local (log start offset, no
//     tiered storage); -5: latest tiered (-1: nothing is tiered).
//   - A timestamp t >= 0: the first record whose timestamp >= t, found by
//     the time index, then the batch, then its records; offsets at or
//     beyond the high watermark are not returned to consumers (-1).
//   - isolation_level=1 (read_committed, v2+): the last stable offset
//     takes the high watermark's place, for -1 and as the bound of
//     lookups (Kafka's fetchOffsetForTimestamp).
//   - v4+ returns the leader epoch (0); unknown epochs are checked as Fetch.
//   - A replica id >= 0 must be a follower of the partition, as in Fetch
//     (UNKNOWN_LEADER_EPOCH with a current leader epoch, else
//     NOT_LEADER_OR_FOLLOWER; no broker epoch: ListOffsets has none).
//     Kafka does not check it (listOffsetsFollowerCode says why strata
//     does). -2 reads the log end offset unchecked, as in Kafka.
//   - Timestamp lookups stream the records of the batch they land in and
//     decompress at most listOffsetsDecompressBudget bytes per request; a
//     batch past the budget (a compression bomb stored within
//     record.MaxDecompressedSize) is answered with its first offset, which
//     is at or before the exact one.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(2, 1, 10, (*Handler).handleListOffsets) }

// listOffsetsDecompressBudget bounds what one ListOffsets request may
// decompress to look up timestamps. A lookup reads into one batch, and an
// honest batch (max.message.bytes of 1 MiB, compressed a few times over)
// decompresses to a few MiB, so 64 MiB answers a request for a dozen or
// more partitions exactly; past it, answers are per batch. It costs
// about 50-250 ms of one core (zstd to gzip), where one stored bomb would
// otherwise cost up to record.MaxDecompressedSize per partition asked.
const listOffsetsDecompressBudget = 64 << 20

func (h *Handler) handleListOffsets(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	ac := h.auth(ctx, sr)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	budget := int64(listOffsetsDecompressBudget)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		described := ac.topic(acl.OpDescribe, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			if !described {
				sp.ErrorCode = codeTopicAuth // Kafka: DESCRIBE on the topic
			} else if p, code := h.lookup(rt.Topic, rp.Partition); code != 0 {
				sp.ErrorCode = code
			} else if ecode := epochCode(rp.CurrentLeaderEpoch, p.LeaderEpoch()); ecode != 0 {
				sp.ErrorCode = ecode
			} else if fcode := h.listOffsetsFollowerCode(req.ReplicaID, rt.Topic, rp); fcode != 0 {
				sp.ErrorCode = fcode
			} else {
				l := p.Log
				upTo := l.HighWatermark()
				if req.IsolationLevel == 1 {
					// read_committed: up to the LSO (Kafka's
					// fetchOffsetForTimestamp with TXN_COMMITTED).
					upTo = p.LastStableOffset()
				}
				if req.ReplicaID != -1 {
					// Not a client: Kafka passes no isolation level,
					// which reads to the log end (Partition.fetchOffsetForTimestamp).
					upTo = l.LogEndOffset()
				}
				sp.LeaderEpoch = p.LeaderEpoch()
				switch rp.Timestamp {
				case -1:
					sp.Offset = upTo
				case -2, -4:
					sp.Offset = l.LogStartOffset()
				case -5:
					sp.Offset = -1
				case -3:
					if found, ok, err := l.OffsetForMaxTimestamp(&budget); err != nil {
						sp.ErrorCode = errorCode(err)
					} else if ok && found.Offset < upTo {
						sp.Offset, sp.Timestamp = found.Offset, found.Timestamp
					}
				default:
					if rp.Timestamp < 0 {
						sp.ErrorCode = kerr.InvalidRequest.Code
					} else if found, ok, err := l.OffsetForTimestamp(rp.Timestamp, &budget); err != nil {
						sp.ErrorCode = errorCode(err)
					} else if ok && found.Offset < upTo {
						sp.Offset, sp.Timestamp = found.Offset, found.Timestamp
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.encode(resp), nil
}

// listOffsetsFollowerCode checks a ListOffsets request from replica id >=
// 0 as Fetch checks a follower (followerCode), without a broker epoch,
// which ListOffsets does not carry. Kafka serves any replica id the log
// end offset unchecked; strata refuses one that is not a follower of the
// partition, as Fetch does, so that a broker that lost its replica (a
// reassignment, a stale image) hears so from both APIs. It is no barrier
// to a client: an offset is not data, and -2 (Kafka's
// DEBUGGING_REPLICA_ID) reads the log end offset unchecked, as in Kafka.
// Negative ids are not checked.
func (h *Handler) listOffsetsFollowerCode(replicaID int32, topic string, rp kmsg.ListOffsetsRequestTopicPartition) int16 {
	if replicaID < 0 {
		return 0
	}
	im := h.meta.Image()
	t := im.Topic(topic)
	if t == nil || rp.Partition < 0 || rp.Partition >= t.Partitions {
		return kerr.UnknownTopicOrPartition.Code
	}
	return h.followerCode(im, t.PartitionStates[rp.Partition], replicaID, -1, rp.CurrentLeaderEpoch)
}
