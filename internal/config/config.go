// Package config is the broker configuration: Kafka's broker property
// names, their defaults, parsing from a properties file and overrides, and
// validation. Every key is defined once, in Defs; documentation is
// generated from the same table.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Config is the broker configuration. Field comments name the property.
type Config struct {
	NodeID    int32  // node.id
	Listeners string // listeners
	// ProcessRoles is process.roles: "broker", "controller" or both.
	ProcessRoles []string
	// QuorumVoters is controller.quorum.voters; empty is local mode.
	QuorumVoters []Voter
	// ControllerListenerNames is controller.listener.names.
	ControllerListenerNames []string
	// BrokerRack is broker.rack ("" for none).
	BrokerRack string
	// BrokerHeartbeatIntervalMs and BrokerSessionTimeoutMs are
	// broker.heartbeat.interval.ms and broker.session.timeout.ms.
	BrokerHeartbeatIntervalMs, BrokerSessionTimeoutMs int64
	// Leader elections by the active controller:
	// unclean.leader.election.enable, auto.leader.rebalance.enable,
	// leader.imbalance.check.interval.seconds and
	// leader.imbalance.per.broker.percentage.
	UncleanLeaderElectionEnable         bool
	AutoLeaderRebalanceEnable           bool
	LeaderImbalanceCheckIntervalSeconds int64
	LeaderImbalancePerBrokerPercentage  int
	// Replication between brokers (Kafka's replica.* settings).
	NumReplicaFetchers                            int      // num.replica.fetchers
	ReplicaFetchWaitMaxMs                         int64    // replica.fetch.wait.max.ms
	ReplicaFetchMinBytes                          int32    // replica.fetch.min.bytes
	ReplicaFetchMaxBytes                          int32    // replica.fetch.max.bytes
	ReplicaFetchResponseMaxBytes                  int32    // replica.fetch.response.max.bytes
	ReplicaFetchBackoffMs, ReplicaSocketTimeoutMs int64    // replica.fetch.backoff.ms, replica.socket.timeout.ms
	ReplicaLagTimeMaxMs                           int64    // replica.lag.time.max.ms
	ReplicaSelectorClass                          string   // replica.selector.class: "" or RackAwareReplicaSelector
	HTTPListener                                  string   // http.listener
	HTTPPprof                                     bool     // http.pprof.enable
	AdvertisedListeners                           string   // advertised.listeners
	LogDirs                                       []string // log.dirs (log.dir)
	NumPartitions                                 int32    // num.partitions
	AutoCreateTopics                              bool     // auto.create.topics.enable
	MessageMaxBytes                               int      // message.max.bytes
	SocketRequestMaxBytes                         int32    // socket.request.max.bytes
	QueuedMaxRequestBytes                         int64    // queued.max.request.bytes
	MaxConnections                                int      // max.connections
	MaxConnectionsPerIP                           int      // max.connections.per.ip
	// MaxConnectionsPerIPOverrides is max.connections.per.ip.overrides,
	// by client address.
	MaxConnectionsPerIPOverrides map[netip.Addr]int
	LogSegmentBytes              int64  // log.segment.bytes
	LogRollMs                    int64  // log.roll.ms / log.roll.hours
	LogRetentionMs               int64  // log.retention.ms / .minutes / .hours
	LogRetentionBytes            int64  // log.retention.bytes
	LogIndexIntervalBytes        int    // log.index.interval.bytes
	LogIndexSizeMaxBytes         int    // log.index.size.max.bytes
	LogFlushIntervalMessages     int64  // log.flush.interval.messages
	LogFlushIntervalMs           int64  // log.flush.interval.ms
	LogSegmentDeleteDelayMs      int64  // log.segment.delete.delay.ms
	LogRetentionCheckIntervalMs  int64  // log.retention.check.interval.ms
	LogMessageTimestampType      string // log.message.timestamp.type
	LogMessageTimestampBefore    int64  // log.message.timestamp.before.max.ms
	LogMessageTimestampAfter     int64  // log.message.timestamp.after.max.ms
	CompressionType              string // compression.type
	LogCleanupPolicy             string // log.cleanup.policy
	MinInsyncReplicas            int    // min.insync.replicas
	MaxBrokerPartitions          int32  // max.broker.partitions
	// MetadataSnapshotBytes is metadata.log.max.record.bytes.between.snapshots.
	MetadataSnapshotBytes int64
	// MetadataRaftSnapshotThreshold, MetadataRaftSnapshotIntervalMs and
	// MetadataRaftTrailingLogs are metadata.raft.snapshot.threshold,
	// metadata.raft.snapshot.interval.ms and metadata.raft.trailing.logs:
	// hashicorp/raft's SnapshotThreshold, SnapshotInterval and
	// TrailingLogs for the quorum's log, for tests and tuning.
	MetadataRaftSnapshotThreshold  int64
	MetadataRaftSnapshotIntervalMs int64
	MetadataRaftTrailingLogs       int64

	ProducerIDExpirationMs              int64 // producer.id.expiration.ms
	ProducerIDExpirationCheckIntervalMs int64 // producer.id.expiration.check.interval.ms

	OffsetsTopicNumPartitions       int32 // offsets.topic.num.partitions
	OffsetsTopicReplicationFactor   int16 // offsets.topic.replication.factor
	DefaultReplicationFactor        int16 // default.replication.factor
	OffsetsRetentionMs              int64 // offsets.retention.minutes
	OffsetsRetentionCheckIntervalMs int64 // offsets.retention.check.interval.ms
	OffsetMetadataMaxBytes          int   // offset.metadata.max.bytes

	TransactionStateLogNumPartitions     int32 // transaction.state.log.num.partitions
	TransactionStateLogReplicationFactor int16 // transaction.state.log.replication.factor
	TransactionStateLogMinISR            int   // transaction.state.log.min.isr
	TransactionMaxTimeoutMs              int64 // transaction.max.timeout.ms
	TransactionalIDExpirationMs          int64 // transactional.id.expiration.ms
	TransactionAbortTimedOutIntervalMs   int64 // transaction.abort.timed.out.transaction.cleanup.interval.ms
	TransactionRemoveExpiredIntervalMs   int64 // transaction.remove.expired.transaction.cleanup.interval.ms
	TransactionPartitionVerification     bool  // transaction.partition.verification.enable
	GroupMinSessionTimeoutMs             int64 // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs             int64 // group.max.session.timeout.ms
	GroupInitialRebalanceDelayMs         int64 // group.initial.rebalance.delay.ms
	GroupMaxSize                         int   // group.max.size
	GroupConsumerHeartbeatMs             int64 // group.consumer.heartbeat.interval.ms
	GroupConsumerSessionTimeoutMs        int64 // group.consumer.session.timeout.ms
	// Bounds of a group's consumer.session.timeout.ms and
	// consumer.heartbeat.interval.ms (KIP-848 group configs):
	// group.consumer.min/max.session.timeout.ms and
	// group.consumer.min/max.heartbeat.interval.ms.
	GroupConsumerMinSessionTimeoutMs int64
	GroupConsumerMaxSessionTimeoutMs int64
	GroupConsumerMinHeartbeatMs      int64
	GroupConsumerMaxHeartbeatMs      int64

	// SecurityProtocolMap is listener.security.protocol.map ("" for
	// DefaultSecurityProtocolMap); InterBrokerListenerName and
	// SecurityInterBrokerProtocol are inter.broker.listener.name and
	// security.inter.broker.protocol ("" when not set).
	SecurityProtocolMap         string
	InterBrokerListenerName     string
	SecurityInterBrokerProtocol string
	// ssl holds the ssl.* properties set, listenerSSL the
	// listener.name.<NAME>.ssl.* ones by upper-cased listener name: see
	// ListenerSSL.
	ssl         map[string]string
	listenerSSL map[string]map[string]string

	// SASL (sasl.go of internal/kafka).

	// SASLEnabledMechanisms is sasl.enabled.mechanisms: what SaslHandshake
	// accepts on SASL_PLAINTEXT and SASL_SSL listeners.
	SASLEnabledMechanisms []string
	// ConnectionFailedAuthenticationDelayMs is
	// connection.failed.authentication.delay.ms.
	ConnectionFailedAuthenticationDelayMs int64
	// ConnectionsMaxReauthMs is connections.max.reauth.ms (KIP-368).
	ConnectionsMaxReauthMs int64
	// SASLServerMaxReceiveSize is sasl.server.max.receive.size.
	SASLServerMaxReceiveSize int32
	// OAuthBearer holds the sasl.oauthbearer.* settings of OAUTHBEARER's
	// JWT validation (internal/sasl/oauth).
	OAuthBearer OAuthBearer
	// SASLMechanismInterBroker is sasl.mechanism.inter.broker.protocol:
	// how replica fetchers authenticate on a SASL_* inter-broker listener.
	SASLMechanismInterBroker string
	// SASLJAASConfig is sasl.jaas.config: the broker's own login (username
	// and password options) when its inter-broker listener has no
	// listener.name.<listener>.<mechanism>.sasl.jaas.config.
	SASLJAASConfig string
	// ListenerSASL holds the listener.name.<listener>.* SASL settings,
	// by listener name in upper case (Kafka writes it in lower case in
	// the key).
	ListenerSASL map[string]ListenerSASL

	// Authorization (Kafka's authorizer settings).
	AuthorizerClassName       string // authorizer.class.name: "" (none) or StandardAuthorizer
	SuperUsers                string // super.users: principals separated by semicolons
	AllowEveryoneIfNoACLFound bool   // allow.everyone.if.no.acl.found

	// explicit holds the properties set by Set (file or --set), by
	// name, for DescribeConfigs.
	explicit map[string]string
}

// Default is the configuration of `strata serve` with no flags: Kafka's
// defaults, listening on 127.0.0.1:9092 with data under ./strata-data.
func Default() Config {
	return Config{
		NodeID:                    1,
		Listeners:                 "PLAINTEXT://127.0.0.1:9092",
		ProcessRoles:              []string{"broker", "controller"},
		ControllerListenerNames:   []string{"CONTROLLER"},
		BrokerHeartbeatIntervalMs: 2000,
		BrokerSessionTimeoutMs:    9000,

		AutoLeaderRebalanceEnable:           true,
		LeaderImbalanceCheckIntervalSeconds: 300,
		LeaderImbalancePerBrokerPercentage:  10,

		NumReplicaFetchers:           1,
		ReplicaFetchWaitMaxMs:        500,
		ReplicaFetchMinBytes:         1,
		ReplicaFetchMaxBytes:         1 << 20,
		ReplicaFetchResponseMaxBytes: 10 << 20,
		ReplicaFetchBackoffMs:        1000,
		ReplicaSocketTimeoutMs:       30000,
		ReplicaLagTimeMaxMs:          30000,
		HTTPListener:                 "127.0.0.1:9644",
		LogDirs:                      []string{"./strata-data"},
		NumPartitions:                1,
		AutoCreateTopics:             true,
		MessageMaxBytes:              1048588,
		SocketRequestMaxBytes:        104857600,
		QueuedMaxRequestBytes:        DefaultQueuedMaxRequestBytes,
		MaxConnections:               math.MaxInt32,
		MaxConnectionsPerIP:          math.MaxInt32,
		LogSegmentBytes:              1 << 30,
		LogRollMs:                    168 * 3600 * 1000,
		LogRetentionMs:               168 * 3600 * 1000,
		LogRetentionBytes:            -1,
		LogIndexIntervalBytes:        4096,
		LogIndexSizeMaxBytes:         10 << 20,
		LogFlushIntervalMessages:     math.MaxInt64,
		LogFlushIntervalMs:           math.MaxInt64,
		LogSegmentDeleteDelayMs:      60000,
		// hashicorp/raft's defaults.
		MetadataRaftSnapshotThreshold:  8192,
		MetadataRaftSnapshotIntervalMs: 120000,
		MetadataRaftTrailingLogs:       10240,
		LogRetentionCheckIntervalMs:    300000,
		LogMessageTimestampType:        "CreateTime",
		LogMessageTimestampBefore:      math.MaxInt64,
		LogMessageTimestampAfter:       3600000,
		CompressionType:                "producer",
		LogCleanupPolicy:               "delete",
		MinInsyncReplicas:              1,
		MaxBrokerPartitions:            -1,
		MetadataSnapshotBytes:          20 << 20,

		ProducerIDExpirationMs:              86400000,
		ProducerIDExpirationCheckIntervalMs: 600000,

		OffsetsTopicNumPartitions:       50,
		OffsetsTopicReplicationFactor:   3,
		OffsetsRetentionMs:              7 * 24 * 3600 * 1000,
		OffsetsRetentionCheckIntervalMs: 600000,
		OffsetMetadataMaxBytes:          4096,

		TransactionStateLogNumPartitions:     50,
		TransactionStateLogReplicationFactor: 3,
		TransactionStateLogMinISR:            2,
		TransactionMaxTimeoutMs:              900000,
		TransactionalIDExpirationMs:          604800000,
		TransactionAbortTimedOutIntervalMs:   10000,
		TransactionRemoveExpiredIntervalMs:   3600000,
		TransactionPartitionVerification:     true,
		GroupMinSessionTimeoutMs:             6000,
		GroupMaxSessionTimeoutMs:             1800000,
		GroupInitialRebalanceDelayMs:         3000,
		GroupMaxSize:                         math.MaxInt32,
		GroupConsumerHeartbeatMs:             5000,
		GroupConsumerSessionTimeoutMs:        45000,

		GroupConsumerMinSessionTimeoutMs: 45000,
		GroupConsumerMaxSessionTimeoutMs: 60000,
		GroupConsumerMinHeartbeatMs:      5000,
		GroupConsumerMaxHeartbeatMs:      15000,

		SASLEnabledMechanisms:                 []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
		SASLMechanismInterBroker:              "PLAIN",
		ConnectionFailedAuthenticationDelayMs: 100,
		SASLServerMaxReceiveSize:              524288,
		OAuthBearer: OAuthBearer{
			JWKSEndpointRefreshMs: 3600000,
			ClockSkewSeconds:      30,
			SubClaimName:          "sub",
			ScopeClaimName:        "scope",
		},
	}
}

// DefaultQueuedMaxRequestBytes is strata's queued.max.request.bytes. Kafka's
// default is -1, unbounded, which leaves a broker's request memory bounded
// only by connections x in-flight requests x socket.request.max.bytes:
// terabytes in theory, and in practice whatever a few clients announcing
// huge requests make it allocate. 256 MiB holds 256 pipelined requests of
// 1 MiB (Kafka clients' max.request.size) and more than two requests of the
// largest size, and still fits a small machine; -1 restores Kafka's
// behaviour.
const DefaultQueuedMaxRequestBytes = 256 << 20

// Def is one broker property.
type Def struct {
	Name    string
	Doc     string
	Default string
	set     func(*Config, string) error
}

func intSetter[T int | int16 | int32 | int64](field func(*Config) *T, bits int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return err
		}
		*field(c) = T(n)
		return nil
	}
}

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return err
		}
		*field(c) = b
		return nil
	}
}

func scaled(field func(*Config) *int64, unitMs int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return err
		}
		if n < 0 {
			*field(c) = -1
		} else {
			*field(c) = n * unitMs
		}
		return nil
	}
}

// RackAwareReplicaSelector is Kafka's rack-aware replica.selector.class,
// the only one strata implements.
const RackAwareReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// StandardAuthorizer is Kafka's KRaft authorizer.class.name; strata's
// authorizer (internal/acl) decides as it does. AuthorizerStrata is
// accepted as the same.
const (
	StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	AuthorizerStrata   = "strata"
)

// Defs lists every broker property strata reads.
var Defs = []Def{
	{"node.id", "this broker's id", "1", intSetter(func(c *Config) *int32 { return &c.NodeID }, 32)},
	{"listeners", "addresses to listen on, NAME://host:port,...: any number of client listeners, each name's security protocol given by listener.security.protocol.map (PLAINTEXT://127.0.0.1:9092,SSL://0.0.0.0:9093; a broker needs at least one; a controller-only node none) and, with controller.quorum.voters, one controller listener (named in controller.listener.names, PLAINTEXT) for the raft quorum, e.g. PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093. Unlike Kafka's, strata's broker-only nodes need a controller listener too: raft pushes the metadata log to them there", "PLAINTEXT://127.0.0.1:9092", func(c *Config, v string) error { c.Listeners = v; return nil }},
	{"process.roles", "broker, controller, or both (broker,controller: a combined node). A controller is a voter of controller.quorum.voters; a controller-only node serves no clients and hosts no partitions. A broker-only node is not a voter: it follows the metadata log as a raft non-voter, added by the active controller when it registers. Without controller.quorum.voters the node must be broker,controller", "broker,controller", func(c *Config, v string) error {
		c.ProcessRoles = splitList(v)
		return nil
	}},
	{"controller.quorum.voters", "the controller quorum, id@host:port,...: every voter's node.id and controller listener address; empty runs one node on a local metadata log (no raft). Set, the metadata log is a hashicorp/raft log under <first log dir>/__raft/, bootstrapped from this list once", "", func(c *Config, v string) error {
		voters, err := ParseVoters(v)
		c.QuorumVoters = voters
		return err
	}},
	{"controller.listener.names", "names of the listeners the controller quorum uses; the first is the one it listens on", "CONTROLLER", func(c *Config, v string) error {
		c.ControllerListenerNames = splitList(v)
		return nil
	}},
	{"broker.rack", "this broker's rack: replicas of a partition go to different racks first", "", func(c *Config, v string) error { c.BrokerRack = strings.TrimSpace(v); return nil }},
	{"broker.heartbeat.interval.ms", "with a controller quorum: how often a broker heartbeats to the active controller", "2000", intSetter(func(c *Config) *int64 { return &c.BrokerHeartbeatIntervalMs }, 64)},
	{"broker.session.timeout.ms", "with a controller quorum: a broker without a heartbeat for this long is fenced, and its partitions' leadership moves away", "9000", intSetter(func(c *Config) *int64 { return &c.BrokerSessionTimeoutMs }, 64)},
	{"unclean.leader.election.enable", "with a controller quorum: when no replica of a partition's ISR can lead, elect a replica outside it (it becomes the whole ISR), losing the records it lacks, rather than leave the partition offline until an ISR member returns. A topic's own unclean.leader.election.enable overrides it", "false", boolSetter(func(c *Config) *bool { return &c.UncleanLeaderElectionEnable })},
	{"auto.leader.rebalance.enable", "with a controller quorum: the active controller moves each partition's leadership back to its preferred replica (the first) when that replica is in the ISR and usable, checked every leader.imbalance.check.interval.seconds", "true", boolSetter(func(c *Config) *bool { return &c.AutoLeaderRebalanceEnable })},
	{"leader.imbalance.check.interval.seconds", "how often the active controller checks leadership balance (auto.leader.rebalance.enable) and elects leaders for leaderless partitions of topics that allow unclean elections", "300", intSetter(func(c *Config) *int64 { return &c.LeaderImbalanceCheckIntervalSeconds }, 64)},
	{"leader.imbalance.per.broker.percentage", "the share of a broker's preferred-replica partitions that it may not lead before the rebalance moves them back to it; 0 moves every one", "10", intSetter(func(c *Config) *int { return &c.LeaderImbalancePerBrokerPercentage }, 32)},
	{"num.replica.fetchers", "fetcher connections per source broker that a follower replicates over", "1", intSetter(func(c *Config) *int { return &c.NumReplicaFetchers }, 16)},
	{"replica.fetch.wait.max.ms", "how long a follower's fetch waits at the leader for new records", "500", intSetter(func(c *Config) *int64 { return &c.ReplicaFetchWaitMaxMs }, 64)},
	{"replica.fetch.min.bytes", "bytes a follower's fetch waits for at the leader before it is answered", "1", intSetter(func(c *Config) *int32 { return &c.ReplicaFetchMinBytes }, 32)},
	{"replica.fetch.max.bytes", "bytes a follower fetches per partition in one request (a larger first batch still comes whole)", "1048576", intSetter(func(c *Config) *int32 { return &c.ReplicaFetchMaxBytes }, 32)},
	{"replica.fetch.response.max.bytes", "bytes a follower fetches in one request over all partitions", "10485760", intSetter(func(c *Config) *int32 { return &c.ReplicaFetchResponseMaxBytes }, 32)},
	{"replica.fetch.backoff.ms", "how long a follower waits after a failed fetch before it retries", "1000", intSetter(func(c *Config) *int64 { return &c.ReplicaFetchBackoffMs }, 64)},
	{"replica.socket.timeout.ms", "how long a follower waits for an answer beyond replica.fetch.wait.max.ms before it gives up on the connection", "30000", intSetter(func(c *Config) *int64 { return &c.ReplicaSocketTimeoutMs }, 64)},
	{"replica.lag.time.max.ms", "a follower that has not caught up with the leader's log end for this long leaves the ISR", "30000", intSetter(func(c *Config) *int64 { return &c.ReplicaLagTimeMaxMs }, 64)},
	{"replica.selector.class", "how a partition's leader picks the replica a consumer reads from (KIP-392). Empty (Kafka's default): consumers read from the leader. " + RackAwareReplicaSelector + ", the only selector strata has: a consumer that names its rack (client.rack) is sent to an in-sync replica in that rack unless the leader is in it. Followers serve consumers (up to their high watermark) whatever this setting, as Kafka's do", "", func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v != "" && v != RackAwareReplicaSelector {
			return fmt.Errorf("unknown replica selector %q: strata has only %s", v, RackAwareReplicaSelector)
		}
		c.ReplicaSelectorClass = v
		return nil
	}},
	{"authorizer.class.name", "the authorizer that checks every request against the ACLs (docs/OPERATIONS.md, ACLs). Empty (Kafka's default): no authorization, every request is allowed and the ACL APIs answer SECURITY_DISABLED. " + StandardAuthorizer + " (or " + AuthorizerStrata + "): strata's authorizer, which decides as Kafka's KRaft StandardAuthorizer, over ACLs kept in the metadata log", "", func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v != "" && v != StandardAuthorizer && v != AuthorizerStrata {
			return fmt.Errorf("unknown authorizer %q: strata has only %s (or %s)", v, StandardAuthorizer, AuthorizerStrata)
		}
		c.AuthorizerClassName = v
		return nil
	}},
	{"super.users", "with authorizer.class.name: principals allowed everything whatever the ACLs, separated by semicolons (User:admin;User:broker). Replica fetches between brokers on a client listener need CLUSTER_ACTION on the cluster, or the brokers' principal here", "", func(c *Config, v string) error { c.SuperUsers = v; return nil }},
	{"allow.everyone.if.no.acl.found", "with authorizer.class.name: allow a request on a resource that no ACL names (else only ACLs and super.users allow)", "false", boolSetter(func(c *Config) *bool { return &c.AllowEveryoneIfNoACLFound })},
	{"http.listener", "host:port serving /metrics (Prometheus), /healthz and /readyz; empty disables", "127.0.0.1:9644", func(c *Config, v string) error { c.HTTPListener = strings.TrimSpace(v); return nil }},
	{"http.pprof.enable", "also serve Go's profiler at /debug/pprof/ on http.listener (as etcd's --enable-pprof)", "false", boolSetter(func(c *Config) *bool { return &c.HTTPPprof })},
	{"advertised.listeners", "addresses given to clients in metadata, NAME://host:port per client listener; a listener not named here advertises its listeners address. A client is told the addresses of the listener it came in on", "", func(c *Config, v string) error { c.AdvertisedListeners = v; return nil }},
	{"log.dirs", "comma-separated data directories", "./strata-data", func(c *Config, v string) error { c.LogDirs = splitList(v); return nil }},
	{"log.dir", "data directory, used when log.dirs is not set", "./strata-data", func(c *Config, v string) error { c.LogDirs = splitList(v); return nil }},
	{"num.partitions", "partitions of auto-created topics", "1", intSetter(func(c *Config) *int32 { return &c.NumPartitions }, 32)},
	{"auto.create.topics.enable", "create unknown topics named in metadata requests (produce never creates topics, as in Kafka)", "true", func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		c.AutoCreateTopics = b
		return err
	}},
	{"message.max.bytes", "largest record batch accepted (topic: max.message.bytes)", "1048588", intSetter(func(c *Config) *int { return &c.MessageMaxBytes }, 32)},
	{"socket.request.max.bytes", "largest request accepted; larger frames close the connection", "104857600", intSetter(func(c *Config) *int32 { return &c.SocketRequestMaxBytes }, 32)},
	{"queued.max.request.bytes", "bytes of requests read and not yet answered, across all connections; at the limit no connection reads another request until responses are written. One request larger than the limit is read once the limit has room. -1 is unbounded (Kafka's default; strata bounds it to protect small machines)", "268435456", intSetter(func(c *Config) *int64 { return &c.QueuedMaxRequestBytes }, 64)},
	{"max.connections", "most open client connections; past it a new connection is closed at accept and counted in strata_connections_rejected_total", "2147483647", intSetter(func(c *Config) *int { return &c.MaxConnections }, 32)},
	{"max.connections.per.ip", "most open connections from one client address; past it a new one is closed at accept and counted", "2147483647", intSetter(func(c *Config) *int { return &c.MaxConnectionsPerIP }, 32)},
	{"max.connections.per.ip.overrides", "comma-separated ip:count pairs overriding max.connections.per.ip for those addresses (IP addresses only, no host names; 0 refuses the address); empty: none", "", func(c *Config, v string) error {
		m, err := parseConnectionOverrides(v)
		c.MaxConnectionsPerIPOverrides = m
		return err
	}},
	{"sasl.enabled.mechanisms", "SASL mechanisms clients may authenticate with on SASL_PLAINTEXT and SASL_SSL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (Kafka's default, GSSAPI, is not implemented). PLAIN checks the password against the user's SCRAM credentials (strata user create); OAUTHBEARER validates JWTs (sasl.oauthbearer.*)", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", func(c *Config, v string) error {
		ms, err := parseSASLMechanisms(v)
		c.SASLEnabledMechanisms = ms
		return err
	}},
	{"sasl.mechanism.inter.broker.protocol", "SASL mechanism replica fetchers authenticate with when the inter-broker listener is SASL_PLAINTEXT or SASL_SSL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default is GSSAPI, which strata does not implement). The broker's username and password come from listener.name.<listener>.<mechanism>.sasl.jaas.config, else sasl.jaas.config", "PLAIN", func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		switch v {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("inter-broker SASL mechanism %q: strata's brokers authenticate to each other with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", v)
		}
		c.SASLMechanismInterBroker = v
		return nil
	}},
	{"sasl.jaas.config", "JAAS login of the broker as a client of other brokers, used when the inter-broker listener is SASL_* and listener.name.<listener>.<mechanism>.sasl.jaas.config is not set: a PlainLoginModule or ScramLoginModule entry with username and password options. Never shown by DescribeConfigs", "", func(c *Config, v string) error { c.SASLJAASConfig = v; return nil }},
	{"connection.failed.authentication.delay.ms", "how long the answer to a failed SASL authentication is held back before it is sent and the connection closed (KIP-306), so that guessing passwords is slow; 0 answers and closes at once", "100", intSetter(func(c *Config) *int64 { return &c.ConnectionFailedAuthenticationDelayMs }, 64)},
	{"connections.max.reauth.ms", "the SASL session lifetime told to clients (SaslAuthenticate v1+): a client re-authenticates before it ends (KIP-368), and a connection that sends another request after it ended is closed; 0 for none", "0", intSetter(func(c *Config) *int64 { return &c.ConnectionsMaxReauthMs }, 64)},
	{"sasl.server.max.receive.size", "largest request a SASL listener reads before the connection authenticated; a larger one closes it, so that clients without a password cannot make the broker buffer socket.request.max.bytes", "524288", intSetter(func(c *Config) *int32 { return &c.SASLServerMaxReceiveSize }, 32)},
	{"sasl.oauthbearer.jwks.endpoint.url", "where OAUTHBEARER's JWT signing keys are: a JSON Web Key Set at a file: URL (read again as soon as the file changes) or an http(s) URL (fetched at start, every sasl.oauthbearer.jwks.endpoint.refresh.ms, and early when a token names an unknown kid). Tokens must be signed RS256/384/512, PS256/384/512 or ES256/384/512 by the key their kid names. Needed for OAUTHBEARER unless strata.sasl.oauthbearer.unsecured.enable", "", func(c *Config, v string) error { c.OAuthBearer.JWKSEndpointURL = strings.TrimSpace(v); return nil }},
	{"sasl.oauthbearer.jwks.endpoint.refresh.ms", "how often the JWKS of sasl.oauthbearer.jwks.endpoint.url is read again", "3600000", intSetter(func(c *Config) *int64 { return &c.OAuthBearer.JWKSEndpointRefreshMs }, 64)},
	{"sasl.oauthbearer.clock.skew.seconds", "leeway on an OAUTHBEARER token's exp, nbf and iat for clocks that differ", "30", intSetter(func(c *Config) *int64 { return &c.OAuthBearer.ClockSkewSeconds }, 64)},
	{"sasl.oauthbearer.expected.audience", "comma-separated audiences: when set, an OAUTHBEARER token's aud must name one of them", "", func(c *Config, v string) error { c.OAuthBearer.ExpectedAudience = splitList(v); return nil }},
	{"sasl.oauthbearer.expected.issuer", "when set, an OAUTHBEARER token's iss must be it", "", func(c *Config, v string) error { c.OAuthBearer.ExpectedIssuer = strings.TrimSpace(v); return nil }},
	{"sasl.oauthbearer.sub.claim.name", "the OAUTHBEARER token claim naming the principal: the connection is User:<value>", "sub", func(c *Config, v string) error { c.OAuthBearer.SubClaimName = strings.TrimSpace(v); return nil }},
	{"sasl.oauthbearer.scope.claim.name", "the OAUTHBEARER token claim holding its scope (a space-separated string or a list)", "scope", func(c *Config, v string) error { c.OAuthBearer.ScopeClaimName = strings.TrimSpace(v); return nil }},
	{"strata.sasl.oauthbearer.unsecured.enable", "accept unsigned OAUTHBEARER tokens (alg none), which anyone can forge, for tests and development. Kafka's default validator (OAuthBearerUnsecuredValidatorCallbackHandler) accepts only those; strata refuses them unless this is true", "false", boolSetter(func(c *Config) *bool { return &c.OAuthBearer.UnsecuredEnable })},
	{"log.segment.bytes", "segment file size (topic: segment.bytes)", "1073741824", intSetter(func(c *Config) *int64 { return &c.LogSegmentBytes }, 64)},
	{"log.roll.ms", "roll segments after this long (topic: segment.ms)", "", intSetter(func(c *Config) *int64 { return &c.LogRollMs }, 64)},
	{"log.roll.hours", "log.roll.ms in hours", "168", scaled(func(c *Config) *int64 { return &c.LogRollMs }, 3600*1000)},
	{"log.retention.ms", "delete segments older than this, -1 never (topic: retention.ms)", "", intSetter(func(c *Config) *int64 { return &c.LogRetentionMs }, 64)},
	{"log.retention.minutes", "log.retention.ms in minutes", "", scaled(func(c *Config) *int64 { return &c.LogRetentionMs }, 60*1000)},
	{"log.retention.hours", "log.retention.ms in hours", "168", scaled(func(c *Config) *int64 { return &c.LogRetentionMs }, 3600*1000)},
	{"log.retention.bytes", "delete old segments while a partition is larger, -1 no limit (topic: retention.bytes)", "-1", intSetter(func(c *Config) *int64 { return &c.LogRetentionBytes }, 64)},
	{"log.index.interval.bytes", "bytes between index entries (topic: index.interval.bytes)", "4096", intSetter(func(c *Config) *int { return &c.LogIndexIntervalBytes }, 32)},
	{"log.index.size.max.bytes", "preallocated index size (topic: segment.index.bytes)", "10485760", intSetter(func(c *Config) *int { return &c.LogIndexSizeMaxBytes }, 32)},
	{"log.flush.interval.messages", "fsync after this many messages; 1 = fsync per append with group commit (topic: flush.messages)", "9223372036854775807", intSetter(func(c *Config) *int64 { return &c.LogFlushIntervalMessages }, 64)},
	{"log.flush.interval.ms", "fsync when the last flush is older than this (topic: flush.ms)", "9223372036854775807", intSetter(func(c *Config) *int64 { return &c.LogFlushIntervalMs }, 64)},
	{"log.segment.delete.delay.ms", "delay before deleted segment files are removed (topic: file.delete.delay.ms)", "60000", intSetter(func(c *Config) *int64 { return &c.LogSegmentDeleteDelayMs }, 64)},
	{"metadata.log.max.record.bytes.between.snapshots", "write a snapshot of the metadata image after this many bytes of metadata records (also at clean shutdown)", "20971520", intSetter(func(c *Config) *int64 { return &c.MetadataSnapshotBytes }, 64)},
	{"metadata.raft.snapshot.threshold", "with a controller quorum: raft snapshots the metadata image once its log holds this many entries after the last snapshot (hashicorp/raft's SnapshotThreshold; for tests and tuning)", "8192", intSetter(func(c *Config) *int64 { return &c.MetadataRaftSnapshotThreshold }, 64)},
	{"metadata.raft.snapshot.interval.ms", "with a controller quorum: how often raft checks metadata.raft.snapshot.threshold, at a random time between this and twice this (hashicorp/raft's SnapshotInterval; for tests and tuning)", "120000", intSetter(func(c *Config) *int64 { return &c.MetadataRaftSnapshotIntervalMs }, 64)},
	{"metadata.raft.trailing.logs", "with a controller quorum: log entries a raft snapshot leaves in the log, so that a voter a little behind catches up from the log; one further behind gets the snapshot (hashicorp/raft's TrailingLogs; for tests and tuning)", "10240", intSetter(func(c *Config) *int64 { return &c.MetadataRaftTrailingLogs }, 64)},
	{"log.retention.check.interval.ms", "how often retention runs", "300000", intSetter(func(c *Config) *int64 { return &c.LogRetentionCheckIntervalMs }, 64)},
	{"log.message.timestamp.type", "CreateTime or LogAppendTime (topic: message.timestamp.type)", "CreateTime", func(c *Config, v string) error { c.LogMessageTimestampType = v; return nil }},
	// KIP-937: Kafka 4 bounds CreateTime timestamps, by default only those
	// more than an hour ahead of the broker's clock.
	{"log.message.timestamp.before.max.ms", "refuse CreateTime records older than this (topic: message.timestamp.before.max.ms)", "9223372036854775807", intSetter(func(c *Config) *int64 { return &c.LogMessageTimestampBefore }, 64)},
	{"log.message.timestamp.after.max.ms", "refuse CreateTime records further ahead of the broker's clock than this (topic: message.timestamp.after.max.ms)", "3600000", intSetter(func(c *Config) *int64 { return &c.LogMessageTimestampAfter }, 64)},
	{"compression.type", "producer keeps the producer's codec (topic: compression.type)", "producer", func(c *Config, v string) error { c.CompressionType = v; return nil }},
	{"log.cleanup.policy", "delete removes old segments; compact is not built yet (topic: cleanup.policy)", "delete", func(c *Config, v string) error { c.LogCleanupPolicy = strings.TrimSpace(v); return nil }},
	{"min.insync.replicas", "replicas that must acknowledge an acks=all write (topic: min.insync.replicas)", "1", intSetter(func(c *Config) *int { return &c.MinInsyncReplicas }, 32)},
	{"max.broker.partitions", "most partitions this broker hosts, internal topics included (KIP-578's name); creating more is POLICY_VIOLATION. -1: what ulimit -n and vm.max_map_count allow at one segment per partition (3 open files and 2 memory maps each), as the start-up log states", "-1", intSetter(func(c *Config) *int32 { return &c.MaxBrokerPartitions }, 32)},
	{"producer.id.expiration.ms", "forget an idempotent producer's state on a partition once its last write there is this old", "86400000", intSetter(func(c *Config) *int64 { return &c.ProducerIDExpirationMs }, 64)},
	{"producer.id.expiration.check.interval.ms", "how often expired producer state is removed", "600000", intSetter(func(c *Config) *int64 { return &c.ProducerIDExpirationCheckIntervalMs }, 64)},
	{"offsets.topic.num.partitions", "partitions of __consumer_offsets, fixed once it exists", "50", intSetter(func(c *Config) *int32 { return &c.OffsetsTopicNumPartitions }, 32)},
	{"default.replication.factor", "replicas of a topic created without a replication factor (auto-created, or -1 in CreateTopics); more than the usable brokers is refused with INVALID_REPLICATION_FACTOR, and a single node (no controller.quorum.voters) takes only 1", "1", intSetter(func(c *Config) *int16 { return &c.DefaultReplicationFactor }, 16)},
	{"offsets.topic.replication.factor", "replicas of __consumer_offsets when it is first created: as many as there are usable brokers when fewer (a single node keeps one)", "3", intSetter(func(c *Config) *int16 { return &c.OffsetsTopicReplicationFactor }, 16)},
	{"offsets.retention.minutes", "keep an empty group's committed offsets this long", "10080", scaled(func(c *Config) *int64 { return &c.OffsetsRetentionMs }, 60*1000)},
	{"offsets.retention.check.interval.ms", "how often expired offsets are removed", "600000", intSetter(func(c *Config) *int64 { return &c.OffsetsRetentionCheckIntervalMs }, 64)},
	{"transaction.state.log.num.partitions", "partitions of __transaction_state, fixed once it exists", "50", intSetter(func(c *Config) *int32 { return &c.TransactionStateLogNumPartitions }, 32)},
	{"transaction.state.log.replication.factor", "replicas of __transaction_state when it is first created: as many as there are usable brokers when fewer (a single node keeps one)", "3", intSetter(func(c *Config) *int16 { return &c.TransactionStateLogReplicationFactor }, 16)},
	{"transaction.state.log.min.isr", "min.insync.replicas of __transaction_state when it is first created (capped at its replication factor)", "2", intSetter(func(c *Config) *int { return &c.TransactionStateLogMinISR }, 32)},
	{"transaction.max.timeout.ms", "largest transaction.timeout.ms a transactional producer may ask for; more is INVALID_TRANSACTION_TIMEOUT", "900000", intSetter(func(c *Config) *int64 { return &c.TransactionMaxTimeoutMs }, 64)},
	{"transactional.id.expiration.ms", "forget a transactional id with no transaction for this long", "604800000", intSetter(func(c *Config) *int64 { return &c.TransactionalIDExpirationMs }, 64)},
	{"transaction.abort.timed.out.transaction.cleanup.interval.ms", "how often the transaction coordinator aborts transactions older than their timeout", "10000", intSetter(func(c *Config) *int64 { return &c.TransactionAbortTimedOutIntervalMs }, 64)},
	{"transaction.remove.expired.transaction.cleanup.interval.ms", "how often expired transactional ids are removed", "3600000", intSetter(func(c *Config) *int64 { return &c.TransactionRemoveExpiredIntervalMs }, 64)},
	{"transaction.partition.verification.enable", "KIP-890 part 1: before a partition leader appends a producer's first transactional batch on a partition, it asks the transaction coordinator whether the partition was added to the producer's ongoing transaction (AddPartitionsToTxn VerifyOnly), and refuses the batch if not (INVALID_TXN_STATE, or TRANSACTION_ABORTABLE for Produce v11+)", "true", boolSetter(func(c *Config) *bool { return &c.TransactionPartitionVerification })},
	{"offset.metadata.max.bytes", "largest metadata string of a committed offset", "4096", intSetter(func(c *Config) *int { return &c.OffsetMetadataMaxBytes }, 32)},
	{"group.min.session.timeout.ms", "smallest session timeout a group member may ask for", "6000", intSetter(func(c *Config) *int64 { return &c.GroupMinSessionTimeoutMs }, 64)},
	{"group.max.session.timeout.ms", "largest session timeout a group member may ask for", "1800000", intSetter(func(c *Config) *int64 { return &c.GroupMaxSessionTimeoutMs }, 64)},
	{"group.initial.rebalance.delay.ms", "how long the first rebalance of an empty group waits for more members", "3000", intSetter(func(c *Config) *int64 { return &c.GroupInitialRebalanceDelayMs }, 64)},
	{"group.max.size", "most members a group may have", "2147483647", intSetter(func(c *Config) *int { return &c.GroupMaxSize }, 32)},
	{"group.consumer.heartbeat.interval.ms", "heartbeat interval given to KIP-848 consumer group members", "5000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerHeartbeatMs }, 64)},
	{"group.consumer.session.timeout.ms", "session timeout of KIP-848 consumer group members", "45000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerSessionTimeoutMs }, 64)},
	{"group.consumer.min.session.timeout.ms", "smallest consumer.session.timeout.ms a KIP-848 group may be configured with (the broker's group.consumer.session.timeout.ms is always allowed)", "45000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerMinSessionTimeoutMs }, 64)},
	{"group.consumer.max.session.timeout.ms", "largest consumer.session.timeout.ms a KIP-848 group may be configured with (the broker's group.consumer.session.timeout.ms is always allowed)", "60000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerMaxSessionTimeoutMs }, 64)},
	{"group.consumer.min.heartbeat.interval.ms", "smallest consumer.heartbeat.interval.ms a KIP-848 group may be configured with (the broker's group.consumer.heartbeat.interval.ms is always allowed)", "5000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerMinHeartbeatMs }, 64)},
	{"group.consumer.max.heartbeat.interval.ms", "largest consumer.heartbeat.interval.ms a KIP-848 group may be configured with (the broker's group.consumer.heartbeat.interval.ms is always allowed)", "15000", intSetter(func(c *Config) *int64 { return &c.GroupConsumerMaxHeartbeatMs }, 64)},
}

// SASLMechanisms are the SASL mechanisms strata implements (internal/sasl).
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"}

// parseConnectionOverrides parses max.connections.per.ip.overrides:
// "127.0.0.1:200,::1:10". The count follows the last colon, so IPv6
// addresses need no brackets (Kafka's format). Kafka also takes host
// names, resolved at start; strata takes addresses only.
func parseConnectionOverrides(v string) (map[netip.Addr]int, error) {
	var out map[netip.Addr]int
	for _, e := range splitList(v) {
		i := strings.LastIndexByte(e, ':')
		if i < 0 {
			return nil, fmt.Errorf("override %q: want ip:count", e)
		}
		ip, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(e[:i]), "[]"))
		if err != nil {
			return nil, fmt.Errorf("override %q: %v", e, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(e[i+1:]))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("override %q: count must be a non-negative integer", e)
		}
		if out == nil {
			out = map[netip.Addr]int{}
		}
		out[ip.Unmap()] = n
	}
	return out, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Set applies one property. Unknown names are an error: a typo should not
// pass silently.
func (c *Config) Set(name, value string) error {
	if ok, err := c.setListenerOverride(name, value); ok {
		return err
	}
	for _, d := range Defs {
		if d.Name == name {
			if err := d.set(c, value); err != nil {
				return fmt.Errorf("config: %s=%q: %v", name, value, err)
			}
			if c.explicit == nil {
				c.explicit = map[string]string{}
			}
			c.explicit[name] = value
			return nil
		}
	}
	if listener, key, ok := listenerSASLKey(name); ok {
		return c.setListenerSASL(listener, key, value)
	}
	return fmt.Errorf("config: unknown property %q", name)
}

// ListenerSASL is one listener's SASL settings, Kafka's listener-prefixed
// properties.
type ListenerSASL struct {
	// EnabledMechanisms is listener.name.<listener>.sasl.enabled.mechanisms;
	// nil takes sasl.enabled.mechanisms.
	EnabledMechanisms []string
	// PlainJAASConfig is listener.name.<listener>.plain.sasl.jaas.config:
	// a PlainLoginModule entry whose user_<name>="<password>" options are
	// PLAIN users of the listener (parsed by internal/sasl). It holds
	// passwords: never reported by Properties.
	PlainJAASConfig string
	// ScramJAASConfig is listener.name.<listener>.scram-sha-256.sasl.jaas.config
	// and ...scram-sha-512...: a ScramLoginModule entry, by mechanism. Only
	// its username and password options (the broker's own inter-broker
	// login) are read; SCRAM users live in the metadata quorum.
	ScramJAASConfig map[string]string
}

// JAAS returns the listener's JAAS configuration for mechanism ("" when
// none is set).
func (ls ListenerSASL) JAAS(mechanism string) string {
	if mechanism == "PLAIN" {
		return ls.PlainJAASConfig
	}
	return ls.ScramJAASConfig[mechanism]
}

// listenerSASLKey splits listener.name.<listener>.<key> for the SASL keys
// that take a listener prefix.
func listenerSASLKey(name string) (listener, key string, ok bool) {
	rest, ok := strings.CutPrefix(name, "listener.name.")
	if !ok {
		return "", "", false
	}
	for _, k := range []string{"sasl.enabled.mechanisms", "plain.sasl.jaas.config", "scram-sha-256.sasl.jaas.config", "scram-sha-512.sasl.jaas.config"} {
		if l, found := strings.CutSuffix(rest, "."+k); found && l != "" && !strings.Contains(l, ".") {
			return strings.ToUpper(l), k, true
		}
	}
	return "", "", false
}

func (c *Config) setListenerSASL(listener, key, value string) error {
	ls := c.ListenerSASL[listener]
	switch key {
	case "sasl.enabled.mechanisms":
		ms, err := parseSASLMechanisms(value)
		if err != nil {
			return fmt.Errorf("config: listener.name.%s.%s=%q: %v", strings.ToLower(listener), key, value, err)
		}
		ls.EnabledMechanisms = ms
	case "plain.sasl.jaas.config":
		// Not recorded in explicit: DescribeConfigs must never show it.
		ls.PlainJAASConfig = value
	case "scram-sha-256.sasl.jaas.config", "scram-sha-512.sasl.jaas.config":
		// Not recorded in explicit either: it holds a password.
		if ls.ScramJAASConfig == nil {
			ls.ScramJAASConfig = map[string]string{}
		}
		ls.ScramJAASConfig[strings.ToUpper(strings.TrimSuffix(key, ".sasl.jaas.config"))] = value
	}
	if c.ListenerSASL == nil {
		c.ListenerSASL = map[string]ListenerSASL{}
	}
	c.ListenerSASL[listener] = ls
	return nil
}

func parseSASLMechanisms(v string) ([]string, error) {
	ms := splitList(v)
	for _, m := range ms {
		if !slices.Contains(SASLMechanisms, m) {
			return nil, fmt.Errorf("SASL mechanism %q is not implemented: strata has %s", m, strings.Join(SASLMechanisms, ", "))
		}
	}
	if ms == nil {
		ms = []string{}
	}
	return ms, nil
}

// OAuthBearer is the broker's OAUTHBEARER validation settings, Kafka's
// sasl.oauthbearer.* properties (KIP-768) and strata's switch for
// unsecured tokens.
type OAuthBearer struct {
	JWKSEndpointURL       string   // sasl.oauthbearer.jwks.endpoint.url
	JWKSEndpointRefreshMs int64    // sasl.oauthbearer.jwks.endpoint.refresh.ms
	ClockSkewSeconds      int64    // sasl.oauthbearer.clock.skew.seconds
	ExpectedAudience      []string // sasl.oauthbearer.expected.audience
	ExpectedIssuer        string   // sasl.oauthbearer.expected.issuer
	SubClaimName          string   // sasl.oauthbearer.sub.claim.name
	ScopeClaimName        string   // sasl.oauthbearer.scope.claim.name
	// UnsecuredEnable is strata.sasl.oauthbearer.unsecured.enable.
	UnsecuredEnable bool
}

// OAuthBearerEnabled reports whether any SASL listener may use
// OAUTHBEARER.
func (c *Config) OAuthBearerEnabled() bool {
	if slices.Contains(c.SASLEnabledMechanisms, "OAUTHBEARER") {
		return true
	}
	for _, ls := range c.ListenerSASL {
		if slices.Contains(ls.EnabledMechanisms, "OAUTHBEARER") {
			return true
		}
	}
	return false
}

// Property is one broker property as DescribeConfigs reports it.
type Property struct {
	Name string
	// Value is what was set, or the default; nil when neither exists
	// (a property derived from another, such as log.retention.ms).
	Value *string
	// Explicit: set in the properties file or with --set.
	Explicit bool
	// Dynamic: the property can change at run time (see Dynamic).
	Dynamic bool
	// Sensitive: a key or password, whose value is not reported.
	Sensitive bool
	Doc       string
}

// Dynamic names the broker properties that change at run time through
// IncrementalAlterConfigs or AlterConfigs on a BROKER resource, cluster-wide
// (the resource named "") or for one node (named by its node.id): the ones
// Kafka's DynamicBrokerConfig lets change (DynamicLogConfig: the log.*
// defaults of topic configs under their primary broker name, so
// log.retention.ms but not log.retention.hours; DynamicListenerConfig's
// connection limits) that strata applies without a restart. A dynamic value
// wins over the properties file, a node's over the cluster-wide one.
var Dynamic = map[string]bool{
	"log.segment.bytes":                   true,
	"log.roll.ms":                         true,
	"log.retention.ms":                    true,
	"log.retention.bytes":                 true,
	"log.index.interval.bytes":            true,
	"log.index.size.max.bytes":            true,
	"log.flush.interval.messages":         true,
	"log.flush.interval.ms":               true,
	"log.segment.delete.delay.ms":         true,
	"log.cleanup.policy":                  true,
	"log.message.timestamp.type":          true,
	"log.message.timestamp.before.max.ms": true,
	"log.message.timestamp.after.max.ms":  true,
	"message.max.bytes":                   true,
	"compression.type":                    true,
	"min.insync.replicas":                 true,
	"max.connections":                     true,
	"max.connections.per.ip":              true,
	"max.connections.per.ip.overrides":    true,
}

// ParseConnectionOverrides parses a max.connections.per.ip.overrides value.
func ParseConnectionOverrides(v string) (map[netip.Addr]int, error) {
	return parseConnectionOverrides(v)
}

// Properties lists every broker property with its value.
func (c *Config) Properties() []Property {
	out := make([]Property, 0, len(Defs))
	for _, d := range Defs {
		p := Property{Name: d.Name, Doc: d.Doc, Dynamic: Dynamic[d.Name]}
		if v, ok := c.explicit[d.Name]; ok {
			p.Value, p.Explicit = &v, true
			if IsSensitive(d.Name) {
				p.Value, p.Sensitive = nil, true
			}
		} else if d.Default != "" {
			v := d.Default
			p.Value = &v
		}
		out = append(out, p)
	}
	return out
}

// Load applies a Java properties file (key=value or key: value lines, #
// and ! comments, a line ending in a backslash continued on the next, as
// long JAAS values are written).
func (c *Config) Load(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continued(line) && sc.Scan() {
			n++
			line = line[:len(line)-1] + strings.TrimSpace(sc.Text())
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			return fmt.Errorf("config: line %d: expected key=value, got %q", n, line)
		}
		if err := c.Set(strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// continued reports whether a properties line ends in an odd number of
// backslashes: the last escapes the line end (java.util.Properties).
func continued(line string) bool {
	n := len(line) - len(strings.TrimRight(line, "\\"))
	return n%2 == 1
}

// LoadFile applies the properties file at path.
func (c *Config) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := c.Load(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Voter is one entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Addr string // host:port of its controller listener
}

// ParseVoters parses controller.quorum.voters: id@host:port,... (Kafka's
// QuorumConfig.parseVoterConnections). Empty is no quorum.
func ParseVoters(v string) ([]Voter, error) {
	var out []Voter
	for _, e := range splitList(v) {
		id, addr, ok := strings.Cut(e, "@")
		if !ok {
			return nil, fmt.Errorf("voter %q: want id@host:port", e)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("voter %q: id must be a non-negative integer", e)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("voter %q: %v", e, err)
		}
		for _, o := range out {
			if o.ID == int32(n) {
				return nil, fmt.Errorf("voter %q: id %d appears twice", e, n)
			}
		}
		out = append(out, Voter{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// Validate checks ranges Kafka enforces.
func (c *Config) Validate() error {
	switch {
	case len(c.LogDirs) == 0:
		return errors.New("config: log.dirs is empty")
	case c.MetadataSnapshotBytes < 1:
		return fmt.Errorf("config: metadata.log.max.record.bytes.between.snapshots %d must be positive", c.MetadataSnapshotBytes)
	case c.MetadataRaftSnapshotThreshold < 1 || c.MetadataRaftTrailingLogs < 1 || c.MetadataRaftSnapshotIntervalMs < 5:
		return fmt.Errorf("config: metadata.raft.snapshot.threshold %d and metadata.raft.trailing.logs %d must be positive, metadata.raft.snapshot.interval.ms %d at least 5",
			c.MetadataRaftSnapshotThreshold, c.MetadataRaftTrailingLogs, c.MetadataRaftSnapshotIntervalMs)
	case c.NumPartitions < 1:
		return fmt.Errorf("config: num.partitions %d must be at least 1", c.NumPartitions)
	case c.SocketRequestMaxBytes < 1:
		return fmt.Errorf("config: socket.request.max.bytes %d must be positive", c.SocketRequestMaxBytes)
	case c.QueuedMaxRequestBytes == 0 || c.QueuedMaxRequestBytes < -1:
		return fmt.Errorf("config: queued.max.request.bytes %d must be positive, or -1 for unbounded", c.QueuedMaxRequestBytes)
	case c.MaxConnections < 1:
		return fmt.Errorf("config: max.connections %d must be at least 1", c.MaxConnections)
	case c.MaxConnectionsPerIP < 1:
		return fmt.Errorf("config: max.connections.per.ip %d must be at least 1 (refuse one address with max.connections.per.ip.overrides)", c.MaxConnectionsPerIP)
	case c.ConnectionFailedAuthenticationDelayMs < 0:
		return fmt.Errorf("config: connection.failed.authentication.delay.ms %d must not be negative", c.ConnectionFailedAuthenticationDelayMs)
	case c.SASLServerMaxReceiveSize < 1:
		return fmt.Errorf("config: sasl.server.max.receive.size %d must be positive", c.SASLServerMaxReceiveSize)
	case c.ConnectionsMaxReauthMs < 0:
		return fmt.Errorf("config: connections.max.reauth.ms %d must not be negative", c.ConnectionsMaxReauthMs)
	case c.OAuthBearer.JWKSEndpointRefreshMs < 1 || c.OAuthBearer.ClockSkewSeconds < 0:
		return fmt.Errorf("config: sasl.oauthbearer.jwks.endpoint.refresh.ms %d must be positive and sasl.oauthbearer.clock.skew.seconds %d not negative", c.OAuthBearer.JWKSEndpointRefreshMs, c.OAuthBearer.ClockSkewSeconds)
	case c.OAuthBearerEnabled() && c.OAuthBearer.JWKSEndpointURL == "" && !c.OAuthBearer.UnsecuredEnable:
		// Kafka would fall back to its unsecured validator, which takes
		// any unsigned token: a broker that trusts anyone by omission.
		return errors.New("config: OAUTHBEARER is in sasl.enabled.mechanisms but sasl.oauthbearer.jwks.endpoint.url is not set: set it to the identity provider's JWKS (file: or https: URL), or set strata.sasl.oauthbearer.unsecured.enable=true to accept unsigned tokens (tests only)")
	case c.MessageMaxBytes < 0:
		return fmt.Errorf("config: message.max.bytes %d must not be negative", c.MessageMaxBytes)
	case c.LogMessageTimestampBefore < 0 || c.LogMessageTimestampAfter < 0:
		return fmt.Errorf("config: log.message.timestamp.before.max.ms %d and log.message.timestamp.after.max.ms %d must not be negative", c.LogMessageTimestampBefore, c.LogMessageTimestampAfter)
	case c.OffsetsTopicNumPartitions < 1:
		return fmt.Errorf("config: offsets.topic.num.partitions %d must be at least 1", c.OffsetsTopicNumPartitions)
	case c.TransactionStateLogNumPartitions < 1:
		return fmt.Errorf("config: transaction.state.log.num.partitions %d must be at least 1", c.TransactionStateLogNumPartitions)
	case c.TransactionStateLogReplicationFactor < 1 || c.TransactionStateLogMinISR < 1:
		return errors.New("config: transaction.state.log.replication.factor and transaction.state.log.min.isr must be at least 1")
	case c.TransactionMaxTimeoutMs < 1 || c.TransactionalIDExpirationMs < 1 || c.TransactionAbortTimedOutIntervalMs < 1 || c.TransactionRemoveExpiredIntervalMs < 1:
		return errors.New("config: transaction.max.timeout.ms, transactional.id.expiration.ms and the transaction cleanup intervals must be positive")
	case c.OffsetsRetentionMs < 1 || c.OffsetsRetentionCheckIntervalMs < 1:
		return errors.New("config: offsets.retention.minutes and offsets.retention.check.interval.ms must be positive")
	case c.GroupMinSessionTimeoutMs < 0 || c.GroupMaxSessionTimeoutMs < c.GroupMinSessionTimeoutMs:
		return fmt.Errorf("config: group.min.session.timeout.ms %d must be between 0 and group.max.session.timeout.ms %d", c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs)
	case c.GroupInitialRebalanceDelayMs < 0:
		return fmt.Errorf("config: group.initial.rebalance.delay.ms %d must not be negative", c.GroupInitialRebalanceDelayMs)
	case c.GroupConsumerHeartbeatMs < 1 || c.GroupConsumerSessionTimeoutMs <= c.GroupConsumerHeartbeatMs:
		return fmt.Errorf("config: group.consumer.session.timeout.ms %d must exceed group.consumer.heartbeat.interval.ms %d", c.GroupConsumerSessionTimeoutMs, c.GroupConsumerHeartbeatMs)
	case c.GroupConsumerMinSessionTimeoutMs < 1 || c.GroupConsumerMaxSessionTimeoutMs < c.GroupConsumerMinSessionTimeoutMs ||
		c.GroupConsumerMinHeartbeatMs < 1 || c.GroupConsumerMaxHeartbeatMs < c.GroupConsumerMinHeartbeatMs:
		return fmt.Errorf("config: group.consumer.min/max.session.timeout.ms (%d, %d) and group.consumer.min/max.heartbeat.interval.ms (%d, %d) must be positive, each min at most its max",
			c.GroupConsumerMinSessionTimeoutMs, c.GroupConsumerMaxSessionTimeoutMs, c.GroupConsumerMinHeartbeatMs, c.GroupConsumerMaxHeartbeatMs)
	case c.MinInsyncReplicas < 1:
		return fmt.Errorf("config: min.insync.replicas %d must be at least 1", c.MinInsyncReplicas)
	case c.MaxBrokerPartitions < 1 && c.MaxBrokerPartitions != -1:
		return fmt.Errorf("config: max.broker.partitions %d must be at least 1, or -1 for what the process limits allow", c.MaxBrokerPartitions)
	case c.ProducerIDExpirationMs < 1 || c.ProducerIDExpirationCheckIntervalMs < 1:
		return errors.New("config: producer.id.expiration.ms and producer.id.expiration.check.interval.ms must be positive")
	case c.GroupMaxSize < 1:
		return fmt.Errorf("config: group.max.size %d must be at least 1", c.GroupMaxSize)
	case c.LeaderImbalanceCheckIntervalSeconds < 1:
		return fmt.Errorf("config: leader.imbalance.check.interval.seconds %d must be at least 1", c.LeaderImbalanceCheckIntervalSeconds)
	case c.LeaderImbalancePerBrokerPercentage < 0 || c.LeaderImbalancePerBrokerPercentage > 100:
		return fmt.Errorf("config: leader.imbalance.per.broker.percentage %d must be between 0 and 100", c.LeaderImbalancePerBrokerPercentage)
	}
	if err := c.validateQuorum(); err != nil {
		return err
	}
	if !c.HasRole("broker") {
		// A controller-only node serves no clients: it needs no
		// PLAINTEXT listener (one named is not opened).
		return nil
	}
	return c.validateListeners()
}

// validateQuorum checks process.roles, controller.quorum.voters and the
// controller listener against each other, as Kafka's KafkaConfig does.
func (c *Config) validateQuorum() error {
	broker, controller := false, false
	for _, r := range c.ProcessRoles {
		switch r {
		case "broker":
			broker = true
		case "controller":
			controller = true
		default:
			return fmt.Errorf("config: process.roles %q: unknown role (broker, controller)", r)
		}
	}
	if !broker && !controller {
		return errors.New("config: process.roles is empty (broker, controller, or broker,controller)")
	}
	ctrlAddr, err := c.ControllerAddr()
	if err != nil {
		return err
	}
	if len(c.QuorumVoters) == 0 {
		// Local mode: one node that is its own controller.
		if !broker || !controller {
			return fmt.Errorf("config: process.roles %s needs controller.quorum.voters; a node without a quorum is broker,controller", strings.Join(c.ProcessRoles, ","))
		}
		if ctrlAddr != "" {
			return errors.New("config: listeners names a controller listener but controller.quorum.voters is empty")
		}
		return nil
	}
	if len(c.ControllerListenerNames) == 0 {
		return errors.New("config: controller.listener.names is empty")
	}
	if ctrlAddr == "" {
		if controller {
			return fmt.Errorf("config: listeners %q has no %s listener, which a controller needs (controller.listener.names)", c.Listeners, c.ControllerListenerNames[0])
		}
		return fmt.Errorf("config: listeners %q has no %s listener, which a broker-only node needs in strata (unlike Kafka): raft pushes the metadata log to it there (controller.listener.names)", c.Listeners, c.ControllerListenerNames[0])
	}
	voter := slices.ContainsFunc(c.QuorumVoters, func(v Voter) bool { return v.ID == c.NodeID })
	switch {
	case controller && !voter:
		return fmt.Errorf("config: node.id %d is a controller (process.roles %s) but not in controller.quorum.voters", c.NodeID, strings.Join(c.ProcessRoles, ","))
	case !controller && voter:
		return fmt.Errorf("config: node.id %d is broker-only (process.roles broker) but in controller.quorum.voters: a voter is a controller (process.roles controller or broker,controller)", c.NodeID)
	}
	return nil
}

// HasRole reports whether process.roles names role ("broker" or
// "controller").
func (c *Config) HasRole(role string) bool { return slices.Contains(c.ProcessRoles, role) }

// Quorum reports whether the metadata log is on a raft quorum
// (controller.quorum.voters is set) rather than local.
func (c *Config) Quorum() bool { return len(c.QuorumVoters) > 0 }
