package strata

import (
	"fmt"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
)

// BrokerInImage returns the epoch broker id has in node n's metadata
// image and whether it is fenced there, for tests of follower fetches in
// package strata_test.
func (n *Node) BrokerInImage(id int32) (epoch int64, fenced, ok bool) {
	n.mu.Lock()
	b := n.mu.b
	n.mu.Unlock()
	if b == nil {
		return 0, false, false
	}
	br := b.meta.Image().Broker(id)
	if br == nil {
		return 0, false, false
	}
	return br.Epoch, br.Fenced, true
}

// HoldHighWatermark sets a partition's high watermark on node n (clamped
// to its log), as a lagging in-sync replica would hold it, for tests of
// what consumers and followers read before replication exists.
func (n *Node) HoldHighWatermark(topic string, partition int32, hw int64) (int64, bool) {
	n.mu.Lock()
	b := n.mu.b
	n.mu.Unlock()
	if b == nil {
		return 0, false
	}
	p := b.broker.Partition(log.TopicPartition{Topic: topic, Partition: partition})
	if p == nil {
		return 0, false
	}
	return p.Log.SetHighWatermark(hw), true
}

// SetReplicas records a new replica set for a partition through the active
// controller (as a reassignment would, which strata does not serve yet),
// for tests of follower fetches. It returns the
// metadata offset that holds the change.
func (c *Cluster) SetReplicas(topic string, partition int32, replicas []int32) (int64, error) {
	n := c.Node(c.Controller())
	if n == nil {
		return 0, fmt.Errorf("no active controller")
	}
	n.mu.Lock()
	b := n.mu.b
	n.mu.Unlock()
	if b == nil {
		return 0, fmt.Errorf("controller node %d stopped", n.id)
	}
	im, err := b.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		t := im.Topic(topic)
		if t == nil {
			return nil, fmt.Errorf("no topic %s", topic)
		}
		change := records.NewPartitionChange(records.UUID(t.ID), partition)
		change.Replicas = replicas
		return []records.Record{change}, nil
	})
	if err != nil {
		return 0, err
	}
	return im.EndOffset, nil
}
