// Package kafka answers Kafka protocol requests: one file per API key, each
// decoding a kmsg request, calling the broker and the metadata store, and
// encoding a kmsg response. The versions each key serves are registered in
// one table (apis), which also builds the ApiVersions response.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/metrics"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/replica"
	"github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
)

// Config is what the handlers need to know about this broker.
type Config struct {
	NodeID    int32
	ClusterID string
	// AdvertisedHost and AdvertisedPort are this node's address on
	// Listener, what Metadata tells clients while the image lists no
	// brokers (a handler built without registering, in unit tests).
	AdvertisedHost string
	AdvertisedPort int32
	// Listener is the client listener a request without one is answered
	// for ("PLAINTEXT" when empty): a request is otherwise answered with
	// the endpoints of the listener it came in on, as Kafka does.
	Listener string
	// InterBrokerListener is the listener of the leaders this node's
	// replica fetchers connect to (inter.broker.listener.name);
	// Listener when empty.
	InterBrokerListener string
	// NumPartitions is num.partitions, for auto-created topics and
	// CreateTopics with -1 partitions.
	NumPartitions int32
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// KeepStrayPartitions is quorum mode's way with partitions the image
	// does not know: never removed (a node must never delete data on its
	// image's word), matched with the image only by AdoptPartitions once
	// the broker is unfenced; one whose topic id the image lacks is then
	// renamed -stray, one without a topic id stays as it is. In local
	// mode (false) New removes them: a single node's log is complete.
	KeepStrayPartitions bool
	// MaxPartitionsPerTopic bounds CreateTopics and CreatePartitions
	// (default 10000): every partition is a directory with preallocated,
	// memory-mapped indexes, so an unbounded count is a denial of service.
	MaxPartitionsPerTopic int32
	// MaxPartitionsPerRequest bounds the partitions one CreateTopics or
	// CreatePartitions request adds in total (default 10000), so that one
	// request cannot exhaust file descriptors with many topics.
	MaxPartitionsPerRequest int32
	// MaxBrokerPartitions is max.broker.partitions, resolved (default
	// 4000 when unset, for handlers built without strata.Start).
	MaxBrokerPartitions int32
	// TopicDefaults is the broker-level topic configuration (log.* keys).
	TopicDefaults broker.TopicConfig
	// Group configures the group coordinator (offsets.*, group.*);
	// Storage and Logger are set by New.
	Group group.Config
	// Txn configures the transaction coordinator (transaction.*).
	Txn TxnConfig
	// GroupConsumerBounds bound KIP-848 group configs.
	GroupConsumerBounds GroupConsumerBounds
	Logger              *slog.Logger
	// Metrics receives request, error and traffic counts; nil for none.
	Metrics *metrics.Metrics
	// BrokerConfigs are the broker's properties, for DescribeConfigs.
	BrokerConfigs []config.Property
	// Controller is the node's broker lifecycle and controller client;
	// nil makes one for local mode.
	Controller *controller.Controller
	// ConnectionLimits are the static connection limits, which dynamic
	// broker configs override (OnConnectionLimits).
	ConnectionLimits ConnectionLimits
	// Replicas runs the fetchers and ISR checks of a cluster node; nil
	// on a single node, whose partitions are all led here with no
	// follower.
	Replicas *replica.Manager
	// Authorizer configures the authorizer (authorizer.class.name);
	// nil for none: every request is allowed and the ACL APIs answer
	// SECURITY_DISABLED, as Kafka without an authorizer.
	Authorizer *acl.Config
	// RackAwareReplicaSelector: replica.selector.class is Kafka's
	// RackAwareReplicaSelector, and a leader sends a consumer that names
	// its rack to an in-sync replica in it (KIP-392, read_replica.go).
	RackAwareReplicaSelector bool
	// SASL configures authentication on SASL listeners (sasl.go).
	SASL SASLConfig
}

// Handler implements server.Handler over a broker and a metadata store.
type Handler struct {
	cfg    Config
	broker *broker.Broker
	meta   *cluster.Store
	// ctrl is the node's part in the broker lifecycle and its client of
	// the active controller; its Client is nil in local mode.
	ctrl   *controller.Controller
	logger *slog.Logger
	// mechs are the SASL mechanisms, over the image's SCRAM credentials;
	// listenerMechs those of listeners with their own PLAIN users.
	mechs         *sasl.Mechanisms
	listenerMechs map[string]*sasl.Mechanisms

	groups       *group.Coordinator
	offsetsStore *offsetsStorage
	// txns is the transaction coordinator (txn.go).
	txns *txnState

	topicConfigs atomic.Pointer[topicConfigCache]
	// authz is the authorizer of the image's ACLs (authz.go).
	authz atomic.Pointer[authzState]

	// connMu guards the connection limits last given to onConnLimits.
	connMu       sync.Mutex
	connLimits   ConnectionLimits
	onConnLimits func(ConnectionLimits)

	// topicMu serializes changes of the topic set (create, add partitions,
	// delete) with the creation of partition files on first use: checks
	// against the image and the file operations that follow them happen
	// as one step.
	topicMu sync.Mutex

	// stopping is closed by Stop: long-polling fetches answer at once, as
	// Kafka completes its delayed operations at shutdown.
	stopping chan struct{}
	stopOnce sync.Once
	// watchDone is closed when watchImage returns.
	watchDone chan struct{}

	// rolesMu serializes applyRoles; rolesReady is set once the node
	// may act on its image's replica assignments (AdoptPartitions).
	rolesMu    sync.Mutex
	rolesReady bool
	// coordsMu serializes followCoordinators; coordsReady is set once
	// the image's leaderships of __consumer_offsets and
	// __transaction_state are current ones: from the start in local
	// mode, at AdoptPartitions in quorum mode.
	coordsMu    sync.Mutex
	coordsReady bool
}

// Stop ends every long-poll in progress and makes later ones answer at
// once. Called when the broker begins to shut down.
func (h *Handler) Stop() {
	h.stopOnce.Do(func() {
		close(h.stopping)
		<-h.watchDone
		// acks=all answers waiting for followers answer now, as
		// Kafka completes its delayed produces at shutdown.
		for _, p := range h.broker.Partitions() {
			p.StopWaits()
		}
		h.groups.Close()
		h.stopTxn()
	})
}

// New returns a Handler. It applies topic configs from the metadata store to
// the partitions the broker loaded.
func New(cfg Config, b *broker.Broker, meta *cluster.Store) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPartitionsPerTopic <= 0 {
		cfg.MaxPartitionsPerTopic = 10000
	}
	if cfg.MaxPartitionsPerRequest <= 0 {
		cfg.MaxPartitionsPerRequest = 10000
	}
	if cfg.MaxBrokerPartitions <= 0 {
		cfg.MaxBrokerPartitions = 4000
	}
	if cfg.Controller == nil {
		cfg.Controller = controller.New(controller.Config{NodeID: cfg.NodeID, ClusterID: cfg.ClusterID, Store: meta, Logger: cfg.Logger})
	}
	h := &Handler{cfg: cfg, broker: b, meta: meta, ctrl: cfg.Controller, logger: cfg.Logger, stopping: make(chan struct{}), watchDone: make(chan struct{})}
	h.newMechanisms()
	if !cfg.KeepStrayPartitions {
		// Local mode: the metadata log is this node's and complete.
		if err := h.adoptPartitions(); err != nil {
			return nil, err
		}
		h.coordsReady = true
	}
	if err := h.startGroups(cfg.Group); err != nil {
		return nil, err
	}
	h.startTxn(cfg.Txn)
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Registry.Register(newStateCollector(h)); err != nil {
			h.stopTxn()
			return nil, err
		}
	}
	go h.watchImage()
	return h, nil
}

// AdoptPartitions matches the partitions found on disk with the metadata
// image: each gets its topic's config and partition.metadata, and a
// partition of a topic the image does not have is a stray. In quorum mode
// the caller runs it once this broker is unfenced, that is once its image
// holds the metadata log past its own registration: a topic deleted while
// the node was down is deleted in that image, and one the image has not
// seen cannot have files here (a node creates partitions only of topics
// in its image). Before that, an image still catching up (even empty)
// would make every partition look stray. Local mode runs it in New.
func (h *Handler) AdoptPartitions() error {
	if !h.cfg.KeepStrayPartitions {
		return nil // done in New
	}
	if err := h.adoptPartitions(); err != nil {
		return err
	}
	h.rolesMu.Lock()
	h.rolesReady = true
	h.rolesMu.Unlock()
	h.applyRoles(h.meta.Image())
	h.coordsMu.Lock()
	h.coordsReady = true
	h.coordsMu.Unlock()
	h.followCoordinators()
	return nil
}

func (h *Handler) adoptPartitions() error {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	b, cfg := h.broker, h.cfg
	im := h.meta.Image()
	for _, p := range b.Partitions() {
		t := im.Topic(p.TP.Topic)
		id, hasID := p.TopicID()
		if t == nil || p.TP.Partition >= t.Partitions || hasID && id != t.ID {
			if cfg.KeepStrayPartitions {
				if !hasID {
					// No topic id to prove it is not the image's
					// topic: kept until an operator decides.
					h.logger.Warn("keeping partition unknown to metadata", "partition", p.TP, "metadata_offset", im.EndOffset)
					continue
				}
				// Its topic id is not in the image, which holds the
				// log past this broker's registration: a topic
				// deleted while this node was away. Set aside, not
				// deleted, as Kafka's KRaft brokers do with strays.
				dst, err := b.MarkStray(p.TP)
				if err != nil {
					return err
				}
				h.logger.Warn("partition of a topic the metadata no longer has: set aside as stray", "partition", p.TP, "topic_id", cluster.TopicID(id), "dir", dst, "metadata_offset", im.EndOffset)
				continue
			}
			// Files of a topic the metadata no longer has (a delete
			// interrupted by a crash), or of an earlier topic of the
			// same name (its partition.metadata names another topic
			// id): stray, as Kafka's LogManager calls them, and
			// removed, so a new topic never inherits old records.
			h.logger.Warn("removing partition unknown to metadata", "partition", p.TP, "topic_id_matches", !hasID || t == nil || id == t.ID)
			if err := b.DeletePartition(p.TP); err != nil {
				return err
			}
			continue
		}
		tc, err := h.topicConfig(t)
		if err != nil {
			return err
		}
		if err := p.Log.SetConfig(tc.Log); err != nil {
			return err
		}
		// Directories from before partition.metadata existed get it.
		if err := p.WriteMetadata(t.ID); err != nil {
			return err
		}
	}
	return nil
}

// api is one registered API key: the versions served and the handler.
type api struct {
	key      int16
	min, max int16
	handle   func(h *Handler, ctx context.Context, r *server.Request, req kmsg.Request) (*server.Response, error)
	// controllerOnly APIs are served on the controller listener only
	// (broker registration and heartbeats), as Kafka's ControllerApis.
	controllerOnly bool
}

// apis is the registration table, filled by each key's file in init.
var apis = map[int16]api{}

func register(key, min, max int16, handle func(h *Handler, ctx context.Context, r *server.Request, req kmsg.Request) (*server.Response, error)) {
	apis[key] = api{key: key, min: min, max: max, handle: handle}
}

// registerController registers a controller-only API.
func registerController(key, min, max int16, handle func(h *Handler, ctx context.Context, r *server.Request, req kmsg.Request) (*server.Response, error)) {
	apis[key] = api{key: key, min: min, max: max, handle: handle, controllerOnly: true}
}

var errUnsupportedVersion = errors.New("kafka: unsupported api key or version")

// Handle decodes the request and dispatches it. An unknown key, an
// unsupported version (other than of ApiVersions, which has its own answer)
// or a body that does not decode is an error: the connection closes, as
// Kafka closes it when it cannot parse a request.
func (h *Handler) Handle(ctx context.Context, r *server.Request) (*server.Response, error) {
	return h.handle(ctx, r, false)
}

// handle serves a request of the broker listener, or with controllerListener
// of the controller listener, which also takes the controller-only APIs.
func (h *Handler) handle(ctx context.Context, r *server.Request, controllerListener bool) (*server.Response, error) {
	start := time.Now()
	defer func() { h.cfg.Metrics.Request(r.APIKey, time.Since(start)) }()
	if err := checkSASL(r); err != nil {
		return nil, err
	}
	a, ok := apis[r.APIKey]
	ok = ok && (controllerListener || !a.controllerOnly)
	if r.APIKey == apiVersionsKey && (!ok || r.APIVersion > a.max) {
		return h.unsupportedAPIVersions(), nil
	}
	if !ok || r.APIVersion < a.min || r.APIVersion > a.max {
		return nil, fmt.Errorf("%w: key %d version %d", errUnsupportedVersion, r.APIKey, r.APIVersion)
	}
	req := kmsg.RequestForKey(r.APIKey)
	req.SetVersion(r.APIVersion)
	if err := req.ReadFrom(r.Body); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(r.APIKey), r.APIVersion, err)
	}
	return a.handle(h, ctx, r, req)
}

// encode frames a kmsg response at the request's version, counting the
// error codes it carries.
func (h *Handler) encode(resp kmsg.Response) *server.Response {
	h.countErrors(resp)
	return encode(resp)
}

// encode frames a kmsg response at the request's version, into a pooled
// buffer that the server returns with Release once it is written.
func encode(resp kmsg.Response) *server.Response {
	pr := getResponse()
	pr.buf = resp.AppendTo(pr.buf[:0])
	pr.parts = append(pr.parts, server.Part{Bytes: pr.buf})
	pr.resp.HeaderFlexible = resp.IsFlexible() && resp.Key() != apiVersionsKey
	return pr.response()
}

// errorCode maps a Go error from the broker, log or metadata store to the
// Kafka error code a client understands.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, record.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, record.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, record.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, record.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, broker.ErrMessageTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, log.ErrBatchTooLarge):
		return kerr.RecordListTooLarge.Code
	case errors.Is(err, broker.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, broker.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, log.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, log.ErrClosed):
		// The partition was deleted or the broker is stopping: the
		// client refreshes its metadata and finds out which.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, log.ErrTruncatedUnacked):
		// A produce's records were truncated before their fsync: this
		// broker no longer leads; the client retries on the new leader.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, broker.ErrNotLeader), errors.Is(err, broker.ErrNotFollower):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, broker.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, broker.ErrNotEnoughReplicasAfterAppend):
		return kerr.NotEnoughReplicasAfterAppend.Code
	case errors.Is(err, broker.ErrReplicationTimeout):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, broker.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, cluster.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, cluster.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, errInternalTopic), errors.Is(err, errInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, errInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, errPartitionLimit):
		return kerr.PolicyViolation.Code
	case errors.Is(err, broker.ErrInconsistentTopicID):
		return kerr.InconsistentTopicID.Code
	case errors.Is(err, broker.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, broker.ErrTransactionCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	case errors.Is(err, controller.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, cluster.ErrNotController):
		return kerr.NotController.Code
	}
	if code, ok := kerrCode(err); ok {
		return code
	}
	// An error that carries its code (the group coordinator's).
	if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the message to send with a code, nil for success.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
