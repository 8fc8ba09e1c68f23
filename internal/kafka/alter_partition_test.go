package kafka

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/server"
)

// controllerRoundTrip sends req through the controller listener's handler.
func controllerRoundTrip[R kmsg.Response](t *testing.T, h *Handler, req kmsg.Request) R {
	t.Helper()
	r := &server.Request{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 1, Body: req.AppendTo(nil)}
	resp, err := h.ControllerAPI().Handle(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer release(resp)
	kresp := req.ResponseKind()
	kresp.SetVersion(req.GetVersion())
	if err := kresp.ReadFrom(joinBytes(t, resp)); err != nil {
		t.Fatal(err)
	}
	return kresp.(R)
}

// TestAlterPartitionHandler: a leader's ISR expansion through the
// controller listener is committed, answered with the partition's new
// state and the metadata offset that holds it, and a repeat with the old
// partition epoch is refused.
func TestAlterPartitionHandler(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, TopicDefaults: broker.DefaultTopicConfig()})
	self, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "self", Port: 9092}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "r", 1, 1
	create.Topics = append(create.Topics, ct)
	if resp := roundTrip[*kmsg.CreateTopicsResponse](t, h, create); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(resp.Topics[0].ErrorCode))
	}
	var epoch2 int64
	if _, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		epoch2 = im.EndOffset
		rec := records.NewPartitionChange(records.UUID(im.Topic("r").ID), 0)
		rec.Replicas = []int32{1, 2}
		return []records.Record{
			&records.RegisterBroker{BrokerID: 2, IncarnationID: records.UUID{2}, BrokerEpoch: epoch2,
				EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "two", Port: 9093}}},
			rec,
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	tp := h.meta.Image().Topic("r")
	before := *tp.PartitionStates[0]

	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = 3, 1, self.Epoch
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = before.LeaderEpoch, before.PartitionEpoch
	rp.NewEpochISR = []kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{{BrokerID: 1, BrokerEpoch: self.Epoch}, {BrokerID: 2, BrokerEpoch: epoch2}}
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Partitions = tp.ID, []kmsg.AlterPartitionRequestTopicPartition{rp}
	req.Topics = append(req.Topics, rt)

	resp := controllerRoundTrip[*kmsg.AlterPartitionResponse](t, h, req)
	mustCode(t, "top level", resp.ErrorCode, 0)
	sp := resp.Topics[0].Partitions[0]
	mustCode(t, "partition", sp.ErrorCode, 0)
	after := h.meta.Image().Topic("r").PartitionStates[0]
	if !slices.Equal(after.ISR, []int32{1, 2}) || after.PartitionEpoch != before.PartitionEpoch+1 || after.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("image after: %+v (before %+v)", after, before)
	}
	if resp.Topics[0].TopidID != tp.ID || sp.LeaderID != 1 || sp.LeaderEpoch != after.LeaderEpoch || sp.PartitionEpoch != after.PartitionEpoch || !slices.Equal(sp.ISR, after.ISR) {
		t.Fatalf("answer %+v, image %+v", sp, after)
	}
	if off := controller.MetadataOffset(resp); off != h.meta.Image().EndOffset {
		t.Fatalf("metadata offset %d, image at %d", off, h.meta.Image().EndOffset)
	}

	// The same request again: its partition epoch is now stale.
	resp = controllerRoundTrip[*kmsg.AlterPartitionResponse](t, h, req)
	mustCode(t, "stale partition epoch", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidUpdateVersion.Code)

	// At the new epoch with the same ISR: answered, nothing committed.
	end := h.meta.Image().EndOffset
	req.Topics[0].Partitions[0].PartitionEpoch = after.PartitionEpoch
	resp = controllerRoundTrip[*kmsg.AlterPartitionResponse](t, h, req)
	mustCode(t, "unchanged", resp.Topics[0].Partitions[0].ErrorCode, 0)
	if h.meta.Image().EndOffset != end || resp.Topics[0].Partitions[0].PartitionEpoch != after.PartitionEpoch {
		t.Fatalf("an unchanged ISR committed a record, or answered epoch %d", resp.Topics[0].Partitions[0].PartitionEpoch)
	}

	// A broker epoch that is not the sender's.
	req.BrokerEpoch = self.Epoch + 100
	resp = controllerRoundTrip[*kmsg.AlterPartitionResponse](t, h, req)
	mustCode(t, "stale broker epoch", resp.ErrorCode, kerr.StaleBrokerEpoch.Code)

	// Not served on the broker listener.
	r := &server.Request{APIKey: req.Key(), APIVersion: req.Version, CorrelationID: 1, Body: req.AppendTo(nil)}
	if _, err := h.Handle(context.Background(), r); err == nil {
		t.Fatal("AlterPartition served on the broker listener")
	}
}

// TestAlterPartitionClient: Client.AlterPartition reaches the controller
// listener over TCP at v3 and brings back the metadata offset of the
// change.
func TestAlterPartitionClient(t *testing.T) {
	h := quorumHandler(t, 2, nil)
	mustCode(t, "create", createTopic(t, h, false, "c", -1, -1, []int32{1, 2}).ErrorCode, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h.ControllerAPI(), server.Config{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	client := controller.NewClient(1, map[int32]string{1: ln.Addr().String()}, func() int32 { return 1 }, nil)

	im := h.meta.Image()
	tp := im.Topic("c")
	p := tp.PartitionStates[0]
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = 1, im.Broker(1).Epoch
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	rp.NewEpochISR = []kmsg.AlterPartitionRequestTopicPartitionNewEpochISR{{BrokerID: 1, BrokerEpoch: -1}}
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID, rt.Partitions = tp.ID, []kmsg.AlterPartitionRequestTopicPartition{rp}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.AlterPartition(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	mustCode(t, "shrink", resp.Topics[0].Partitions[0].ErrorCode, 0)
	if sp := resp.Topics[0].Partitions[0]; !slices.Equal(sp.ISR, []int32{1}) || sp.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("answer %+v", sp)
	}
	if off := controller.MetadataOffset(resp); off < 0 || off != h.meta.Image().EndOffset {
		t.Fatalf("metadata offset %d, image at %d", off, h.meta.Image().EndOffset)
	}
}
