package metrics

import "github.com/prometheus/client_golang/prometheus"

// ReplicationStatus is what the replication gauges report, read at each
// scrape: over the partitions this broker leads (Kafka's ReplicaManager
// gauges), and the ISR changes its replica manager made.
type ReplicationStatus struct {
	// UnderReplicated counts led partitions whose ISR is smaller than
	// their replica set; UnderMinISR those whose ISR is smaller than
	// min.insync.replicas (acks=all writes are refused); AtMinISR those
	// exactly at it.
	UnderReplicated, UnderMinISR, AtMinISR int
	// MaxLagOffsets is the largest lag, in offsets, of any follower of a
	// led partition.
	MaxLagOffsets int64
	// MaxLagSeconds is the longest time any such follower has not been
	// caught up with its leader's log end.
	MaxLagSeconds float64
	// ISRShrinks and ISRExpands count the ISR changes the controller
	// accepted from this leader.
	ISRShrinks, ISRExpands int64
	// StorageFailed is whether a write to this node's log dirs failed
	// and has not healed (the broker asks to be fenced meanwhile).
	StorageFailed bool
}

var (
	descUnderReplicated = prometheus.NewDesc("strata_partitions_under_replicated",
		"Partitions this broker leads whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions).", nil, nil)
	descUnderMinISR = prometheus.NewDesc("strata_partitions_under_min_isr",
		"Partitions this broker leads whose ISR is below min.insync.replicas: acks=all writes get NOT_ENOUGH_REPLICAS (Kafka's UnderMinIsrPartitionCount).", nil, nil)
	descAtMinISR = prometheus.NewDesc("strata_partitions_at_min_isr",
		"Partitions this broker leads whose ISR is exactly min.insync.replicas: one more loss refuses acks=all writes (Kafka's AtMinIsrPartitionCount).", nil, nil)
	descMaxLag = prometheus.NewDesc("strata_replica_max_lag_offsets",
		"Largest lag in offsets of any follower of a partition this broker leads.", nil, nil)
	descMaxLagSeconds = prometheus.NewDesc("strata_replica_max_lag_seconds",
		"Longest time any follower of a partition this broker leads has not been caught up with the leader's log end (compared with replica.lag.time.max.ms).", nil, nil)
	descISRShrinks = prometheus.NewDesc("strata_isr_shrinks_total",
		"ISR shrinks of partitions this broker leads that the controller accepted (Kafka's IsrShrinksPerSec).", nil, nil)
	descStorageFailed = prometheus.NewDesc("strata_log_dirs_failed",
		"1 while a write to this node's log dirs has failed and not healed (a full disk, until space is freed; any other write error, until a restart): the broker asks its controller to fence it (Kafka's OfflineLogDirectoryCount, for strata's dirs as one), else 0.", nil, nil)
	descISRExpands = prometheus.NewDesc("strata_isr_expands_total",
		"ISR expansions of partitions this broker leads that the controller accepted (Kafka's IsrExpandsPerSec).", nil, nil)
)

// RegisterReplication adds the replication gauges; status is read once
// per scrape.
func (m *Metrics) RegisterReplication(status func() ReplicationStatus) {
	m.Registry.MustRegister(&replicationCollector{status})
}

type replicationCollector struct{ status func() ReplicationStatus }

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUnderReplicated, descUnderMinISR, descAtMinISR, descMaxLag, descMaxLagSeconds, descISRShrinks, descISRExpands, descStorageFailed} {
		ch <- d
	}
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(descUnderReplicated, float64(s.UnderReplicated))
	gauge(descUnderMinISR, float64(s.UnderMinISR))
	gauge(descAtMinISR, float64(s.AtMinISR))
	gauge(descMaxLag, float64(s.MaxLagOffsets))
	gauge(descMaxLagSeconds, s.MaxLagSeconds)
	ch <- prometheus.MustNewConstMetric(descISRShrinks, prometheus.CounterValue, float64(s.ISRShrinks))
	ch <- prometheus.MustNewConstMetric(descISRExpands, prometheus.CounterValue, float64(s.ISRExpands))
	if s.StorageFailed {
		gauge(descStorageFailed, 1)
	} else {
		gauge(descStorageFailed, 0)
	}
}
