package log

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/strata-io/strata/internal/record"
)

// AppendInfo describes appended batches.
type AppendInfo struct {
	FirstOffset int64 // base offset of the first batch
	LastOffset  int64 // last offset of the last batch
	// MaxTimestamp is the largest batch max timestamp appended, and
	// OffsetOfMaxTimestamp the last offset of the batch that has it.
	MaxTimestamp         int64
	OffsetOfMaxTimestamp int64
	Batches              int
	Bytes                int
	// SyncTo, from AppendValidatedNoWait, is the offset the caller must
	// WaitDurable for before acknowledging (flush.messages reached); 0
	// when nothing needs to wait.
	SyncTo int64
	// SyncGen is the log's truncation generation when the batches were
	// written, for WaitDurableSince.
	SyncGen uint64
}

// Append validates the batches in data (length, magic 2, CRC, record count),
// gives them consecutive offsets from the log end offset, and writes them to
// the active segment with one write. Offsets and leaderEpoch are patched into
// data in place (those fields are outside the CRC): data is not copied, and
// on return it holds the batches as stored.
//
// With flush.messages=1 Append returns once the batches are fsynced;
// concurrent appends share fsyncs. A batch that fails validation fails the
// whole call and nothing is written.
func (l *Log) Append(data []byte, leaderEpoch int32) (AppendInfo, error) {
	info, err := l.append(data, leaderEpoch, true)
	if err == nil && info.SyncTo > 0 {
		err = l.WaitDurableSince(info.SyncTo, info.SyncGen)
	}
	return info, err
}

// AppendValidated is Append for callers that already validated every batch
// in data with record.Parse or record.Split (the produce path, like Kafka's
// LogValidator ahead of the log): framing, sizes and offset span are still
// checked, the CRCs are not computed a second time.
func (l *Log) AppendValidated(data []byte, leaderEpoch int32) (AppendInfo, error) {
	info, err := l.append(data, leaderEpoch, false)
	if err == nil && info.SyncTo > 0 {
		err = l.WaitDurableSince(info.SyncTo, info.SyncGen)
	}
	return info, err
}

// AppendValidatedNoWait is AppendValidated that returns once the batches
// are written, before any fsync flush.messages calls for: it starts that
// fsync in the background and sets info.SyncTo, which the caller passes to
// WaitDurable before acknowledging. The produce path uses it so that a
// partition takes the next append (from the same pipelined connection or
// another producer) while the previous one syncs, and they share fsyncs.
func (l *Log) AppendValidatedNoWait(data []byte, leaderEpoch int32) (AppendInfo, error) {
	info, err := l.append(data, leaderEpoch, false)
	if err == nil && info.SyncTo > 0 {
		l.kickSync(info.SyncTo)
	}
	return info, err
}

// ErrNotContiguous marks follower batches whose offsets do not continue the
// log: the first base offset is not the log end offset, or a batch does not
// start where the previous one ended (Kafka's UnexpectedAppendOffsetException
// and its monotonic-offset check in LogValidator for followers).
var ErrNotContiguous = errors.New("log: batch offsets do not continue the log")

// AppendAsFollowerNoWait appends batches fetched from the leader as they are
// (Kafka's UnifiedLog.appendAsFollower): their base offsets and partition
// leader epochs are kept, not assigned. Every batch's CRC is checked; the
// first must start at the log end offset and each next one where the
// previous ended (ErrNotContiguous otherwise). A batch that fails fails the
// whole call and nothing is written. Like AppendValidatedNoWait it returns
// before any fsync flush.messages calls for, with info.SyncTo set.
func (l *Log) AppendAsFollowerNoWait(data []byte) (AppendInfo, error) {
	info, err := l.validate(data, true)
	if err != nil {
		return info, err
	}
	l.appendMu.Lock()
	next, err := l.appendLocked(data, -1, false, &info)
	l.appendMu.Unlock()
	if err != nil {
		return info, err
	}
	l.setSyncTo(next, &info)
	if info.SyncTo > 0 {
		l.kickSync(info.SyncTo)
	}
	return info, nil
}

func (l *Log) append(data []byte, leaderEpoch int32, checkCRC bool) (AppendInfo, error) {
	info, err := l.validate(data, checkCRC)
	if err != nil {
		return info, err
	}
	l.appendMu.Lock()
	next, err := l.appendLocked(data, leaderEpoch, true, &info)
	l.appendMu.Unlock()
	if err != nil {
		return info, err
	}
	l.setSyncTo(next, &info)
	return info, nil
}

// setSyncTo sets info.SyncTo to next when flush.messages asks for an fsync
// before the batches ending at next are acknowledged.
func (l *Log) setSyncTo(next int64, info *AppendInfo) {
	cfg := l.cfg.Load()
	if cfg.syncEveryAppend() || next-l.flusher.durableOffset() >= cfg.FlushMessages {
		info.SyncTo = next
	}
}

// validate checks every batch, outside the append lock so that CRCs of
// concurrent producers are computed in parallel. It walks the batches with
// a plain loop, not a callback, so that an append allocates nothing here.
func (l *Log) validate(data []byte, checkCRC bool) (AppendInfo, error) {
	info := AppendInfo{MaxTimestamp: -1, Bytes: len(data)}
	segmentBytes := l.cfg.Load().SegmentBytes
	var span int64 // offsets the batches take
	for rest := data; len(rest) > 0; {
		var b record.Batch
		var err error
		if checkCRC {
			b, rest, err = record.Parse(rest)
		} else {
			b, rest, err = parseFramed(rest)
		}
		if err != nil {
			return info, err
		}
		if int64(len(b)) > segmentBytes {
			return info, fmt.Errorf("%w: %d bytes, segment.bytes is %d", ErrBatchTooLarge, len(b), segmentBytes)
		}
		span += int64(b.LastOffsetDelta()) + 1
		info.Batches++
	}
	switch {
	case info.Batches == 0:
		return info, fmt.Errorf("%w: no record batch to append", record.ErrInvalidRecord)
	case span > math.MaxInt32:
		// One append lands in one segment, whose indexes hold offsets
		// relative to its base in 32 bits.
		return info, fmt.Errorf("%w: batches span %d offsets, more than one segment can index", record.ErrInvalidRecord, span)
	}
	return info, nil
}

// parseFramed is record.Parse checking only what framing needs (header,
// magic, length within data), not the CRC.
func parseFramed(data []byte) (record.Batch, []byte, error) {
	if err := record.CheckHeader(data); err != nil {
		return nil, data, err
	}
	size := int64(record.Batch(data).Length()) + record.LogOverhead
	if size > int64(len(data)) {
		return nil, data, fmt.Errorf("%w: batch of %d bytes, have %d", record.ErrTruncated, size, len(data))
	}
	return record.Batch(data[:size:size]), data[size:], nil
}

// appendLocked assigns offsets and leaderEpoch (assign) or checks that the
// batches' own offsets continue the log (!assign: a follower), rolls if
// needed, and writes. It returns the new log end offset.
func (l *Log) appendLocked(data []byte, leaderEpoch int32, assign bool, info *AppendInfo) (int64, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	if err := l.flusher.failed(); err != nil {
		return 0, err
	}
	next := l.logEndOffset.Load()
	info.FirstOffset = next
	info.SyncGen = l.flusher.gen // changes only under appendMu
	for rest := data; len(rest) > 0; {
		b := record.Batch(rest)
		if assign {
			b.SetBaseOffset(next)
			b.SetPartitionLeaderEpoch(leaderEpoch)
		} else if b.BaseOffset() != next {
			return 0, fmt.Errorf("%w: batch at offset %d, expected %d", ErrNotContiguous, b.BaseOffset(), next)
		}
		if ts := b.MaxTimestamp(); ts > info.MaxTimestamp {
			info.MaxTimestamp = ts
			info.OffsetOfMaxTimestamp = b.LastOffset()
		}
		next = b.NextOffset()
		rest = rest[b.Size():]
	}
	info.LastOffset = next - 1
	if err := l.maybeRoll(len(data), info.MaxTimestamp, info.LastOffset); err != nil {
		return 0, err
	}
	if err := l.activeSegment().appendBatches(data); err != nil {
		if errors.Is(err, errNoSpace) {
			return 0, err // the log is unchanged: not a sticky failure
		}
		return 0, l.flusher.fail(err)
	}
	l.logEndOffset.Store(next)
	return next, nil
}

// maybeRoll starts a new segment at the log end offset when the active one
// cannot take size more bytes, has a full index, cannot express lastOffset
// as a 32-bit relative offset, or is older than segment.ms (Kafka's
// UnifiedLog.maybeRoll). An empty segment never rolls.
func (l *Log) maybeRoll(size int, maxTimestamp, lastOffset int64) error {
	cfg := l.cfg.Load()
	s := l.activeSegment()
	cur := s.size.Load()
	if cur == 0 {
		return nil
	}
	switch {
	case cur+int64(size) > cfg.SegmentBytes:
	case s.indexFull():
	case lastOffset-s.baseOffset > math.MaxInt32:
	case l.segmentAge(s, maxTimestamp) > cfg.SegmentMs:
	default:
		return nil
	}
	return l.roll()
}

// segmentAge is how long the segment has been filling, measured the way
// Kafka's LogSegment.timeWaitedForRoll does: from the first batch's
// timestamp to the incoming batch's, or from the segment's creation by the
// wall clock when there are no timestamps.
func (l *Log) segmentAge(s *segment, incomingTimestamp int64) int64 {
	if s.rollingTimestamp >= 0 && incomingTimestamp >= 0 {
		return incomingTimestamp - s.rollingTimestamp
	}
	return l.now().UnixMilli() - s.created
}

// roll makes a new active segment at the log end offset, seals the old one,
// and flushes it in the background (Kafka's flush-on-roll). Caller holds
// appendMu.
func (l *Log) roll() error {
	base := l.logEndOffset.Load()
	ns, err := l.newActiveSegment(base)
	if err != nil {
		return err
	}
	l.structMu.Lock()
	old := l.activeSegment()
	err = old.seal()
	segs := append(slices.Clone(*l.segs.Load()), ns)
	l.segs.Store(&segs)
	l.structMu.Unlock()
	if err != nil {
		return l.flusher.fail(err)
	}
	l.logger.Debug("rolled segment", "segment", base)
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		if err := l.flushTo(base); err != nil {
			l.logger.Error("flush after roll failed; log is offline", "segment", old.baseOffset, "err", err)
		}
	}()
	return nil
}

// newActiveSegment creates the files of a segment at base and makes their
// directory entries durable (an fsync-per-append log may acknowledge data in
// it right away). A failure takes the log offline.
func (l *Log) newActiveSegment(base int64) (*segment, error) {
	ns, err := createSegment(l.fsys, l.dir, base, l.cfg.Load())
	if err != nil {
		return nil, l.flusher.fail(err)
	}
	ns.created = l.now().UnixMilli()
	if err := l.fsys.SyncDir(l.dir); err != nil {
		ns.close()
		return nil, l.flusher.fail(err)
	}
	return ns, nil
}

// Roll starts a new segment now, if the active one is not empty.
func (l *Log) Roll() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if l.activeSegment().size.Load() == 0 {
		return nil
	}
	return l.roll()
}
