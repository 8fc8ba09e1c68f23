package kafka

// Fetch: v4-17
//
// Behavior:
//   - Records go from segment files to the socket with sendfile: the
//     response is encoded by kmsg with a unique marker in place of each
//     partition's records, then split around the markers so the records are
//     file regions (see zeroCopyParts). No record byte is copied.
//   - A fetch at an offset inside a batch returns that whole batch; the
//     first batch is returned even when larger than the request's or the
//     partition's max bytes (KIP-74); later partitions stop at MaxBytes.
//   - MaxWaitMillis/MinBytes long-poll: the request waits on a signal from
//     appends to its partitions, never polls, and is woken only once they
//     appended at least the MinBytes it still lacks (broker.Waiter), not
//     at every append.
//   - Consumers (replica id < 0: -1, and -2, Kafka's debugging consumer;
//     Kafka's -3, its own alter-log-dirs replica, never comes over the
//     wire and is a consumer here) read up to the high watermark. A follower (ReplicaID >= 0 before v15,
//     ReplicaState.ID from v15, KIP-903) reads up to the log end offset,
//     whatever its isolation level (Kafka's FetchIsolation.of), and only
//     if it is one of the partition's replicas other than this leader, else
//     UNKNOWN_LEADER_EPOCH when it sent a current leader epoch and
//     NOT_LEADER_OR_FOLLOWER when not (Kafka's
//     Partition.followerReplicaOrThrow). A ReplicaState.Epoch (broker
//     epoch) older than the image's for that live broker is a stale
//     incarnation: NOT_LEADER_OR_FOLLOWER (Replica.updateFetchStateOrThrow).
//     Epoch -1, an epoch newer than the image's, and a fenced or
//     unregistered replica are not refused, as in Kafka (followerCode).
//   - KIP-392, fetch from the closest replica (read_replica.go): with
//     replica.selector.class Kafka's RackAwareReplicaSelector, the leader
//     answers a consumer (v11+) whose Rack (client.rack) is not the
//     leader's but is that of a live in-sync replica holding the fetch
//     offset with PreferredReadReplica, no records and no wait, the high
//     watermark and log start offset still set. A follower never gets one
//     (Kafka sets it only for consumers). A node that follows a partition
//     serves consumers' fetches (v11+, whatever the selector, as in Kafka)
//     up to its own high watermark, zero-copy as on the leader, if the
//     CurrentLeaderEpoch is the one it follows in (else
//     FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH); an offset above its log
//     end that the leader's high watermark covers is OFFSET_NOT_AVAILABLE,
//     one beyond it OFFSET_OUT_OF_RANGE. Older consumers, and nodes with no
//     replica of the partition, get NOT_LEADER_OR_FOLLOWER.
//   - A follower's fetch offset is its log end offset: the leader records
//     it (broker.Partition.FollowerFetch), which moves the high watermark
//     (the lowest log end of the ISR) and wakes acks=all produces, and
//     proposes the follower's return to the ISR once it caught up. A
//     follower whose LastFetchedEpoch (v12+) ends below its fetch offset
//     in the leader's epoch cache, or is one the leader never had, gets
//     DivergingEpoch (the epoch and its end offset here) and no records,
//     at once, and truncates (KIP-595); an epoch the leader cannot place
//     at all is OFFSET_OUT_OF_RANGE.
//   - Sessionless (KIP-227 sessions are declined with session id 0, which
//     clients accept). Topic IDs replace names from v13.
//   - Leader epoch checks (v9+): a newer epoch than ours is
//     UNKNOWN_LEADER_EPOCH, an older one FENCED_LEADER_EPOCH.
//   - v16+ (KIP-951): NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH carry
//     the partition's current leader and leader epoch, and the response
//     lists that leader's endpoint (leader_hints.go).
//   - isolation_level=1 (read_committed) reads up to the last stable offset
//     (the high watermark, or the first offset of the earliest transaction
//     still open or not yet replicated), and AbortedTransactions lists the
//     aborted transactions overlapping the range it may read, from the
//     partitions' .txnindex (broker.Partition.AbortedTransactions), not from
//     the records: the client drops their records. LastStableOffset is
//     the LSO in every answer, whatever the isolation level. A follower
//     reads to the log end whatever its isolation level.
//   - With an authorizer (authz.go): a consumer needs READ on each topic,
//     a follower CLUSTER_ACTION on the cluster; else the topic's
//     partitions are TOPIC_AUTHORIZATION_FAILED, as Kafka answers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(1, 4, 17, (*Handler).handleFetch) }

// fetchPartition is one requested partition and where its answer goes.
type fetchPartition struct {
	resp     *kmsg.FetchResponseTopicPartition
	p        *broker.Partition
	offset   int64
	maxBytes int32
	region   log.Region
	// lastFetchedEpoch is a follower's (v12+), -1 when not given.
	lastFetchedEpoch int32
	topicID          cluster.TopicID
	// follower: a consumer reads a partition followed here (KIP-392).
	follower bool
}

func (h *Handler) handleFetch(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	// The follower's identity: ReplicaID before v15, ReplicaState from
	// v15 (KIP-903), as Kafka's FetchRequest.replicaId() reads it.
	replicaID, replicaEpoch := req.ReplicaID, int64(-1)
	if req.Version >= 15 {
		replicaID, replicaEpoch = req.ReplicaState.ID, req.ReplicaState.Epoch
	}
	replica := replicaID >= 0
	// Kafka's FetchParams.fetchOnlyLeader: a consumer that sent client
	// metadata (v11+, KIP-392) may read from a follower and be sent to
	// one (read_replica.go).
	consumerMeta := !replica && req.Version >= 11
	redirected := false // some partition got a PreferredReadReplica
	// A follower needs CLUSTER_ACTION on the cluster, a consumer READ on
	// each topic; Kafka answers TOPIC_AUTHORIZATION_FAILED for every
	// partition either lacks.
	ac := h.auth(ctx, sr)
	replicaAllowed := !replica || ac.cluster(acl.OpClusterAction)
	// A follower reads to the log end whatever its isolation level
	// (Kafka's FetchIsolation.of); a read_committed consumer to the LSO.
	readCommitted := !replica && req.IsolationLevel == 1

	// Lay out the response in request order and resolve partitions once.
	im := h.meta.Image()
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	parts := make([]fetchPartition, 0, n)
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *cluster.Topic
		code := int16(0)
		if req.Version >= 13 {
			if t = im.ByID[cluster.TopicID(rt.TopicID)]; t == nil {
				code = kerr.UnknownTopicID.Code
			}
		} else if t = im.Topic(rt.Topic); t == nil {
			code = kerr.UnknownTopicOrPartition.Code
		}
		if ac.enabled() && (t != nil || req.Version < 13) {
			// By id (v13+) an unknown topic has no name to
			// authorize: UNKNOWN_TOPIC_ID, as Kafka.
			name := rt.Topic
			if t != nil {
				name = t.Name
			}
			if !replicaAllowed || !replica && !ac.topic(acl.OpRead, name) {
				code = codeTopicAuth
			}
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{}
			if code != 0 {
				sp.ErrorCode = code
				continue
			}
			p, _, pcode := h.partition(t, rp.Partition)
			if pcode == kerr.NotLeaderForPartition.Code && consumerMeta {
				// KIP-392: a consumer may read from a follower.
				if fp, fcode := h.followerRead(t, rp.Partition, rp.CurrentLeaderEpoch); fcode != kerr.NotLeaderForPartition.Code {
					if fcode != 0 {
						sp.ErrorCode = fcode
						continue
					}
					parts = append(parts, fetchPartition{resp: sp, p: fp, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
						lastFetchedEpoch: -1, topicID: t.ID, follower: true})
					continue
				}
			}
			preferred := int32(-1)
			switch {
			case pcode != 0:
				sp.ErrorCode = pcode
			case epochCode(rp.CurrentLeaderEpoch, p.LeaderEpoch()) != 0:
				sp.ErrorCode = epochCode(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			case replica && h.followerCode(im, t.PartitionStates[rp.Partition], replicaID, replicaEpoch, rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = h.followerCode(im, t.PartitionStates[rp.Partition], replicaID, replicaEpoch, rp.CurrentLeaderEpoch)
			case consumerMeta && req.Rack != "" && h.cfg.RackAwareReplicaSelector:
				preferred = h.preferredReadReplica(im, p, rp.FetchOffset, req.Rack, h.listenerOf(sr))
			}
			switch {
			case sp.ErrorCode != 0:
			case preferred >= 0:
				// KIP-392: no records; the offsets as a read would
				// give them, and the answer goes at once (Kafka's
				// fetchOffsetSnapshot, hasPreferredReadReplica).
				sp.PreferredReadReplica = preferred
				sp.LastStableOffset = p.LastStableOffset()
				sp.HighWatermark = p.Log.HighWatermark()
				sp.LogStartOffset = p.Log.LogStartOffset()
				redirected = true
			default:
				parts = append(parts, fetchPartition{resp: sp, p: p, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
					lastFetchedEpoch: rp.LastFetchedEpoch, topicID: t.ID})
			}
		}
	}

	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	var wake *broker.Waiter
	if req.MaxWaitMillis > 0 && req.MinBytes > 0 && len(parts) > 0 && !redirected {
		// Register before the first read so no append is missed
		// between reading and waiting.
		wake = broker.NewWaiter()
		for i := range parts {
			parts[i].p.AddWaiter(wake)
		}
		defer func() {
			for i := range parts {
				parts[i].p.RemoveWaiter(wake)
			}
			wake.Release()
		}()
	}
	var timer *time.Timer // only a fetch that waits needs one
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var seen int64 // bytes appended before this read: the read includes them
		if wake != nil {
			seen = wake.Appended()
		}
		total, failed := h.readPartitions(parts, maxBytes, replica, readCommitted)
		if replica {
			h.followerFetched(parts, replicaID, replicaEpoch)
		}
		if wake == nil || failed || total >= int64(req.MinBytes) {
			break
		}
		// Sleep until enough bytes for MinBytes were appended, not at
		// every append.
		if wake.WakeAt(seen + int64(req.MinBytes) - total) {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
		}
		h.cfg.Metrics.FetchWaiting(1)
		select {
		case <-wake.C:
			h.cfg.Metrics.FetchWaiting(-1)
			continue
		case <-timer.C:
		case <-ctx.Done():
		case <-h.stopping:
		}
		h.cfg.Metrics.FetchWaiting(-1)
		h.readPartitions(parts, maxBytes, replica, readCommitted)
		if replica {
			h.followerFetched(parts, replicaID, replicaEpoch)
		}
		break
	}
	for i := range parts {
		h.cfg.Metrics.Fetched(parts[i].p.TP.Topic, parts[i].region.Len)
	}
	h.fillFetchLeaderHints(resp, h.listenerOf(sr))
	h.countErrors(resp)
	return zeroCopyParts(resp, parts), nil
}

// followerCode is the error a follower fetch of partition ps from replica
// id with broker epoch brokerEpoch gets, 0 when the replica may read up to
// the log end offset. Kafka's Partition.fetchRecords: a replica id that is
// not a follower of the partition (not in its replica set, or this node,
// its leader) is UNKNOWN_LEADER_EPOCH when the request names the current
// leader epoch (the replica set may just not have reached this node's
// image, as in a reassignment) and NOT_LEADER_OR_FOLLOWER when it does not
// (followerReplicaOrThrow); a broker epoch older than the one the image
// holds for the replica's live (unfenced) broker is a stale incarnation and
// NOT_LEADER_OR_FOLLOWER (KIP-903, Replica.updateFetchStateOrThrow). A
// broker epoch of -1 (before v15) is not checked, nor is one newer than the
// image's (the image lags the registration), nor that of a fenced or
// unregistered replica: Kafka's getAliveBrokerEpoch has none to compare,
// and its controller keeps such a replica out of the ISR (KIP-841), so
// what it reads moves no high watermark.
func (h *Handler) followerCode(im *cluster.Image, ps *cluster.Partition, id int32, brokerEpoch int64, currentLeaderEpoch int32) int16 {
	if id == h.cfg.NodeID || !slices.Contains(ps.Replicas, id) {
		if currentLeaderEpoch >= 0 {
			return kerr.UnknownLeaderEpoch.Code
		}
		return kerr.NotLeaderForPartition.Code
	}
	if b := im.Broker(id); brokerEpoch != -1 && b != nil && !b.Fenced && b.Epoch > brokerEpoch {
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}

// followerFetched records in each partition what a follower's fetch says
// of it (its log end offset is its fetch offset), which may move the high
// watermark, and sends the ISR expansion that follows when the follower
// has caught up. A partition that diverged is not counted: its fetch
// offset is above what it keeps.
func (h *Handler) followerFetched(parts []fetchPartition, id int32, brokerEpoch int64) {
	now := time.Now()
	for i := range parts {
		fp := &parts[i]
		if fp.resp.ErrorCode != 0 || fp.resp.DivergingEpoch.Epoch >= 0 {
			continue
		}
		if isr := fp.p.FollowerFetch(id, brokerEpoch, fp.offset, now); isr != nil {
			h.proposeISR(fp.p, fp.topicID, isr)
		}
	}
}

// readPartitions reads every partition's region, filling the response's
// offsets and errors. It returns the bytes found and whether any partition
// failed (which answers the fetch at once, as Kafka does). A
// read_committed fetch (readCommitted) reads up to the last stable offset
// and gets the aborted transactions of the range it may read, from the
// partition's txn index (Kafka's LocalLog.addAbortedTransactions, whose
// upper bound may also pass the records returned).
func (h *Handler) readPartitions(parts []fetchPartition, maxBytes int32, replica, readCommitted bool) (int64, bool) {
	var total int64
	failed := false
	for i := range parts {
		fp := &parts[i]
		l := fp.p.Log
		sp := fp.resp
		if fp.p.Deleted() {
			// Deleted while the fetch waited: answer now, as Kafka
			// completes the delayed fetch.
			fp.region = log.Region{}
			sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			failed = true
			continue
		}
		// The LSO first: the high watermark read after is not below it.
		sp.LastStableOffset = fp.p.LastStableOffset()
		sp.HighWatermark = l.HighWatermark()
		sp.LogStartOffset = l.LogStartOffset()
		sp.AbortedTransactions = nil
		upTo := sp.HighWatermark
		if readCommitted {
			upTo = sp.LastStableOffset
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		if fp.follower {
			if code := followerReadCode(fp.p, fp.offset); code != 0 {
				fp.region = log.Region{}
				sp.ErrorCode = code
				failed = true
				continue
			}
		}
		if replica {
			upTo = l.LogEndOffset()
			if fp.lastFetchedEpoch >= 0 {
				// KIP-595: a follower whose last fetched epoch
				// ends below its fetch offset here, or is not one
				// this log has, diverged: it truncates to the end
				// given and fetches again. Answered at once.
				epoch, end := fp.p.EndOffsetForEpoch(fp.lastFetchedEpoch)
				if epoch < 0 || end < 0 {
					fp.region = log.Region{}
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					failed = true
					continue
				}
				if epoch < fp.lastFetchedEpoch || end < fp.offset {
					fp.region = log.Region{}
					sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = epoch, end
					sp.ErrorCode = 0
					failed = true
					continue
				}
			}
		}
		limit := min(int64(fp.maxBytes), int64(maxBytes)-total)
		fp.region = log.Region{}
		if limit <= 0 && total > 0 {
			continue // KIP-74: only the first partition may overshoot
		}
		region, err := l.Read(fp.offset, int(max(limit, 0)), upTo)
		if err != nil {
			sp.ErrorCode = errorCode(err)
			failed = true
			continue
		}
		sp.ErrorCode = 0
		if total > 0 && region.Len > limit {
			// Only the first partition with data may overshoot (KIP-74):
			// this one's first batch does not fit what is left.
			continue
		}
		fp.region = region
		total += region.Len
		if readCommitted && region.Len > 0 {
			for _, a := range fp.p.AbortedTransactions(fp.offset, upTo) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
	}
	return total, failed
}

// markerTag starts every records marker: random per process, so it cannot
// appear by chance in the rest of an encoded response.
var markerTag = func() [16]byte {
	var t [16]byte
	rand.Read(t[:])
	return t
}()

const markerLen = 20

// zeroCopyParts encodes resp with a marker as the records of each partition
// that has a region, then cuts the encoding at each marker: the bytes before
// it (minus the marker's length prefix), a length prefix for the region,
// the region itself, and on from after the marker. The records field is the
// last of a partition before its tagged fields, so nothing else moves. The
// encoding, markers, prefixes and parts live in a pooled response, so the
// cost of a fetch does not grow with its partitions (beyond kmsg's structs).
func zeroCopyParts(resp *kmsg.FetchResponse, parts []fetchPartition) *server.Response {
	pr := getResponse()
	withData := 0
	for i := range parts {
		if parts[i].region.Len > 0 {
			withData++
		}
	}
	// Markers first, then the length prefixes (at most 5 bytes each, a
	// uvarint of an int32 + 1): sized up front so that the sub-slices
	// taken below are never moved by a later append.
	const maxPrefix = binary.MaxVarintLen32
	need := withData * (markerLen + maxPrefix)
	if cap(pr.scratch) < need {
		pr.scratch = make([]byte, 0, need)
	}
	markers := pr.scratch[:withData*markerLen]
	k := 0
	for i := range parts {
		if parts[i].region.Len > 0 {
			m := markers[k*markerLen : (k+1)*markerLen : (k+1)*markerLen]
			copy(m, markerTag[:])
			binary.BigEndian.PutUint32(m[16:], uint32(k))
			parts[i].resp.RecordBatches = m
			k++
		}
	}
	prefixes := pr.scratch[len(markers):len(markers)]
	pr.buf = resp.AppendTo(pr.buf[:0])
	buf := pr.buf
	flexible := resp.IsFlexible()
	pr.resp.HeaderFlexible = flexible
	from := 0
	k = 0
	for i := range parts {
		fp := &parts[i]
		if fp.region.Len <= 0 {
			continue
		}
		m := markers[k*markerLen : (k+1)*markerLen]
		k++
		at := from + bytes.Index(buf[from:], m)
		prefix := 4 // int32 length of nullable bytes
		if flexible {
			prefix = 1 // uvarint(markerLen+1) fits one byte
		}
		pr.parts = append(pr.parts, server.Part{Bytes: buf[from : at-prefix]})
		n := len(prefixes)
		if flexible {
			prefixes = binary.AppendUvarint(prefixes, uint64(fp.region.Len)+1)
		} else {
			prefixes = binary.BigEndian.AppendUint32(prefixes, uint32(fp.region.Len))
		}
		pr.parts = append(pr.parts, server.Part{Bytes: prefixes[n:len(prefixes):len(prefixes)]}, server.Part{Region: fp.region})
		from = at + markerLen
	}
	pr.parts = append(pr.parts, server.Part{Bytes: buf[from:]})
	return pr.response()
}
