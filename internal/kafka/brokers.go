package kafka

import (
	"cmp"
	"slices"

	"github.com/strata-io/strata/internal/cluster"
)

// brokerInfo is a live broker as Metadata, DescribeCluster and
// FindCoordinator name it.
type brokerInfo struct {
	id   int32
	host string
	port int32
	rack *string
}

// listenerName is the listener clients are told about: strata has one
// client listener, PLAINTEXT, until security adds more (issue 15).
const listenerName = "PLAINTEXT"

// liveBrokers returns the image's registered, unfenced brokers by id, with
// their client endpoint, as Kafka's Metadata lists only unfenced brokers.
// An image without brokers (a handler built without registering, in unit
// tests) lists this node.
func (h *Handler) liveBrokers(im *cluster.Image) []brokerInfo {
	var out []brokerInfo
	for _, b := range im.Brokers {
		if b.Fenced {
			continue
		}
		if bi, ok := endpoint(b); ok {
			out = append(out, bi)
		}
	}
	if len(im.Brokers) == 0 {
		out = append(out, brokerInfo{id: h.cfg.NodeID, host: h.cfg.AdvertisedHost, port: h.cfg.AdvertisedPort})
	}
	slices.SortFunc(out, func(a, b brokerInfo) int { return cmp.Compare(a.id, b.id) })
	return out
}

func endpoint(b *cluster.Broker) (brokerInfo, bool) {
	for _, e := range b.Endpoints {
		if e.Name == listenerName {
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

// brokerEndpoint returns a live broker's client endpoint.
func (h *Handler) brokerEndpoint(im *cluster.Image, id int32) (brokerInfo, bool) {
	if len(im.Brokers) == 0 && id == h.cfg.NodeID {
		return brokerInfo{id: id, host: h.cfg.AdvertisedHost, port: h.cfg.AdvertisedPort}, true
	}
	b := im.Broker(id)
	if b == nil || b.Fenced {
		return brokerInfo{}, false
	}
	return endpoint(b)
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
