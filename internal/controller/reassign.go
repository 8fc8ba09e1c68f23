package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// Partition reassignment (KIP-455), as Kafka's ReplicationControlManager
// and PartitionReassignmentReplicas do it. A reassignment of a partition
// with replicas R (all of them, those of a reassignment in progress
// included, as Kafka takes them) to target replicas T is one
// PartitionChangeRecord:
//
//	Replicas         = T, then R\T
//	AddingReplicas   = T\R
//	RemovingReplicas = R\T
//
// (the differences in broker id order, as Kafka's TreeSets give them).
// The adding replicas are followers like the others (the brokers'
// applyRoles make them fetch from the leader) and join the ISR through the
// leader's AlterPartition. Once the ISR without the removing replicas is
// not empty and holds every replica of T, the reassignment completes in
// the change that made it so (AlterPartitionChanges, or
// ReassignmentCompletions when a broker is unfenced): Replicas = T, ISR =
// ISR without R\T, the leader moved to the first usable ISR member of T
// (a new leader epoch) if it is being removed, adding and removing
// cleared. Kafka completes even when no member of T can lead, leaving the
// partition leaderless; strata waits until one can (an unfencing brings
// the check again), so that a reassignment never takes a partition
// offline.
//
// Cancelling (Kafka's PartitionReassignmentRevert) drops the adding
// replicas from the replicas and the ISR.

// reassigning reports whether p has a reassignment in progress.
func reassigning(p *cluster.Partition) bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// ValidateReassignment checks the target replicas of a reassignment as
// Kafka's validateManualPartitionAssignment: at least one, none twice,
// each a registered broker. The error wraps INVALID_REPLICA_ASSIGNMENT.
func ValidateReassignment(im *cluster.Image, target []int32) error {
	if len(target) == 0 {
		return codeErr(kerr.InvalidReplicaAssignment, "the target replica list is empty")
	}
	for i, id := range target {
		if slices.Contains(target[:i], id) {
			return codeErr(kerr.InvalidReplicaAssignment, "broker %d is listed twice", id)
		}
		if im.Broker(id) == nil {
			return codeErr(kerr.InvalidReplicaAssignment, "broker %d is not registered", id)
		}
	}
	return nil
}

// Reassign returns the change that reassigns partition i of t to target
// (KIP-455's AlterPartitionReassignments), or, for a nil target, cancels
// the reassignment in progress. A reassignment that needs no new replica
// in the ISR completes in the same change. rec is nil when nothing
// changes (the target is the current assignment) or on error; the error
// wraps its Kafka code: INVALID_REPLICA_ASSIGNMENT (ValidateReassignment,
// or a cancel that would need an unclean election on a topic for which
// unclean says false), INVALID_REPLICATION_FACTOR when allowRFChange is
// false and T has another size than the replicas the partition had before
// any reassignment (KIP-860), NO_REASSIGNMENT_IN_PROGRESS for cancelling
// none.
func Reassign(im *cluster.Image, t *cluster.Topic, i int32, target []int32, allowRFChange bool, unclean Unclean) (*records.PartitionChange, error) {
	p := t.PartitionStates[i]
	isUsable := func(id int32) bool { return usable(im.Brokers[id]) }
	if target == nil {
		if !reassigning(p) {
			return nil, codeErr(kerr.NoReassignmentInProgress, "no reassignment of partition %s-%d is in progress", t.Name, i)
		}
		next, clean := revert(p)
		if !clean && (unclean == nil || !unclean(t)) {
			return nil, codeErr(kerr.InvalidReplicaAssignment, "cancelling the reassignment of %s-%d would need an unclean leader election: only replicas being added are in sync", t.Name, i)
		}
		return changeTo(t, i, p, &next, isUsable), nil
	}
	if err := ValidateReassignment(im, target); err != nil {
		return nil, err
	}
	if orig := len(p.Replicas) - len(p.AddingReplicas); !allowRFChange && len(target) != orig {
		return nil, codeErr(kerr.InvalidReplicationFactor, "the target has %d replicas, the partition %d, and the request does not allow a change of replication factor", len(target), orig)
	}
	var adding, removing []int32
	for _, id := range target {
		if !slices.Contains(p.Replicas, id) {
			adding = append(adding, id)
		}
	}
	for _, id := range p.Replicas {
		if !slices.Contains(target, id) {
			removing = append(removing, id)
		}
	}
	slices.Sort(adding)
	slices.Sort(removing)
	next := *p
	next.Replicas = append(slices.Clone(target), removing...)
	next.AddingReplicas, next.RemovingReplicas = adding, removing
	if done, ok := complete(&next, next.ISR, isUsable); ok {
		next = done
	}
	return changeTo(t, i, p, &next, isUsable), nil
}

// revert is Kafka's PartitionReassignmentRevert: the adding replicas out
// of the replicas and the ISR. If that empties the ISR, the first replica
// left becomes it, and clean is false (an unclean election).
func revert(p *cluster.Partition) (next cluster.Partition, clean bool) {
	adding := func(id int32) bool { return slices.Contains(p.AddingReplicas, id) }
	next = *p
	next.Replicas = slices.DeleteFunc(slices.Clone(p.Replicas), adding)
	next.ISR = slices.DeleteFunc(slices.Clone(p.ISR), adding)
	clean = true
	if len(next.ISR) == 0 && len(next.Replicas) > 0 {
		next.ISR, clean = []int32{next.Replicas[0]}, false
	}
	next.AddingReplicas, next.RemovingReplicas = []int32{}, []int32{}
	return next, clean
}

// complete is Kafka's PartitionReassignmentReplicas.maybeCompleteReassignment
// for p with ISR isr: p completed, and ok, when isr without the removing
// replicas is not empty and holds every replica left, and the partition
// has a usable leader after it.
func complete(p *cluster.Partition, isr []int32, isUsable func(int32) bool) (cluster.Partition, bool) {
	if !reassigning(p) {
		return *p, false
	}
	gone := func(id int32) bool { return slices.Contains(p.RemovingReplicas, id) }
	next := *p
	next.ISR = slices.DeleteFunc(slices.Clone(isr), gone)
	next.Replicas = slices.DeleteFunc(slices.Clone(p.Replicas), gone)
	if len(next.ISR) == 0 || len(next.Replicas) == 0 {
		return *p, false
	}
	for _, id := range next.Replicas {
		if !slices.Contains(next.ISR, id) {
			return *p, false
		}
	}
	if !slices.Contains(next.ISR, p.Leader) {
		next.Leader = electFrom(next.Replicas, next.ISR, isUsable)
		if next.Leader == records.NoLeader {
			return *p, false
		}
	}
	next.AddingReplicas, next.RemovingReplicas = []int32{}, []int32{}
	return next, true
}

// changeTo returns the record that takes partition i of t from p to next:
// the fields that differ, and a new leader (first usable ISR member in
// replica order) when next's leader is not in next's ISR.
func changeTo(t *cluster.Topic, i int32, p, next *cluster.Partition, isUsable func(int32) bool) *records.PartitionChange {
	rec := records.NewPartitionChange(records.UUID(t.ID), i)
	if !slices.Contains(next.ISR, next.Leader) {
		next.Leader = electFrom(next.Replicas, next.ISR, isUsable)
	}
	if next.Leader != p.Leader {
		rec.Leader = next.Leader
	}
	if !slices.Equal(next.ISR, p.ISR) {
		rec.Isr = slices.Clone(next.ISR)
	}
	if !slices.Equal(next.Replicas, p.Replicas) {
		rec.Replicas = slices.Clone(next.Replicas)
	}
	if !slices.Equal(next.AddingReplicas, p.AddingReplicas) {
		rec.AddingReplicas = nonNil(next.AddingReplicas)
	}
	if !slices.Equal(next.RemovingReplicas, p.RemovingReplicas) {
		rec.RemovingReplicas = nonNil(next.RemovingReplicas)
	}
	if rec.Leader == records.LeaderUnchanged && rec.Isr == nil && rec.Replicas == nil && rec.AddingReplicas == nil && rec.RemovingReplicas == nil {
		return nil
	}
	return rec
}

// nonNil is vs, or an empty array: in a PartitionChangeRecord nil means
// unchanged and an empty array clears the field.
func nonNil(vs []int32) []int32 {
	if vs == nil {
		return []int32{}
	}
	return slices.Clone(vs)
}

// ReassignmentCompletions returns the changes that complete every
// reassignment whose adding replicas are all in the ISR but which could
// not complete for want of a usable leader. It goes with unfencing
// brokerID (Kafka checks completion on every partition change; a broker
// coming back is the change that may let one lead), brokerID counting as
// usable.
func ReassignmentCompletions(im *cluster.Image, brokerID int32) []records.Record {
	isUsable := func(id int32) bool { return id == brokerID || usable(im.Brokers[id]) }
	return eachPartition(im, func(t *cluster.Topic, i int32, p *cluster.Partition) *records.PartitionChange {
		next, ok := complete(p, p.ISR, isUsable)
		if !ok {
			return nil
		}
		return changeTo(t, i, p, &next, isUsable)
	})
}

// codeError is an error of a Kafka code with its own message: the message
// is what the answer's ErrorMessage says, without the code's name.
type codeError struct {
	code *kerr.Error
	msg  string
}

func (e *codeError) Error() string { return e.msg }
func (e *codeError) Unwrap() error { return e.code }

func codeErr(code *kerr.Error, format string, args ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}
