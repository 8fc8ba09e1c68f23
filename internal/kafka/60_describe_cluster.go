package kafka

// DescribeCluster: v0-2
//
// Behavior: this node is the only broker and the controller.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(60, 0, 2, (*Handler).handleDescribeCluster) }

func (h *Handler) handleDescribeCluster(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1 // brokers
	resp.ClusterID = h.cfg.ClusterID
	resp.ControllerID = h.cfg.NodeID
	resp.ClusterAuthorizedOperations = -2147483648 // not requested / not computed
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = h.cfg.NodeID, h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
	resp.Brokers = append(resp.Brokers, b)
	return h.encode(resp), nil
}
