package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

// replicaHandler is a local-mode handler (node 1) with a topic "r" of one
// partition that node 1 leads, holding offsets 0-4 (one record a batch)
// with its high watermark held back at 2, and an image shaped by records
// proposed directly:
//
//	brokers: 1 (this node), 2 and 3 live, 4 fenced; 5 never registered
//	r/0:     replicas [1 2 4 5], ISR [1 2], leader 1
//
// It returns the handler, the topic and the broker epochs.
func replicaHandler(t *testing.T) (*Handler, *cluster.Topic, map[int32]int64) {
	t.Helper()
	h := registeredHandler(t, "r", 1)
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		register := func(id int32, fenced bool) records.Record {
			return &records.RegisterBroker{BrokerID: id, IncarnationID: records.UUID{byte(id)}, BrokerEpoch: im.EndOffset + int64(id), Fenced: fenced,
				EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: fmt.Sprintf("b%d", id), Port: 9092}}}
		}
		change := records.NewPartitionChange(records.UUID(im.Topic("r").ID), 0)
		change.Replicas, change.Isr = []int32{1, 2, 4, 5}, []int32{1, 2}
		return []records.Record{register(2, false), register(3, false), register(4, true), change}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	im := h.meta.Image()
	epochs := map[int32]int64{}
	for id, b := range im.Brokers {
		epochs[id] = b.Epoch
	}
	tp := im.Topic("r")
	for range 5 {
		produce := kmsg.NewPtrProduceRequest()
		produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "r"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = allocBatch(t, 1)
		rt.Partitions = append(rt.Partitions, rp)
		produce.Topics = append(produce.Topics, rt)
		if resp := roundTrip[*kmsg.ProduceResponse](t, h, produce); resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
		}
	}
	// No replication yet holds the high watermark back: set it where a
	// lagging ISR would leave it.
	p := h.broker.Partition(log.TopicPartition{Topic: "r", Partition: 0})
	if p == nil || p.Log.LogEndOffset() != 5 {
		t.Fatalf("partition r/0 missing or not at log end 5")
	}
	if hw := p.Log.SetHighWatermark(2); hw != 2 {
		t.Fatalf("high watermark set to %d, want 2", hw)
	}
	return h, tp, epochs
}

// fetched is one partition's answer to a fetch: its error, high watermark
// and the offset after the last record returned (0 for none).
type fetched struct {
	code int16
	hw   int64
	end  int64
}

// replicaFetch fetches r/0 from offset 0 at version with replica id (as
// ReplicaID before v15, ReplicaState.ID from v15) and broker epoch.
func replicaFetch(t *testing.T, h *Handler, tp *cluster.Topic, version int16, id int32, epoch int64, leaderEpoch int32, isolation int8) fetched {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	if version >= 15 {
		req.ReplicaState.ID, req.ReplicaState.Epoch = id, epoch
	} else {
		req.ReplicaID = id
	}
	req.MaxBytes, req.IsolationLevel = 1<<20, isolation
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = tp.Name, tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, leaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := handleFetchRequest(t, h, req).Topics[0].Partitions[0]
	if sp.PreferredReadReplica != -1 {
		t.Errorf("PreferredReadReplica %d, want -1", sp.PreferredReadReplica)
	}
	f := fetched{code: sp.ErrorCode, hw: sp.HighWatermark}
	// Walk the batches: base offset (8 bytes), length (4), ...,
	// last offset delta at byte 23.
	for b := sp.RecordBatches; len(b) >= 27; {
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		f.end = int64(binary.BigEndian.Uint64(b[:8])) + int64(binary.BigEndian.Uint32(b[23:27])) + 1
		b = b[n:]
	}
	return f
}

// TestFollowerFetch holds Fetch to Kafka's follower rules: only a follower
// of the partition reads past the high watermark, to the log end offset,
// and not with a stale broker epoch; everyone else is a consumer or
// refused.
func TestFollowerFetch(t *testing.T) {
	h, tp, epochs := replicaHandler(t)
	leaderEpoch := tp.PartitionStates[0].LeaderEpoch
	notLeader, unknownEpoch := kerr.NotLeaderForPartition.Code, kerr.UnknownLeaderEpoch.Code
	for _, c := range []struct {
		what        string
		version     int16
		id          int32
		epoch       int64
		leaderEpoch int32
		isolation   int8
		want        fetched
	}{
		{"consumer", 17, -1, -1, -1, 0, fetched{0, 2, 2}},
		{"consumer read_committed", 17, -1, -1, -1, 1, fetched{0, 2, 2}},
		{"debugging consumer", 17, -2, -1, -1, 0, fetched{0, 2, 2}},
		{"follower, current broker epoch", 17, 2, epochs[2], leaderEpoch, 0, fetched{0, 2, 5}},
		{"follower, read_committed ignored", 17, 2, epochs[2], leaderEpoch, 1, fetched{0, 2, 5}},
		{"follower, no leader epoch", 17, 2, epochs[2], -1, 0, fetched{0, 2, 5}},
		{"follower, broker epoch -1", 17, 2, -1, leaderEpoch, 0, fetched{0, 2, 5}},
		{"follower, broker epoch newer than the image's", 17, 2, epochs[2] + 1, leaderEpoch, 0, fetched{0, 2, 5}},
		{"follower, stale broker epoch", 17, 2, epochs[2] - 1, leaderEpoch, 0, fetched{notLeader, -1, 0}},
		{"fenced follower", 17, 4, 0, leaderEpoch, 0, fetched{0, 2, 5}},
		{"unregistered follower", 17, 5, 7, leaderEpoch, 0, fetched{0, 2, 5}},
		{"live broker outside the replica set", 17, 3, epochs[3], leaderEpoch, 0, fetched{unknownEpoch, -1, 0}},
		{"live broker outside the replica set, no leader epoch", 17, 3, epochs[3], -1, 0, fetched{notLeader, -1, 0}},
		{"unknown broker id", 17, 9, 1, -1, 0, fetched{notLeader, -1, 0}},
		{"the leader itself", 17, 1, epochs[1], leaderEpoch, 0, fetched{unknownEpoch, -1, 0}},
		{"v15 follower", 15, 2, epochs[2], leaderEpoch, 0, fetched{0, 2, 5}},
		{"v15 stale broker epoch", 15, 2, epochs[2] - 1, leaderEpoch, 0, fetched{notLeader, -1, 0}},
		{"v14 follower (ReplicaID)", 14, 2, -1, leaderEpoch, 0, fetched{0, 2, 5}},
		{"v14 outsider (ReplicaID)", 14, 3, -1, -1, 0, fetched{notLeader, -1, 0}},
		{"v14 consumer", 14, -1, -1, -1, 0, fetched{0, 2, 2}},
		{"v4 follower", 4, 2, -1, -1, 0, fetched{0, 2, 5}},
		{"v4 outsider", 4, 3, -1, -1, 0, fetched{notLeader, -1, 0}},
	} {
		t.Run(c.what, func(t *testing.T) {
			leaderEpoch := c.leaderEpoch
			if c.version < 9 {
				leaderEpoch = -1 // CurrentLeaderEpoch is v9+
			}
			got := replicaFetch(t, h, tp, c.version, c.id, c.epoch, leaderEpoch, c.isolation)
			if got != c.want {
				t.Fatalf("got %v (hw %d, records to %d), want %v (hw %d, records to %d)",
					kerr.ErrorForCode(got.code), got.hw, got.end, kerr.ErrorForCode(c.want.code), c.want.hw, c.want.end)
			}
		})
	}
}

// TestListOffsetsReplicaID: only consumers (replica id -1) see the high
// watermark as the latest offset; -2 and followers see the log end offset,
// and a replica id that is not a follower of the partition is refused as
// Fetch refuses it.
func TestListOffsetsReplicaID(t *testing.T) {
	h, tp, _ := replicaHandler(t)
	leaderEpoch := tp.PartitionStates[0].LeaderEpoch
	for _, c := range []struct {
		what        string
		id          int32
		leaderEpoch int32
		code        int16
		offset      int64
	}{
		{"consumer", -1, leaderEpoch, 0, 2},
		{"debugging replica id", -2, leaderEpoch, 0, 5},
		{"follower", 2, leaderEpoch, 0, 5},
		{"fenced follower", 4, -1, 0, 5},
		{"outside the replica set", 3, leaderEpoch, kerr.UnknownLeaderEpoch.Code, -1},
		{"outside the replica set, no leader epoch", 3, -1, kerr.NotLeaderForPartition.Code, -1},
		{"the leader itself", 1, -1, kerr.NotLeaderForPartition.Code, -1},
	} {
		t.Run(c.what, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Version, req.ReplicaID = 7, c.id
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "r"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.CurrentLeaderEpoch = -1, c.leaderEpoch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := roundTrip[*kmsg.ListOffsetsResponse](t, h, req)
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != c.code || sp.Offset != c.offset {
				t.Fatalf("got %v offset %d, want %v offset %d", kerr.ErrorForCode(sp.ErrorCode), sp.Offset, kerr.ErrorForCode(c.code), c.offset)
			}
		})
	}
}

// A follower whose last fetched epoch ends below its fetch offset here
// diverged: it gets DivergingEpoch with the epoch's end and no records
// (KIP-595); one that names an epoch this leader never had is out of
// range; one in step gets records.
func TestReplicaFetchDivergingEpoch(t *testing.T) {
	h, tp, epochs := replicaHandler(t)
	fetch := func(offset int64, lastEpoch int32) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version = 17
		req.ReplicaState.ID, req.ReplicaState.Epoch = 2, epochs[2]
		req.MaxBytes = 1 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = tp.Name, tp.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
		rp.FetchOffset, rp.LastFetchedEpoch = offset, lastEpoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return handleFetchRequest(t, h, req).Topics[0].Partitions[0]
	}
	p := h.broker.Partition(log.TopicPartition{Topic: "r", Partition: 0})
	epoch := p.LatestEpoch()
	if epoch < 0 {
		t.Fatal("the leader's epoch cache is empty")
	}
	sp := fetch(7, epoch)
	if sp.ErrorCode != 0 || sp.DivergingEpoch.Epoch != epoch || sp.DivergingEpoch.EndOffset != 5 || len(sp.RecordBatches) != 0 {
		t.Fatalf("fetch at 7 in epoch %d past the log end 5: error %v, diverging %+v, %d record bytes; want diverging {%d 5} and none",
			epoch, kerr.ErrorForCode(sp.ErrorCode), sp.DivergingEpoch, len(sp.RecordBatches), epoch)
	}
	if sp := fetch(3, epoch+3); sp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch in an epoch the leader never had: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(sp.ErrorCode))
	}
	sp = fetch(3, epoch)
	if sp.ErrorCode != 0 || sp.DivergingEpoch.Epoch != -1 || len(sp.RecordBatches) == 0 {
		t.Fatalf("fetch in step: error %v, diverging %+v, %d record bytes; want records", kerr.ErrorForCode(sp.ErrorCode), sp.DivergingEpoch, len(sp.RecordBatches))
	}
}

// handleFetchRequest runs a Fetch through the handler and decodes its
// answer, the file regions read as the socket would send them.
func handleFetchRequest(t *testing.T, h *Handler, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := h.Handle(context.Background(), &server.Request{APIKey: req.Key(), APIVersion: req.Version, CorrelationID: 1, Body: req.AppendTo(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer release(resp)
	var body []byte
	for _, p := range resp.Parts {
		if p.Region.File == nil {
			body = append(body, p.Bytes...)
			continue
		}
		b := make([]byte, p.Region.Len)
		if _, err := p.Region.File.ReadAt(b, p.Region.Pos); err != nil {
			t.Fatal(err)
		}
		body = append(body, b...)
	}
	kresp := kmsg.NewPtrFetchResponse()
	kresp.Version = req.Version
	if err := kresp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return kresp
}

// registeredHandler is a local-mode handler (node 1) registered as a
// broker, with a topic of the given partitions on it.
func registeredHandler(t *testing.T, topic string, partitions int32) *Handler {
	t.Helper()
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "self", Port: 9092}}, nil); err != nil {
		t.Fatal(err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, partitions, 1
	create.Topics = append(create.Topics, ct)
	if resp := roundTrip[*kmsg.CreateTopicsResponse](t, h, create); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %v", topic, kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	return h
}
