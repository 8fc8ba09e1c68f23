package kafka

import (
	"cmp"
	"slices"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

// brokerInfo is a live broker as Metadata, DescribeCluster and
// FindCoordinator name it.
type brokerInfo struct {
	id   int32
	host string
	port int32
	rack *string
}

// listenerOf is the listener whose endpoints answer req: the one it came
// in on (Kafka answers a client on its SSL listener with SSL addresses).
func (h *Handler) listenerOf(req *server.Request) string {
	if req != nil && req.Session != nil && req.Session.Listener != "" {
		return req.Session.Listener
	}
	return h.defaultListener()
}

func (h *Handler) defaultListener() string {
	if h.cfg.Listener != "" {
		return h.cfg.Listener
	}
	return "PLAINTEXT"
}

func (h *Handler) interBrokerListener() string {
	if h.cfg.InterBrokerListener != "" {
		return h.cfg.InterBrokerListener
	}
	return h.defaultListener()
}

// liveBrokers returns the image's registered, unfenced brokers by id, with
// their endpoint on listener, as Kafka's Metadata lists only unfenced
// brokers, and only those that have the listener. An image without brokers
// (a handler built without registering, in unit tests) lists this node.
func (h *Handler) liveBrokers(im *cluster.Image, listener string) []brokerInfo {
	var out []brokerInfo
	for _, b := range im.Brokers {
		if b.Fenced {
			continue
		}
		if bi, ok := endpoint(b, listener); ok {
			out = append(out, bi)
		}
	}
	if len(im.Brokers) == 0 {
		out = append(out, brokerInfo{id: h.cfg.NodeID, host: h.cfg.AdvertisedHost, port: h.cfg.AdvertisedPort})
	}
	slices.SortFunc(out, func(a, b brokerInfo) int { return cmp.Compare(a.id, b.id) })
	return out
}

func endpoint(b *cluster.Broker, listener string) (brokerInfo, bool) {
	for _, e := range b.Endpoints {
		if e.Name == listener {
			return brokerInfo{id: b.ID, host: e.Host, port: int32(e.Port), rack: b.Rack}, true
		}
	}
	return brokerInfo{}, false
}

// brokerLive reports whether broker id is registered and unfenced (or is
// this node, in an image without brokers).
func (h *Handler) brokerLive(im *cluster.Image, id int32) bool {
	if len(im.Brokers) == 0 {
		return id == h.cfg.NodeID
	}
	b := im.Broker(id)
	return b != nil && !b.Fenced
}

// brokerEndpoint returns a live broker's endpoint on listener.
func (h *Handler) brokerEndpoint(im *cluster.Image, id int32, listener string) (brokerInfo, bool) {
	if len(im.Brokers) == 0 && id == h.cfg.NodeID {
		return brokerInfo{id: id, host: h.cfg.AdvertisedHost, port: h.cfg.AdvertisedPort}, true
	}
	b := im.Broker(id)
	if b == nil || b.Fenced {
		return brokerInfo{}, false
	}
	return endpoint(b, listener)
}

// controllerID is the id Metadata and DescribeCluster give as the
// controller: the active controller when it is a live broker (every
// strata node is combined), else this node, so that admin clients that
// send to "the controller" reach a node that forwards.
func (h *Handler) controllerID(im *cluster.Image) int32 {
	if id := h.meta.ControllerID(); id >= 0 && h.brokerLive(im, id) {
		return id
	}
	return h.cfg.NodeID
}
