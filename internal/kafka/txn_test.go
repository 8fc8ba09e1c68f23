package kafka

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

// fakeMarkerAPI stands in for Part P's WriteTxnMarkers (API 27) handler:
// it records the markers and answers every partition without error.
type fakeMarkerAPI struct {
	mu      sync.Mutex
	markers []kmsg.WriteTxnMarkersRequestMarker
	trusted bool
}

func (f *fakeMarkerAPI) install(t *testing.T) {
	old, had := apis[27]
	register(27, 0, 1, func(h *Handler, ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
		req := kreq.(*kmsg.WriteTxnMarkersRequest)
		resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.trusted = forwarded(ctx)
		for _, m := range req.Markers {
			f.markers = append(f.markers, m)
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = m.ProducerID
			for _, t := range m.Topics {
				rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					rp.Partition = p
					rt.Partitions = append(rt.Partitions, rp)
				}
				rm.Topics = append(rm.Topics, rt)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		return h.encode(resp), nil
	})
	t.Cleanup(func() {
		if had {
			apis[27] = old
		} else {
			delete(apis, 27)
		}
	})
}

// TestTxnCommitThroughLocalMarkers: a transaction on a single node is
// committed through the handler's own marker path (API 27's code, called
// directly), which writes a COMMIT marker to each partition, then
// completed.
func TestTxnCommitThroughLocalMarkers(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	var (
		mu      sync.Mutex
		markers []kmsg.WriteTxnMarkersRequestMarker
	)
	h.SetLocalTxnMarkerWriter(func(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
		mu.Lock()
		markers = append(markers, req.Markers...)
		mu.Unlock()
		return h.WriteTxnMarkers(ctx, req), nil
	})
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", 2, 1
	ct.Topics = append(ct.Topics, rt)
	if r := roundTrip[*kmsg.CreateTopicsResponse](t, h, ct); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %d", r.Topics[0].ErrorCode)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorType, fc.CoordinatorKeys = 4, 1, []string{"tx"}
	if r := roundTrip[*kmsg.FindCoordinatorResponse](t, h, fc); r.Coordinators[0].ErrorCode != 0 || r.Coordinators[0].NodeID != 1 {
		t.Fatalf("FindCoordinator: %+v", r.Coordinators[0])
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 10000
	ir := roundTrip[*kmsg.InitProducerIDResponse](t, h, init)
	mustCode(t, "InitProducerId", ir.ErrorCode, 0)

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx", ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
	ar := roundTrip[*kmsg.AddPartitionsToTxnResponse](t, h, add)
	for _, rp := range ar.Topics[0].Partitions {
		mustCode(t, "AddPartitionsToTxn", rp.ErrorCode, 0)
	}
	// Before KIP-588 (EndTxn v2) a fenced producer is INVALID_PRODUCER_EPOCH.
	stale := kmsg.NewPtrEndTxnRequest()
	stale.Version = 1
	stale.TransactionalID, stale.ProducerID, stale.ProducerEpoch, stale.Commit = "tx", ir.ProducerID, ir.ProducerEpoch+5, true
	mustCode(t, "EndTxn v1 fenced", roundTrip[*kmsg.EndTxnResponse](t, h, stale).ErrorCode, kerr.InvalidProducerEpoch.Code)
	stale.Version = 2
	mustCode(t, "EndTxn v2 fenced", roundTrip[*kmsg.EndTxnResponse](t, h, stale).ErrorCode, kerr.ProducerFenced.Code)

	end := kmsg.NewPtrEndTxnRequest()
	end.Version = 4
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx", ir.ProducerID, ir.ProducerEpoch, true
	mustCode(t, "EndTxn", roundTrip[*kmsg.EndTxnResponse](t, h, end).ErrorCode, 0)

	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := h.txns.coord.Describe("tx")
		if err == nil && d.State == txn.CompleteCommit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not completed: %+v %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(markers) != 1 {
		t.Fatalf("markers %+v", markers)
	}
	m := markers[0]
	// Each partition's log ends with the marker: one control batch
	// after nothing (no records were produced in the transaction).
	for p := range int32(2) {
		part := h.broker.Partition(log.TopicPartition{Topic: "t", Partition: p})
		if leo := part.Log.LogEndOffset(); leo != 1 || part.LastStableOffset() != 1 {
			t.Fatalf("t-%d: log end %d, last stable offset %d; want the marker at 0", p, leo, part.LastStableOffset())
		}
	}
	if !m.Committed || m.ProducerID != ir.ProducerID || m.ProducerEpoch != ir.ProducerEpoch || len(m.Topics) != 1 || len(m.Topics[0].Partitions) != 2 {
		t.Fatalf("marker %+v", m)
	}
	p := txn.PartitionFor("tx", h.txns.coord.Partitions())
	if st := h.meta.Image().Topic(txn.Topic).PartitionStates[p]; m.CoordinatorEpoch != st.LeaderEpoch {
		t.Fatalf("coordinator epoch %d, want the leader epoch %d", m.CoordinatorEpoch, st.LeaderEpoch)
	}
}

// TestTxnStateCompaction: __transaction_state's partition is rewritten
// with its live state and the records before deleted, and reloads to the
// same state.
func TestTxnStateCompaction(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	if _, err := h.txnTopic(); err != nil {
		t.Fatal(err)
	}
	var epoch int16
	for range 1100 {
		var err error
		if _, epoch, err = h.txns.coord.InitProducerID("tx", 10000, -1, -1); err != nil {
			t.Fatal(err)
		}
	}
	p := txn.PartitionFor("tx", h.txns.coord.Partitions())
	part := h.broker.Partition(log.TopicPartition{Topic: txn.Topic, Partition: p})
	deadline := time.Now().Add(10 * time.Second)
	for part.Log.LogStartOffset() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not compacted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.txns.coord.Unload(p)
	if err := h.txns.coord.Load(p, 5); err != nil {
		t.Fatal(err)
	}
	if d, err := h.txns.coord.Describe("tx"); err != nil || d.ProducerEpoch != epoch {
		t.Fatalf("after compaction: %+v %v, want epoch %d", d, err, epoch)
	}
}

// TestTxnRemoteMarkers: markers for a partition another broker leads go
// to that broker's inter-broker listener over a client connection.
func TestTxnRemoteMarkers(t *testing.T) {
	fake := &fakeMarkerAPI{}
	fake.install(t)
	cfg := Config{NodeID: 2, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()}
	remote := newTestHandler(t, t.TempDir(), cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(remote, server.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cfg.NodeID = 1
	h := newTestHandler(t, t.TempDir(), cfg)
	port := ln.Addr().(*net.TCPAddr).Port
	im := &cluster.Image{Brokers: map[int32]*cluster.Broker{2: {ID: 2, Endpoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(port)}}}}}
	mw := markerWriter{h}
	m := txn.Marker{ProducerID: 7, ProducerEpoch: 3, Commit: true, CoordinatorEpoch: 4}
	tps := []txn.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 2}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if failed := mw.send(ctx, im, 2, m, tps); len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.markers) != 1 {
		t.Fatalf("markers %+v", fake.markers)
	}
	got := fake.markers[0]
	if got.ProducerID != 7 || got.ProducerEpoch != 3 || !got.Committed || got.CoordinatorEpoch != 4 || len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 2 {
		t.Fatalf("marker %+v", got)
	}
	// A broker that is gone: every partition is to be retried.
	im.Brokers[2].Fenced = true
	if failed := mw.send(ctx, im, 2, m, tps); len(failed) != 2 {
		t.Fatalf("fenced broker: %v", failed)
	}
}
