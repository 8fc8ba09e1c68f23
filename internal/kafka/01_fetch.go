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
//     appends to any of its partitions, never polls.
//   - Consumers read up to the high watermark; replicas (replica id >= 0)
//     up to the log end offset.
//   - Sessionless (KIP-227 sessions are declined with session id 0, which
//     clients accept). Topic IDs replace names from v13.
//   - Leader epoch checks (v9+): a newer epoch than ours is
//     UNKNOWN_LEADER_EPOCH, an older one FENCED_LEADER_EPOCH.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
}

func (h *Handler) handleFetch(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	replica := req.ReplicaID >= 0 || req.ReplicaState.ID >= 0

	// Lay out the response in request order and resolve partitions once.
	im := h.meta.Image()
	var parts []*fetchPartition
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
			switch {
			case pcode != 0:
				sp.ErrorCode = pcode
			case rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				parts = append(parts, &fetchPartition{resp: sp, p: p, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes})
			}
		}
	}

	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	var wake chan struct{}
	if req.MaxWaitMillis > 0 && req.MinBytes > 0 && len(parts) > 0 {
		// Register before the first read so no append is missed
		// between reading and waiting.
		wake = make(chan struct{}, 1)
		for _, fp := range parts {
			defer fp.p.Wait(wake)()
		}
	}
	timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer timer.Stop()
	for {
		total, failed := h.readPartitions(parts, maxBytes, replica)
		if wake == nil || failed || total >= int64(req.MinBytes) {
			break
		}
		select {
		case <-wake:
			continue
		case <-timer.C:
		case <-ctx.Done():
		case <-h.stopping:
		}
		h.readPartitions(parts, maxBytes, replica)
		break
	}
	for _, fp := range parts {
		if fp.p != nil {
			h.cfg.Metrics.Fetched(fp.p.TP.Topic, fp.region.Len)
		}
	}
	h.countErrors(resp)
	return zeroCopyParts(resp, parts), nil
}

// readPartitions reads every partition's region, filling the response's
// offsets and errors. It returns the bytes found and whether any partition
// failed (which answers the fetch at once, as Kafka does).
func (h *Handler) readPartitions(parts []*fetchPartition, maxBytes int32, replica bool) (int64, bool) {
	var total int64
	failed := false
	for _, fp := range parts {
		l := fp.p.Log
		sp := fp.resp
		sp.HighWatermark = l.HighWatermark()
		sp.LastStableOffset = sp.HighWatermark
		sp.LogStartOffset = l.LogStartOffset()
		upTo := sp.HighWatermark
		if replica {
			upTo = l.LogEndOffset()
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

func marker(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, markerTag[:])
	binary.BigEndian.PutUint32(m[16:], uint32(i))
	return m
}

// zeroCopyParts encodes resp with a marker as the records of each partition
// that has a region, then cuts the encoding at each marker: the bytes before
// it (minus the marker's length prefix), a length prefix for the region,
// the region itself, and on from after the marker. The records field is the
// last of a partition before its tagged fields, so nothing else moves.
func zeroCopyParts(resp *kmsg.FetchResponse, parts []*fetchPartition) *server.Response {
	var withData []*fetchPartition
	for _, fp := range parts {
		if fp.region.Len > 0 {
			fp.resp.RecordBatches = marker(len(withData))
			withData = append(withData, fp)
		}
	}
	buf := resp.AppendTo(nil)
	flexible := resp.IsFlexible()
	out := &server.Response{HeaderFlexible: flexible}
	from := 0
	for i, fp := range withData {
		at := from + bytes.Index(buf[from:], marker(i))
		prefix := 4 // int32 length of nullable bytes
		if flexible {
			prefix = 1 // uvarint(markerLen+1) fits one byte
		}
		out.Parts = append(out.Parts, server.Part{Bytes: buf[from : at-prefix]})
		var lenBuf []byte
		if flexible {
			lenBuf = binary.AppendUvarint(nil, uint64(fp.region.Len)+1)
		} else {
			lenBuf = binary.BigEndian.AppendUint32(nil, uint32(fp.region.Len))
		}
		out.Parts = append(out.Parts, server.Part{Bytes: lenBuf}, server.Part{Region: fp.region})
		from = at + markerLen
	}
	out.Parts = append(out.Parts, server.Part{Bytes: buf[from:]})
	return out
}
