package controller

import (
	"fmt"
	"math/rand/v2"

	"github.com/strata-io/strata/internal/cluster"
)

// Place returns how the active controller places a new topic's or new
// partitions' replicas: an explicit assignment (CreateTopics'
// ReplicaAssignment, CreatePartitions' Assignment), checked against the
// registered brokers, or replication factor rf spread over the usable
// brokers (PlaceReplicas: rack-aware, leaders balanced). It runs inside
// the metadata change, against the latest image.
//
// In local mode the node is the cluster: every partition is its own, and an
// assignment may name only it.
func (c *Controller) Place(rf int16, assignment [][]int32) cluster.PlaceFunc {
	if rf < 1 {
		rf = max(c.cfg.DefaultReplicationFactor, 1)
	}
	if rf > 1 {
		// Until followers replicate (issue 13), a second replica
		// would be a name in the metadata with no data behind it.
		return func(*cluster.Image, int32, int32) ([][]int32, error) {
			return nil, fmt.Errorf("%w: replication factor %d: replication between brokers is not built yet, topics have 1 replica", ErrInvalidReplicationFactor, rf)
		}
	}
	local := c.cfg.Client == nil
	if local && assignment == nil && rf == 1 {
		return nil
	}
	return func(im *cluster.Image, from, to int32) ([][]int32, error) {
		if local {
			if assignment == nil {
				return nil, fmt.Errorf("%w: replication factor %d on a single node", ErrInvalidReplicationFactor, rf)
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
			err := ValidateAssignment(assignment, func(id int32) bool { return im.Broker(id) != nil })
			return assignment, err
		}
		return PlaceReplicas(UsableBrokers(im), from, to-from, rf, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
}
