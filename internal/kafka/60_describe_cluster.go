package kafka

// DescribeCluster: v0-2
//
// Behavior: the live brokers and the controller, as Metadata names them.

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
	im := h.meta.Image()
	resp.ControllerID = h.controllerID(im)
	resp.ClusterAuthorizedOperations = -2147483648 // not requested / not computed
	for _, lb := range h.liveBrokers(im) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = lb.id, lb.host, lb.port, lb.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	return h.encode(resp), nil
}
