package log

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// flusher tracks what is on disk and runs fsyncs.
//
// Two levels of durable:
//   - durable: offsets below it have their .log bytes fsynced. Appends with
//     flush.messages=1 wait for it. Concurrent appends share fsyncs: while
//     one fsync runs, later appenders wait, and the next fsync (run by one of
//     them) covers every write that finished before it started.
//   - recoveryPoint: offsets below it have data and indexes flushed, so
//     recovery after a crash starts there (recovery-point-offset-checkpoint).
//     It advances on roll (for the old segment), on flush.ms, on Flush and on
//     Close, not per append, so indexes are not fsynced per append.
type flusher struct {
	// syncMu is held while an fsync runs. TruncateTo and Close take it so
	// that no sync started before a truncation can mark truncated offsets
	// durable after it.
	syncMu sync.Mutex

	mu      sync.Mutex
	cond    sync.Cond
	running bool  // a group-commit fsync is in flight
	durable int64 // guarded by mu
	want    int64 // rounds run until durable reaches it (or the log end); guarded by mu
	err     error // sticky: the first failed write or fsync, guarded by mu

	// gen counts truncations; truncs remembers the latest of them, so
	// that a waiter can tell whether the offsets it appended were
	// truncated since (their replacements, appended later, may be durable:
	// that is no success for it). Both change only in clamp, with
	// Log.appendMu and mu held; gen is read under either.
	gen    uint64
	truncs []truncation // oldest first, at most keptTruncations

	recoveryPoint atomic.Int64
	lastFlush     atomic.Int64 // unix ms of the last full flush

	// syncs counts group-commit fsync rounds; syncHook, if set (tests
	// only), runs inside each round to make it slow.
	syncs    atomic.Int64
	syncHook func()
}

func (f *flusher) init() { f.cond.L = &f.mu }

// truncation is one TruncateTo: the generation it started and the log end
// it left.
type truncation struct {
	gen    uint64
	offset int64
}

// keptTruncations bounds the truncation history. A waiter from before the
// oldest one remembered gets an error, as if truncated: at worst a produce
// is retried (and deduplicated) when it need not have been.
const keptTruncations = 16

// truncatedLocked reports whether a truncation since generation gen removed
// offsets below target. Requires mu.
func (f *flusher) truncatedLocked(target int64, gen uint64) bool {
	if gen >= f.gen {
		return false
	}
	if len(f.truncs) == 0 || f.truncs[0].gen > gen+1 {
		return true // history forgotten: assume the worst
	}
	for _, t := range f.truncs {
		if t.gen > gen && t.offset < target {
			return true
		}
	}
	return false
}

func (f *flusher) setRecovered(offset int64, now time.Time) {
	f.mu.Lock()
	f.durable = offset
	f.mu.Unlock()
	f.recoveryPoint.Store(offset)
	f.lastFlush.Store(now.UnixMilli())
}

// fail records the first storage error; the log refuses writes from then on
// (never retry an fsync: its failure may have dropped dirty pages).
func (f *flusher) fail(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = fmt.Errorf("%w: %w", ErrStorage, err)
		f.cond.Broadcast()
	}
	return f.err
}

func (f *flusher) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *flusher) durableOffset() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.durable
}

// clamp lowers the durable offsets after a truncation to offset. Caller holds
// syncMu.
func (f *flusher) clamp(offset int64) {
	f.mu.Lock()
	f.gen++
	if len(f.truncs) == keptTruncations {
		f.truncs = append(f.truncs[:0], f.truncs[1:]...)
	}
	f.truncs = append(f.truncs, truncation{f.gen, offset})
	f.durable = min(f.durable, offset)
	f.cond.Broadcast() // waiters for truncated offsets give up
	f.mu.Unlock()
	if f.recoveryPoint.Load() > offset {
		f.recoveryPoint.Store(offset)
	}
}

// WaitDurable returns once offsets below target are fsynced (or the log
// failed), starting a group-commit round if none is running. It is for
// offsets appended before any truncation still to come: a waiter whose
// append may race a truncation uses WaitDurableSince with the append's
// SyncGen.
func (l *Log) WaitDurable(target int64) error {
	return l.WaitDurableSince(target, l.TruncationGen())
}

// TruncationGen counts the truncations of the log so far (AppendInfo.SyncGen
// is its value when the batches were written).
func (l *Log) TruncationGen() uint64 {
	l.flusher.mu.Lock()
	defer l.flusher.mu.Unlock()
	return l.flusher.gen
}

// WaitDurableSince is WaitDurable for offsets appended at truncation
// generation gen (AppendInfo.SyncGen): if a truncation since then removed
// any offset below target, it fails with ErrTruncatedUnacked, even when the offsets
// appended in their place became durable: what the caller would acknowledge
// is gone. Producers that appended with AppendValidatedNoWait call it
// before acknowledging.
func (l *Log) WaitDurableSince(target int64, gen uint64) error {
	f := &l.flusher
	f.mu.Lock()
	defer f.mu.Unlock()
	f.want = max(f.want, target)
	for {
		if f.truncatedLocked(target, gen) {
			return fmt.Errorf("%w: offsets below %d", ErrTruncatedUnacked, target)
		}
		if f.durable >= target {
			return nil
		}
		if f.err != nil {
			return f.err
		}
		if end := l.logEndOffset.Load(); target > end {
			// Not appended (a caller's bug) or truncated below
			// target at a generation the caller did not name.
			return fmt.Errorf("%w: offsets up to %d, truncated to %d", ErrTruncatedUnacked, target, end)
		}
		if !f.running {
			f.running = true
			go l.syncRounds()
		}
		f.cond.Wait()
	}
}

// kickSync makes sure offsets below target get fsynced, starting a
// group-commit round unless one is running, without waiting for it.
func (l *Log) kickSync(target int64) {
	f := &l.flusher
	f.mu.Lock()
	f.want = max(f.want, target)
	if !f.running && f.err == nil {
		f.running = true
		go l.syncRounds()
	}
	f.mu.Unlock()
}

// syncRounds runs fsyncs until every byte appended so far is durable (the
// group commit: each round covers every write that finished before it
// started, so appends that arrive during a round share the next one),
// then tells the log's durable observer. It runs on its own goroutine, so
// appenders never wait for a sync to write the next batch.
func (l *Log) syncRounds() {
	f := &l.flusher
	for {
		err := l.syncData()
		f.mu.Lock()
		if err != nil && f.err == nil {
			f.err = fmt.Errorf("%w: %w", ErrStorage, err)
		}
		// Every append that asked for a sync gets one, waited for or
		// not (acks=0), whatever flush.messages says by now; a
		// truncation can leave want above the log end.
		done := err != nil || f.durable >= min(f.want, l.logEndOffset.Load())
		if done {
			f.running = false
		}
		f.cond.Broadcast()
		f.mu.Unlock()
		if err == nil {
			if fn := l.onDurable.Load(); fn != nil {
				(*fn)()
			}
		}
		if done {
			return
		}
	}
}

// DurableOffset is the offset below which the .log data is fsynced.
func (l *Log) DurableOffset() int64 { return l.flusher.durableOffset() }

// SetOnDurable registers fn to run (on the syncing goroutine, with no log
// lock held) after each group-commit fsync advances the durable offset.
func (l *Log) SetOnDurable(fn func()) { l.onDurable.Store(&fn) }

// syncData fdatasyncs the .log files holding offsets from durable to the
// current end and advances durable to that end. durable moves while syncMu
// is still held, so a truncation (which takes syncMu) can never be
// overtaken by a sync that started before it.
func (l *Log) syncData() error {
	l.flusher.syncMu.Lock()
	defer l.flusher.syncMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	// Every write below end finished before this load; the fsync that
	// follows covers them.
	end := l.logEndOffset.Load()
	from := l.flusher.durableOffset()
	l.flusher.syncs.Add(1)
	if l.flusher.syncHook != nil {
		l.flusher.syncHook()
	}
	start := time.Now()
	for _, s := range l.segmentsOverlapping(from, end) {
		if err := s.syncData(); err != nil {
			return err
		}
	}
	if l.onSync != nil {
		l.onSync(time.Since(start))
	}
	l.flusher.mu.Lock()
	l.flusher.durable = max(l.flusher.durable, end)
	l.flusher.mu.Unlock()
	return nil
}

// Flush writes every appended byte and both indexes to disk and advances the
// recovery point to the log end offset.
func (l *Log) Flush() error { return l.flushTo(l.logEndOffset.Load()) }

// flushTo flushes data and indexes of the segments holding offsets from the
// recovery point up to upTo (exclusive), then advances the recovery point.
func (l *Log) flushTo(upTo int64) error {
	f := &l.flusher
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if err := f.failed(); err != nil {
		return err
	}
	// A flush scheduled before a truncation (the one after a roll) must
	// not mark offsets the truncation removed as flushed.
	upTo = min(upTo, l.logEndOffset.Load())
	from := f.recoveryPoint.Load()
	if upTo <= from {
		return nil
	}
	start := time.Now()
	for _, s := range l.segmentsOverlapping(from, upTo) {
		if err := s.flush(); err != nil {
			return f.fail(err)
		}
	}
	if l.onSync != nil {
		l.onSync(time.Since(start))
	}
	f.recoveryPoint.Store(upTo)
	f.lastFlush.Store(l.now().UnixMilli())
	f.mu.Lock()
	f.durable = max(f.durable, upTo)
	f.cond.Broadcast()
	f.mu.Unlock()
	if fn := l.onDurable.Load(); fn != nil {
		// Not inline: callers may hold the observer's own lock (a
		// partition closing its log).
		go (*fn)()
	}
	return nil
}

// FlushIfDue flushes when flush.ms has passed since the last flush and
// something is unflushed. The Manager's flusher calls it periodically.
func (l *Log) FlushIfDue(now time.Time) error {
	cfg := l.cfg.Load()
	if now.UnixMilli()-l.flusher.lastFlush.Load() < cfg.FlushMs {
		return nil
	}
	if l.flusher.recoveryPoint.Load() >= l.logEndOffset.Load() {
		return nil
	}
	return l.Flush()
}

// segmentsOverlapping returns the segments holding any offset in [from, to).
func (l *Log) segmentsOverlapping(from, to int64) []*segment {
	segs := *l.segs.Load()
	var out []*segment
	for i, s := range segs {
		if s.baseOffset >= to && i > 0 {
			break
		}
		if i+1 < len(segs) && segs[i+1].baseOffset <= from {
			continue
		}
		out = append(out, s)
	}
	return out
}
