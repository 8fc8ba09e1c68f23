package kafka

// DescribeCluster: v0-2
//
// Behavior: the live brokers and the controller, as Metadata names them;
// v2's IncludeFencedBrokers adds the fenced ones, marked IsFenced.

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(60, 0, 2, (*Handler).handleDescribeCluster) }

func (h *Handler) handleDescribeCluster(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	listener := h.listenerOf(sr)
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1 // brokers
	resp.ClusterID = h.cfg.ClusterID
	im := h.meta.Image()
	resp.ControllerID = h.controllerID(im)
	resp.ClusterAuthorizedOperations = -2147483648 // not requested / not computed
	if ac := h.auth(ctx, sr); req.IncludeClusterAuthorizedOperations && ac.enabled() {
		// As Kafka's AuthHelper: DescribeCluster itself needs no ACL
		// (as Metadata); the operations asked for are computed with
		// DESCRIBE on the cluster, else none.
		resp.ClusterAuthorizedOperations = 0
		if ac.cluster(acl.OpDescribe) {
			resp.ClusterAuthorizedOperations = ac.clusterOperations()
		}
	}
	for _, lb := range h.liveBrokers(im, listener) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = lb.id, lb.host, lb.port, lb.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	if req.IncludeFencedBrokers {
		for _, id := range slices.Sorted(maps.Keys(im.Brokers)) {
			if fb := im.Brokers[id]; fb.Fenced {
				if lb, ok := endpoint(fb, listener); ok {
					b := kmsg.NewDescribeClusterResponseBroker()
					b.NodeID, b.Host, b.Port, b.Rack, b.IsFenced = lb.id, lb.host, lb.port, lb.rack, true
					resp.Brokers = append(resp.Brokers, b)
				}
			}
		}
	}
	return h.encode(resp), nil
}
