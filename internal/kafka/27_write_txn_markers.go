package kafka

// WriteTxnMarkers: v0-2
//
// Behavior:
//   - Sent by a transaction coordinator to the leader of each partition in
//     a transaction (Kafka's TransactionMarkerChannelManager): for each
//     marker and partition, an end-transaction control batch (COMMIT or
//     ABORT, with the coordinator epoch) is appended as the leader
//     (broker.Partition.AppendTxnMarker), then the answer waits until it is
//     replicated like an acks=all produce: min.insync.replicas applies
//     (NOT_ENOUGH_REPLICAS before the append,
//     NOT_ENOUGH_REPLICAS_AFTER_APPEND after), the wait ends at the
//     request timeout (REQUEST_TIMED_OUT, 30 s as Kafka's
//     request.timeout.ms), and a leadership lost meanwhile is
//     NOT_LEADER_OR_FOLLOWER. Internal topics take markers.
//   - Per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
//     INVALID_PRODUCER_EPOCH (an epoch below the producer's current one
//     on the partition; a higher one is taken, KIP-890),
//     TRANSACTION_COORDINATOR_FENCED (a coordinator epoch below the last
//     marker's), KAFKA_STORAGE_ERROR.
//   - Once a marker is written to a partition of __consumer_offsets, the
//     group coordinator applies (commit) or drops (abort) the producer's
//     transactional offsets there (group.Coordinator.CompleteTxn).
//   - Authorization: CLUSTER_ACTION on the cluster, else every partition is
//     CLUSTER_AUTHORIZATION_FAILED, as Kafka answers.
//   - v2 (KIP-890 transaction version) is taken: the marker path is the
//     same (the coordinator origin skips the same-epoch check).

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(27, 0, 2, (*Handler).handleWriteTxnMarkers) }

// txnMarkerTimeout is how long a marker waits to be replicated (Kafka's
// request.timeout.ms default, which its WriteTxnMarkers handler uses).
const txnMarkerTimeout = 30 * time.Second

func (h *Handler) handleWriteTxnMarkers(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.WriteTxnMarkersRequest)
	ac := h.auth(ctx, sr)
	if !ac.cluster(acl.OpClusterAction) {
		resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		resp.Markers = txnMarkersAnswer(req, kerr.ClusterAuthorizationFailed.Code)
		return h.encode(resp), nil
	}
	resp, wait := h.writeTxnMarkers(req, time.Now().Add(txnMarkerTimeout))
	if wait == nil {
		return h.encode(resp), nil
	}
	// Waited for on the connection's writer, as acks=all produces are.
	r := &server.Response{}
	r.Wait = func() error {
		wait()
		enc := h.encode(resp)
		r.HeaderFlexible, r.Parts, r.Release = enc.HeaderFlexible, enc.Parts, enc.Release
		return nil
	}
	return r, nil
}

// WriteTxnMarkers writes the markers of req to the partitions this node
// leads and returns once each is replicated as acks=all asks, or failed:
// the API 27 path without the request, the authorization or the
// connection. A transaction coordinator on this node calls it for the
// partitions it finds led here (its local marker writer); the per-partition
// error codes are those of the API. The wait for replication ends at ctx's
// deadline if earlier than the API's 30 s (REQUEST_TIMED_OUT); a marker
// appended and not yet replicated is then still in the log, and writing it
// again is harmless (a second marker for the same transaction closes
// nothing).
func (h *Handler) WriteTxnMarkers(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) *kmsg.WriteTxnMarkersResponse {
	deadline := time.Now().Add(txnMarkerTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	resp, wait := h.writeTxnMarkers(req, deadline)
	if wait != nil {
		wait()
	}
	return resp
}

// txnMarkersAnswer answers every partition of req with code.
func txnMarkersAnswer(req *kmsg.WriteTxnMarkersRequest, code int16) []kmsg.WriteTxnMarkersResponseMarker {
	out := make([]kmsg.WriteTxnMarkersResponseMarker, 0, len(req.Markers))
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, mt := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			for _, p := range mt.Partitions {
				rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		out = append(out, rm)
	}
	return out
}

// markerWait is a written marker to see replicated before answering.
type markerWait struct {
	p          *broker.Partition
	res        broker.AppendResult
	code       *int16
	offsets    bool // a partition of __consumer_offsets
	partition  int32
	producerID int64
	epoch      int16
	commit     bool
}

// writeTxnMarkers appends every marker of req, and returns the response
// and, if some must be waited for, the wait (until deadline) that completes
// it.
func (h *Handler) writeTxnMarkers(req *kmsg.WriteTxnMarkersRequest, deadline time.Time) (*kmsg.WriteTxnMarkersResponse, func()) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	resp.Markers = txnMarkersAnswer(req, 0)
	var waits []markerWait
	for i, m := range req.Markers {
		for j, mt := range m.Topics {
			t, tcode := h.topic(mt.Topic, false)
			for k, partition := range mt.Partitions {
				code := &resp.Markers[i].Topics[j].Partitions[k].ErrorCode
				if tcode != 0 {
					*code = tcode
					continue
				}
				p, tc, pcode := h.partition(t, partition)
				if pcode != 0 {
					*code = pcode
					continue
				}
				if p.InSyncReplicas() < tc.MinInsyncReplicas {
					*code = errorCode(fmt.Errorf("%w: %d in sync, min.insync.replicas is %d", broker.ErrNotEnoughReplicas, p.InSyncReplicas(), tc.MinInsyncReplicas))
					continue
				}
				res, err := p.AppendTxnMarker(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
				if err != nil {
					*code = errorCode(err)
					if *code == kerr.UnknownServerError.Code || *code == kerr.KafkaStorageError.Code {
						h.logger.Error("write txn marker failed", "partition", p.TP, "producer_id", m.ProducerID, "err", err)
					}
					continue
				}
				waits = append(waits, markerWait{p: p, res: res, code: code, offsets: mt.Topic == group.Topic,
					partition: partition, producerID: m.ProducerID, epoch: m.ProducerEpoch, commit: m.Committed})
			}
		}
	}
	if len(waits) == 0 {
		return resp, nil
	}
	return resp, func() {
		for _, w := range waits {
			if w.res.SyncTo > 0 {
				if err := w.p.WaitDurable(w.res.SyncTo, w.res.SyncGen); err != nil {
					h.logger.Error("write txn marker failed", "partition", w.p.TP, "err", err)
					*w.code = errorCode(err)
					continue
				}
			}
			if rw, ok := w.p.WaitFor(w.res.NextOffset); ok {
				if err := w.p.WaitReplicated(rw, deadline); err != nil {
					*w.code = errorCode(err)
					continue
				}
			}
			if w.offsets && h.groups != nil {
				h.groups.CompleteTxn(w.partition, w.producerID, w.epoch, w.commit)
			}
		}
	}
}
