package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/record"
)

// TestWriteTxnMarkersLocal: the marker path a coordinator on this node
// calls directly (Handler.WriteTxnMarkers) writes the control batch, ends
// the partition's open transaction and answers per partition.
func TestWriteTxnMarkersLocal(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", 2, 1
	create.Topics = append(create.Topics, ct)
	if resp := roundTrip[*kmsg.CreateTopicsResponse](t, h, create); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	p, code := h.lookup("t", 0)
	if code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	batch, err := record.Build(record.BuildOptions{ProducerID: 5, BaseSequence: 0, Transactional: true},
		record.NewRecord{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(batch, 1<<20, false); err != nil {
		t.Fatal(err)
	}
	if lso := p.LastStableOffset(); lso != 0 {
		t.Fatalf("lso %d with the transaction open, want 0", lso)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.Committed, m.CoordinatorEpoch = 5, false, 3
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "t", Partitions: []int32{0, 1, 7}}, {Topic: "missing", Partitions: []int32{0}}}
	req.Markers = append(req.Markers, m)
	resp := h.WriteTxnMarkers(context.Background(), req)
	got := map[string][]int16{}
	for _, rt := range resp.Markers[0].Topics {
		for _, rp := range rt.Partitions {
			got[rt.Topic] = append(got[rt.Topic], rp.ErrorCode)
		}
	}
	if want := []int16{0, 0, kerr.UnknownTopicOrPartition.Code}; len(got["t"]) != 3 || got["t"][0] != want[0] || got["t"][1] != want[1] || got["t"][2] != want[2] {
		t.Fatalf("codes for t: %v, want %v", got["t"], want)
	}
	if c := got["missing"]; len(c) != 1 || c[0] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes for missing: %v", c)
	}
	if lso, hw := p.LastStableOffset(), p.Log.HighWatermark(); lso != 2 || hw != 2 {
		t.Fatalf("lso %d hw %d after the abort, want 2", lso, hw)
	}
	if a := p.AbortedTransactions(0, 2); len(a) != 1 || a[0].ProducerID != 5 || a[0].FirstOffset != 0 || a[0].LastOffset != 1 {
		t.Fatalf("aborted %+v", a)
	}
	// The same through the API.
	req.Markers[0].CoordinatorEpoch = 2 // older than the last marker's
	req.Markers[0].Topics = req.Markers[0].Topics[:1]
	req.Markers[0].Topics[0].Partitions = []int32{0}
	req.Version = 1
	if code := roundTrip[*kmsg.WriteTxnMarkersResponse](t, h, req).Markers[0].Topics[0].Partitions[0].ErrorCode; code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("older coordinator epoch: %v", kerr.ErrorForCode(code))
	}
}
