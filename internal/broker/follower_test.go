package broker

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// readLog returns the partition's batches in [from, to) as stored.
func readLog(t *testing.T, p *Partition, from, to int64) []byte {
	t.Helper()
	var out []byte
	for off := from; off < to; {
		r, err := p.Log.Read(off, 700, to)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len == 0 {
			break
		}
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		if err := record.Split(buf, func(b record.Batch) bool {
			off = b.NextOffset()
			return true
		}); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

// copyToFollower fetches the leader's batches from the follower's log end
// up to to, in reads of a few batches as a replica fetcher would, and
// appends them as follower.
func copyToFollower(t *testing.T, leader, follower *Partition, to int64) {
	t.Helper()
	for follower.Log.LogEndOffset() < to {
		off := follower.Log.LogEndOffset()
		r, err := leader.Log.Read(off, 500, to)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len == 0 {
			t.Fatalf("leader has nothing at %d below %d", off, to)
		}
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		res, err := follower.AppendAsFollower(buf)
		if err != nil {
			t.Fatalf("AppendAsFollower at %d: %v", off, err)
		}
		if res.BaseOffset != off {
			t.Fatalf("AppendAsFollower base offset %d, want %d", res.BaseOffset, off)
		}
		if res.SyncTo > 0 {
			if err := follower.WaitDurable(res.SyncTo, res.SyncGen); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func producerEntries(p *Partition) []snapshotEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snapshotEntriesLocked()
}

// leaderWithEpochs builds a leader log over three leader epochs (0, 2, 5),
// two idempotent producers, a plain producer and a control batch, over
// several segments. It returns the offsets where epochs 2 and 5 start.
func leaderWithEpochs(t *testing.T, p *Partition) (epoch2, epoch5 int64) {
	t.Helper()
	seq := map[int64]int32{}
	write := func(n int) {
		for i := 0; i < n; i++ {
			pid := int64(1 + i%3) // 3: not idempotent
			if pid == 3 {
				appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
				continue
			}
			appendBatch(t, p, producerBatch(t, pid, 0, seq[pid], 3))
			seq[pid] += 3
		}
	}
	write(7)
	if err := p.BecomeLeader(2); err != nil {
		t.Fatal(err)
	}
	epoch2 = p.Log.LogEndOffset()
	write(8)
	// A control batch, as the leader writes them (not through produce):
	// a transaction marker, which producer state records on both sides.
	if _, err := p.AppendTxnMarker(9, 0, true, 0); err != nil {
		t.Fatal(err)
	}
	write(3)
	if err := p.BecomeLeader(5); err != nil {
		t.Fatal(err)
	}
	epoch5 = p.Log.LogEndOffset()
	write(9)
	return epoch2, epoch5
}

func checkSameAsLeader(t *testing.T, leader, follower *Partition) {
	t.Helper()
	if l, f := leader.Log.LogEndOffset(), follower.Log.LogEndOffset(); l != f {
		t.Fatalf("log end offsets: leader %d, follower %d", l, f)
	}
	lb := readLog(t, leader, 0, leader.Log.LogEndOffset())
	fb := readLog(t, follower, 0, follower.Log.LogEndOffset())
	if !bytes.Equal(lb, fb) {
		t.Fatalf("follower's log (%d bytes) differs from the leader's (%d bytes)", len(fb), len(lb))
	}
	if l, f := leader.epochs.snapshot(), follower.epochs.snapshot(); !slices.Equal(l, f) {
		t.Fatalf("epoch caches differ: leader %v, follower %v", l, f)
	}
	if l, f := producerEntries(leader), producerEntries(follower); !slices.Equal(l, f) {
		t.Fatalf("producer state differs:\nleader   %+v\nfollower %+v", l, f)
	}
}

// TestAppendAsFollowerCopiesLeader: batches copied from a leader keep its
// offsets and epochs byte for byte; the epoch cache and producer state come
// out the same; nothing is visible beyond the leader's high watermark; and
// once the follower leads, a retry of an idempotent batch is a duplicate
// with its original offset.
func TestAppendAsFollowerCopiesLeader(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	leader, follower := partition(t, lb), partition(t, fb)
	leaderWithEpochs(t, leader)

	w := NewWaiter()
	defer w.Release()
	w.WakeAt(1)
	follower.AddWaiter(w)
	defer follower.RemoveWaiter(w)

	copyToFollower(t, leader, follower, leader.Log.LogEndOffset())
	checkSameAsLeader(t, leader, follower)
	if n := len(follower.Log.SegmentBaseOffsets()); n < 3 {
		t.Fatalf("follower has %d segments; the test wants rolls", n)
	}
	if hw := follower.Log.HighWatermark(); hw != 0 {
		t.Fatalf("follower's high watermark %d before the leader's is known, want 0", hw)
	}
	select {
	case <-w.C:
		t.Fatal("a follower append woke a consumer's long-poll below the high watermark")
	default:
	}
	if hw := follower.UpdateFollowerHighWatermark(10); hw != 10 {
		t.Fatalf("follower high watermark %d, want 10", hw)
	}
	select {
	case <-w.C:
	default:
		t.Fatal("the high watermark moved and the long-poll was not woken")
	}
	leo := follower.Log.LogEndOffset()
	if hw := follower.UpdateFollowerHighWatermark(leo + 100); hw != leo {
		t.Fatalf("follower high watermark %d, want its log end %d", hw, leo)
	}

	// The follower takes over: producer 1's last batch, retried, is a
	// duplicate at its original offset.
	var last batchMeta
	for _, e := range producerEntries(leader) {
		if e.ProducerID == 1 {
			last = batchMeta{firstSeq: e.LastSequence - e.OffsetDelta, firstOffset: e.LastOffset - int64(e.OffsetDelta)}
		}
	}
	if err := follower.BecomeLeader(6); err != nil {
		t.Fatal(err)
	}
	res := appendBatch(t, follower, producerBatch(t, 1, 0, last.firstSeq, 3))
	if !res.Duplicate || res.BaseOffset != last.firstOffset {
		t.Fatalf("retry on the new leader: %+v, want a duplicate at %d", res, last.firstOffset)
	}
	if follower.Log.LogEndOffset() != leo {
		t.Fatal("the retry was appended")
	}
	// The next sequence is accepted, and stamped with the new epoch.
	res = appendBatch(t, follower, producerBatch(t, 1, 0, last.firstSeq+3, 3))
	if res.Duplicate || res.BaseOffset != leo {
		t.Fatalf("next batch on the new leader: %+v", res)
	}
	if e, o := follower.EndOffsetForEpoch(5); e != 5 || o != leo {
		t.Fatalf("EndOffsetForEpoch(5) = (%d, %d), want (5, %d)", e, o, leo)
	}
}

// TestAppendAsFollowerRefuses: a gap, an overlap, batches that do not
// follow each other, and a bad CRC are refused, and nothing of the call is
// appended or assigned.
func TestAppendAsFollowerRefuses(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	leader, follower := partition(t, lb), partition(t, fb)
	epoch2, epoch5 := leaderWithEpochs(t, leader)
	// Up to the last batch of epoch 2: the batches after it start epoch 5.
	var lastOfEpoch2 int64
	if err := record.Split(readLog(t, leader, epoch2, epoch5), func(b record.Batch) bool {
		lastOfEpoch2 = b.BaseOffset()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	copyToFollower(t, leader, follower, lastOfEpoch2)
	leo := follower.Log.LogEndOffset()
	epochs, producers := follower.epochs.snapshot(), producerEntries(follower)
	size, _ := follower.Log.Size()

	rest := readLog(t, leader, leo, leader.Log.LogEndOffset())
	var batches [][]byte
	if err := record.Split(rest, func(b record.Batch) bool {
		batches = append(batches, slices.Clone(b))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	corrupt := cat(batches[0], batches[1])
	corrupt[len(batches[0])+len(batches[1])-2] ^= 0xff // a record byte of the second batch
	before := readLog(t, leader, 0, leo)
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"gap":            {batches[1], log.ErrNotContiguous},
		"overlap":        {readLog(t, leader, leo-1, leo+1), log.ErrNotContiguous},
		"not contiguous": {cat(batches[0], batches[2]), log.ErrNotContiguous},
		// batches[1..] carry epoch 5: the epoch must not be assigned.
		"gap with new epoch": {cat(batches[3]), log.ErrNotContiguous},
		"corrupt crc":        {corrupt, record.ErrCorrupt},
		"empty":              {nil, record.ErrInvalidRecord},
	} {
		_, err := follower.AppendAsFollower(slices.Clone(tc.data))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
		if got := follower.Log.LogEndOffset(); got != leo {
			t.Fatalf("%s: log end offset %d, want %d", name, got, leo)
		}
		if got, _ := follower.Log.Size(); got != size {
			t.Fatalf("%s: log size %d, want %d", name, got, size)
		}
		if got := follower.epochs.snapshot(); !slices.Equal(got, epochs) {
			t.Fatalf("%s: epoch cache %v, want %v", name, got, epochs)
		}
		if got := producerEntries(follower); !slices.Equal(got, producers) {
			t.Fatalf("%s: producer state changed", name)
		}
	}
	if !bytes.Equal(readLog(t, follower, 0, leo), before) {
		t.Fatal("the follower's log changed")
	}
	// And the right batches still go in.
	copyToFollower(t, leader, follower, leader.Log.LogEndOffset())
	checkSameAsLeader(t, leader, follower)
}

// followerState is what a truncation must leave consistent.
type followerState struct {
	leo, hw   int64
	epochs    []epochEntry
	producers []snapshotEntry
}

func stateOf(p *Partition) followerState {
	return followerState{p.Log.LogEndOffset(), p.Log.HighWatermark(), p.epochs.snapshot(), producerEntries(p)}
}

// TestFollowerTruncateTo: truncating inside an epoch (and inside a batch)
// and at an epoch boundary leaves the log end, epoch cache, producer state
// and high watermark of a follower that only ever fetched up to there;
// appending from the new end works; and a restart gives the same state.
func TestFollowerTruncateTo(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	epoch2, epoch5 := leaderWithEpochs(t, leader)
	end := leader.Log.LogEndOffset()

	// The batch boundaries inside epoch 2.
	var mid, midBatch int64 = -1, -1
	if err := record.Split(readLog(t, leader, epoch2, epoch5), func(b record.Batch) bool {
		if mid < 0 && b.BaseOffset() > epoch2+6 && b.LastOffset() > b.BaseOffset() {
			mid, midBatch = b.BaseOffset()+1, b.BaseOffset()
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		offset     int64 // truncate to
		want       int64 // log end offset after
		wantEpochs int   // entries left
	}{
		{"inside a batch of epoch 2", mid, midBatch, 2},
		{"at the start of epoch 5", epoch5, epoch5, 2},
		{"at the start of epoch 2", epoch2, epoch2, 1},
		{"inside epoch 5", epoch5 + 4, -1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fb := openBroker(t, dir)
			follower := partition(t, fb)
			copyToFollower(t, leader, follower, end)
			follower.UpdateFollowerHighWatermark(end)

			if err := follower.TruncateTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			got := stateOf(follower)
			if tc.want >= 0 && got.leo != tc.want {
				t.Fatalf("log end offset %d, want %d", got.leo, tc.want)
			}
			if got.leo > tc.offset {
				t.Fatalf("log end offset %d above the truncation point %d", got.leo, tc.offset)
			}
			if got.hw != got.leo {
				t.Fatalf("high watermark %d, want it clamped to %d", got.hw, got.leo)
			}
			if len(got.epochs) != tc.wantEpochs {
				t.Fatalf("epoch cache %v, want %d entries", got.epochs, tc.wantEpochs)
			}
			for _, s := range snapshotOffsets(t, follower) {
				if s > got.leo {
					t.Fatalf("snapshot %d above the log end %d survived", s, got.leo)
				}
			}
			// The same as a follower that fetched only that far.
			rb := openBroker(t, t.TempDir())
			ref := partition(t, rb)
			copyToFollower(t, leader, ref, got.leo)
			want := stateOf(ref)
			closeBroker(t, rb)
			want.hw = got.leo
			if !slices.Equal(got.epochs, want.epochs) || !slices.Equal(got.producers, want.producers) {
				t.Fatalf("after truncation:\n got %+v\nwant %+v", got, want)
			}
			latest := got.epochs[len(got.epochs)-1].Epoch
			if e, o := follower.EndOffsetForEpoch(latest); e != latest || o != got.leo {
				t.Fatalf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", latest, e, o, latest, got.leo)
			}
			if e, o := follower.EndOffsetForEpoch(5); got.leo <= epoch5 && (e != -1 || o != -1) {
				t.Fatalf("EndOffsetForEpoch(5) = (%d, %d) after epoch 5 was truncated away", e, o)
			}

			// A restart gives the same state (the high watermark on a
			// restart is the log end: see open).
			closeBroker(t, fb)
			fb = openBroker(t, dir)
			follower = partition(t, fb)
			if again := stateOf(follower); again.leo != got.leo || !slices.Equal(again.epochs, got.epochs) || !slices.Equal(again.producers, got.producers) {
				t.Fatalf("after restart:\n got %+v\nwant %+v", again, got)
			}

			// Fetching again from the new end converges with the leader.
			copyToFollower(t, leader, follower, end)
			checkSameAsLeader(t, leader, follower)
			closeBroker(t, fb)
		})
	}
}

// TestFollowerTruncateDiverged: a follower with records of its own (written
// as leader in an epoch the new leader never saw) truncates them and
// converges byte for byte; its producer state forgets them.
func TestFollowerTruncateDiverged(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	_, epoch5 := leaderWithEpochs(t, leader)
	end := leader.Log.LogEndOffset()

	dir := t.TempDir()
	fb := openBroker(t, dir)
	follower := partition(t, fb)
	copyToFollower(t, leader, follower, epoch5)
	// The follower led epoch 4 for a while: writes nobody replicated.
	if err := follower.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 12; i++ {
		appendBatch(t, follower, producerBatch(t, 77, 0, 3*i, 3))
	}
	if e, _ := follower.EndOffsetForEpoch(4); e != 4 {
		t.Fatal("epoch 4 not in the follower's cache")
	}
	// The new leader (epoch 5) says epoch 4 is unknown to it: the
	// follower's log diverges where epoch 4 starts.
	if err := follower.TruncateTo(epoch5); err != nil {
		t.Fatal(err)
	}
	if e, o := follower.EndOffsetForEpoch(4); e != -1 || o != -1 {
		t.Fatalf("EndOffsetForEpoch(4) = (%d, %d) after truncation, want undefined", e, o)
	}
	if e, o := follower.EndOffsetForEpoch(2); e != 2 || o != epoch5 {
		t.Fatalf("EndOffsetForEpoch(2) = (%d, %d) after truncation, want (2, %d)", e, o, epoch5)
	}
	for _, e := range producerEntries(follower) {
		if e.ProducerID == 77 {
			t.Fatal("producer 77, truncated away, is still known")
		}
	}
	copyToFollower(t, leader, follower, end)
	checkSameAsLeader(t, leader, follower)
	closeBroker(t, fb)
	fb = openBroker(t, dir)
	defer closeBroker(t, fb)
	checkSameAsLeader(t, leader, partition(t, fb))
	if names, _ := filepath.Glob(filepath.Join(dir, "*", "*.deleted")); len(names) > 0 {
		t.Logf("left pending deletion: %v", names)
	}
}

// TestFollowerFsyncMode: with flush.messages=1 a follower's appended
// offsets count toward its high watermark only once durable; and a leader's
// produce still waiting for its fsync when the partition truncates below it
// (it became a follower) fails, even after the new leader's records took
// its offsets and were fsynced.
func TestFollowerFsyncMode(t *testing.T) {
	cfg := smallSegments()
	cfg.SegmentBytes = 1 << 20
	cfg.FlushMessages = 1
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	leader, err := lb.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fb.CreatePartition(testTP, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		appendBatch(t, leader, producerBatch(t, 5, 0, int32(3*i), 3))
	}
	end := leader.Log.LogEndOffset()

	// p leads for a while: a produce appended, its fsync not yet waited
	// for (the connection's writer waits later).
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 3))
	pending, err := p.AppendNoWait(producerBatch(t, 0, 0, 0, 6), 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if pending.SyncTo != 9 {
		t.Fatalf("SyncTo %d, want 9", pending.SyncTo)
	}
	// It becomes a follower of a leader without those records.
	if err := p.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	if err := p.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	r, err := leader.Log.Read(0, 1<<20, end)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, r.Len)
	if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
		t.Fatal(err)
	}
	res, err := p.AppendAsFollower(buf)
	if err != nil {
		t.Fatal(err)
	}
	if res.SyncTo != end {
		t.Fatalf("follower append SyncTo %d, want %d", res.SyncTo, end)
	}
	if hw := p.UpdateFollowerHighWatermark(end); hw > p.Log.DurableOffset() {
		t.Fatalf("high watermark %d past the durable offset %d", hw, p.Log.DurableOffset())
	}
	if err := p.WaitDurable(res.SyncTo, res.SyncGen); err != nil {
		t.Fatal(err)
	}
	if hw := p.Log.HighWatermark(); hw != end {
		t.Fatalf("high watermark %d once durable, want %d", hw, end)
	}
	if err := p.WaitDurable(pending.SyncTo, pending.SyncGen); !errors.Is(err, log.ErrTruncatedUnacked) {
		t.Fatalf("the truncated produce's wait: %v, want an error", err)
	}
}

func splitBatches(t *testing.T, data []byte) []record.Batch {
	t.Helper()
	var out []record.Batch
	if err := record.Split(data, func(b record.Batch) bool {
		out = append(out, b)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFollowerTruncateBelowStart: a truncation below the log start offset
// (the leader's log starts earlier than this follower's data) empties the
// log and restarts it at that offset, with no epochs and no producers, and
// fetching from there converges with the leader.
func TestFollowerTruncateBelowStart(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	leaderWithEpochs(t, leader)
	end := leader.Log.LogEndOffset()
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	follower := partition(t, fb)
	copyToFollower(t, leader, follower, end)
	follower.UpdateFollowerHighWatermark(end)
	bases := follower.Log.SegmentBaseOffsets()
	if _, err := follower.Log.DeleteRecordsBefore(bases[2]); err != nil {
		t.Fatal(err)
	}
	if err := follower.TruncateTo(bases[1]); err != nil {
		t.Fatal(err)
	}
	got := stateOf(follower)
	if got.leo != bases[1] || follower.Log.LogStartOffset() != bases[1] || got.hw != bases[1] {
		t.Fatalf("after truncating below the start: %+v, log start %d, want all at %d", got, follower.Log.LogStartOffset(), bases[1])
	}
	if len(got.epochs) != 0 || len(got.producers) != 0 {
		t.Fatalf("epochs %v and producers %v left in an empty log", got.epochs, got.producers)
	}
	if offs := snapshotOffsets(t, follower); len(offs) > 0 && offs[len(offs)-1] > bases[1] {
		t.Fatalf("snapshots %v above the new log end %d", offs, bases[1])
	}
	copyToFollower(t, leader, follower, end)
	if !bytes.Equal(readLog(t, follower, bases[1], end), readLog(t, leader, bases[1], end)) {
		t.Fatal("the refetched log differs from the leader's")
	}
	// The epochs seen from there on, as the leader's cache has them.
	want := leader.epochs.snapshot()
	for len(want) > 1 && want[1].StartOffset <= bases[1] {
		want = want[1:]
	}
	if got := follower.epochs.snapshot(); len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("epochs after refetching %v, leader's %v", got, leader.epochs.snapshot())
	}
}

// TestFollowerConcurrentReads: consumers read a follower up to its high
// watermark while it appends, moves the high watermark and truncates; what
// they read is always whole, valid batches of the leader's log (run with
// -race).
func TestFollowerConcurrentReads(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	leader := partition(t, lb)
	leaderWithEpochs(t, leader)
	end := leader.Log.LogEndOffset()
	want := readLog(t, leader, 0, end)
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	follower := partition(t, fb)

	stop := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				hw := follower.Log.HighWatermark()
				r, err := follower.Log.Read(0, 1<<20, hw)
				if err != nil {
					errs <- err
					return
				}
				if r.Len == 0 {
					continue
				}
				buf := make([]byte, r.Len)
				if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
					continue // a segment deleted by a truncation under the read
				}
				if !bytes.Equal(buf, want[:len(buf)]) {
					errs <- errors.New("a consumer read bytes that are not the leader's")
					return
				}
			}
		}()
	}
	for round := range 20 {
		copyToFollower(t, leader, follower, end)
		follower.UpdateFollowerHighWatermark(end)
		if err := follower.TruncateTo(int64(round * 7 % int(end))); err != nil {
			t.Fatal(err)
		}
		follower.UpdateFollowerHighWatermark(end)
	}
	close(stop)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
