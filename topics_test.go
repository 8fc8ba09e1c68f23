package strata_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

func valueBatch(t *testing.T, v string) []byte {
	t.Helper()
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte(v), Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func endOffset(t *testing.T, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	end, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := end.Lookup(topic, p)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s-%d: %v %v", topic, p, ok, o.Err)
	}
	return o.Offset
}

// TestProduceNeverCreatesTopics: as in Kafka, only Metadata and
// CreateTopics create topics; a produce to an unknown topic is
// UNKNOWN_TOPIC_OR_PARTITION and leaves no topic behind.
func TestProduceNeverCreatesTopics(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	if got := rawProduce(t, c, "nobody", valueBatch(t, "x")); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to an unknown topic: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if topicExists(t, c, "nobody") {
		t.Fatal("produce created the topic")
	}
}

// topicExists asks the broker, with a Metadata request of its own: kadm
// answers ListTopics from the client's metadata cache.
func topicExists(t *testing.T, c *kgo.Client, topic string) bool {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range resp.Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			return true
		}
	}
	return false
}

// TestMetadataAutoCreateAnswersLeaderNotAvailable: the Metadata request
// that creates a topic answers LEADER_NOT_AVAILABLE without partitions, as
// Kafka's does; the next one sees the partitions.
func TestMetadataAutoCreateAnswersLeaderNotAvailable(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"num.partitions": "3"})
	c := newClient(t, b.Addr())
	meta := func() kmsg.MetadataResponseTopic {
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("auto")
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctxT(t), c)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0]
	}
	first := meta()
	if first.ErrorCode != kerr.LeaderNotAvailable.Code || len(first.Partitions) != 0 {
		t.Fatalf("creating metadata answer: %v with %d partitions", kerr.ErrorForCode(first.ErrorCode), len(first.Partitions))
	}
	second := meta()
	if second.ErrorCode != 0 || len(second.Partitions) != 3 {
		t.Fatalf("second metadata answer: %v with %d partitions", kerr.ErrorForCode(second.ErrorCode), len(second.Partitions))
	}
}

// TestCreateTopicsDuplicateNameAndLimits: a name given twice is
// INVALID_REQUEST for each entry and nothing is created; one request
// creates a bounded number of partitions; max.broker.partitions is a
// ceiling with a clear error.
func TestCreateTopicsDuplicateNameAndLimits(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"max.broker.partitions": "30"})
	c := newClient(t, b.Addr())
	create := func(topics ...kmsg.CreateTopicsRequestTopic) []kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 5000
		req.Topics = topics
		resp, err := req.RequestWith(ctxT(t), c)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics
	}
	topic := func(name string, partitions int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
		return rt
	}
	got := create(topic("twice", 1), topic("once", 1), topic("twice", 2))
	for i, want := range []int16{kerr.InvalidRequest.Code, 0, kerr.InvalidRequest.Code} {
		if got[i].ErrorCode != want {
			t.Errorf("entry %d (%s): %v, want %v", i, got[i].Topic, kerr.ErrorForCode(got[i].ErrorCode), kerr.ErrorForCode(want))
		}
	}
	adm := kadm.NewClient(c)
	if topicExists(t, c, "twice") || !topicExists(t, c, "once") {
		t.Fatal("after the duplicate request, want topic once and not twice")
	}

	// 1 partition exists; 25 more fit under 30, then 10 more do not.
	if got := create(topic("a", 25)); got[0].ErrorCode != 0 {
		t.Fatalf("25 partitions: %v", kerr.ErrorForCode(got[0].ErrorCode))
	}
	got = create(topic("b", 10))
	if got[0].ErrorCode != kerr.PolicyViolation.Code || got[0].ErrorMessage == nil {
		t.Fatalf("past max.broker.partitions: %v", kerr.ErrorForCode(got[0].ErrorCode))
	}
	cp, err := adm.CreatePartitions(ctxT(t), 10, "once")
	if err != nil {
		t.Fatal(err)
	}
	if r := cp["once"]; !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("CreatePartitions past max.broker.partitions: %v", r.Err)
	}
	// Auto-creation counts too.
	if got := create(topic("c", 4)); got[0].ErrorCode != 0 {
		t.Fatalf("4 partitions: %v", kerr.ErrorForCode(got[0].ErrorCode))
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto")
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.PolicyViolation.Code {
		t.Fatalf("auto-create past max.broker.partitions: %v", kerr.ErrorForCode(code))
	}
}

// TestCreateTopicsBoundsPartitionsPerRequest: many topics of many
// partitions each in one request cannot exhaust the broker.
func TestCreateTopicsBoundsPartitionsPerRequest(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"max.broker.partitions": "1000000"})
	c := newClient(t, b.Addr())
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	req.ValidateOnly = true // nothing is created either way: the bound applies to the request
	for i := range 3 {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("big%d", i), 4000, 1
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int16{0, 0, kerr.InvalidPartitions.Code} {
		if got := resp.Topics[i].ErrorCode; got != want {
			t.Errorf("topic %d: %v, want %v", i, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
}

// TestDeleteTopicWhileProducing: produces racing a DeleteTopics neither
// re-create the topic's directory nor get acknowledged after the delete
// answered.
func TestDeleteTopicWhileProducing(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	for round := range 5 {
		topic := fmt.Sprintf("doomed%d", round)
		if _, err := adm.CreateTopic(ctxT(t), 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		var (
			deleted   atomic.Bool
			lateAcks  atomic.Int64
			lateSends atomic.Int64
			wg        sync.WaitGroup
			stop      = make(chan struct{})
			produceTo = func(p int32) {
				defer wg.Done()
				pc := newClient(t, b.Addr())
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					after := deleted.Load()
					got := rawProducePartition(t, pc, topic, p, valueBatch(t, fmt.Sprint(i)))
					if after {
						lateSends.Add(1)
						if got.ErrorCode == 0 {
							lateAcks.Add(1)
						}
					}
				}
			}
		)
		wg.Add(2)
		go produceTo(0)
		go produceTo(1)
		waitFor(t, 30*time.Second, "records in "+topic, func() bool { return endOffset(t, adm, topic, 0) > 10 && endOffset(t, adm, topic, 1) > 10 })
		resp, err := adm.DeleteTopics(ctxT(t), topic)
		if err != nil || resp[topic].Err != nil {
			t.Fatalf("delete: %v %v", err, resp[topic].Err)
		}
		deleted.Store(true)
		// Keep producing a while after the delete answered.
		waitFor(t, 30*time.Second, "produces after the delete", func() bool { return lateSends.Load() >= 40 })
		close(stop)
		wg.Wait()
		if n := lateAcks.Load(); n > 0 {
			t.Fatalf("round %d: %d produces sent after the delete were acknowledged", round, n)
		}
		for p := range 2 {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, p))); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("round %d: %s-%d exists after the delete (%v)", round, topic, p, err)
			}
		}
		if topicExists(t, c, topic) {
			t.Fatalf("round %d: %s came back", round, topic)
		}
	}
}

// TestNewTopicNeverInheritsOldData: a partition directory left by an
// earlier topic of the same name (its partition.metadata names another
// topic id) is removed at start, not served as the new topic's data.
func TestNewTopicNeverInheritsOldData(t *testing.T) {
	dir := t.TempDir()
	b, err := startOn(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "reborn"); err != nil {
		t.Fatal(err)
	}
	produceAll(t, c, "reborn", "old1", "old2", "old3")
	c.Close()
	b.Close()
	partDir := filepath.Join(dir, "reborn-0")
	saved := t.TempDir()
	copyDir(t, partDir, saved)

	b, err = startOn(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	adm = kadm.NewClient(c)
	if _, err := adm.DeleteTopics(ctxT(t), "reborn"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "reborn"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b.Close()
	// The old directory comes back, as after a crash or an operator's
	// restore: the new topic must not pick up its three records.
	if err := os.RemoveAll(partDir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, saved, partDir)

	b = startBroker(t, dir, nil)
	c = newClient(t, b.Addr())
	adm = kadm.NewClient(c)
	if end := endOffset(t, adm, "reborn", 0); end != 0 {
		t.Fatalf("new topic starts at end offset %d: it inherited the old topic's records", end)
	}
	produceAll(t, c, "reborn", "new")
	if got := consumeN(t, b.Addr(), "reborn", 1); string(got[0].Value) != "new" || got[0].Offset != 0 {
		t.Fatalf("read %q at %d", got[0].Value, got[0].Offset)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProduceProtocolGaps: the small answers Kafka gives that strata did
// not: invalid acks, transactional batches without a transactional id.
func TestProduceProtocolGaps(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "gaps"); err != nil {
		t.Fatal(err)
	}
	for _, acks := range []int16{2, -2, 5} {
		// kgo sends its own acks in every Produce request: a raw
		// connection sends the invalid ones.
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 8, acks, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "gaps"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = valueBatch(t, "x")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrProduceResponse()
		rawRoundTrip(t, b.Addr(), req, resp)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
			t.Errorf("acks=%d: %v, want INVALID_REQUIRED_ACKS", acks, kerr.ErrorForCode(code))
		}
	}
	txn, err := record.Build(record.BuildOptions{ProducerID: 1, Transactional: true}, record.NewRecord{Value: []byte("t"), Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	// Without a transactional id in the request: Kafka's
	// KafkaApis.handleProduceRequest answers it so.
	if got := rawProduce(t, c, "gaps", txn); got.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("transactional batch without a transactional id: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", kerr.ErrorForCode(got.ErrorCode))
	}
	if end := endOffset(t, adm, "gaps", 0); end != 0 {
		t.Fatalf("end offset %d: a refused produce was stored", end)
	}
}

// TestDeleteRecordsBelowMinusOne: offsets below -1 are OFFSET_OUT_OF_RANGE
// (Kafka's UnifiedLog.deleteRecords), not a silent no-op.
func TestDeleteRecordsBelowMinusOne(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "dr"); err != nil {
		t.Fatal(err)
	}
	produceAll(t, c, "dr", "a", "b")
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "dr"
	for _, off := range []int64{-2, -100} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Offset = off
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{rp}
		req.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
		resp, err := req.RequestWith(ctxT(t), c)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
			t.Errorf("offset %d: %v, want OFFSET_OUT_OF_RANGE", off, kerr.ErrorForCode(code))
		}
	}
}

// TestInitProducerIDAlwaysFresh: without a transactional id every
// InitProducerId hands out a new producer id, even when the request names
// a previous id and epoch (Kafka ignores them for idempotent producers).
func TestInitProducerIDAlwaysFresh(t *testing.T) {
	b := startBroker(t, t.TempDir(), nil)
	c := newClient(t, b.Addr())
	init := func(id int64, epoch int16) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionTimeoutMillis = 60000
		req.ProducerID, req.ProducerEpoch = id, epoch
		resp, err := req.RequestWith(ctxT(t), c)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %v %v", err, resp)
		}
		return resp
	}
	first := init(-1, -1)
	second := init(first.ProducerID, first.ProducerEpoch)
	if second.ProducerID == first.ProducerID || second.ProducerEpoch != 0 {
		t.Fatalf("re-init with id %d epoch %d got id %d epoch %d, want a new id at epoch 0",
			first.ProducerID, first.ProducerEpoch, second.ProducerID, second.ProducerEpoch)
	}
}

// default.replication.factor gives auto-created topics and CreateTopics
// with -1 their factor; above 1 a single node (one broker) refuses them
// with INVALID_REPLICATION_FACTOR.
func TestDefaultReplicationFactor(t *testing.T) {
	b := startBroker(t, t.TempDir(), map[string]string{"default.replication.factor": "2"})
	adm := kadm.NewClient(newClient(t, b.Addr()))
	r, err := adm.CreateTopic(ctxT(t), 1, -1, nil, "rf")
	if err == nil {
		err = r.Err
	}
	if !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("create with default.replication.factor=2: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	b1 := startBroker(t, t.TempDir(), nil)
	r, err = kadm.NewClient(newClient(t, b1.Addr())).CreateTopic(ctxT(t), 1, -1, nil, "rf")
	if err != nil || r.Err != nil || r.ReplicationFactor != 1 {
		t.Fatalf("create with the default factor: %v %v rf %d", err, r.Err, r.ReplicationFactor)
	}
}
