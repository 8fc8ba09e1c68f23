package log

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/fs"
)

// TopicPartition names a partition; its directory is "<topic>-<partition>".
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

func (tp TopicPartition) compare(o TopicPartition) int {
	return cmp.Or(cmp.Compare(tp.Topic, o.Topic), cmp.Compare(tp.Partition, o.Partition))
}

// parsePartitionDir parses "<topic>-<partition>". Topics may contain '-', so
// the partition is what follows the last one.
func parsePartitionDir(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// deleteDirSuffix marks a partition directory being deleted, as Kafka's
// "<topic>-<partition>.<uuid>-delete".
const deleteDirSuffix = "-delete"

// ManagerConfig configures the log dirs. Zero durations take Kafka's
// defaults.
type ManagerConfig struct {
	// Dirs are the log directories (log.dirs). New partitions go to the
	// one holding the fewest.
	Dirs []string
	// RetentionCheckInterval: log.retention.check.interval.ms (5 min).
	RetentionCheckInterval time.Duration
	// CheckpointInterval: log.flush.offset.checkpoint.interval.ms (1 min).
	CheckpointInterval time.Duration
	// FlushCheckInterval is how often flush.ms is checked. Kafka's
	// log.flush.scheduler.interval.ms defaults to never, which makes a
	// topic's flush.ms do nothing; strata checks every second.
	FlushCheckInterval time.Duration
	// ConfigFor returns the configuration of a partition found on disk.
	// Nil means DefaultConfig.
	ConfigFor func(TopicPartition) Config
	Logger    *slog.Logger
	Now       func() time.Time
	// OnSync is passed to every log (Options.OnSync).
	OnSync func(time.Duration)
	// FS is the file system of the log dirs (Options.FS); nil is fs.OS.
	FS fs.FS
}

// Manager owns the partition logs of one broker across its log dirs: it
// loads them at start (recovering after an unclean shutdown), writes the
// dir-level checkpoints, runs retention and time-based flushes, and on Close
// leaves the clean-shutdown marker that lets the next start skip recovery.
type Manager struct {
	fsys   fs.FS
	cfg    ManagerConfig
	logger *slog.Logger

	mu     sync.RWMutex
	logs   map[TopicPartition]*Log
	dirOf  map[TopicPartition]string
	locks  []*os.File
	closed bool

	// checkpointMu serializes Checkpoint, reading the offsets through
	// writing the files: otherwise a checkpoint that read a recovery
	// point before a truncation could rename its file over the one
	// written after it (a follower's TruncateTo checkpoints at once).
	checkpointMu sync.Mutex

	stop chan struct{}
	wg   sync.WaitGroup
}

// OpenManager locks each log dir, loads every partition in it, and starts
// the background work.
func OpenManager(cfg ManagerConfig) (*Manager, error) {
	if len(cfg.Dirs) == 0 {
		return nil, errors.New("log: no log dirs configured")
	}
	cfg.RetentionCheckInterval = cmp.Or(cfg.RetentionCheckInterval, 5*time.Minute)
	cfg.CheckpointInterval = cmp.Or(cfg.CheckpointInterval, time.Minute)
	cfg.FlushCheckInterval = cmp.Or(cfg.FlushCheckInterval, time.Second)
	if cfg.ConfigFor == nil {
		cfg.ConfigFor = func(TopicPartition) Config { return DefaultConfig() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{
		fsys:   fs.Or(cfg.FS),
		cfg:    cfg,
		logger: cfg.Logger,
		logs:   map[TopicPartition]*Log{},
		dirOf:  map[TopicPartition]string{},
		stop:   make(chan struct{}),
	}
	for _, dir := range cfg.Dirs {
		if err := m.loadDir(dir); err != nil {
			m.closeLogs()
			m.unlock()
			return nil, err
		}
	}
	m.wg.Add(1)
	go m.background()
	return m, nil
}

// loadDir locks dir and opens its partitions in parallel.
func (m *Manager) loadDir(dir string) error {
	// A log dir created now must survive a power loss with what is then
	// written in it, so its own name is fsynced too.
	if err := fs.MkdirAll(m.fsys, dir, 0o755); err != nil {
		return fmt.Errorf("create log dir %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	m.locks = append(m.locks, lock)

	marker := filepath.Join(dir, CleanShutdownFile)
	_, statErr := m.fsys.Stat(marker)
	clean := statErr == nil
	checkpoints := make([]map[TopicPartition]int64, 3)
	for i, name := range []string{RecoveryPointCheckpoint, LogStartOffsetCheckpoint, ReplicationCheckpoint} {
		if checkpoints[i], err = readCheckpoint(m.fsys, filepath.Join(dir, name)); err != nil {
			// Kafka fails here; a checkpoint only saves work, so strata
			// recovers everything instead.
			m.logger.Warn("ignoring unreadable checkpoint; recovering every log in the dir", "err", err)
			checkpoints[i] = map[TopicPartition]int64{}
			clean = false
		}
	}
	entries, err := m.fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read log dir %s: %w", dir, err)
	}
	var tps []TopicPartition
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasSuffix(e.Name(), deleteDirSuffix) {
			m.removeInBackground(filepath.Join(dir, e.Name()))
			continue
		}
		if tp, ok := parsePartitionDir(e.Name()); ok {
			tps = append(tps, tp)
		}
	}
	m.logger.Info("loading logs", "dir", dir, "partitions", len(tps), "clean_shutdown", clean)
	start := time.Now()
	logs, err := m.openParallel(dir, tps, func(tp TopicPartition) Options {
		rp, ok := checkpoints[0][tp]
		return Options{
			RecoveryPoint:  rp,
			LogStartOffset: checkpoints[1][tp],
			HighWatermark:  checkpoints[2][tp],
			// A log missing from the recovery checkpoint was created
			// after it was written: recover it.
			CleanShutdown: clean && ok,
			Logger:        m.logger,
			Now:           m.cfg.Now,
			OnSync:        m.cfg.OnSync,
			FS:            m.fsys,
		}
	})
	m.mu.Lock()
	for tp, l := range logs {
		m.logs[tp] = l
		m.dirOf[tp] = dir
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	// Only now, with every log loaded, may the marker go: a crash before
	// this point leaves the files as they were.
	if err := m.fsys.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", marker, err)
	}
	if err := m.fsys.SyncDir(dir); err != nil {
		return err
	}
	m.logger.Info("loaded logs", "dir", dir, "partitions", len(tps), "took", time.Since(start))
	return nil
}

// openParallel opens logs with one worker per CPU.
func (m *Manager) openParallel(dir string, tps []TopicPartition, opts func(TopicPartition) Options) (map[TopicPartition]*Log, error) {
	var (
		mu   sync.Mutex
		out  = make(map[TopicPartition]*Log, len(tps))
		errs []error
		wg   sync.WaitGroup
		work = make(chan TopicPartition)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tp := range work {
				l, err := Open(filepath.Join(dir, tp.String()), m.cfg.ConfigFor(tp), opts(tp))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out[tp] = l
				}
				mu.Unlock()
			}
		}()
	}
	for _, tp := range tps {
		work <- tp
	}
	close(work)
	wg.Wait()
	return out, errors.Join(errs...)
}

// lockDir takes an exclusive flock on <dir>/.lock so two brokers never share
// a log dir (Kafka's LogManager does the same).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock of log dir %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("log dir %s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// Get returns the log of tp, or nil.
func (m *Manager) Get(tp TopicPartition) *Log {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.logs[tp]
}

// GetOrCreate returns the log of tp, creating it with cfg in the log dir
// that holds the fewest partitions.
func (m *Manager) GetOrCreate(tp TopicPartition, cfg Config) (*Log, error) {
	if l := m.Get(tp); l != nil {
		return l, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if l := m.logs[tp]; l != nil {
		return l, nil
	}
	dir := m.leastLoadedDirLocked()
	l, err := Open(filepath.Join(dir, tp.String()), cfg, Options{CleanShutdown: true, Logger: m.logger, Now: m.cfg.Now, OnSync: m.cfg.OnSync, FS: m.fsys})
	if err != nil {
		return nil, err
	}
	m.logs[tp] = l
	m.dirOf[tp] = dir
	return l, nil
}

func (m *Manager) leastLoadedDirLocked() string {
	count := map[string]int{}
	for _, d := range m.dirOf {
		count[d]++
	}
	best := m.cfg.Dirs[0]
	for _, d := range m.cfg.Dirs[1:] {
		if count[d] < count[best] {
			best = d
		}
	}
	return best
}

// Delete closes the log of tp, renames its directory to
// "<topic>-<partition>.<id>-delete" (so a crash midway leaves nothing that
// looks like a live partition) and removes it in the background.
func (m *Manager) Delete(tp TopicPartition) error {
	dst, err := m.setAside(tp, deleteDirSuffix)
	if err != nil || dst == "" {
		return err
	}
	m.removeInBackground(dst)
	return nil
}

// strayDirSuffix marks a partition directory set aside as stray (Kafka's
// "-stray", KIP-858's follow-up KAFKA-14616): a topic deleted while this
// node was away. It is not loaded again, and not removed: an operator
// decides.
const strayDirSuffix = "-stray"

// MarkStray closes a partition's log and renames its directory
// <topic>-<partition>.<random>-stray, so that it is neither served nor
// loaded again but its data stays on disk.
func (m *Manager) MarkStray(tp TopicPartition) (string, error) {
	return m.setAside(tp, strayDirSuffix)
}

// setAside closes a partition's log and renames its directory
// <topic>-<partition>.<random><suffix>, durably; "" if it has no log.
func (m *Manager) setAside(tp TopicPartition, suffix string) (string, error) {
	m.mu.Lock()
	l, dir := m.logs[tp], m.dirOf[tp]
	delete(m.logs, tp)
	delete(m.dirOf, tp)
	m.mu.Unlock()
	if l == nil {
		return "", nil
	}
	l.Close()
	var id [16]byte
	rand.Read(id[:])
	dst := filepath.Join(dir, tp.String()+"."+hex.EncodeToString(id[:])+suffix)
	if err := m.fsys.Rename(l.Dir(), dst); err != nil {
		return "", fmt.Errorf("rename %s aside: %w", l.Dir(), err)
	}
	return dst, m.fsys.SyncDir(dir)
}

func (m *Manager) removeInBackground(path string) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.fsys.RemoveAll(path); err != nil {
			m.logger.Error("remove deleted partition dir", "path", path, "err", err)
		}
	}()
}

// Logs returns a snapshot of every log.
func (m *Manager) Logs() map[TopicPartition]*Log {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[TopicPartition]*Log, len(m.logs))
	for tp, l := range m.logs {
		out[tp] = l
	}
	return out
}

// background runs retention, flush.ms and the checkpoints until Close.
func (m *Manager) background() {
	defer m.wg.Done()
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	checkpoint := time.NewTicker(m.cfg.CheckpointInterval)
	flush := time.NewTicker(m.cfg.FlushCheckInterval)
	defer retention.Stop()
	defer checkpoint.Stop()
	defer flush.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-retention.C:
			m.RunRetention()
		case <-flush.C:
			now := m.cfg.Now()
			for tp, l := range m.Logs() {
				if err := l.FlushIfDue(now); err != nil && !errors.Is(err, ErrClosed) {
					m.logger.Error("flush failed", "partition", tp, "err", err)
				}
			}
		case <-checkpoint.C:
			if err := m.Checkpoint(); err != nil {
				m.logger.Error("write checkpoints", "err", err)
			}
		}
	}
}

// RunRetention applies retention to every log now.
func (m *Manager) RunRetention() {
	now := m.cfg.Now()
	for tp, l := range m.Logs() {
		if _, err := l.DeleteOldSegments(now); err != nil && !errors.Is(err, ErrClosed) {
			m.logger.Error("retention failed", "partition", tp, "err", err)
		}
	}
}

// Checkpoint writes the recovery point, log start offset and high watermark
// checkpoints of every log dir.
func (m *Manager) Checkpoint() error {
	m.checkpointMu.Lock()
	defer m.checkpointMu.Unlock()
	m.mu.RLock()
	type dirPoints struct{ recovery, start, hw map[TopicPartition]int64 }
	per := map[string]*dirPoints{}
	for _, d := range m.cfg.Dirs {
		per[d] = &dirPoints{map[TopicPartition]int64{}, map[TopicPartition]int64{}, map[TopicPartition]int64{}}
	}
	for tp, l := range m.logs {
		p := per[m.dirOf[tp]]
		p.recovery[tp] = l.RecoveryPoint()
		p.start[tp] = l.LogStartOffset()
		p.hw[tp] = l.HighWatermark()
	}
	m.mu.RUnlock()
	var errs []error
	for dir, p := range per {
		errs = append(errs,
			writeCheckpoint(m.fsys, filepath.Join(dir, RecoveryPointCheckpoint), p.recovery),
			writeCheckpoint(m.fsys, filepath.Join(dir, LogStartOffsetCheckpoint), p.start),
			writeCheckpoint(m.fsys, filepath.Join(dir, ReplicationCheckpoint), p.hw))
	}
	return errors.Join(errs...)
}

// Close stops the background work, closes (and so flushes) every log,
// writes the checkpoints and then the clean-shutdown marker of each dir whose
// logs all closed cleanly.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	m.wg.Wait()
	failedDirs, err := m.closeLogs()
	err = errors.Join(err, m.Checkpoint())
	for _, dir := range m.cfg.Dirs {
		if failedDirs[dir] {
			continue
		}
		if werr := fs.WriteAtomic(m.fsys, filepath.Join(dir, CleanShutdownFile), []byte(`{"version":0,"brokerEpoch":-1}`)); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	m.unlock()
	return err
}

// closeLogs closes every log and returns the dirs where one failed, and
// the failures: a log that could not flush on close has lost what was not
// yet on disk, which the caller must hear about.
func (m *Manager) closeLogs() (map[string]bool, error) {
	failed := map[string]bool{}
	var errs error
	m.mu.RLock()
	defer m.mu.RUnlock()
	for tp, l := range m.logs {
		if err := l.Close(); err != nil {
			m.logger.Error("close log", "partition", tp, "err", err)
			failed[m.dirOf[tp]] = true
			errs = errors.Join(errs, fmt.Errorf("close %s: %w", tp, err))
		}
	}
	return failed, errs
}

func (m *Manager) unlock() {
	for _, f := range m.locks {
		f.Close()
	}
	m.locks = nil
}
