package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/server"
)

// roundTripOn is roundTrip for a request that came in on listener.
func roundTripOn[R kmsg.Response](t *testing.T, h *Handler, listener string, req kmsg.Request) R {
	t.Helper()
	r := &server.Request{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 1, Body: req.AppendTo(nil),
		Session: &server.Session{Listener: listener, Protocol: server.ProtocolSSL}}
	resp, err := h.Handle(context.Background(), r)
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

// TestEndpointsPerListener: Metadata, DescribeCluster and FindCoordinator
// answer with the endpoints of the listener the request came in on; a
// broker without that listener is left out, as Kafka does.
func TestEndpointsPerListener(t *testing.T) {
	h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, AdvertisedHost: "self", AdvertisedPort: 9092, Listener: "PLAINTEXT",
		TopicDefaults: broker.DefaultTopicConfig()})
	eps := func(id int32, names ...string) []records.Endpoint {
		var out []records.Endpoint
		for i, n := range names {
			out = append(out, records.Endpoint{Name: n, Host: fmt.Sprintf("%s-%d", n, id), Port: uint16(9092 + i)})
		}
		return out
	}
	if _, err := h.meta.RegisterBroker(eps(1, "PLAINTEXT", "SSL"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		return []records.Record{
			&records.RegisterBroker{BrokerID: 2, IncarnationID: records.UUID{2}, BrokerEpoch: im.EndOffset + 2, EndPoints: eps(2, "PLAINTEXT", "SSL")},
			&records.RegisterBroker{BrokerID: 3, IncarnationID: records.UUID{3}, BrokerEpoch: im.EndOffset + 3, EndPoints: eps(3, "PLAINTEXT")},
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listener string
		want     []string
	}{
		{"PLAINTEXT", []string{"PLAINTEXT-1:9092", "PLAINTEXT-2:9092", "PLAINTEXT-3:9092"}},
		{"SSL", []string{"SSL-1:9093", "SSL-2:9093"}},
		{"", []string{"PLAINTEXT-1:9092", "PLAINTEXT-2:9092", "PLAINTEXT-3:9092"}}, // no session: Config.Listener
	} {
		md := roundTripOn[*kmsg.MetadataResponse](t, h, tc.listener, kmsg.NewPtrMetadataRequest())
		var got []string
		for _, b := range md.Brokers {
			got = append(got, fmt.Sprintf("%s:%d", b.Host, b.Port))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Metadata on %q: %v, want %v", tc.listener, got, tc.want)
		}
		dc := roundTripOn[*kmsg.DescribeClusterResponse](t, h, tc.listener, kmsg.NewPtrDescribeClusterRequest())
		got = nil
		for _, b := range dc.Brokers {
			got = append(got, fmt.Sprintf("%s:%d", b.Host, b.Port))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("DescribeCluster on %q: %v, want %v", tc.listener, got, tc.want)
		}
	}
	// This node coordinates every group on a single node: its own
	// endpoint on the listener asked.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKeys = 4, []string{"g"}
	roundTripOn[*kmsg.FindCoordinatorResponse](t, h, "SSL", fc) // creates __consumer_offsets
	c := roundTripOn[*kmsg.FindCoordinatorResponse](t, h, "SSL", fc).Coordinators[0]
	if c.ErrorCode != 0 || c.Host != "SSL-1" || c.Port != 9093 {
		t.Errorf("FindCoordinator on SSL: %+v", c)
	}
}
