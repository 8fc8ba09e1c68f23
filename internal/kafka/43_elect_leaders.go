package kafka

// ElectLeaders: v0-2
//
// Behavior:
//   - Accepted on any node, forwarded to the active controller, which
//     commits every election of the request as one metadata change
//     (PartitionChangeRecords) and answers once it is applied, as
//     Kafka's ReplicationControlManager.electLeaders.
//   - PREFERRED (0; the only type in v0): the first replica leads if it
//     is in the ISR and its broker is unfenced and not shutting down
//     (controller.PreferredLeader); ELECTION_NOT_NEEDED when it leads
//     already, PREFERRED_LEADER_NOT_AVAILABLE when it cannot.
//   - UNCLEAN (1, v1+): only a leaderless partition gets a leader
//     (ELECTION_NOT_NEEDED otherwise): the first usable replica in the
//     ISR, else the first usable one outside it, which becomes the whole
//     ISR with LeaderRecoveryState RECOVERING (KIP-704)
//     (controller.UncleanLeader); ELIGIBLE_LEADERS_NOT_AVAILABLE when no
//     replica is usable.
//   - A null topic list elects every partition of every topic, and, as
//     Kafka does, answers every topic but only the partitions that did not
//     get ELECTION_NOT_NEEDED. Listed partitions are answered one by one:
//     UNKNOWN_TOPIC_OR_PARTITION for those the image lacks.
//   - Other election types are INVALID_REQUEST. When the change cannot be
//     committed (NOT_CONTROLLER, ...), the code is the response's (v1+)
//     and every listed partition's.
//   - TimeoutMillis is not needed: the answer waits for the commit only.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(43, 0, 2, (*Handler).handleElectLeaders) }

// Election types of ElectLeaders v1+ (Kafka's ElectionType).
const (
	electPreferred int8 = 0
	electUnclean   int8 = 1
)

func (h *Handler) handleElectLeaders(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ElectLeadersRequest)
	if !h.auth(ctx, sr).cluster(acl.OpAlter) {
		return h.encode(electLeadersError(req, codeClusterAuth, "ALTER on the cluster is needed to elect leaders")), nil
	}
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	typ := electPreferred
	if req.Version >= 1 {
		typ = req.ElectionType
	}
	if typ != electPreferred && typ != electUnclean {
		msg := fmt.Sprintf("unknown election type %d", typ)
		return h.answer(ctx, electLeadersError(req, kerr.InvalidRequest.Code, msg)), nil
	}
	elect := controller.PreferredLeader
	if typ == electUnclean {
		elect = controller.UncleanLeader
	}
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		// Built again from the start should the store call it again.
		resp.Topics = resp.Topics[:0]
		var recs []records.Record
		one := func(t *cluster.Topic, p int32) int16 {
			rec, code := elect(im, t.ID, p)
			if rec != nil {
				recs = append(recs, rec)
			}
			return code
		}
		if req.Topics == nil {
			for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
				t := im.Topics[name]
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = name
				for p := range t.Partitions {
					if code := one(t, p); code != kerr.ElectionNotNeeded.Code {
						rt.Partitions = append(rt.Partitions, electResult(p, code))
					}
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return recs, nil
		}
		// A partition named twice is elected once, and answered with
		// what its first mention got.
		seen := map[string]map[int32]int16{}
		for _, qt := range req.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = qt.Topic
			t := im.Topic(qt.Topic)
			if seen[qt.Topic] == nil {
				seen[qt.Topic] = map[int32]int16{}
			}
			for _, p := range qt.Partitions {
				code, ok := seen[qt.Topic][p]
				switch {
				case ok:
				case t == nil:
					code = kerr.UnknownTopicOrPartition.Code
				default:
					code = one(t, p)
				}
				seen[qt.Topic][p] = code
				rt.Partitions = append(rt.Partitions, electResult(p, code))
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return recs, nil
	})
	if err != nil {
		h.logger.Warn("electing leaders", "err", err)
		return h.answer(ctx, electLeadersError(req, errorCode(err), err.Error())), nil
	}
	return h.answer(ctx, resp), nil
}

// electResult is one partition's answer, with Kafka's messages for the
// codes that need one.
func electResult(p int32, code int16) kmsg.ElectLeadersResponseTopicPartition {
	rp := kmsg.NewElectLeadersResponseTopicPartition()
	rp.Partition, rp.ErrorCode = p, code
	var msg string
	switch code {
	case kerr.UnknownTopicOrPartition.Code:
		msg = "the partition does not exist"
	case kerr.PreferredLeaderNotAvailable.Code:
		msg = "the preferred replica is not in the ISR or its broker is fenced or shutting down"
	case kerr.EligibleLeadersNotAvailable.Code:
		msg = "no replica's broker is unfenced and not shutting down"
	}
	if msg != "" {
		rp.ErrorMessage = &msg
	}
	return rp
}

// electLeadersError answers every listed partition, and the request as a
// whole (v1+), with code.
func electLeadersError(req *kmsg.ElectLeadersRequest, code int16, msg string) *kmsg.ElectLeadersResponse {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.ErrorCode = code
	for _, qt := range req.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = qt.Topic
		for _, p := range qt.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, code, &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
