// Package metrics holds the broker's Prometheus metrics: one registry per
// broker (so embedded brokers in one process do not share counters), the
// collectors the request path updates, and the HTTP endpoint that serves
// them with /healthz and /readyz.
//
// Names follow Prometheus conventions with Kafka's meanings: bytes and
// records in per topic (Kafka's BytesInPerSec, MessagesInPerSec), bytes out
// per topic (BytesOutPerSec; records out are not counted, because fetch
// sends file regions without parsing them), requests and their latency per
// API (RequestsPerSec, TotalTimeMs), errors per API and code (ErrorsPerSec),
// and fsync latency (LogFlushRateAndTimeMs).
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are one broker's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestSeconds  *prometheus.HistogramVec
	errors          *prometheus.CounterVec
	authentications *prometheus.CounterVec

	ConnectionsActive   prometheus.Gauge
	ConnectionsTotal    prometheus.Counter
	connectionsRejected *prometheus.CounterVec

	bytesIn, recordsIn, bytesOut *prometheus.CounterVec
	syncSeconds                  prometheus.Histogram
	fetchesWaiting               prometheus.Gauge
}

// New returns a broker's metrics in a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_requests_total", Help: "Kafka requests handled, by API.",
		}, []string{"api"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_request_duration_seconds",
			Help:    "Time from a request's arrival to its response being queued, by API (fetch includes its long-poll wait).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_errors_total", Help: "Error codes returned, by API and Kafka error name (per partition or member where the response has them).",
		}, []string{"api", "error"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_authentications_total",
			Help: "SASL authentications (and re-authentications) completed, by listener, mechanism and result (success or failure): failures climbing is a client with a wrong password or someone guessing.",
		}, []string{"listener", "mechanism", "result"}),
		ConnectionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_connections_active", Help: "Open client connections.",
		}),
		ConnectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_connections_total", Help: "Client connections accepted.",
		}),
		connectionsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_connections_rejected_total",
			Help: "Client connections closed at accept, by reason: max_connections or max_connections_per_ip (Kafka's connection quotas).",
		}, []string{"reason"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_topic_bytes_in_total", Help: "Record batch bytes appended, by topic, as produced (compressed).",
		}, []string{"topic"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_topic_records_in_total", Help: "Records appended, by topic.",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_topic_bytes_out_total", Help: "Record batch bytes sent to consumers, by topic.",
		}, []string{"topic"}),
		fetchesWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_fetch_waiting",
			Help: "Fetch requests parked in a long poll, waiting for MinBytes or MaxWait (Kafka's fetch purgatory size).",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_log_fsync_duration_seconds",
			Help:    "Duration of each fsync pass over a partition's segment files.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 3, 12), // 50µs .. 8.9s
		}),
	}
	// Both reasons from the start, so a dashboard sees 0 rather than no
	// series until the first refusal.
	for _, reason := range []string{"max_connections", "max_connections_per_ip"} {
		m.connectionsRejected.WithLabelValues(reason)
	}
	r.MustRegister(m.requests, m.requestSeconds, m.errors, m.authentications, m.ConnectionsActive, m.ConnectionsTotal,
		m.connectionsRejected, m.bytesIn, m.recordsIn, m.bytesOut, m.syncSeconds, m.fetchesWaiting,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// FetchWaiting moves the count of fetches parked in a long poll by delta
// (+1 as one parks, -1 as it leaves).
func (m *Metrics) FetchWaiting(delta int) {
	if m == nil {
		return
	}
	m.fetchesWaiting.Add(float64(delta))
}

// ConnectionRejected counts a connection refused at accept; reason is
// max_connections or max_connections_per_ip.
func (m *Metrics) ConnectionRejected(reason string) {
	if m == nil {
		return
	}
	m.connectionsRejected.WithLabelValues(reason).Inc()
}

// RegisterRequestMemory exports the bytes of request buffers charged
// against queued.max.request.bytes, read from used at each scrape (Kafka's
// MemoryPoolUsed), and the limit (-1: unbounded).
func (m *Metrics) RegisterRequestMemory(used func() int64, limit int64) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_request_memory_used_bytes",
			Help: "Bytes of requests read (or being read) and not yet answered, charged against queued.max.request.bytes.",
		}, func() float64 { return float64(used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_request_memory_limit_bytes",
			Help: "queued.max.request.bytes: reading pauses while strata_request_memory_used_bytes is at it; -1 is unbounded.",
		}, func() float64 { return float64(limit) }),
	)
}

// apiName is the label for an API key: kmsg's name (Produce, Fetch, ...).
func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n
	}
	return "Unknown" + strconv.Itoa(int(key))
}

// errorName is the label for an error code: Kafka's name
// (NOT_LEADER_OR_FOLLOWER, ...).
func errorName(code int16) string {
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			return ke.Message
		}
	}
	return "CODE_" + strconv.Itoa(int(code))
}

// Request records one handled request.
func (m *Metrics) Request(key int16, took time.Duration) {
	if m == nil {
		return
	}
	name := apiName(key)
	m.requests.WithLabelValues(name).Inc()
	m.requestSeconds.WithLabelValues(name).Observe(took.Seconds())
}

// Authentication records the end of a SASL exchange on listener.
func (m *Metrics) Authentication(listener, mechanism string, ok bool) {
	if m == nil {
		return
	}
	result := "failure"
	if ok {
		result = "success"
	}
	m.authentications.WithLabelValues(listener, mechanism, result).Inc()
}

// Error records an error code returned by an API.
func (m *Metrics) Error(key int16, code int16) {
	if m == nil || code == 0 {
		return
	}
	m.errors.WithLabelValues(apiName(key), errorName(code)).Inc()
}

// Produced records a batch appended to a topic.
func (m *Metrics) Produced(topic string, bytes, records int) {
	if m == nil {
		return
	}
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
}

// Fetched records bytes sent to a consumer.
func (m *Metrics) Fetched(topic string, bytes int64) {
	if m == nil || bytes == 0 {
		return
	}
	m.bytesOut.WithLabelValues(topic).Add(float64(bytes))
}

// Synced records one fsync pass.
func (m *Metrics) Synced(d time.Duration) {
	if m == nil {
		return
	}
	m.syncSeconds.Observe(d.Seconds())
}

// MetadataStatus is the metadata log's and this broker's state as the
// gauges of RegisterMetadata report it.
type MetadataStatus struct {
	// Offset is the metadata offset the image has applied (the raft
	// index in quorum mode, the local log's end offset in local mode).
	Offset int64
	// ControllerID is the active controller, -1 while none is elected.
	ControllerID int32
	// Term, CommitIndex and AppliedIndex are raft's; in local mode the
	// term is 0 and both indexes are Offset.
	Term, CommitIndex, AppliedIndex uint64

	// Fenced is whether this broker is fenced (or not registered yet);
	// BrokerEpoch is its epoch, -1 before it registered.
	Fenced      bool
	BrokerEpoch int64
	// Brokers counts the image's registered brokers by state:
	// BrokersUnfenced, BrokersFenced, BrokersControlledShutdown.
	Brokers [3]int
	// PartitionsLeaderless counts the image's partitions without a
	// leader; PartitionsLed those this broker leads.
	PartitionsLeaderless, PartitionsLed int
	// PartitionsReassigning counts the image's partitions with a
	// reassignment in progress.
	PartitionsReassigning int
}

// Indexes of MetadataStatus.Brokers, and the label values of
// strata_brokers.
const (
	BrokersUnfenced = iota
	BrokersFenced
	BrokersControlledShutdown
)

var brokerStates = [3]string{BrokersUnfenced: "unfenced", BrokersFenced: "fenced", BrokersControlledShutdown: "controlled_shutdown"}

// RegisterMetadata adds the metadata log and controller quorum gauges
// (Kafka's KafkaController ActiveControllerCount and the raft-metrics
// group's current-leader, current-epoch, high-watermark and
// log-end-offset) and the broker lifecycle and leadership gauges
// (Kafka's BrokerServer fenced state and broker epoch, the controller's
// FencedBrokerCount/ActiveBrokerCount, OfflinePartitionsCount,
// ReassigningPartitions, and a broker's LeaderCount). status is read once per scrape.
func (m *Metrics) RegisterMetadata(nodeID int32, status func() MetadataStatus) {
	m.Registry.MustRegister(&metadataCollector{nodeID: nodeID, status: status})
}

// metadataCollector reads a MetadataStatus at each scrape.
type metadataCollector struct {
	nodeID int32
	status func() MetadataStatus
}

var (
	descMetadataOffset = prometheus.NewDesc("strata_metadata_offset",
		"Metadata offset the image has applied: the raft index of the last entry applied in quorum mode, the local metadata log's end offset otherwise.", nil, nil)
	descControllerID = prometheus.NewDesc("strata_controller_id",
		"Node id of the active controller (the raft leader), -1 while none is elected; a single node without a quorum is its own.", nil, nil)
	descControllerActive = prometheus.NewDesc("strata_controller_active",
		"1 while this node is the active controller (Kafka's ActiveControllerCount), else 0.", nil, nil)
	descQuorumTerm = prometheus.NewDesc("strata_quorum_term",
		"Current raft term of the controller quorum (Kafka's current-epoch); 0 without a quorum.", nil, nil)
	descQuorumCommit = prometheus.NewDesc("strata_quorum_commit_index",
		"Highest raft index known committed by the quorum (Kafka's high-watermark of the metadata log).", nil, nil)
	descQuorumApplied = prometheus.NewDesc("strata_quorum_applied_index",
		"Highest raft index this node has applied; commit minus applied is the apply lag.", nil, nil)
	descBrokerFenced = prometheus.NewDesc("strata_broker_fenced",
		"1 while this broker is fenced (or not yet registered) and serves no partitions, else 0 (always 0 on a controller-only node).", nil, nil)
	descBrokerEpoch = prometheus.NewDesc("strata_broker_epoch",
		"This broker's epoch, the metadata offset of its registration; -1 before it registered.", nil, nil)
	descBrokers = prometheus.NewDesc("strata_brokers",
		"Registered brokers in this node's metadata image, by state (unfenced, fenced, controlled_shutdown).", []string{"state"}, nil)
	descLeaderless = prometheus.NewDesc("strata_partitions_leaderless",
		"Partitions without a leader in this node's metadata image (Kafka's OfflinePartitionsCount): unavailable until their replica's broker returns.", nil, nil)
	descLed = prometheus.NewDesc("strata_partitions_led",
		"Partitions this broker leads in its metadata image (Kafka's LeaderCount).", nil, nil)
	descReassigning = prometheus.NewDesc("strata_partitions_reassigning",
		"Partitions with a reassignment in progress in this node's metadata image (Kafka's ReassigningPartitions): new replicas still catching up.", nil, nil)
)

func (c *metadataCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMetadataOffset, descControllerID, descControllerActive, descQuorumTerm, descQuorumCommit,
		descQuorumApplied, descBrokerFenced, descBrokerEpoch, descBrokers, descLeaderless, descLed, descReassigning} {
		ch <- d
	}
}

func (c *metadataCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(descMetadataOffset, float64(s.Offset))
	gauge(descControllerID, float64(s.ControllerID))
	gauge(descControllerActive, flag(s.ControllerID == c.nodeID))
	gauge(descQuorumTerm, float64(s.Term))
	gauge(descQuorumCommit, float64(s.CommitIndex))
	gauge(descQuorumApplied, float64(s.AppliedIndex))
	gauge(descBrokerFenced, flag(s.Fenced))
	gauge(descBrokerEpoch, float64(s.BrokerEpoch))
	for i, state := range brokerStates {
		gauge(descBrokers, float64(s.Brokers[i]), state)
	}
	gauge(descLeaderless, float64(s.PartitionsLeaderless))
	gauge(descLed, float64(s.PartitionsLed))
	gauge(descReassigning, float64(s.PartitionsReassigning))
}
