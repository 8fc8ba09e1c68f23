package kafka

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
)

// rackHandler is a local-mode handler (node 1, rack a) with the rack-aware
// selector and a topic "rr" of one partition that node 1 leads, holding
// offsets 0-4, in an image of:
//
//	brokers: 1 rack a (this node); 2 rack b, 3 rack c, 5 rack d, 6 rack b,
//	         all live; 4 rack b, fenced
//	rr/0:    replicas [1 2 3 4 5 6], ISR [1 2 3 4 6], leader 1
//
// Followers 2, 4 and 6 have fetched at 5 (the log end), 3 at 3: the high
// watermark is 3. 6 is a second candidate of rack b, with the same log end
// offset as 2.
func rackHandler(t *testing.T) (*Handler, *cluster.Topic) {
	t.Helper()
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092,
		TopicDefaults: broker.DefaultTopicConfig(), RackAwareReplicaSelector: true})
	rack := func(r string) *string { return &r }
	if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "self", Port: 9092}}, rack("a")); err != nil {
		t.Fatal(err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "rr", 1, 1
	create.Topics = append(create.Topics, ct)
	if resp := roundTrip[*kmsg.CreateTopicsResponse](t, h, create); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		register := func(id int32, r string, fenced bool) records.Record {
			return &records.RegisterBroker{BrokerID: id, IncarnationID: records.UUID{byte(id)}, BrokerEpoch: im.EndOffset + int64(id), Fenced: fenced,
				Rack: rack(r), EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: fmt.Sprintf("b%d", id), Port: 9092}}}
		}
		change := records.NewPartitionChange(records.UUID(im.Topic("rr").ID), 0)
		change.Replicas, change.Isr = []int32{1, 2, 3, 4, 5, 6}, []int32{1, 2, 3, 4, 6}
		return []records.Record{register(2, "b", false), register(3, "c", false), register(4, "b", true),
			register(5, "d", false), register(6, "b", false), change}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := h.meta.Image().Topic("rr")
	for range 5 { // a batch a record, so that reads can stop at any offset
		produce := kmsg.NewPtrProduceRequest()
		produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "rr"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = allocBatch(t, 1)
		rt.Partitions = append(rt.Partitions, rp)
		produce.Topics = append(produce.Topics, rt)
		if resp := roundTrip[*kmsg.ProduceResponse](t, h, produce); resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
		}
	}
	// 6 fetches after 2, so that it caught up later: the tie on the log
	// end offset goes to it, as Kafka's comparator orders them.
	for _, f := range []struct {
		id     int32
		offset int64
	}{{2, 5}, {3, 3}, {4, 5}, {6, 5}} {
		sp := fetchAt(t, h, tp, 13, f.id, "", f.offset, -1)
		if sp.ErrorCode != 0 {
			t.Fatalf("follower %d fetch: %v", f.id, kerr.ErrorForCode(sp.ErrorCode))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if hw := h.broker.Partition(log.TopicPartition{Topic: "rr"}).Log.HighWatermark(); hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
	return h, tp
}

// fetchAt fetches partition 0 of tp at offset, as replica id (-1: a
// consumer) from rack, at version, naming leaderEpoch.
func fetchAt(t *testing.T, h *Handler, tp *cluster.Topic, version int16, id int32, rack string, offset int64, leaderEpoch int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.Rack = version, rack
	if version >= 15 {
		req.ReplicaState.ID, req.ReplicaState.Epoch = id, -1
	} else {
		req.ReplicaID = id
	}
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = tp.Name, tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, leaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return handleFetchRequest(t, h, req).Topics[0].Partitions[0]
}

// recordsEnd is the offset after the last record of a fetch answer, 0 for
// none.
func recordsEnd(sp kmsg.FetchResponseTopicPartition) int64 {
	var end int64
	for b := sp.RecordBatches; len(b) >= 27; {
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		end = int64(binary.BigEndian.Uint64(b[:8])) + int64(binary.BigEndian.Uint32(b[23:27])) + 1
		b = b[n:]
	}
	return end
}

// TestPreferredReadReplica holds the leader's choice to Kafka's
// RackAwareReplicaSelector: a consumer is sent, with no records, to a live
// in-sync replica in its rack that has its offset, the most caught up
// first; never when the leader is in its rack, nor to a fenced broker or
// a replica outside the ISR, nor with the selector unset, nor for a
// follower's fetch or a fetch older than v11.
func TestPreferredReadReplica(t *testing.T) {
	h, tp := rackHandler(t)
	for _, c := range []struct {
		what      string
		version   int16
		id        int32
		rack      string
		offset    int64
		disabled  bool
		preferred int32
		end       int64 // after the last record returned, 0 for none
	}{
		{what: "rack b: 6, caught up last of 2 and 6 (4 is fenced)", version: 13, id: -1, rack: "b", preferred: 6},
		{what: "rack b, v17", version: 17, id: -1, rack: "b", preferred: 6},
		{what: "rack c: 3 holds offset 2", version: 13, id: -1, rack: "c", offset: 2, preferred: 3},
		{what: "rack c: 3 lacks offset 4", version: 13, id: -1, rack: "c", offset: 4, preferred: -1},
		{what: "the leader's rack", version: 13, id: -1, rack: "a", preferred: -1, end: 3},
		{what: "no replica in the rack", version: 13, id: -1, rack: "z", preferred: -1, end: 3},
		{what: "only a replica outside the ISR in the rack", version: 13, id: -1, rack: "d", preferred: -1, end: 3},
		{what: "no rack", version: 13, id: -1, preferred: -1, end: 3},
		{what: "selector unset", version: 13, id: -1, rack: "b", disabled: true, preferred: -1, end: 3},
		{what: "v10 has no rack", version: 10, id: -1, rack: "b", preferred: -1, end: 3},
		{what: "a follower's fetch", version: 13, id: 2, rack: "b", offset: 5, preferred: -1},
	} {
		t.Run(c.what, func(t *testing.T) {
			h.cfg.RackAwareReplicaSelector = !c.disabled
			defer func() { h.cfg.RackAwareReplicaSelector = true }()
			sp := fetchAt(t, h, tp, c.version, c.id, c.rack, c.offset, -1)
			if sp.ErrorCode != 0 {
				t.Fatalf("error %v", kerr.ErrorForCode(sp.ErrorCode))
			}
			if sp.PreferredReadReplica != c.preferred {
				t.Errorf("PreferredReadReplica %d, want %d", sp.PreferredReadReplica, c.preferred)
			}
			// The offsets come either way; records only from a read.
			if sp.HighWatermark != 3 || sp.LogStartOffset != 0 {
				t.Errorf("high watermark %d, log start %d; want 3, 0", sp.HighWatermark, sp.LogStartOffset)
			}
			if end := recordsEnd(sp); end != c.end {
				t.Errorf("records end at %d, want %d", end, c.end)
			}
		})
	}
}

// TestPreferredReadReplicaAnswersAtOnce: a fetch that would wait for
// records is answered at once when it is sent elsewhere (Kafka's
// hasPreferredReadReplica).
func TestPreferredReadReplicaAnswersAtOnce(t *testing.T) {
	h, tp := rackHandler(t)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.Rack, req.ReplicaID = 13, "b", -1
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 1<<20, 1<<20, 10_000
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	sp := handleFetchRequest(t, h, req).Topics[0].Partitions[0]
	if sp.PreferredReadReplica != 6 {
		t.Fatalf("PreferredReadReplica %d, want 6", sp.PreferredReadReplica)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v, want at once", d)
	}
}

// followerHandler is a local-mode handler (node 1) with a topic "fw" of
// one partition that node 2 leads and node 1 follows in the image's leader
// epoch, holding offsets 0-4 appended as a follower, and the leader's high
// watermark leaderHW (the follower's is min(leaderHW, 5)).
func followerHandler(t *testing.T, leaderHW int64) (*Handler, *cluster.Topic, *broker.Partition) {
	t.Helper()
	h := registeredHandler(t, "fw", 1)
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		reg := &records.RegisterBroker{BrokerID: 2, IncarnationID: records.UUID{2}, BrokerEpoch: im.EndOffset + 2,
			EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "b2", Port: 9092}}}
		change := records.NewPartitionChange(records.UUID(im.Topic("fw").ID), 0)
		change.Replicas, change.Isr, change.Leader = []int32{2, 1}, []int32{2, 1}, 2
		return []records.Record{reg, change}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tp := h.meta.Image().Topic("fw")
	part := h.broker.Partition(log.TopicPartition{Topic: "fw"})
	if part == nil {
		t.Fatal("no local replica of fw-0")
	}
	part.MakeFollower(tp.PartitionStates[0].LeaderEpoch)
	for i := range int64(5) { // a batch a record, as the leader wrote them
		b := allocBatch(t, 1)
		b.SetBaseOffset(i)
		b.SetPartitionLeaderEpoch(tp.PartitionStates[0].LeaderEpoch)
		if _, err := part.AppendAsFollower(b); err != nil {
			t.Fatal(err)
		}
	}
	part.UpdateFollowerHighWatermark(leaderHW)
	return h, tp, part
}

// TestFollowerServesConsumers holds a follower's reads for consumers to
// Kafka's (fetchOnlyFromLeader false, KIP-392): v11+ consumers read up to
// the follower's high watermark in the leader epoch it follows; the
// out-of-range cases of KIP-392; produce and ListOffsets stay with the
// leader.
func TestFollowerServesConsumers(t *testing.T) {
	h, tp, _ := followerHandler(t, 3)
	epoch := tp.PartitionStates[0].LeaderEpoch
	notLeader := kerr.NotLeaderForPartition.Code
	for _, c := range []struct {
		what        string
		version     int16
		offset      int64
		leaderEpoch int32
		code        int16
		end         int64
	}{
		{what: "up to the high watermark", version: 13, leaderEpoch: epoch, end: 3},
		{what: "no epoch given", version: 13, leaderEpoch: -1, end: 3},
		{what: "v17", version: 17, leaderEpoch: epoch, end: 3},
		{what: "v11", version: 11, leaderEpoch: epoch, end: 3},
		{what: "between the high watermark and the log end: nothing yet", version: 13, offset: 4, leaderEpoch: epoch},
		{what: "at the log end", version: 13, offset: 5, leaderEpoch: epoch},
		{what: "beyond the log end", version: 13, offset: 6, leaderEpoch: epoch, code: kerr.OffsetOutOfRange.Code},
		{what: "an older epoch", version: 13, leaderEpoch: epoch - 1, code: kerr.FencedLeaderEpoch.Code},
		{what: "a newer epoch", version: 13, leaderEpoch: epoch + 1, code: kerr.UnknownLeaderEpoch.Code},
		{what: "v10 reads only from leaders", version: 10, leaderEpoch: epoch, code: notLeader},
	} {
		t.Run(c.what, func(t *testing.T) {
			sp := fetchAt(t, h, tp, c.version, -1, "", c.offset, c.leaderEpoch)
			if sp.ErrorCode != c.code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(sp.ErrorCode), kerr.ErrorForCode(c.code))
			}
			if end := recordsEnd(sp); end != c.end {
				t.Errorf("records end at %d, want %d", end, c.end)
			}
			if c.code == 0 && (sp.HighWatermark != 3 || sp.LogStartOffset != 0) {
				t.Errorf("high watermark %d, log start %d; want 3, 0", sp.HighWatermark, sp.LogStartOffset)
			}
		})
	}

	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 9, 1, 30000
	prt := kmsg.NewProduceRequestTopic()
	prt.Topic = "fw"
	prp := kmsg.NewProduceRequestTopicPartition()
	prp.Records = allocBatch(t, 1)
	prt.Partitions = append(prt.Partitions, prp)
	produce.Topics = append(produce.Topics, prt)
	if code := roundTrip[*kmsg.ProduceResponse](t, h, produce).Topics[0].Partitions[0].ErrorCode; code != notLeader {
		t.Errorf("produce to a follower: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
	list := kmsg.NewPtrListOffsetsRequest()
	list.Version, list.ReplicaID = 7, -1
	lrt := kmsg.NewListOffsetsRequestTopic()
	lrt.Topic = "fw"
	lrp := kmsg.NewListOffsetsRequestTopicPartition()
	lrp.Timestamp, lrp.CurrentLeaderEpoch = -1, -1
	lrt.Partitions = append(lrt.Partitions, lrp)
	list.Topics = append(list.Topics, lrt)
	if code := roundTrip[*kmsg.ListOffsetsResponse](t, h, list).Topics[0].Partitions[0].ErrorCode; code != notLeader {
		t.Errorf("ListOffsets on a follower: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
}

// TestFollowerOffsetNotAvailable: an offset the follower lacks but the
// leader's high watermark says is committed is OFFSET_NOT_AVAILABLE
// (KIP-392): the follower will have it; one beyond is out of range.
func TestFollowerOffsetNotAvailable(t *testing.T) {
	h, tp, _ := followerHandler(t, 8)
	epoch := tp.PartitionStates[0].LeaderEpoch
	for _, c := range []struct {
		offset int64
		code   int16
		end    int64
	}{
		{0, 0, 5},
		{5, 0, 0},
		{6, kerr.OffsetNotAvailable.Code, 0},
		{8, kerr.OffsetNotAvailable.Code, 0},
		{9, kerr.OffsetOutOfRange.Code, 0},
	} {
		sp := fetchAt(t, h, tp, 13, -1, "", c.offset, epoch)
		if sp.ErrorCode != c.code || recordsEnd(sp) != c.end {
			t.Errorf("offset %d: %v, records to %d; want %v, to %d", c.offset, kerr.ErrorForCode(sp.ErrorCode), recordsEnd(sp), kerr.ErrorForCode(c.code), c.end)
		}
	}
}

// TestFollowerLongPollWakes: a consumer's fetch waiting on a follower at
// its high watermark is answered when the leader's high watermark, learnt
// from a fetch response, moves it.
func TestFollowerLongPollWakes(t *testing.T) {
	h, tp, part := followerHandler(t, 3)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID = 13, -1
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 1<<20, 1, 10_000
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 3, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	go func() {
		time.Sleep(100 * time.Millisecond)
		part.UpdateFollowerHighWatermark(5)
	}()
	start := time.Now()
	sp := handleFetchRequest(t, h, req).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || recordsEnd(sp) != 5 || sp.HighWatermark != 5 {
		t.Fatalf("error %v, records to %d, high watermark %d; want records to 5", kerr.ErrorForCode(sp.ErrorCode), recordsEnd(sp), sp.HighWatermark)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v, want once the high watermark moved", d)
	}
}
