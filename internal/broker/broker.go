package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-io/strata/internal/log"
)

// Config configures a Broker.
type Config struct {
	LogDirs []string
	Logger  *slog.Logger
	// Manager tunes the log manager (intervals); Dirs and Logger are set
	// from the fields above.
	Manager log.ManagerConfig
	// Internal lists partitions that are not topic data (the metadata log):
	// they are opened with their own config and not served as partitions.
	Internal map[log.TopicPartition]log.Config
	// ProducerIDExpiration is producer.id.expiration.ms: a partition
	// forgets an idempotent producer whose last batch there is older.
	// Default 24 h.
	ProducerIDExpiration time.Duration
	// ProducerIDExpirationCheck is producer.id.expiration.check.interval.ms.
	// Default 10 minutes.
	ProducerIDExpirationCheck time.Duration
	// Replicated is set on a cluster node: a partition opens with the
	// high watermark its checkpoint had, and only its leadership
	// (Partition.MakeLeader) raises it, as the ISR allows. On a single
	// node everything in the log counts as committed at open.
	Replicated bool
}

// Broker owns this node's partitions.
type Broker struct {
	logger *slog.Logger
	logs   *log.Manager

	// createMu serializes CreatePartition, whose loading writes files,
	// without holding mu (which produce and fetch take) across it.
	createMu sync.Mutex

	mu    sync.RWMutex
	parts map[log.TopicPartition]*Partition

	expiration time.Duration
	replicated bool
	storage    *storageHealth
	stop       chan struct{}
	stopOnce   sync.Once
	expirer    sync.WaitGroup
}

// Open loads every partition in the log dirs.
func Open(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mc := cfg.Manager
	mc.Dirs, mc.Logger = cfg.LogDirs, cfg.Logger
	if mc.ConfigFor == nil {
		mc.ConfigFor = func(tp log.TopicPartition) log.Config {
			if c, ok := cfg.Internal[tp]; ok {
				return c
			}
			// Topic configs are applied by the caller once metadata is
			// loaded (SetConfig); until then, defaults.
			return log.DefaultConfig()
		}
	}
	logs, err := log.OpenManager(mc)
	if err != nil {
		return nil, err
	}
	if cfg.ProducerIDExpiration <= 0 {
		cfg.ProducerIDExpiration = 24 * time.Hour
	}
	if cfg.ProducerIDExpirationCheck <= 0 {
		cfg.ProducerIDExpirationCheck = 10 * time.Minute
	}
	b := &Broker{
		logger: cfg.Logger, logs: logs, parts: map[log.TopicPartition]*Partition{},
		expiration: cfg.ProducerIDExpiration, replicated: cfg.Replicated, stop: make(chan struct{}),
	}
	b.storage = &storageHealth{dirs: cfg.LogDirs, logger: cfg.Logger, interval: time.Second, stop: b.stop}
	var parts []*Partition
	for tp, l := range logs.Logs() {
		if _, internal := cfg.Internal[tp]; internal {
			continue
		}
		parts = append(parts, b.newPartition(tp, l))
	}
	err = parallel(parts, func(p *Partition) error {
		if err := p.open(); err != nil {
			return fmt.Errorf("open partition %s: %w", p.TP, err)
		}
		return nil
	})
	if err != nil {
		logs.Close()
		return nil, err
	}
	for _, p := range parts {
		b.parts[p.TP] = p
	}
	b.expirer.Add(1)
	go b.expireProducers(cfg.ProducerIDExpirationCheck)
	return b, nil
}

func (b *Broker) newPartition(tp log.TopicPartition, l *log.Log) *Partition {
	p := newPartition(tp, l, b.logger)
	p.expiration = b.expiration
	p.onTruncate = b.logs.Checkpoint
	p.onWrite = b.storage.report
	p.keepCheckpointedHW = b.replicated
	return p
}

// expireProducers removes expired idempotent producers from every
// partition each interval, as Kafka's UnifiedLog does on its
// PRODUCER_EXPIRATION_CHECK schedule. Without it every producer that ever
// wrote (one per client restart) stays in memory and in every snapshot.
func (b *Broker) expireProducers(interval time.Duration) {
	defer b.expirer.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			n := 0
			for _, p := range b.Partitions() {
				n += p.RemoveExpiredProducers(now)
			}
			if n > 0 {
				b.logger.Debug("removed expired producers", "producers", n)
			}
		}
	}
}

// parallel runs fn on every partition, a few at a time: loading and
// snapshotting partitions is mostly waiting for reads and fsyncs.
func parallel(parts []*Partition, fn func(*Partition) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for _, p := range parts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Internal returns (creating if needed) an internal partition's log.
func (b *Broker) Internal(tp log.TopicPartition, cfg log.Config) (*log.Log, error) {
	return b.logs.GetOrCreate(tp, cfg)
}

// Partition returns the partition or nil.
func (b *Broker) Partition(tp log.TopicPartition) *Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.parts[tp]
}

// Partitions returns a snapshot of every hosted partition.
func (b *Broker) Partitions() []*Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*Partition, 0, len(b.parts))
	for _, p := range b.parts {
		out = append(out, p)
	}
	return out
}

// CreatePartition creates (or returns) the partition's log with cfg. A new
// partition gets its leader-epoch-checkpoint (epoch 0 from the log start
// offset); the caller records the topic id with Partition.WriteMetadata.
func (b *Broker) CreatePartition(tp log.TopicPartition, cfg log.Config) (*Partition, error) {
	if p := b.Partition(tp); p != nil {
		return p, p.Log.SetConfig(cfg)
	}
	b.createMu.Lock()
	defer b.createMu.Unlock()
	if p := b.Partition(tp); p != nil {
		return p, nil
	}
	l, err := b.logs.GetOrCreate(tp, cfg)
	if err != nil {
		return nil, err
	}
	p := b.newPartition(tp, l)
	if err := p.open(); err != nil {
		return nil, fmt.Errorf("open partition %s: %w", tp, err)
	}
	b.mu.Lock()
	b.parts[tp] = p
	b.mu.Unlock()
	return p, nil
}

// DeletePartition removes the partition and its files.
func (b *Broker) DeletePartition(tp log.TopicPartition) error {
	b.detach(tp)
	return b.logs.Delete(tp)
}

// MarkStray sets a partition aside (log.Manager.MarkStray): closed,
// renamed -stray, kept on disk. It returns the new directory.
func (b *Broker) MarkStray(tp log.TopicPartition) (string, error) {
	b.detach(tp)
	return b.logs.MarkStray(tp)
}

// detach takes a partition out of the table before its directory is
// renamed: appends and waits end, and no snapshot write goes into the
// directory being moved.
func (b *Broker) detach(tp log.TopicPartition) {
	b.mu.Lock()
	p := b.parts[tp]
	delete(b.parts, tp)
	b.mu.Unlock()
	if p != nil {
		p.markDeleted()
		p.snapWG.Wait()
	}
}

// Close snapshots every partition's producer state at its log end offset
// (Kafka's clean-shutdown snapshot), then flushes and closes every log,
// leaving the dirs clean for a fast start. A failed snapshot only costs
// replay at the next start; it is reported but does not stop the close.
func (b *Broker) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	b.expirer.Wait()
	err := parallel(b.Partitions(), func(p *Partition) error {
		if err := p.Close(); err != nil {
			b.logger.Error("close partition", "partition", p.TP, "err", err)
			return fmt.Errorf("close partition %s: %w", p.TP, err)
		}
		return nil
	})
	return errors.Join(err, b.logs.Close())
}
