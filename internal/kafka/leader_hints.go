package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
)

// KIP-951: a Produce (v10+) or Fetch (v16+) partition answered
// NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries the partition's
// current leader and leader epoch from this node's image, and the response
// carries that leader's endpoint, so that the client goes to the new
// leader at once instead of refreshing its metadata first (Kafka's
// KafkaApis.getCurrentLeader). The leader is given even when it is not
// live (or -1, none), with its epoch; only a live leader's endpoint is
// listed, once per response. Both fills walk the response without
// allocating and touch the image only when a partition has one of the two
// codes, so that the hot paths cost nothing more when nothing failed.

// Versions from which the responses have the fields.
const (
	produceLeaderHintVersion = 10
	fetchLeaderHintVersion   = 16
)

// needsLeaderHint reports whether a partition answered code gets one.
func needsLeaderHint(code int16) bool {
	return code == kerr.NotLeaderForPartition.Code || code == kerr.FencedLeaderEpoch.Code
}

// currentLeader is a partition's leader and leader epoch in im, -1 and
// -1 when im lacks the partition.
func currentLeader(t *cluster.Topic, p int32) (leader, epoch int32) {
	if t == nil || p < 0 || p >= int32(len(t.PartitionStates)) || t.PartitionStates[p] == nil {
		return -1, -1
	}
	st := t.PartitionStates[p]
	return st.Leader, st.LeaderEpoch
}

// fillProduceLeaderHints sets KIP-951's current leaders and node
// endpoints of a Produce response.
func (h *Handler) fillProduceLeaderHints(resp *kmsg.ProduceResponse, listener string) {
	if resp.Version < produceLeaderHintVersion {
		return
	}
	var im *cluster.Image
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			if !needsLeaderHint(sp.ErrorCode) {
				continue
			}
			if im == nil {
				im = h.meta.Image()
			}
			leader, epoch := currentLeader(im.Topic(rt.Topic), sp.Partition)
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
			if leader < 0 || produceHasBroker(resp.Brokers, leader) {
				continue
			}
			if bi, ok := h.brokerEndpoint(im, leader, listener); ok {
				resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: bi.id, Host: bi.host, Port: bi.port, Rack: bi.rack})
			}
		}
	}
}

func produceHasBroker(bs []kmsg.ProduceResponseBroker, id int32) bool {
	for i := range bs {
		if bs[i].NodeID == id {
			return true
		}
	}
	return false
}

// fillFetchLeaderHints sets KIP-951's current leaders and node endpoints
// of a Fetch response.
func (h *Handler) fillFetchLeaderHints(resp *kmsg.FetchResponse, listener string) {
	if resp.Version < fetchLeaderHintVersion {
		return
	}
	var im *cluster.Image
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			if !needsLeaderHint(sp.ErrorCode) {
				continue
			}
			if im == nil {
				im = h.meta.Image()
			}
			t := im.ByID[cluster.TopicID(rt.TopicID)]
			if t == nil && rt.Topic != "" {
				t = im.Topic(rt.Topic)
			}
			leader, epoch := currentLeader(t, sp.Partition)
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = leader, epoch
			if leader < 0 || fetchHasBroker(resp.Brokers, leader) {
				continue
			}
			if bi, ok := h.brokerEndpoint(im, leader, listener); ok {
				resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: bi.id, Host: bi.host, Port: bi.port, Rack: bi.rack})
			}
		}
	}
}

func fetchHasBroker(bs []kmsg.FetchResponseBroker, id int32) bool {
	for i := range bs {
		if bs[i].NodeID == id {
			return true
		}
	}
	return false
}
