package replica

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/log"
)

// Config is the replica manager's: Kafka's replica.* settings and how
// to reach the other brokers and the controller.
type Config struct {
	NodeID      int32
	BrokerEpoch func() int64 // this broker's current registration epoch
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	// SASL, when set, is how fetchers authenticate to the leaders: the
	// inter-broker listener is SASL_PLAINTEXT or SASL_SSL (Dial does TLS).
	SASL sasl.Mechanism
	// AlterPartition sends an ISR change to the active controller and
	// returns its answer (nil on a single node: no ISR ever changes).
	AlterPartition func(ctx context.Context, req *kmsg.AlterPartitionRequest) (*kmsg.AlterPartitionResponse, error)

	Fetchers              int           // num.replica.fetchers
	FetchWaitMax          time.Duration // replica.fetch.wait.max.ms
	FetchMinBytes         int32         // replica.fetch.min.bytes
	FetchMaxBytes         int32         // replica.fetch.max.bytes
	FetchResponseMaxBytes int32         // replica.fetch.response.max.bytes
	Backoff               time.Duration // replica.fetch.backoff.ms
	SocketTimeout         time.Duration // replica.socket.timeout.ms
	LagTimeMax            time.Duration // replica.lag.time.max.ms
	Logger                *slog.Logger
}

func (c *Config) defaults() {
	if c.Fetchers < 1 {
		c.Fetchers = 1
	}
	if c.FetchWaitMax <= 0 {
		c.FetchWaitMax = 500 * time.Millisecond
	}
	if c.FetchMinBytes <= 0 {
		c.FetchMinBytes = 1
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = 1 << 20
	}
	if c.FetchResponseMaxBytes <= 0 {
		c.FetchResponseMaxBytes = 10 << 20
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.SocketTimeout <= 0 {
		c.SocketTimeout = 30 * time.Second
	}
	if c.LagTimeMax <= 0 {
		c.LagTimeMax = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BrokerEpoch == nil {
		c.BrokerEpoch = func() int64 { return -1 }
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
}

// Manager runs this node's replication (Kafka's ReplicaManager, the
// parts that are not request handling): the fetchers of the partitions it
// follows, one per leader (times num.replica.fetchers), and for those it
// leads the ISR: shrinking it when a follower lags past
// replica.lag.time.max.ms and sending the changes to the controller.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	fetchers map[fetcherKey]*fetcher
	follows  map[log.TopicPartition]fetcherKey
	leads    map[log.TopicPartition]led
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup

	shrinks, expands atomic.Int64
}

// ISRChanges returns how many ISR shrinks and expansions of partitions
// led here the controller accepted.
func (m *Manager) ISRChanges() (shrinks, expands int64) {
	return m.shrinks.Load(), m.expands.Load()
}

type fetcherKey struct {
	leader int32
	addr   string
	index  int
}

// led is a partition this node leads, for the ISR checks.
type led struct {
	p       *broker.Partition
	topicID [16]byte
}

// New starts a manager; Close stops it.
func New(cfg Config) *Manager {
	cfg.defaults()
	m := &Manager{
		cfg:      cfg,
		fetchers: map[fetcherKey]*fetcher{},
		follows:  map[log.TopicPartition]fetcherKey{},
		leads:    map[log.TopicPartition]led{},
		stop:     make(chan struct{}),
	}
	if cfg.AlterPartition != nil {
		m.wg.Add(1)
		go m.checkISRs()
	}
	return m
}

// Follow makes this node fetch p from leader (at addr) in leaderEpoch,
// moving it from the fetcher it had, if any.
func (m *Manager) Follow(p *broker.Partition, topicID [16]byte, leader int32, addr string, leaderEpoch int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return log.ErrClosed
	}
	delete(m.leads, p.TP)
	key := fetcherKey{leader, addr, m.index(p.TP)}
	if old, ok := m.follows[p.TP]; ok && old != key {
		m.removeLocked(p.TP, old)
	}
	f := m.fetchers[key]
	if f == nil {
		var err error
		if f, err = newFetcher(m, leader, addr); err != nil {
			return fmt.Errorf("replica fetcher for broker %d at %s: %w", leader, addr, err)
		}
		m.fetchers[key] = f
	}
	m.follows[p.TP] = key
	f.mu.Lock()
	cur := f.parts[p.TP]
	f.mu.Unlock()
	if cur == nil || cur.p != p || cur.leaderEpoch != leaderEpoch {
		f.set(p.TP, &followed{p: p, topicID: topicID, leaderEpoch: leaderEpoch})
	}
	return nil
}

// Lead records that this node leads p: no fetcher for it, and its ISR is
// checked.
func (m *Manager) Lead(p *broker.Partition, topicID [16]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.follows[p.TP]; ok {
		m.removeLocked(p.TP, old)
	}
	m.leads[p.TP] = led{p, topicID}
}

// Stop forgets tp: neither fetched nor led (a deleted partition, a
// replica moved away, or a partition with no leader).
func (m *Manager) Stop(tp log.TopicPartition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.follows[tp]; ok {
		m.removeLocked(tp, old)
	}
	delete(m.leads, tp)
}

// removeLocked takes tp off the fetcher key, stopping the fetcher when it
// has nothing left. Requires mu.
func (m *Manager) removeLocked(tp log.TopicPartition, key fetcherKey) {
	delete(m.follows, tp)
	f := m.fetchers[key]
	if f == nil {
		return
	}
	if f.remove(tp) {
		delete(m.fetchers, key)
		go f.stop()
	}
}

func (m *Manager) index(tp log.TopicPartition) int {
	if m.cfg.Fetchers == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(tp.Topic))
	return int((h.Sum32() + uint32(tp.Partition)) % uint32(m.cfg.Fetchers))
}

// Close stops every fetcher and the ISR checks, and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	fs := m.fetchers
	m.fetchers = map[fetcherKey]*fetcher{}
	m.follows = map[log.TopicPartition]fetcherKey{}
	m.mu.Unlock()
	close(m.stop)
	for _, f := range fs {
		f.stop()
	}
	m.wg.Wait()
}

// checkISRs shrinks the ISR of led partitions whose followers lag, every
// half replica.lag.time.max.ms, as Kafka's isr-expiration task.
func (m *Manager) checkISRs() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.LagTimeMax / 2)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		leads := make([]led, 0, len(m.leads))
		for _, l := range m.leads {
			leads = append(leads, l)
		}
		m.mu.Unlock()
		now := time.Now()
		for _, l := range leads {
			if isr := l.p.MaybeShrinkISR(now, m.cfg.LagTimeMax); isr != nil {
				m.cfg.Logger.Info("shrinking ISR: a follower lags", "partition", l.p.TP, "isr", isr, "replica_lag_time_max", m.cfg.LagTimeMax)
				m.ProposeISR(l.p, l.topicID, isr)
			}
		}
	}
}

// ProposeISR sends the ISR change p proposed (FollowerFetch,
// MaybeShrinkISR) to the controller (Kafka's AlterPartitionManager) and
// reports the answer back to p. It does not block.
func (m *Manager) ProposeISR(p *broker.Partition, topicID [16]byte, isr []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.AlterPartition == nil || m.closed {
		p.ISRChangeFailed()
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.proposeISR(p, topicID, isr)
	}()
}

func (m *Manager) proposeISR(p *broker.Partition, topicID [16]byte, isr []int32) {
	pr := p.Proposal(isr)
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	req.BrokerID = m.cfg.NodeID
	req.BrokerEpoch = m.cfg.BrokerEpoch()
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic, rt.TopicID = p.TP.Topic, topicID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition = p.TP.Partition
	rp.LeaderEpoch = pr.LeaderEpoch
	rp.PartitionEpoch = pr.PartitionEpoch
	rp.NewISR = isr
	for _, id := range isr {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, pr.BrokerEpochs[id]
		if id == m.cfg.NodeID {
			e.BrokerEpoch = req.BrokerEpoch
		}
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.SocketTimeout)
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, err := m.cfg.AlterPartition(ctx, req)
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err == nil {
		for _, t := range resp.Topics {
			for _, sp := range t.Partitions {
				if sp.Partition != p.TP.Partition {
					continue
				}
				if sp.ErrorCode == kerr.NewLeaderElected.Code {
					// The change was made and completed a reassignment
					// that removed this replica (KIP-455): it no longer
					// leads, and its image will say so and delete it.
					// As Kafka's leader, keep the proposal pending
					// until then rather than propose again.
					m.cfg.Logger.Info("ISR changed; a reassignment completed and moved the leader away", "partition", p.TP, "isr", isr)
					return
				}
				if sp.ErrorCode != 0 {
					err = kerr.ErrorForCode(sp.ErrorCode)
					break
				}
				m.cfg.Logger.Info("ISR changed", "partition", p.TP, "isr", sp.ISR, "leader_epoch", sp.LeaderEpoch, "partition_epoch", sp.PartitionEpoch)
				switch before := p.InSyncReplicas(); {
				case len(sp.ISR) < before:
					m.shrinks.Add(1)
				case len(sp.ISR) > before:
					m.expands.Add(1)
				}
				p.ISRChanged(sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch)
				return
			}
		}
		if err == nil {
			err = fmt.Errorf("replica: the controller's answer lacks partition %s", p.TP)
		}
	}
	m.cfg.Logger.Warn("ISR change not made", "partition", p.TP, "isr", isr, "err", err)
	// The controller refused (the image will bring the state it holds)
	// or was not reached: a later fetch or check proposes again, after
	// a pause so that a refusing controller is not flooded.
	sleepOrStop(m.stop, m.cfg.Backoff)
	p.ISRChangeFailed()
}

func sleepOrStop(stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
	case <-t.C:
	}
}
