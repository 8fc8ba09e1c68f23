package strata

import "github.com/strata-io/strata/internal/log"

// PartitionLogConfig returns the log config a partition runs with, for
// tests of dynamic configs in package strata_test.
func (b *Broker) PartitionLogConfig(topic string, partition int32) (log.Config, bool) {
	p := b.broker.Partition(log.TopicPartition{Topic: topic, Partition: partition})
	if p == nil {
		return log.Config{}, false
	}
	return p.Log.Config(), true
}
