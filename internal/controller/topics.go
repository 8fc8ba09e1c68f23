package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/strata-io/strata/internal/cluster"
)

// Place returns how the active controller places a new topic's or new
// partitions' replicas: an explicit assignment (CreateTopics'
// ReplicaAssignment, CreatePartitions' Assignment), checked against the
// registered brokers, or replication factor rf spread over the usable
// brokers (PlaceReplicas: rack-aware, leaders balanced). It runs inside
// the metadata change, against the latest image.
//
// In quorum mode any factor up to the number of usable brokers is placed
// (INVALID_REPLICATION_FACTOR beyond, with Kafka's placer's message); the
// replicas after the first follow its leader (issue 13: replication). In
// local mode the node is the cluster: every partition is its own, a factor
// above 1 is INVALID_REPLICATION_FACTOR, and an assignment may name only it.
func (c *Controller) Place(rf int16, assignment [][]int32) cluster.PlaceFunc {
	if rf < 1 {
		rf = max(c.cfg.DefaultReplicationFactor, 1)
	}
	local := c.cfg.Client == nil
	if local && assignment == nil && rf == 1 {
		return nil
	}
	return func(im *cluster.Image, from, to int32) ([][]int32, error) {
		if local {
			if assignment == nil {
				// One broker holds one replica: Kafka's placer refuses
				// more the same way.
				return nil, fmt.Errorf("%w: Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered", ErrInvalidReplicationFactor, rf, rf)
			}
			for _, replicas := range assignment {
				for _, r := range replicas {
					if r != c.cfg.NodeID {
						return nil, fmt.Errorf("%w: broker %d is not this node (%d), the only broker", ErrInvalidReplicaAssignment, r, c.cfg.NodeID)
					}
				}
			}
		}
		if assignment != nil {
			if len(assignment) != int(to-from) {
				return nil, fmt.Errorf("%w: %d partitions assigned, %d to create", ErrInvalidReplicaAssignment, len(assignment), to-from)
			}
			if err := ValidateAssignment(assignment, func(id int32) bool { return im.Broker(id) != nil }); err != nil {
				return nil, err
			}
			// Kafka's createTopic: a partition needs a usable broker
			// to lead it; the others join its ISR when they are back.
			for i, replicas := range assignment {
				if !slices.ContainsFunc(replicas, func(id int32) bool { return usable(im.Broker(id)) }) {
					return nil, fmt.Errorf("%w: All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", ErrInvalidReplicaAssignment, from+int32(i))
				}
			}
			return assignment, nil
		}
		return PlaceReplicas(UsableBrokers(im), from, to-from, rf, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
}

// CheckPlace runs Place's checks for partitions new partitions against im
// without placing them, for a request that only validates (CreateTopics'
// ValidateOnly): the factor against the usable brokers, an assignment
// against the registered ones.
func (c *Controller) CheckPlace(im *cluster.Image, rf int16, assignment [][]int32, partitions int32) error {
	place := c.Place(rf, assignment)
	if place == nil {
		return nil
	}
	_, err := place(im, 0, partitions)
	return err
}

// ReplicationFactor returns the factor Place uses for rf: rf itself, or
// default.replication.factor for -1 (and any factor below 1).
func (c *Controller) ReplicationFactor(rf int16) int16 {
	if rf < 1 {
		return max(c.cfg.DefaultReplicationFactor, 1)
	}
	return rf
}

// PlaceUpTo places new partitions as Place(rf, nil) would, with the factor
// capped at the number of usable brokers (at least 1), for an internal
// topic created on first use (__consumer_offsets with
// offsets.topic.replication.factor): a cluster smaller than the factor
// still gets its group coordinators. In local mode the node holds the one
// replica.
func (c *Controller) PlaceUpTo(rf int16) cluster.PlaceFunc {
	if c.cfg.Client == nil {
		return nil
	}
	return func(im *cluster.Image, from, to int32) ([][]int32, error) {
		brokers := UsableBrokers(im)
		n := min(int(max(rf, 1)), max(len(brokers), 1))
		return c.Place(int16(n), nil)(im, from, to)
	}
}
