package controller

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/strata-io/strata/internal/cluster"
)

var (
	// ErrInvalidReplicationFactor is Kafka's INVALID_REPLICATION_FACTOR:
	// the factor is not positive or more than the usable brokers.
	ErrInvalidReplicationFactor = errors.New("controller: invalid replication factor")
	// ErrInvalidReplicaAssignment is Kafka's INVALID_REPLICA_ASSIGNMENT:
	// an explicit assignment of CreateTopics or CreatePartitions that
	// cannot be used as given.
	ErrInvalidReplicaAssignment = errors.New("controller: invalid replica assignment")
)

// BrokerInfo is what placement needs to know of a broker.
type BrokerInfo struct {
	ID int32
	// Rack is the broker's broker.rack, "" for none.
	Rack string
}

// UsableBrokers returns the brokers that may take new replicas and
// leadership, sorted by id: registered, not fenced and not in controlled
// shutdown (Kafka's ClusterControlManager.isActive).
func UsableBrokers(im *cluster.Image) []BrokerInfo {
	var out []BrokerInfo
	for _, b := range im.Brokers {
		if !usable(b) {
			continue
		}
		bi := BrokerInfo{ID: b.ID}
		if b.Rack != nil {
			bi.Rack = *b.Rack
		}
		out = append(out, bi)
	}
	slices.SortFunc(out, func(a, b BrokerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func usable(b *cluster.Broker) bool {
	return b != nil && !b.Fenced && !b.InControlledShutdown
}

// PlaceReplicas assigns replicas for count partitions numbered from
// startPartition, rf replicas each, over brokers: result[i] is the replica
// list of partition startPartition+i, its first replica the preferred
// leader. It is Kafka's AdminUtils.assignReplicasToBrokers, which KRaft's
// StripedReplicaPlacer keeps in spirit:
//
//   - Leaders go round-robin over the brokers from a random start, so
//     partition leaders of a topic are balanced within one.
//   - Followers follow their leader at a shift that is random at start and
//     grows by one each time the partitions wrap around the brokers, so
//     that the replicas of one broker's leaders spread over the others.
//   - When any broker has a rack, the brokers are first arranged with
//     racks alternating (rack a, rack b, rack c, rack a, ...), and a
//     follower skips a broker whose rack holds a replica of the partition
//     already while some rack holds none, and a broker that holds one while
//     some broker holds none. Every partition thus spans min(rf, racks)
//     racks. Brokers without a rack share the rack "" then; Kafka's
//     AdminUtils refuses such a mix and StripedReplicaPlacer takes it the
//     same way as here.
//
// brokers are sorted by id first, so the result depends only on the
// broker set and rnd's state: the same seed gives the same placement.
// rnd is consumed only when count > 0; nil means math/rand/v2's global
// source.
func PlaceReplicas(brokers []BrokerInfo, startPartition, count int32, rf int16, rnd *rand.Rand) ([][]int32, error) {
	if rf < 1 {
		return nil, fmt.Errorf("%w: Invalid replication factor %d: the replication factor must be positive", ErrInvalidReplicationFactor, rf)
	}
	if int(rf) > len(brokers) {
		return nil, fmt.Errorf("%w: Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered",
			ErrInvalidReplicationFactor, rf, rf, len(brokers))
	}
	if count <= 0 {
		return nil, nil
	}
	sorted := slices.Clone(brokers)
	slices.SortFunc(sorted, func(a, b BrokerInfo) int { return cmp.Compare(a.ID, b.ID) })
	intN := rand.IntN
	if rnd != nil {
		intN = rnd.IntN
	}
	// Kafka draws the start index first, then the shift.
	start := intN(len(sorted))
	shift := intN(len(sorted))
	return place(sorted, startPartition, count, int(rf), start, shift), nil
}

// place is PlaceReplicas with the random start index and follower shift
// given (AdminUtils' fixedStartIndex sets both). brokers are sorted by id.
func place(brokers []BrokerInfo, startPartition, count int32, rf, start, shift int) [][]int32 {
	rackAware := slices.ContainsFunc(brokers, func(b BrokerInfo) bool { return b.Rack != "" })
	numRacks := 1
	if rackAware {
		brokers, numRacks = rackAlternated(brokers)
	}
	n := len(brokers)
	out := make([][]int32, 0, count)
	p := max(0, startPartition)
	for range count {
		if p > 0 && int(p)%n == 0 {
			shift++
		}
		first := (int(p) + start) % n
		replicas := make([]int32, 0, rf)
		replicas = append(replicas, brokers[first].ID)
		if !rackAware {
			for j := range rf - 1 {
				replicas = append(replicas, brokers[replicaIndex(first, shift, j, n)].ID)
			}
		} else {
			racks := map[string]bool{brokers[first].Rack: true}
			used := map[int32]bool{brokers[first].ID: true}
			// replicaIndex(first, s, k, n) visits every index but first
			// as k runs over n-1 values, and rf <= n, so a broker without
			// a replica is always found.
			for k := 0; len(replicas) < rf; k++ {
				b := brokers[replicaIndex(first, shift*numRacks, k, n)]
				if (!racks[b.Rack] || len(racks) == numRacks) && (!used[b.ID] || len(used) == n) {
					replicas = append(replicas, b.ID)
					racks[b.Rack], used[b.ID] = true, true
				}
			}
		}
		out = append(out, replicas)
		p++
	}
	return out
}

// replicaIndex is AdminUtils.replicaIndex: the j-th follower of the
// leader at index first sits 1 + (shift+j) mod (n-1) places after it, so
// it is never the leader itself.
func replicaIndex(first, shift, j, n int) int {
	return (first + 1 + (shift+j)%(n-1)) % n
}

// rackAlternated is AdminUtils.getRackAlternatedBrokerList: the brokers
// of each rack in id order, taken one rack at a time in rack-name order,
// so that neighbours in the list are on different racks while each rack
// has brokers left. brokers must be sorted by id. It also returns the
// number of racks.
func rackAlternated(brokers []BrokerInfo) ([]BrokerInfo, int) {
	byRack := map[string][]BrokerInfo{}
	for _, b := range brokers {
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	slices.Sort(racks)
	out := make([]BrokerInfo, 0, len(brokers))
	for i := 0; len(out) < len(brokers); i++ {
		if bs := byRack[racks[i%len(racks)]]; len(bs) > 0 {
			out = append(out, bs[0])
			byRack[racks[i%len(racks)]] = bs[1:]
		}
	}
	return out, len(racks)
}

// ValidateAssignment checks an explicit replica assignment of CreateTopics
// or CreatePartitions (assign[i] the replicas of the i-th new partition) as
// Kafka's ReplicationControlManager.validateManualPartitionAssignment does:
// each partition has at least one replica, no broker twice, only
// registered brokers, and every partition as many replicas as the first.
// An empty assignment (no partitions) is refused as well. A CreatePartitions
// caller still has to compare the replication factor with the topic's
// existing partitions. Errors wrap ErrInvalidReplicaAssignment.
func ValidateAssignment(assign [][]int32, registered func(int32) bool) error {
	if len(assign) == 0 {
		return fmt.Errorf("%w: The manual partition assignment includes no partitions", ErrInvalidReplicaAssignment)
	}
	for i, replicas := range assign {
		if len(replicas) == 0 {
			return fmt.Errorf("%w: The manual partition assignment of partition %d includes an empty replica list", ErrInvalidReplicaAssignment, i)
		}
		sorted := slices.Clone(replicas)
		slices.Sort(sorted)
		for j, id := range sorted {
			if !registered(id) {
				return fmt.Errorf("%w: The manual partition assignment includes broker %d, but no such broker is registered", ErrInvalidReplicaAssignment, id)
			}
			if j > 0 && sorted[j-1] == id {
				return fmt.Errorf("%w: The manual partition assignment includes the broker %d more than once", ErrInvalidReplicaAssignment, id)
			}
		}
		if len(replicas) != len(assign[0]) {
			return fmt.Errorf("%w: The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s)",
				ErrInvalidReplicaAssignment, len(replicas), len(assign[0]))
		}
	}
	return nil
}
