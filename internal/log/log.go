package log

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-io/strata/internal/fs"
)

// Errors a caller maps to Kafka error codes.
var (
	// ErrOffsetOutOfRange: OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrBatchTooLarge: RECORD_BATCH_TOO_LARGE (a batch larger than a segment).
	ErrBatchTooLarge = errors.New("log: record batch larger than segment.bytes")
	// ErrClosed is returned by operations on a closed log.
	ErrClosed = errors.New("log: closed")
	// ErrStorage wraps the sticky write error that took the log offline:
	// KAFKA_STORAGE_ERROR.
	ErrStorage = errors.New("log: storage error")
	// errNoSpace wraps a write the full disk refused and that was undone:
	// KAFKA_STORAGE_ERROR for that append only (ErrStorage).
	errNoSpace = fmt.Errorf("%w: no space left on the device", ErrStorage)
	// ErrTruncatedUnacked: offsets a caller waited on (WaitDurableSince) were
	// truncated before they were durable; they must not be acknowledged.
	// The partition lost its leadership: NOT_LEADER_OR_FOLLOWER.
	ErrTruncatedUnacked = errors.New("log: offsets truncated before they were acknowledged")
)

// IsNoSpace reports whether err is an append a full disk refused and that
// was undone: the log takes writes again once space is freed, unlike the
// other ErrStorage errors, which leave it offline.
func IsNoSpace(err error) bool { return errors.Is(err, errNoSpace) }

// Options are what the caller knows about a log before opening it: the
// log-dir checkpoints and whether the last shutdown was clean.
type Options struct {
	// RecoveryPoint: offsets below it were flushed with their indexes
	// (recovery-point-offset-checkpoint). Segments from the one holding it
	// are scanned after an unclean shutdown.
	RecoveryPoint int64
	// LogStartOffset from log-start-offset-checkpoint (0 if unknown).
	LogStartOffset int64
	// HighWatermark from replication-offset-checkpoint (0 if unknown).
	HighWatermark int64
	// CleanShutdown skips recovery: the log was closed by Close.
	CleanShutdown bool
	Logger        *slog.Logger
	// Now is the clock for time-based roll and retention (tests).
	Now func() time.Time
	// OnSync, if set, is told how long each fsync pass took (the
	// broker's fsync latency metric).
	OnSync func(time.Duration)
	// FS is the file system the log writes through; nil is fs.OS.
	FS fs.FS
}

// Log is one partition's log: a directory of segments. Offsets from
// LogStartOffset up to LogEndOffset are readable; the broker drives the high
// watermark.
//
// Concurrency: Append, TruncateTo, DeleteRecordsBefore and retention are
// serialized by appendMu (one appender). Readers (Read, the offset lookups)
// take no lock the appender holds while writing: they read the published
// segment list and sizes through atomics and hold structMu for reading, which
// only structural changes (roll, truncation, segment deletion) take for
// writing. Lock order: appendMu, syncMu, structMu.
type Log struct {
	fsys   fs.FS
	dir    string
	cfg    atomic.Pointer[Config]
	logger *slog.Logger
	now    func() time.Time

	appendMu sync.Mutex
	// closed is set by Close while holding appendMu and flusher.syncMu, so
	// holders of either can trust it.
	closed atomic.Bool

	structMu sync.RWMutex
	segs     atomic.Pointer[[]*segment] // sorted by base offset, never empty

	logEndOffset   atomic.Int64
	logStartOffset atomic.Int64
	highWatermark  atomic.Int64

	flusher flusher

	// Segments waiting for file.delete.delay.ms before removal.
	deletesMu sync.Mutex
	deletes   map[*segment]*time.Timer

	bg sync.WaitGroup // background flushes started by roll
	// onSync observes the duration of each fsync pass (Options.OnSync).
	onSync func(time.Duration)
	// onDurable runs after a group-commit fsync (SetOnDurable).
	onDurable atomic.Pointer[func()]
}

// Open loads (and if needed recovers) the log in dir, creating the directory
// if it does not exist.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	onSync := opts.OnSync
	fsys := fs.Or(opts.FS)
	// A new partition's dir must be named durably before anything
	// fsynced in it can count.
	if err := fs.MkdirAll(fsys, dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir %s: %w", dir, err)
	}
	l := &Log{
		fsys:    fsys,
		dir:     dir,
		logger:  opts.Logger.With("log", filepath.Base(dir)),
		now:     opts.Now,
		onSync:  onSync,
		deletes: make(map[*segment]*time.Timer),
	}
	l.cfg.Store(&cfg)
	l.flusher.init()
	if err := l.load(opts); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

// load finds the segments, recovers them if the shutdown was unclean, and
// sets the offsets.
func (l *Log) load(opts Options) error {
	bases, err := l.scanDir()
	if err != nil {
		return err
	}
	cfg := l.cfg.Load()
	var segs []*segment
	for _, base := range bases {
		s := newSegment(l.fsys, l.dir, base, cfg)
		s.created = l.now().UnixMilli()
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		s, err := createSegment(l.fsys, l.dir, max(opts.LogStartOffset, 0), cfg)
		if err != nil {
			return err
		}
		s.created = l.now().UnixMilli()
		segs = append(segs, s)
		// An fsync-per-append log acknowledges data in it before any
		// roll syncs the directory.
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return err
		}
	}
	l.segs.Store(&segs)

	var leo int64
	if opts.CleanShutdown {
		leo, err = l.loadClean()
	} else {
		leo, err = l.recoverUnflushed(opts.RecoveryPoint)
	}
	if err != nil {
		return err
	}
	segs = *l.segs.Load()
	l.logEndOffset.Store(leo)
	l.logStartOffset.Store(min(max(opts.LogStartOffset, segs[0].baseOffset), leo))
	l.highWatermark.Store(min(max(opts.HighWatermark, l.logStartOffset.Load()), leo))
	// Everything below the end is on disk: either the shutdown was clean
	// (Close flushes) or recovery just flushed what it kept.
	l.flusher.setRecovered(leo, l.now())
	return nil
}

// scanDir lists segment base offsets and removes leftovers: files pending
// deletion, compaction temporaries (strata writes none yet), and indexes
// without a .log.
func (l *Log) scanDir() ([]int64, error) {
	entries, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("read log dir: %w", err)
	}
	logs := map[int64]bool{}
	var orphans []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, deletedSuffix), strings.HasSuffix(name, cleanedSuffix), strings.HasSuffix(name, swapSuffix):
			orphans = append(orphans, name)
		case strings.HasSuffix(name, logSuffix):
			if base, ok := parseSegmentName(name, logSuffix); ok {
				logs[base] = true
			}
		}
	}
	for _, e := range entries {
		name := e.Name()
		for _, suffix := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			if base, ok := parseSegmentName(name, suffix); ok && !logs[base] {
				orphans = append(orphans, name)
			}
		}
	}
	for _, name := range orphans {
		if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove leftover %s: %w", name, err)
		}
	}
	bases := make([]int64, 0, len(logs))
	for base := range logs {
		bases = append(bases, base)
	}
	slices.Sort(bases)
	return bases, nil
}

// loadClean trusts the files after a clean shutdown: only the active segment
// is opened, its next offset found by walking the headers after its last
// index entry. Closed segments open lazily on first use.
func (l *Log) loadClean() (int64, error) {
	active := l.activeSegment()
	if err := active.openForRecovery(); err != nil {
		return 0, err
	}
	err := errors.New("index fails sanity check")
	if active.indexesSane() {
		var leo int64
		if leo, err = active.scanTail(); err == nil {
			if ts, off, ok := active.times.lastEntry(); ok && ts > active.maxTimestamp.Load() {
				active.maxTimestamp.Store(ts)
				active.offsetOfMaxTimestamp.Store(off)
			}
			return leo, nil
		}
	}
	l.logger.Warn("active segment inconsistent after clean shutdown; recovering it", "segment", active.baseOffset, "err", err)
	res, err := active.recover()
	if err != nil {
		return 0, err
	}
	l.logRecovery(active, res)
	return res.nextOffset, nil
}

// recoverUnflushed scans every segment from the one holding recoveryPoint
// on, truncating at the first invalid batch and deleting any segment after
// it, as Kafka's LogLoader.recoverLog does. Then it flushes what it kept.
func (l *Log) recoverUnflushed(recoveryPoint int64) (int64, error) {
	segs := *l.segs.Load()
	first := 0
	for i, s := range segs {
		if s.baseOffset <= recoveryPoint {
			first = i
		}
	}
	next := segs[first].baseOffset
	for i := first; i < len(segs); i++ {
		s := segs[i]
		last := i == len(segs)-1
		if err := s.openForRecovery(); err != nil {
			return 0, err
		}
		if s.baseOffset < next {
			// A segment that starts inside the previous one's offsets
			// cannot be trusted (a crash mid-roll after a truncation).
			l.logger.Warn("segment overlaps the previous one; deleting it and the rest", "segment", s.baseOffset, "expected", next)
			return next, l.dropFrom(i)
		}
		res, err := s.recover()
		if err != nil {
			return 0, err
		}
		l.logRecovery(s, res)
		if res.batches > 0 || last {
			next = max(res.nextOffset, s.baseOffset)
		} else {
			next = s.baseOffset
		}
		// A segment cut short, or one that ends before the next begins
		// (its data never reached the disk, the next one's did), ends
		// the log: what follows would leave a hole in the offsets.
		if !last && (res.truncatedBytes > 0 || segs[i+1].baseOffset != next) {
			l.logger.Warn("deleting segments after a corrupt or incomplete one", "segment", s.baseOffset,
				"ends_at", next, "from", segs[i+1].baseOffset, "count", len(segs)-i-1)
			if err := l.dropFrom(i + 1); err != nil {
				return 0, err
			}
			last = true
		}
		if !last {
			if err := s.seal(); err != nil {
				return 0, err
			}
		}
		// Flush after the seal: the trimmed index, with its final time
		// entry, is the one the recovery point vouches for.
		if err := s.flush(); err != nil {
			return 0, err
		}
		if last {
			break
		}
	}
	return next, l.fsys.SyncDir(l.dir)
}

func (l *Log) logRecovery(s *segment, res recoverResult) {
	if res.truncatedBytes == 0 {
		l.logger.Info("recovered segment", "segment", s.baseOffset, "batches", res.batches, "bytes", res.validBytes)
		return
	}
	l.logger.Warn("recovered segment: truncated invalid tail",
		"segment", s.baseOffset, "batches", res.batches, "valid_bytes", res.validBytes,
		"truncated_bytes", res.truncatedBytes, "reason", res.reason)
}

// dropFrom deletes segments i.. during load (no readers exist yet).
func (l *Log) dropFrom(i int) error {
	segs := *l.segs.Load()
	for _, s := range segs[i:] {
		s.close()
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := l.fsys.Remove(s.path(suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	kept := slices.Clone(segs[:i])
	l.segs.Store(&kept)
	return nil
}

// activeSegment is the last segment, the one appends go to.
func (l *Log) activeSegment() *segment {
	segs := *l.segs.Load()
	return segs[len(segs)-1]
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// Config returns the current configuration.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig changes the configuration (topic config updates). It applies to
// new segments, rolls, retention and flushing from the next append on.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfg.Store(&cfg)
	return nil
}

// LogEndOffset is the offset the next appended record gets.
func (l *Log) LogEndOffset() int64 { return l.logEndOffset.Load() }

// LogStartOffset is the first offset that may be read.
func (l *Log) LogStartOffset() int64 { return l.logStartOffset.Load() }

// HighWatermark is the last offset the broker marked as committed, plus one.
func (l *Log) HighWatermark() int64 { return l.highWatermark.Load() }

// SetHighWatermark sets the high watermark, clamped to [LogStartOffset,
// LogEndOffset], and returns the value set.
func (l *Log) SetHighWatermark(hw int64) int64 {
	hw = min(max(hw, l.logStartOffset.Load()), l.logEndOffset.Load())
	l.highWatermark.Store(hw)
	return hw
}

// RecoveryPoint is the offset below which data and indexes are flushed.
func (l *Log) RecoveryPoint() int64 { return l.flusher.recoveryPoint.Load() }

// Size is the total size of the segment files in bytes.
func (l *Log) Size() (int64, error) {
	l.structMu.RLock()
	defer l.structMu.RUnlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	var n int64
	for _, s := range *l.segs.Load() {
		if err := s.open(false); err != nil {
			return 0, err
		}
		n += s.size.Load()
	}
	return n, nil
}

// NumSegments is the number of segments.
func (l *Log) NumSegments() int { return len(*l.segs.Load()) }

// Close flushes everything, trims the active segment's indexes, removes
// segments pending deletion, and closes all files. After Close the log
// directory is in the state a clean-shutdown open trusts.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return nil
	}
	l.bg.Wait()
	err := l.flushTo(l.logEndOffset.Load())
	// No flush may touch the files while they close.
	l.flusher.syncMu.Lock()
	defer l.flusher.syncMu.Unlock()
	l.closed.Store(true)
	l.deletesMu.Lock()
	for s, t := range l.deletes {
		t.Stop()
		if derr := s.removeDeleted(); err == nil && derr != nil {
			err = derr
		}
	}
	l.deletes = nil
	l.deletesMu.Unlock()
	l.structMu.Lock()
	if cerr := l.closeSegments(); err == nil {
		err = cerr
	}
	l.structMu.Unlock()
	return err
}

func (l *Log) closeSegments() error {
	var err error
	if p := l.segs.Load(); p != nil {
		for _, s := range *p {
			if cerr := s.close(); err == nil && cerr != nil {
				err = cerr
			}
		}
	}
	return err
}

// FS is the file system the log writes through (the broker writes its
// partition files, producer snapshots and epoch checkpoints, through it too).
func (l *Log) FS() fs.FS { return l.fsys }

// SegmentBaseOffsets returns the base offsets of the segments, oldest first.
func (l *Log) SegmentBaseOffsets() []int64 {
	segs := *l.segs.Load()
	out := make([]int64, len(segs))
	for i, s := range segs {
		out[i] = s.baseOffset
	}
	return out
}

// ActiveSegmentBaseOffset is the base offset of the active segment, the one
// appends go to. A caller serializing its appends detects a roll by seeing it
// change across an Append (the broker snapshots producer state there, as
// Kafka's UnifiedLog.roll does).
func (l *Log) ActiveSegmentBaseOffset() int64 { return l.activeSegment().baseOffset }
