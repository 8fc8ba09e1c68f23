package strata_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record"
)

// txnProduce sends one transactional batch of producer pid with a raw
// Produce v9 carrying a transactional id (txnID "" sends none).
func txnProduce(t *testing.T, c *kgo.Client, topic, txnID string, pid int64, epoch int16, seq int32, values ...string) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	recs := make([]record.NewRecord, len(values))
	for i, v := range values {
		recs[i] = record.NewRecord{Value: []byte(v), Timestamp: time.Now().UnixMilli()}
	}
	batch, err := record.Build(record.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	if txnID != "" {
		req.TransactionID = &txnID
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if addr, ok := produceAddr[c]; ok {
		// Straight to that node: kgo sends raw Produce requests to
		// any broker it knows.
		resp := kmsg.NewPtrProduceResponse()
		rawRoundTrip(t, addr, req, resp)
		return resp.Topics[0].Partitions[0]
	}
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// noTxnVerify turns off KIP-890 part 1's check with the coordinator, for
// the tests of the partition side that send transactional batches of
// producers no coordinator knows.
func noTxnVerify() map[string]string {
	return map[string]string{"transaction.partition.verification.enable": "false"}
}

// produceAddr, for a client of the cluster test, is the node its
// transactional produces go to.
var produceAddr = map[*kgo.Client]string{}

// writeMarker sends WriteTxnMarkers v1 for one partition and returns its
// error code.
func writeMarker(t *testing.T, addr, topic string, pid int64, epoch int16, commit bool, coordEpoch int32) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, coordEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	rawRoundTrip(t, addr, req, resp)
	if len(resp.Markers) != 1 || resp.Markers[0].ProducerID != pid || len(resp.Markers[0].Topics) != 1 || len(resp.Markers[0].Topics[0].Partitions) != 1 {
		t.Fatalf("WriteTxnMarkers response %+v", resp)
	}
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

// fetchTxn fetches partition 0 of topic from offset with a raw Fetch v12
// at isolation level iso.
func fetchTxn(t *testing.T, addr, topic string, offset int64, iso int8) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.IsolationLevel = 12, -1, 1<<20, iso
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = offset, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrFetchResponse()
	rawRoundTrip(t, addr, req, resp)
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp
}

// fetchedOffsets lists the offsets of the batches a fetch returned, and
// whether each is a control batch.
func fetchedOffsets(t *testing.T, data []byte) (offsets []int64) {
	t.Helper()
	if err := record.Split(data, func(b record.Batch) bool {
		offsets = append(offsets, b.BaseOffset())
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return offsets
}

func listLatest(t *testing.T, c *kgo.Client, topic string, iso int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID, req.IsolationLevel = 7, -1, iso
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), c)
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("list offsets: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	return sp.Offset
}

// TestTxnPartitionMarkersAndReadCommitted: transactional batches hold the
// LSO, WriteTxnMarkers ends their transactions, read_committed fetches
// stop at the LSO and get the aborted transactions, ListOffsets latest
// under read_committed is the LSO, and franz-go's read_committed consumer
// sees exactly the committed records.
func TestTxnPartitionMarkersAndReadCommitted(t *testing.T) {
	b := startBroker(t, t.TempDir(), noTxnVerify())
	c := newClient(t, b.Addr())
	adm := kadm.NewClient(c)
	const topic = "txnpart"
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceAll(t, c, topic, "plain-0") // offset 0
	if got := txnProduce(t, c, topic, "", 7, 0, 0, "x"); got.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := txnProduce(t, c, topic, "tx-a", 7, 0, 0, "aborted-1", "aborted-2"); got.ErrorCode != 0 || got.BaseOffset != 1 {
		t.Fatalf("transactional produce: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	// Open transaction at 1: the LSO holds there.
	sp := fetchTxn(t, b.Addr(), topic, 0, 1)
	if sp.HighWatermark != 3 || sp.LastStableOffset != 1 {
		t.Fatalf("hw %d lso %d, want 3 and 1", sp.HighWatermark, sp.LastStableOffset)
	}
	if got := fetchedOffsets(t, sp.RecordBatches); !slices.Equal(got, []int64{0}) {
		t.Fatalf("read_committed fetched batches at %v, want [0]", got)
	}
	if sp := fetchTxn(t, b.Addr(), topic, 0, 0); sp.LastStableOffset != 1 || !slices.Equal(fetchedOffsets(t, sp.RecordBatches), []int64{0, 1}) {
		t.Fatalf("read_uncommitted: lso %d, batches %v", sp.LastStableOffset, fetchedOffsets(t, sp.RecordBatches))
	}
	if got := listLatest(t, c, topic, 1); got != 1 {
		t.Fatalf("ListOffsets latest read_committed = %d, want 1", got)
	}
	if got := listLatest(t, c, topic, 0); got != 3 {
		t.Fatalf("ListOffsets latest read_uncommitted = %d, want 3", got)
	}

	// Abort it (marker at 3).
	if code := writeMarker(t, b.Addr(), topic, 7, 0, false, 1); code != 0 {
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	// A second transaction, committed (4-5, marker at 6).
	if got := txnProduce(t, c, topic, "tx-b", 8, 0, 0, "committed-4", "committed-5"); got.ErrorCode != 0 || got.BaseOffset != 4 {
		t.Fatalf("transactional produce: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	if code := writeMarker(t, b.Addr(), topic, 8, 0, true, 1); code != 0 {
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	sp = fetchTxn(t, b.Addr(), topic, 0, 1)
	if sp.HighWatermark != 7 || sp.LastStableOffset != 7 {
		t.Fatalf("hw %d lso %d, want 7 and 7", sp.HighWatermark, sp.LastStableOffset)
	}
	if got := fetchedOffsets(t, sp.RecordBatches); !slices.Equal(got, []int64{0, 1, 3, 4, 6}) {
		t.Fatalf("batches at %v", got)
	}
	if len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 7 || sp.AbortedTransactions[0].FirstOffset != 1 {
		t.Fatalf("aborted transactions %+v, want producer 7 from 1", sp.AbortedTransactions)
	}
	if sp := fetchTxn(t, b.Addr(), topic, 4, 1); len(sp.AbortedTransactions) != 0 {
		t.Fatalf("aborted transactions from 4: %+v", sp.AbortedTransactions)
	}
	if sp := fetchTxn(t, b.Addr(), topic, 0, 0); sp.AbortedTransactions != nil {
		t.Fatalf("read_uncommitted got aborted transactions %+v", sp.AbortedTransactions)
	}

	// Marker errors.
	if code := writeMarker(t, b.Addr(), "no-such-topic", 8, 0, true, 1); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("marker to an unknown topic: %v", kerr.ErrorForCode(code))
	}
	if got := txnProduce(t, c, topic, "tx-b", 8, 1, 0, "epoch-1"); got.ErrorCode != 0 { // 7, epoch 1
		t.Fatalf("transactional produce at epoch 1: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if code := writeMarker(t, b.Addr(), topic, 8, 0, true, 1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("marker of an older epoch: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarker(t, b.Addr(), topic, 8, 1, true, 0); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("marker of an older coordinator epoch: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarker(t, b.Addr(), topic, 8, 1, true, 1); code != 0 { // 8
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}

	// __consumer_offsets takes markers (internal topics refuse produces),
	// and the group coordinator is told (group.Coordinator.CompleteTxn).
	if _, err := adm.CommitOffsets(ctxT(t), "txn-group", kadm.OffsetsFromRecords(kgo.Record{Topic: topic, Partition: 0, Offset: 0})); err != nil {
		t.Fatal(err)
	}
	if code := writeMarker(t, b.Addr(), "__consumer_offsets", 8, 1, true, 1); code != 0 {
		t.Fatalf("marker to __consumer_offsets: %v", kerr.ErrorForCode(code))
	}

	// franz-go's read_committed consumer drops the aborted records and
	// the markers.
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	ctx := ctxT(t)
	for len(got) < 4 && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if want := []string{"plain-0", "committed-4", "committed-5", "epoch-1"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %q, want %q", got, want)
	}
}

// TestTxnPartitionRestart: after a restart the LSO of an open transaction
// and the aborted transactions are as before.
func TestTxnPartitionRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, noTxnVerify())
	c := newClient(t, b.Addr())
	const topic = "txnrestart"
	if _, err := kadm.NewClient(c).CreateTopic(ctxT(t), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	txnProduce(t, c, topic, "tx", 7, 0, 0, "a", "b")                        // 0-1
	if code := writeMarker(t, b.Addr(), topic, 7, 0, false, 0); code != 0 { // 2
		t.Fatal(kerr.ErrorForCode(code))
	}
	txnProduce(t, c, topic, "tx", 7, 0, 2, "c") // 3, left open
	addr := b.Addr()
	c.Close()
	b.Close()
	b, err := restartOn(t, dir, addr, noTxnVerify())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	sp := fetchTxn(t, b.Addr(), topic, 0, 1)
	if sp.HighWatermark != 4 || sp.LastStableOffset != 3 {
		t.Fatalf("after restart: hw %d lso %d, want 4 and 3", sp.HighWatermark, sp.LastStableOffset)
	}
	if len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 7 || sp.AbortedTransactions[0].FirstOffset != 0 {
		t.Fatalf("after restart: aborted %+v", sp.AbortedTransactions)
	}
	// DescribeProducers shows the open transaction and the coordinator
	// epoch of the last marker.
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrDescribeProducersResponse()
	rawRoundTrip(t, b.Addr(), req, resp)
	ps := resp.Topics[0].Partitions[0].ActiveProducers
	if len(ps) != 1 || ps[0].ProducerID != 7 || ps[0].CurrentTxnStartOffset != 3 || ps[0].CoordinatorEpoch != 0 || ps[0].LastSequence != 2 {
		t.Fatalf("DescribeProducers: %+v", ps)
	}
}

// TestTxnPartitionCluster: on a 3-node cluster (replication factor 3,
// min.insync.replicas 2) a marker is answered once replicated, the
// followers learn the open and aborted transactions from what they copy,
// and after the leader is killed the new leader serves read_committed
// consumers the same LSO and aborted transactions.
func TestTxnPartitionCluster(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Properties: noTxnVerify()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, c.Bootstrap()[0])
	adm := kadm.NewClient(cl)
	const topic = "txncluster"
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")}, topic); err != nil {
		t.Fatal(err)
	}
	var leader int32 = -1
	for leader < 0 && ctx.Err() == nil {
		if td, err := adm.ListTopics(ctx, topic); err == nil && td[topic].Err == nil && len(td[topic].Partitions[0].ISR) == 3 {
			leader = td[topic].Partitions[0].Leader
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if leader < 0 {
		t.Fatal("no leader with a full ISR")
	}
	laddr := c.Node(leader).Addr()
	lc := newClient(t, laddr)
	produceAddr[lc] = laddr
	t.Cleanup(func() { delete(produceAddr, lc) })
	produceAll(t, lc, topic, "plain-0") // 0
	if got := txnProduce(t, lc, topic, "tx-a", 7, 0, 0, "aborted-1", "aborted-2"); got.ErrorCode != 0 || got.BaseOffset != 1 {
		t.Fatalf("produce: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	if code := writeMarker(t, laddr, topic, 7, 0, false, 0); code != 0 { // 3
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	txnProduce(t, lc, topic, "tx-b", 8, 0, 0, "committed-4")            // 4
	if code := writeMarker(t, laddr, topic, 8, 0, true, 0); code != 0 { // 5
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	if got := txnProduce(t, lc, topic, "tx-c", 9, 0, 0, "open-6"); got.ErrorCode != 0 || got.BaseOffset != 6 { // left open
		t.Fatalf("produce: %v at %d", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	// The marker's answer came once replicated: the high watermark is
	// past it.
	sp := fetchTxn(t, laddr, topic, 0, 1)
	if sp.HighWatermark != 7 || sp.LastStableOffset != 6 || len(sp.AbortedTransactions) != 1 {
		t.Fatalf("leader: hw %d lso %d aborted %+v", sp.HighWatermark, sp.LastStableOffset, sp.AbortedTransactions)
	}

	c.Node(leader).Kill()
	var next int32 = -1
	for next < 0 && ctx.Err() == nil {
		nc := newClient(t, c.Node(others(leader)[0]).Addr())
		if td, err := kadm.NewClient(nc).ListTopics(ctx, topic); err == nil && td[topic].Err == nil {
			if l := td[topic].Partitions[0].Leader; l >= 0 && l != leader {
				next = l
			}
		}
		nc.Close()
		if next < 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if next < 0 {
		t.Fatal("no new leader")
	}
	naddr := c.Node(next).Addr()
	for ctx.Err() == nil {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxBytes, req.IsolationLevel = 12, -1, 1<<20, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrFetchResponse()
		rawRoundTrip(t, naddr, req, resp)
		if sp = resp.Topics[0].Partitions[0]; sp.ErrorCode == 0 && sp.HighWatermark == 7 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sp.LastStableOffset != 6 || len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 7 || sp.AbortedTransactions[0].FirstOffset != 1 {
		t.Fatalf("new leader %d: hw %d lso %d aborted %+v", next, sp.HighWatermark, sp.LastStableOffset, sp.AbortedTransactions)
	}
	// The new leader ends the open transaction (retried, as a
	// coordinator does, until the node knows it leads).
	for code := int16(-1); code != 0; time.Sleep(50 * time.Millisecond) {
		if code = writeMarker(t, naddr, topic, 9, 0, true, 0); code != 0 && code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("commit marker on the new leader: %v", kerr.ErrorForCode(code))
		}
		if ctx.Err() != nil {
			t.Fatal("the new leader never took the marker")
		}
	}
	cons := newClient(t, naddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	for len(got) < 3 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if want := []string{"plain-0", "committed-4", "open-6"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %q, want %q", got, want)
	}
}

// TestTxnPartitionReadCommittedLongPoll: a read_committed fetch waiting at
// the LSO is answered when the commit marker moves it, not at its timeout.
func TestTxnPartitionReadCommittedLongPoll(t *testing.T) {
	b := startBroker(t, t.TempDir(), noTxnVerify())
	c := newClient(t, b.Addr())
	const topic = "txnpoll"
	if _, err := kadm.NewClient(c).CreateTopic(ctxT(t), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if got := txnProduce(t, c, topic, "tx", 7, 0, 0, "v"); got.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(got.ErrorCode))
	}
	done := make(chan int16, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.Committed = 7, true
		m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{0}}}
		req.Markers = append(req.Markers, m)
		resp, err := req.RequestWith(context.Background(), c)
		if err != nil {
			done <- -1
			return
		}
		done <- resp.Markers[0].Topics[0].Partitions[0].ErrorCode
	}()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.IsolationLevel = 12, -1, 1<<20, 1
	req.MaxWaitMillis, req.MinBytes = 20000, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := kmsg.NewPtrFetchResponse()
	start := time.Now()
	rawRoundTrip(t, b.Addr(), req, resp)
	if code := <-done; code != 0 {
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	sp := resp.Topics[0].Partitions[0]
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the fetch waited %v: not woken by the commit", took)
	}
	if sp.LastStableOffset != 2 || len(fetchedOffsets(t, sp.RecordBatches)) != 2 {
		t.Fatalf("lso %d, batches %v", sp.LastStableOffset, fetchedOffsets(t, sp.RecordBatches))
	}
}
