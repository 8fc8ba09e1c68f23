// Package broker is the replica manager of one node: the partitions it
// hosts over internal/log, their high watermarks, idempotent-producer state
// and the fetchers long-polling them. It knows nothing of the wire protocol
// or of where topic metadata comes from.
package broker

import (
	"fmt"
	"log/slog"
	"sync"

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
}

// Broker owns this node's partitions.
type Broker struct {
	logger *slog.Logger
	logs   *log.Manager

	mu    sync.RWMutex
	parts map[log.TopicPartition]*Partition
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
	b := &Broker{logger: cfg.Logger, logs: logs, parts: map[log.TopicPartition]*Partition{}}
	for tp, l := range logs.Logs() {
		if _, internal := cfg.Internal[tp]; internal {
			continue
		}
		p := newPartition(tp, l)
		if err := p.RebuildProducerState(); err != nil {
			logs.Close()
			return nil, fmt.Errorf("rebuild producer state of %s: %w", tp, err)
		}
		b.parts[tp] = p
	}
	return b, nil
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

// CreatePartition creates (or returns) the partition's log with cfg.
func (b *Broker) CreatePartition(tp log.TopicPartition, cfg log.Config) (*Partition, error) {
	if p := b.Partition(tp); p != nil {
		return p, p.Log.SetConfig(cfg)
	}
	l, err := b.logs.GetOrCreate(tp, cfg)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.parts[tp]; p != nil {
		return p, nil
	}
	p := newPartition(tp, l)
	b.parts[tp] = p
	return p, nil
}

// DeletePartition removes the partition and its files.
func (b *Broker) DeletePartition(tp log.TopicPartition) error {
	b.mu.Lock()
	delete(b.parts, tp)
	b.mu.Unlock()
	return b.logs.Delete(tp)
}

// Close flushes and closes every log, leaving the dirs clean for a fast
// start.
func (b *Broker) Close() error { return b.logs.Close() }
