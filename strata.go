// Package strata runs a Kafka-compatible broker in-process: the same broker
// as `strata serve`, with its data on disk, for Go programs and tests.
//
//	b, err := strata.Start(strata.Options{Dir: t.TempDir()})
//	...
//	defer b.Close()
//	client, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
package strata

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/kafka"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/metrics"
	"github.com/strata-io/strata/internal/replica"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/tlsconf"
	"github.com/strata-io/strata/internal/txn"
)

// Options configure an embedded broker. The zero value listens on a free
// loopback port with data in ./strata-data.
type Options struct {
	// Dir is the data directory (log.dirs); overrides Properties.
	Dir string
	// Addr is the listen address; default 127.0.0.1:0 (a free port).
	Addr string
	// Properties are Kafka broker properties (num.partitions,
	// log.segment.bytes, ...) applied over the defaults.
	Properties map[string]string
	Logger     *slog.Logger
}

// Broker is a running broker.
type Broker struct {
	// listeners are the client listeners, in the order of listeners;
	// none on a controller-only node.
	listeners []clientListener
	srv       *server.Server
	h         *kafka.Handler
	broker    *broker.Broker
	meta      *cluster.Store
	ctrl      *controller.Controller
	// replicas fetches the partitions this node follows and checks the
	// ISRs of those it leads; nil on a single node.
	replicas *replica.Manager
	done     chan error
	// ctrlSrv serves the controller listener's Kafka requests in quorum
	// mode; stopCtrl ends the broker's registration and heartbeats.
	ctrlSrv  *server.Server
	ctrlDone chan error
	stopCtrl func()
	// isBroker: process.roles has broker (a controlled shutdown is
	// asked for at Close).
	isBroker bool
	// csCtx bounds Close's controlled shutdown; AbortControlledShutdown
	// cancels it.
	csCtx    context.Context
	csCancel context.CancelFunc
	logger   *slog.Logger
	http     *metrics.Endpoint

	closeOnce sync.Once
	closeErr  error
}

// Start starts a broker with opts.
func Start(opts Options) (*Broker, error) {
	cfg := config.Default()
	cfg.Listeners = "PLAINTEXT://127.0.0.1:0"
	cfg.HTTPListener = "127.0.0.1:0" // embedded brokers must not collide on 9644
	if opts.Addr != "" {
		cfg.Listeners = "PLAINTEXT://" + opts.Addr
	}
	for k, v := range opts.Properties {
		if err := cfg.Set(k, v); err != nil {
			return nil, err
		}
	}
	if opts.Dir != "" {
		cfg.LogDirs = []string{opts.Dir}
	}
	return StartConfig(cfg, opts.Logger)
}

// StartConfig starts a broker from a full configuration (`strata serve`).
func StartConfig(cfg config.Config, logger *slog.Logger) (*Broker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var cls []clientListener // none on a controller-only node: no clients
	if cfg.HasRole("broker") {
		var err error
		if cls, err = bindListeners(cfg); err != nil {
			return nil, err
		}
	}
	closeLn := func() { closeListeners(cls) }
	var err error
	var httpLn net.Listener
	if cfg.HTTPListener != "" {
		if httpLn, err = net.Listen("tcp", cfg.HTTPListener); err != nil {
			closeLn()
			return nil, fmt.Errorf("http.listener %s: %w", cfg.HTTPListener, err)
		}
	}
	var ctrlLn net.Listener
	if cfg.Quorum() {
		addr, _ := cfg.ControllerAddr()
		if ctrlLn, err = net.Listen("tcp", addr); err != nil {
			closeLn()
			if httpLn != nil {
				httpLn.Close()
			}
			return nil, fmt.Errorf("controller listener %s: %w", addr, err)
		}
	}
	b, err := start(cfg, cls, httpLn, ctrlLn, logger, nodeNet{}, fs.OS)
	if err != nil {
		closeLn()
		if httpLn != nil {
			httpLn.Close()
		}
		return nil, err
	}
	return b, nil
}

// controlledShutdownTimeout bounds how long Close waits for the active
// controller to move this node's leaderships away.
const controlledShutdownTimeout = 15 * time.Second

// quorumStartTimeout bounds how long a node in quorum mode waits at start
// for a controller to be elected and its metadata image to catch up.
const quorumStartTimeout = 2 * time.Minute

// RaftDir is where quorum mode keeps its raft state, under the first log
// dir: raft.db (hashicorp/raft-boltdb: the log, term and vote) and
// snapshots/ (raft's file snapshots of the metadata image).
const RaftDir = "__raft"

// start owns ctrlLn (the controller listener, nil in local mode) once
// called: the metadata store closes it. cls, the client listeners, are
// none on a controller-only node; the caller closes them if start fails.
// nn is how the node dials the other nodes.
//
// By process.roles (quorum mode): a combined node catches up with the
// quorum, serves, registers and heartbeats as a broker and runs the
// fencing loop; a controller-only node serves only its controller
// listener and runs the fencing loop; a broker-only node opens raft as a
// non-voter, registers (which makes the active controller add it to
// raft), waits until raft has sent it the log up to the commit index,
// then serves and waits until it is unfenced.
func start(cfg config.Config, cls []clientListener, httpLn, ctrlLn net.Listener, logger *slog.Logger, nn nodeNet, fsys fs.FS) (*Broker, error) {
	m := metrics.New()
	maxPartitions := partitionLimit(logger, cfg.MaxBrokerPartitions)
	clusterID, err := loadMetaProperties(fsys, cfg.LogDirs[0], cfg.NodeID, quorumClusterID(cfg))
	if err != nil {
		if ctrlLn != nil {
			ctrlLn.Close()
		}
		return nil, err
	}
	metaCfg := log.DefaultConfig()
	metaCfg.FlushMessages = 1 // metadata changes are rare and must survive
	metaCfg.RetentionMs, metaCfg.SegmentBytes = -1, 64<<20
	bk, err := broker.Open(broker.Config{
		LogDirs:  cfg.LogDirs,
		Logger:   logger,
		Internal: map[log.TopicPartition]log.Config{cluster.MetadataTopic: metaCfg},
		Manager:  log.ManagerConfig{RetentionCheckInterval: msDuration(cfg.LogRetentionCheckIntervalMs), OnSync: m.Synced, FS: fsys},

		ProducerIDExpiration:      msDuration(cfg.ProducerIDExpirationMs),
		ProducerIDExpirationCheck: msDuration(cfg.ProducerIDExpirationCheckIntervalMs),
		Replicated:                cfg.Quorum(),
	})
	if err != nil {
		if ctrlLn != nil {
			ctrlLn.Close()
		}
		return nil, err
	}
	fail := func(err error) (*Broker, error) {
		bk.Close()
		return nil, err
	}
	meta, err := openMetadata(cfg, bk, metaCfg, ctrlLn, logger, nn)
	if err != nil {
		return fail(err)
	}
	fail = func(err error) (*Broker, error) {
		meta.Close()
		bk.Close()
		return nil, err
	}
	defaults, err := topicDefaults(cfg)
	if err != nil {
		return fail(err)
	}
	isBroker, isController := cfg.HasRole("broker"), cfg.HasRole("controller")
	// Every client listener is registered, so that each client is
	// told the addresses of the listener it connected to.
	var eps []records.Endpoint
	var sources map[string]*tlsconf.Source
	if isBroker {
		if eps, err = endpoints(cfg, cls); err != nil {
			return fail(err)
		}
		if sources, err = tlsSources(cfg, cls, logger); err != nil {
			return fail(err)
		}
	}
	var host, listener, interBroker string
	var p int
	if len(eps) > 0 {
		host, p, listener = eps[0].Host, int(eps[0].Port), eps[0].Name
		ib, _ := cfg.InterBroker()
		interBroker = ib.Name
	}
	var rack *string
	if cfg.BrokerRack != "" {
		rack = &cfg.BrokerRack
	}
	ctrl := newController(cfg, clusterID, meta, logger, nn)
	// A failed log dir fences this broker until it heals (storageHealth),
	// so that its leaderships move to replicas that can write. Not when
	// no other broker is live: fencing would then only take every
	// partition offline, reads too, where the broker itself answers
	// KAFKA_STORAGE_ERROR to the writes it cannot take and serves the
	// rest.
	bk.OnStorageChange(func(failed bool) {
		if failed && !otherLiveBroker(meta.Image(), cfg.NodeID) {
			logger.Warn("log dirs failed, but no other broker is live to take this one's leaderships: not asking to be fenced")
			return
		}
		ctrl.SetWantFence(failed)
	})
	reg := controller.Registration{Rack: rack, Listeners: registrationListeners(eps)}
	ctx, cancel := context.WithCancel(context.Background())
	var ctrlWG sync.WaitGroup
	if meta.Quorum() && !isController {
		// A broker-only node: its registration is what makes the
		// active controller add it to raft, so it registers before it
		// can catch up. It registers its controller listener, where
		// raft sends it the log.
		chost, cport, _ := net.SplitHostPort(nonvoterAddr(cfg, meta))
		cp, _ := strconv.Atoi(cport)
		reg.Listeners = append(reg.Listeners, kmsg.BrokerRegistrationRequestListener{Name: cfg.ControllerListenerNames[0], Host: chost, Port: uint16(cp)})
		ctrlWG.Add(1)
		go func() {
			defer ctrlWG.Done()
			ctrl.RunBroker(ctx, reg)
		}()
		wctx, wcancel := nn.startContext(ctx)
		logger.Info("registering with the controller quorum as a broker-only node (raft non-voter)")
		err := meta.WaitCaughtUp(wctx)
		wcancel()
		if err != nil {
			cancel()
			ctrlWG.Wait()
			ctrl.Client().Close()
			return fail(fmt.Errorf("%w (is a majority of controller.quorum.voters running, and does this node's controller listener reach them?)", err))
		}
		logger.Info("joined the controller quorum", "controller", meta.ControllerID(), "metadata_offset_so_far", meta.Image().EndOffset)
	}
	fail = func(err error) (*Broker, error) {
		cancel()
		ctrlWG.Wait()
		if c := ctrl.Client(); c != nil {
			c.Close()
		}
		meta.Close()
		bk.Close()
		return nil, err
	}
	if !meta.Quorum() {
		// A single node registers itself, unfenced, as its own
		// controller, so the image names its endpoint. In quorum mode
		// every broker registers with the active controller and
		// heartbeats (controller.Controller.RunBroker).
		if _, err := meta.RegisterBroker(eps, rack); err != nil {
			return fail(err)
		}
	}
	var replicas *replica.Manager
	// The replica fetchers' and the transaction markers' connections
	// to the other brokers.
	var ibDial func(ctx context.Context, network, addr string) (net.Conn, error)
	var ibMech sasl.Mechanism
	if meta.Quorum() && isBroker {
		dial, err := interBrokerDial(cfg, nn, sources, logger)
		if err != nil {
			return fail(err)
		}
		mech, err := interBrokerSASL(cfg)
		if err != nil {
			return fail(err)
		}
		ibDial, ibMech = dial, mech
		replicas = newReplicaManager(cfg, ctrl, logger, dial, mech)
	}
	fail = func(err error) (*Broker, error) {
		if replicas != nil {
			replicas.Close()
		}
		cancel()
		ctrlWG.Wait()
		if c := ctrl.Client(); c != nil {
			c.Close()
		}
		meta.Close()
		bk.Close()
		return nil, err
	}
	saslCfg, err := saslConfig(&cfg)
	if err != nil {
		return fail(err)
	}
	h, err := kafka.New(kafka.Config{
		NodeID:                   cfg.NodeID,
		ClusterID:                clusterID,
		AdvertisedHost:           host,
		AdvertisedPort:           int32(p),
		Listener:                 listener,
		InterBrokerListener:      interBroker,
		NumPartitions:            cfg.NumPartitions,
		AutoCreateTopics:         cfg.AutoCreateTopics,
		KeepStrayPartitions:      cfg.Quorum(),
		RackAwareReplicaSelector: cfg.ReplicaSelectorClass == config.RackAwareReplicaSelector,
		Authorizer:               authorizerConfig(cfg),
		MaxBrokerPartitions:      maxPartitions,
		TopicDefaults:            defaults,
		Group: group.Config{
			Partitions:                cfg.OffsetsTopicNumPartitions,
			MinSessionTimeout:         msDuration(cfg.GroupMinSessionTimeoutMs),
			MaxSessionTimeout:         msDuration(cfg.GroupMaxSessionTimeoutMs),
			InitialRebalanceDelay:     msDuration(cfg.GroupInitialRebalanceDelayMs),
			NoInitialRebalanceDelay:   cfg.GroupInitialRebalanceDelayMs == 0,
			MaxGroupSize:              cfg.GroupMaxSize,
			OffsetsRetention:          msDuration(cfg.OffsetsRetentionMs),
			RetentionCheckInterval:    msDuration(cfg.OffsetsRetentionCheckIntervalMs),
			MaxMetadataSize:           cfg.OffsetMetadataMaxBytes,
			ConsumerHeartbeatInterval: msDuration(cfg.GroupConsumerHeartbeatMs),
			ConsumerSessionTimeout:    msDuration(cfg.GroupConsumerSessionTimeoutMs),
		},
		Txn: kafka.TxnConfig{
			Coordinator: txn.Config{
				Partitions:            cfg.TransactionStateLogNumPartitions,
				MaxTimeout:            msDuration(cfg.TransactionMaxTimeoutMs),
				IDExpiration:          msDuration(cfg.TransactionalIDExpirationMs),
				AbortInterval:         msDuration(cfg.TransactionAbortTimedOutIntervalMs),
				RemoveExpiredInterval: msDuration(cfg.TransactionRemoveExpiredIntervalMs),
			},
			ReplicationFactor: cfg.TransactionStateLogReplicationFactor,
			MinISR:            cfg.TransactionStateLogMinISR,
			Dial:              ibDial,
			SASL:              ibMech,

			NoPartitionVerification: !cfg.TransactionPartitionVerification,
		},
		GroupConsumerBounds: kafka.GroupConsumerBounds{
			MinSession:   msDuration(cfg.GroupConsumerMinSessionTimeoutMs),
			MaxSession:   msDuration(cfg.GroupConsumerMaxSessionTimeoutMs),
			MinHeartbeat: msDuration(cfg.GroupConsumerMinHeartbeatMs),
			MaxHeartbeat: msDuration(cfg.GroupConsumerMaxHeartbeatMs),
		},
		Logger:        logger,
		Metrics:       m,
		BrokerConfigs: cfg.Properties(),
		Controller:    ctrl,
		Replicas:      replicas,
		ConnectionLimits: kafka.ConnectionLimits{
			Max: cfg.MaxConnections, PerIP: cfg.MaxConnectionsPerIP, PerIPOverrides: cfg.MaxConnectionsPerIPOverrides,
		},
		SASL: saslCfg,
	}, bk, meta)
	if err != nil {
		return fail(err)
	}
	var clientHandler server.Handler = h
	if wrapClientHandler != nil {
		clientHandler = wrapClientHandler(h)
	}
	srv := server.New(clientHandler, server.Config{
		MaxRequestSize:               cfg.SocketRequestMaxBytes,
		QueuedMaxRequestBytes:        cfg.QueuedMaxRequestBytes, // -1: unbounded
		MaxConnections:               cfg.MaxConnections,
		MaxConnectionsPerIP:          cfg.MaxConnectionsPerIP,
		MaxConnectionsPerIPOverrides: cfg.MaxConnectionsPerIPOverrides,
		SASLMaxReceiveSize:           cfg.SASLServerMaxReceiveSize,
		Logger:                       logger,
		OnConnOpen:                   func() { m.ConnectionsActive.Inc(); m.ConnectionsTotal.Inc() },
		OnConnClose:                  m.ConnectionsActive.Dec,
		OnConnRejected:               m.ConnectionRejected,
	})
	// Dynamic broker configs may set other limits than the file's.
	h.OnConnectionLimits(func(l kafka.ConnectionLimits) { srv.SetConnectionLimits(l.Max, l.PerIP, l.PerIPOverrides) })
	m.RegisterRequestMemory(srv.QueuedRequestBytes, cfg.QueuedMaxRequestBytes)
	m.RegisterMetadata(cfg.NodeID, func() metrics.MetadataStatus { return metadataStatus(cfg.NodeID, meta, ctrl, isBroker) })
	m.RegisterReplication(func() metrics.ReplicationStatus { return replicationStatus(bk, replicas) })
	b := &Broker{listeners: cls, srv: srv, h: h, broker: bk, meta: meta, ctrl: ctrl, replicas: replicas, done: make(chan error, 1), logger: logger, isBroker: isBroker}
	b.csCtx, b.csCancel = context.WithCancel(context.Background())
	if httpLn != nil {
		b.http = metrics.Serve(httpLn, m, cfg.HTTPPprof)
		b.http.SetReady(true)
	}
	if apiLn := meta.ControllerAPIListener(); apiLn != nil {
		// The controller listener's Kafka half: registrations,
		// heartbeats and forwarded admin requests of the other nodes.
		b.ctrlSrv = server.New(h.ControllerAPI(), server.Config{
			MaxRequestSize:        cfg.SocketRequestMaxBytes,
			QueuedMaxRequestBytes: cfg.QueuedMaxRequestBytes,
			Logger:                logger.With("listener", "controller"),
		})
		b.ctrlDone = make(chan error, 1)
		go func() { b.ctrlDone <- b.ctrlSrv.Serve(apiLn) }()
		b.stopCtrl = func() {
			cancel()
			ctrlWG.Wait()
		}
		if isController {
			ctrlWG.Add(1)
			go func() {
				defer ctrlWG.Done()
				ctrl.RunController(ctx)
			}()
			if isBroker {
				ctrlWG.Add(1)
				go func() {
					defer ctrlWG.Done()
					ctrl.RunBroker(ctx, reg)
				}()
			}
		}
		if !isBroker {
			b.done <- nil // a controller-only node serves no clients
			logger.Info("controller-only node: serving the controller listener")
			return b, nil
		}
		// Clients are served once the broker is unfenced: its image
		// then holds the metadata log past its registration, and only
		// then are the partitions on disk matched with it.
		wctx, wcancel := nn.startContext(ctx)
		err := ctrl.WaitUnfenced(wctx)
		wcancel()
		if err == nil {
			err = h.AdoptPartitions()
		}
		if err != nil {
			b.done <- nil // the client listener was never served
			b.Close()
			return nil, err
		}
		logger.Info("broker unfenced: serving", "broker_epoch", ctrl.BrokerEpoch(), "metadata_offset", meta.Image().EndOffset)
	} else {
		cancel()
	}
	go b.serve(sources)
	return b, nil
}

// wrapClientHandler, when set, wraps the client listener's handler. Only
// tests set it (acl_export_test.go: principals from client ids, until
// SASL authenticates them); it is nil in every build but a test binary.
var wrapClientHandler func(server.Handler) server.Handler

// authorizerConfig is the authorizer's configuration, nil when
// authorizer.class.name is empty (no authorization, as Kafka's default).
func authorizerConfig(cfg config.Config) *acl.Config {
	if cfg.AuthorizerClassName == "" {
		return nil
	}
	return &acl.Config{SuperUsers: acl.ParseSuperUsers(cfg.SuperUsers), AllowEveryoneIfNoACLFound: cfg.AllowEveryoneIfNoACLFound}
}

// newReplicaManager returns a cluster node's replication: fetchers dial
// the leaders through the node's network, and ISR changes go to the
// active controller as AlterPartition requests.
func newReplicaManager(cfg config.Config, ctrl *controller.Controller, logger *slog.Logger, dial func(ctx context.Context, network, addr string) (net.Conn, error), mech sasl.Mechanism) *replica.Manager {
	return replica.New(replica.Config{
		NodeID:      cfg.NodeID,
		BrokerEpoch: ctrl.BrokerEpoch,
		Dial:        dial,
		SASL:        mech,
		AlterPartition: func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error) {
			resp, err := ctrl.Client().Send(ctx, req)
			if err != nil {
				return nil, err
			}
			ap, ok := resp.(*kmsg.AlterPartitionResponse)
			if !ok {
				return nil, fmt.Errorf("controller answered AlterPartition with %T", resp)
			}
			return ap, nil
		},
		Fetchers:              cfg.NumReplicaFetchers,
		FetchWaitMax:          msDuration(cfg.ReplicaFetchWaitMaxMs),
		FetchMinBytes:         cfg.ReplicaFetchMinBytes,
		FetchMaxBytes:         cfg.ReplicaFetchMaxBytes,
		FetchResponseMaxBytes: cfg.ReplicaFetchResponseMaxBytes,
		Backoff:               msDuration(cfg.ReplicaFetchBackoffMs),
		SocketTimeout:         msDuration(cfg.ReplicaSocketTimeoutMs),
		LagTimeMax:            msDuration(cfg.ReplicaLagTimeMaxMs),
		Logger:                logger.With("component", "replica"),
	})
}

// replicationStatus is what the replication gauges report, over the
// partitions this node leads.
func replicationStatus(bk *broker.Broker, replicas *replica.Manager) metrics.ReplicationStatus {
	var s metrics.ReplicationStatus
	for _, p := range bk.Partitions() {
		st, ok := p.Status()
		if !ok {
			continue
		}
		if st.ISR < st.Replicas {
			s.UnderReplicated++
		}
		switch {
		case st.ISR < st.MinISR:
			s.UnderMinISR++
		case st.ISR == st.MinISR:
			s.AtMinISR++
		}
		s.MaxLagOffsets = max(s.MaxLagOffsets, st.MaxLagOffsets)
		s.MaxLagSeconds = max(s.MaxLagSeconds, st.MaxLagTime.Seconds())
	}
	if replicas != nil {
		s.ISRShrinks, s.ISRExpands = replicas.ISRChanges()
	}
	s.StorageFailed, _ = bk.StorageFailed()
	return s
}

// metadataStatus is what the metadata gauges report, read at each scrape:
// the metadata log's state, this broker's lifecycle, and counts from the
// image.
//
// A controller-only node, which never registers, reports itself not
// fenced (an alert on fenced brokers must not fire for it) with epoch -1.
func metadataStatus(nodeID int32, meta *cluster.Store, ctrl *controller.Controller, isBroker bool) metrics.MetadataStatus {
	st := meta.Status()
	s := metrics.MetadataStatus{
		Offset: st.Offset, ControllerID: st.ControllerID, Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Fenced: isBroker && ctrl.Fenced(), BrokerEpoch: ctrl.BrokerEpoch(),
	}
	im := meta.Image()
	for _, b := range im.Brokers {
		switch {
		case b.Fenced:
			s.Brokers[metrics.BrokersFenced]++
		case b.InControlledShutdown:
			s.Brokers[metrics.BrokersControlledShutdown]++
		default:
			s.Brokers[metrics.BrokersUnfenced]++
		}
	}
	s.PartitionsLeaderless, s.PartitionsLed, s.PartitionsReassigning = im.PartitionCounts(nodeID)
	return s
}

// otherLiveBroker reports whether im has an unfenced broker other than
// self that is not shutting down.
func otherLiveBroker(im *cluster.Image, self int32) bool {
	for id, b := range im.Brokers {
		if id != self && !b.Fenced && !b.InControlledShutdown {
			return true
		}
	}
	return false
}

// newController returns the node's broker lifecycle: in quorum mode with a
// client of the active controller, which also reserves producer id blocks
// for this node.
func newController(cfg config.Config, clusterID string, meta *cluster.Store, logger *slog.Logger, nn nodeNet) *controller.Controller {
	c := controller.Config{
		NodeID: cfg.NodeID, ClusterID: clusterID, Store: meta, Logger: logger,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		HeartbeatInterval:        msDuration(cfg.BrokerHeartbeatIntervalMs),
		SessionTimeout:           msDuration(cfg.BrokerSessionTimeoutMs),

		UncleanLeaderElection:              cfg.UncleanLeaderElectionEnable,
		AutoLeaderRebalance:                cfg.AutoLeaderRebalanceEnable,
		LeaderImbalanceCheckInterval:       time.Duration(cfg.LeaderImbalanceCheckIntervalSeconds) * time.Second,
		LeaderImbalancePerBrokerPercentage: cfg.LeaderImbalancePerBrokerPercentage,
	}
	if meta.Quorum() {
		voters := map[int32]string{}
		for _, v := range cfg.QuorumVoters {
			voters[v.ID] = v.Addr
		}
		c.Client = controller.NewClient(cfg.NodeID, voters, meta.ControllerID, nn.dialContext)
		c.ControllerListener = cfg.ControllerListenerNames[0]
	}
	ctrl := controller.New(c)
	if c.Client != nil {
		meta.SetRemoteProducerIDs(ctrl.ReserveProducerIDs)
	}
	return ctrl
}

// quorumClusterID is the cluster id a node of a controller quorum writes
// into a new data dir: derived from controller.quorum.voters, so that
// every node of one cluster agrees on it without a format step (Kafka's
// `kafka-storage format --cluster-id`): the voters' ids and addresses, as
// written, in id order. "" in local mode: a random id.
func quorumClusterID(cfg config.Config) string {
	if !cfg.Quorum() {
		return ""
	}
	// In id order, so that lists naming the same voters in another
	// order agree.
	voters := slices.SortedFunc(slices.Values(cfg.QuorumVoters), func(a, b config.Voter) int { return cmp.Compare(a.ID, b.ID) })
	h := sha256.New()
	for _, v := range voters {
		fmt.Fprintf(h, "%d@%s,", v.ID, v.Addr)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// openMetadata opens the metadata store: in local mode on the
// __cluster_metadata-0 log, in quorum mode on raft under
// <first log dir>/__raft, waiting until a controller is elected and the
// image has caught up with the quorum's log, so that the handlers start
// from the metadata the cluster has.
func openMetadata(cfg config.Config, bk *broker.Broker, metaCfg log.Config, ctrlLn net.Listener, logger *slog.Logger, nn nodeNet) (*cluster.Store, error) {
	opts := cluster.Options{NodeID: cfg.NodeID, SnapshotBytes: cfg.MetadataSnapshotBytes, Logger: logger}
	// Neither mode may start on the other's metadata: it would find no
	// topics and, in local mode, remove every partition as unknown.
	// Moving a data dir between the modes is not built.
	raftDir := filepath.Join(cfg.LogDirs[0], RaftDir)
	_, err := os.Stat(raftDir)
	hasRaft := err == nil
	if !cfg.Quorum() {
		if hasRaft {
			return nil, fmt.Errorf("%s holds the raft state of a controller quorum: start this node with its controller.quorum.voters", raftDir)
		}
		metaLog, err := bk.Internal(cluster.MetadataTopic, metaCfg)
		if err != nil {
			return nil, err
		}
		return cluster.Open(metaLog, opts)
	}
	if !hasRaft {
		for _, dir := range cfg.LogDirs {
			local := filepath.Join(dir, cluster.MetadataTopic.String())
			if _, err := os.Stat(local); err == nil {
				ctrlLn.Close()
				return nil, fmt.Errorf("%s is a local metadata log (a node started without controller.quorum.voters): moving it onto a controller quorum is not supported", local)
			}
		}
	}
	q := cluster.QuorumOptions{
		Dir: raftDir, Listener: ctrlLn, Dial: nn.quorumDial,
		SnapshotThreshold: uint64(cfg.MetadataRaftSnapshotThreshold),
		SnapshotInterval:  msDuration(cfg.MetadataRaftSnapshotIntervalMs),
		TrailingLogs:      uint64(cfg.MetadataRaftTrailingLogs),
	}
	for _, v := range cfg.QuorumVoters {
		q.Voters = append(q.Voters, cluster.Voter{ID: v.ID, Addr: v.Addr})
	}
	if !cfg.HasRole("controller") {
		q.Addr = controllerAddr(cfg, ctrlLn)
	}
	meta, err := cluster.OpenQuorum(opts, q)
	if err != nil {
		return nil, err
	}
	if !cfg.HasRole("controller") {
		// A broker-only node catches up only once it registered and
		// the active controller added it to raft (start).
		return meta, nil
	}
	ctx, cancel := nn.startContext(context.Background())
	defer cancel()
	logger.Info("waiting for the controller quorum", "voters", len(q.Voters), "controller_listener", ctrlLn.Addr().String())
	if err := meta.WaitCaughtUp(ctx); err != nil {
		meta.Close()
		return nil, fmt.Errorf("%w (is a majority of controller.quorum.voters running?)", err)
	}
	logger.Info("joined the controller quorum", "controller", meta.ControllerID(), "metadata_offset_so_far", meta.Image().EndOffset)
	return meta, nil
}

// controllerAddr is the address the others dial this node's controller
// listener at: its listeners entry, with the port actually bound when
// that is 0.
func controllerAddr(cfg config.Config, ctrlLn net.Listener) string {
	addr, _ := cfg.ControllerAddr()
	host, port, _ := net.SplitHostPort(addr)
	if port == "0" || port == "" {
		_, port, _ = net.SplitHostPort(ctrlLn.Addr().String())
	}
	return net.JoinHostPort(host, port)
}

// nonvoterAddr is a broker-only node's controller listener address, as
// it registers it.
func nonvoterAddr(cfg config.Config, meta *cluster.Store) string {
	return controllerAddr(cfg, meta.ControllerAPIListener())
}

// topicDefaults maps broker log.* properties to the default topic config.
func topicDefaults(cfg config.Config) (broker.TopicConfig, error) {
	tc := broker.DefaultTopicConfig()
	tc.Log.SegmentBytes = cfg.LogSegmentBytes
	tc.Log.SegmentMs = cfg.LogRollMs
	tc.Log.RetentionMs = cfg.LogRetentionMs
	tc.Log.RetentionBytes = cfg.LogRetentionBytes
	tc.Log.IndexIntervalBytes = cfg.LogIndexIntervalBytes
	tc.Log.SegmentIndexBytes = cfg.LogIndexSizeMaxBytes
	tc.Log.FlushMessages = cfg.LogFlushIntervalMessages
	tc.Log.FlushMs = cfg.LogFlushIntervalMs
	tc.Log.FileDeleteDelayMs = cfg.LogSegmentDeleteDelayMs
	tc.MaxMessageBytes = cfg.MessageMaxBytes
	tc.TimestampBeforeMaxMs = cfg.LogMessageTimestampBefore
	tc.TimestampAfterMaxMs = cfg.LogMessageTimestampAfter
	// Validate the broker-level values through the topic config parser.
	return broker.ParseTopicConfig(tc, map[string]string{
		"message.timestamp.type":         cfg.LogMessageTimestampType,
		"compression.type":               cfg.CompressionType,
		"cleanup.policy":                 cfg.LogCleanupPolicy,
		"min.insync.replicas":            strconv.Itoa(cfg.MinInsyncReplicas),
		"unclean.leader.election.enable": strconv.FormatBool(cfg.UncleanLeaderElectionEnable),
	})
}

// loadMetaProperties reads or creates <dir>/meta.properties (Kafka's
// version=1 format) and returns the cluster id. Writes go through fsys
// (fs.OS but in power-loss tests).
func loadMetaProperties(fsys fs.FS, dir string, nodeID int32, newID string) (string, error) {
	// Durably: the log manager creates (and syncs in its parent) only a
	// log dir that does not exist yet, and this runs first. Without the
	// sync a power loss could take the whole dir, acknowledged records
	// and cluster id with it.
	if err := fs.MkdirAll(fsys, dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "meta.properties")
	data, err := fsys.ReadFile(path)
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok {
				return v, nil
			}
		}
		return "", fmt.Errorf("%s has no cluster.id", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	clusterID := newID
	if clusterID == "" {
		var id [16]byte
		rand.Read(id[:])
		clusterID = base64.RawURLEncoding.EncodeToString(id[:])
	}
	content := fmt.Sprintf("#\n#strata\nversion=1\nnode.id=%d\ncluster.id=%s\n", nodeID, clusterID)
	// Durably: a power loss must not leave a dir whose metadata was
	// written under an id the file does not hold.
	return clusterID, fs.WriteAtomic(fsys, path, []byte(content))
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// Addr is the address the broker's first client listener listens on
// (host:port). It is "" on a controller-only node, which serves no
// clients.
func (b *Broker) Addr() string {
	if len(b.listeners) == 0 {
		return ""
	}
	return b.listeners[0].ln.Addr().String()
}

// ListenerAddr is the address client listener name listens on, "" when
// there is none.
func (b *Broker) ListenerAddr(name string) string {
	for _, cl := range b.listeners {
		if cl.Name == name {
			return cl.ln.Addr().String()
		}
	}
	return ""
}

// serve serves every client listener and reports on done the first
// error, once all of them returned.
func (b *Broker) serve(sources map[string]*tlsconf.Source) {
	errs := make(chan error, len(b.listeners))
	for _, cl := range b.listeners {
		b.logger.Info("serving", "listener", cl.Name, "security_protocol", cl.Protocol, "addr", cl.ln.Addr().String())
		go func() { errs <- b.srv.ServeListener(cl.ln, serverListener(cl, sources)) }()
	}
	var first error
	for range b.listeners {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	b.done <- first
}

// HTTPAddr is the address of the /metrics, /healthz and /readyz endpoint
// (http.listener), "" when it is disabled.
func (b *Broker) HTTPAddr() string {
	if b.http == nil {
		return ""
	}
	return b.http.Addr()
}

// AbortControlledShutdown makes a Close in progress (or to come) stop
// waiting for its leaderships to move away: a second SIGTERM.
func (b *Broker) AbortControlledShutdown() { b.csCancel() }

// Close stops accepting connections, lets in-flight requests finish, then
// flushes and closes every log and writes the clean-shutdown marker, so the
// next start skips recovery.
// Close may be called more than once; later calls return the first result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.http != nil {
			b.http.SetReady(false) // load balancers stop sending work first
		}
		if b.stopCtrl != nil && b.isBroker {
			// Controlled shutdown: leaderships move away before the
			// broker stops serving, bounded so that a node cut off
			// from the quorum still stops.
			ctx, cancel := context.WithTimeout(b.csCtx, controlledShutdownTimeout)
			if err := b.ctrl.ControlledShutdown(ctx); err != nil {
				b.logger.Warn("controlled shutdown did not finish; stopping anyway", "err", err)
			}
			cancel()
		}
		b.h.Stop() // parked fetches answer now instead of at MaxWait
		err := b.srv.Close()
		if serr := <-b.done; err == nil && serr != nil && !errors.Is(serr, net.ErrClosed) {
			err = serr
		}
		if b.replicas != nil {
			b.replicas.Close() // no follower append after this
		}
		if b.stopCtrl != nil {
			b.stopCtrl()
			b.ctrl.Client().Close()
			b.ctrlSrv.Close()
			<-b.ctrlDone
		}
		// A snapshot of the metadata image, so the next start replays
		// nothing; before the broker closes the metadata log.
		if merr := b.meta.Close(); err == nil && merr != nil {
			err = merr
		}
		if cerr := b.broker.Close(); err == nil {
			err = cerr
		}
		if b.http != nil {
			b.http.Close()
		}
		b.closeErr = err
	})
	return b.closeErr
}
