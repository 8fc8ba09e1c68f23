package controller

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// AlterPartition handles AlterPartition on the active controller: a
// partition leader's request to change the ISR of partitions it leads
// (Kafka's ReplicationControlManager.alterPartition). The checks and the
// changes are AlterPartitionChanges', run against the latest image inside
// one metadata change, so that the partition epoch compare-and-swap holds;
// the answer gives each accepted partition's state as the image that
// holds the change has it. A Go error is the request's (NOT_CONTROLLER, a
// failed commit): the caller answers it as the top-level error code.
func (c *Controller) AlterPartition(req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	var resp *kmsg.AlterPartitionResponse
	im, err := c.cfg.Store.Propose(func(im *cluster.Image) ([]records.Record, error) {
		var recs []records.Record
		resp, recs = AlterPartitionChanges(im, req)
		return recs, nil
	})
	if err != nil {
		return nil, err
	}
	fillAlterPartitionStates(im, req, resp)
	return resp, nil
}

// AlterPartitionChanges checks an AlterPartition request against im and
// returns its answer and the PartitionChangeRecords to commit for it, in
// the order of the request. Partitions it accepts carry error code 0 and
// get their state filled from the image that holds the changes
// (fillAlterPartitionStates); a partition whose requested ISR and
// recovery state are the current ones is accepted without a record, as
// Kafka's PartitionChangeBuilder builds none then.
//
// The checks, in Kafka's order (validateAlterPartitionData):
//
//   - the request's broker epoch must be the sender's registered one, else
//     STALE_BROKER_EPOCH for the whole request;
//   - an unknown topic is UNKNOWN_TOPIC_ID (v2+, by id) or
//     UNKNOWN_TOPIC_OR_PARTITION (by name), an unknown partition
//     UNKNOWN_TOPIC_OR_PARTITION;
//   - the sender must lead the partition: NOT_LEADER_OR_FOLLOWER;
//   - a leader or partition epoch above the image's means this controller
//     is behind (no longer active): NOT_CONTROLLER, so the leader looks for
//     the new one; a leader epoch below is FENCED_LEADER_EPOCH, a partition
//     epoch below INVALID_UPDATE_VERSION (another change came first);
//   - the new ISR must name replicas of the partition, each once, and hold
//     the leader: INVALID_REQUEST; so is a recovery state other than 0
//     (RECOVERED) or 1 (RECOVERING), RECOVERING with more than one ISR
//     member, or going back from RECOVERED to RECOVERING (KIP-704);
//   - a broker the new ISR adds must be registered, unfenced, not in
//     controlled shutdown and, when the request gives its broker epoch
//     (v3 NewEpochISR, -1 skips the check), at that epoch (KIP-903):
//     INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED before v2, as Kafka).
//     Kafka checks every member the same way; strata checks only the
//     members added, so that a leader may always shrink an ISR or keep a
//     member it has: fencing and controlled shutdown take a broker out of
//     every ISR (FenceChanges) with a new partition epoch, which a request
//     built before then fails on anyway;
//   - an ISR that, without the removing replicas, holds every other
//     replica of a reassignment in progress completes it in the same
//     change (see Reassign); if the
//     sender is removed and another replica leads, it is answered
//     NEW_LEADER_ELECTED.
func AlterPartitionChanges(im *cluster.Image, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, []records.Record) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if b := im.Broker(req.BrokerID); b == nil || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp, nil
	}
	byID := req.Version >= 2
	var recs []records.Record
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		var t *cluster.Topic
		unknown := kerr.UnknownTopicOrPartition.Code
		if byID {
			t, unknown = im.ByID[cluster.TopicID(rt.TopicID)], kerr.UnknownTopicID.Code
		} else {
			t = im.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case t == nil:
				sp.ErrorCode = unknown
			case rp.Partition < 0 || rp.Partition >= int32(len(t.PartitionStates)) || t.PartitionStates[rp.Partition] == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				var rec *records.PartitionChange
				rec, sp.ErrorCode = alterPartition(im, req, t, rp)
				if rec != nil {
					recs = append(recs, rec)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, recs
}

// alterPartition checks one partition of the request and returns its
// change, nil when nothing changes or errCode is not 0, except for
// NEW_LEADER_ELECTED, which comes with the change that moved the leader.
func alterPartition(im *cluster.Image, req *kmsg.AlterPartitionRequest, t *cluster.Topic, rp kmsg.AlterPartitionRequestTopicPartition) (rec *records.PartitionChange, errCode int16) {
	p := t.PartitionStates[rp.Partition]
	switch {
	case p.Leader != req.BrokerID:
		return nil, kerr.NotLeaderForPartition.Code
	case rp.LeaderEpoch > p.LeaderEpoch, rp.PartitionEpoch > p.PartitionEpoch:
		return nil, kerr.NotController.Code
	case rp.LeaderEpoch < p.LeaderEpoch:
		return nil, kerr.FencedLeaderEpoch.Code
	case rp.PartitionEpoch < p.PartitionEpoch:
		return nil, kerr.InvalidUpdateVersion.Code
	}
	isr, epochs := requestedISR(req.Version, rp)
	for i, id := range isr {
		if !slices.Contains(p.Replicas, id) || slices.Contains(isr[:i], id) {
			return nil, kerr.InvalidRequest.Code
		}
	}
	if !slices.Contains(isr, p.Leader) {
		return nil, kerr.InvalidRequest.Code
	}
	recovery := rp.LeaderRecoveryState
	if req.Version < 1 {
		recovery = 0 // v0 has no field: RECOVERED, as Kafka's default
	}
	switch {
	case recovery != 0 && recovery != 1,
		recovery == 1 && len(isr) > 1,
		p.LeaderRecoveryState == 0 && recovery == 1:
		return nil, kerr.InvalidRequest.Code
	}
	for i, id := range isr {
		if slices.Contains(p.ISR, id) {
			continue
		}
		if b := im.Broker(id); !usable(b) || epochs[i] != -1 && epochs[i] != b.Epoch {
			if req.Version < 2 {
				return nil, kerr.OperationNotAttempted.Code
			}
			return nil, kerr.IneligibleReplica.Code
		}
	}
	if recovery == 0 {
		// The ISR change may complete a reassignment (Kafka's
		// PartitionChangeBuilder.completeReassignmentIfNeeded), in the
		// same record. If that moves the leader away from the sender,
		// it gets NEW_LEADER_ELECTED, as from Kafka: the change is
		// made, and its image brings it the new roles.
		isUsable := func(id int32) bool { return usable(im.Brokers[id]) }
		if next, ok := complete(p, isr, isUsable); ok {
			rec = changeTo(t, rp.Partition, p, &next, isUsable)
			if p.LeaderRecoveryState != 0 {
				rec.LeaderRecoveryState = 0
			}
			if rec.Leader != records.LeaderUnchanged && rec.Leader != req.BrokerID {
				return rec, kerr.NewLeaderElected.Code
			}
			return rec, 0
		}
	}
	rec = records.NewPartitionChange(records.UUID(t.ID), rp.Partition)
	changed := false
	if !slices.Equal(isr, p.ISR) {
		rec.Isr, changed = slices.Clone(isr), true
	}
	if recovery != p.LeaderRecoveryState {
		rec.LeaderRecoveryState, changed = recovery, true
	}
	if !changed {
		return nil, 0
	}
	return rec, 0
}

// requestedISR returns a partition's new ISR and each member's broker
// epoch (-1 where none is given): NewISR before v3, NewEpochISR from v3.
func requestedISR(version int16, rp kmsg.AlterPartitionRequestTopicPartition) (isr []int32, epochs []int64) {
	if version < 3 {
		isr = rp.NewISR
		for range isr {
			epochs = append(epochs, -1)
		}
		return isr, epochs
	}
	for _, m := range rp.NewEpochISR {
		isr, epochs = append(isr, m.BrokerID), append(epochs, m.BrokerEpoch)
	}
	return isr, epochs
}

// fillAlterPartitionStates puts each accepted partition's state in im
// into resp (Kafka answers a partition with the registration after its
// change: leader, leader epoch, ISR, recovery state, partition epoch).
func fillAlterPartitionStates(im *cluster.Image, req *kmsg.AlterPartitionRequest, resp *kmsg.AlterPartitionResponse) {
	if resp.ErrorCode != 0 {
		return
	}
	for i := range resp.Topics {
		st := &resp.Topics[i]
		var t *cluster.Topic
		if req.Version >= 2 {
			t = im.ByID[cluster.TopicID(st.TopidID)]
		} else {
			t = im.Topic(st.Topic)
		}
		for j := range st.Partitions {
			sp := &st.Partitions[j]
			if sp.ErrorCode != 0 {
				continue
			}
			if t == nil || sp.Partition >= int32(len(t.PartitionStates)) || t.PartitionStates[sp.Partition] == nil {
				// Deleted between the change and this answer: the
				// leader learns it from its image.
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			p := t.PartitionStates[sp.Partition]
			sp.LeaderID, sp.LeaderEpoch, sp.PartitionEpoch = p.Leader, p.LeaderEpoch, p.PartitionEpoch
			sp.ISR, sp.LeaderRecoveryState = slices.Clone(p.ISR), p.LeaderRecoveryState
		}
	}
}

// AlterPartition sends an AlterPartition request (at v3: topics by id,
// NewEpochISR with the members' broker epochs) to the active controller,
// for a partition leader changing its ISR. The answer carries the metadata
// offset that holds the change (MetadataOffset): the leader should act on
// the new ISR once its own image reaches it, or at once on the answer's
// partition states, as Kafka's leaders do. A NOT_CONTROLLER answer, or an
// error, is for the caller to retry (Send dials the controller anew).
func (c *Client) AlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
	req.SetVersion(3)
	r, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, ok := r.(*kmsg.AlterPartitionResponse)
	if !ok {
		return nil, fmt.Errorf("controller: AlterPartition answered with %T", r)
	}
	return resp, nil
}
