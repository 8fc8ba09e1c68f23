package broker

import (
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/strata-io/strata/internal/log"
)

// snapshotFixture is a two-producer snapshot written out field by field from
// Kafka's PRODUCER_SNAPSHOT_SCHEMA (ProducerStateManager.java), big endian.
var snapshotFixture = []byte{
	0x00, 0x01, // version int16 = 1
	0x88, 0x7e, 0xb0, 0xcd, // crc uint32: CRC-32C of the rest (checked below)
	0x00, 0x00, 0x00, 0x02, // producer_entries count int32 = 2
	// entry 0
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // producer_id int64 = 7
	0x00, 0x00, // epoch int16 = 0
	0x00, 0x00, 0x00, 0x02, // last_sequence int32 = 2
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, // last_offset int64 = 12
	0x00, 0x00, 0x00, 0x02, // offset_delta int32 = 2
	0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // timestamp int64 = 1700000000000
	0xff, 0xff, 0xff, 0xff, // coordinator_epoch int32 = -1
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // current_txn_first_offset int64 = -1
	// entry 1: a producer whose sequence wrapped inside its last batch
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // producer_id = 1000
	0x00, 0x03, // epoch = 3
	0x00, 0x00, 0x00, 0x01, // last_sequence = 1
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x11, // last_offset = 1041
	0x00, 0x00, 0x00, 0x04, // offset_delta = 4: first sequence MaxInt32-2
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // timestamp = -1
	0xff, 0xff, 0xff, 0xff, // coordinator_epoch = -1
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // current_txn_first_offset = -1
}

var fixtureEntries = []snapshotEntry{
	{ProducerID: 7, ProducerEpoch: 0, LastSequence: 2, LastOffset: 12, OffsetDelta: 2, Timestamp: 1_700_000_000_000, CoordinatorEpoch: -1, CurrentTxnFirstOffset: -1},
	{ProducerID: 1000, ProducerEpoch: 3, LastSequence: 1, LastOffset: 1041, OffsetDelta: 4, Timestamp: -1, CoordinatorEpoch: -1, CurrentTxnFirstOffset: -1},
}

func TestSnapshotFixture(t *testing.T) {
	// The fixture's CRC, computed independently of the code under test.
	if got := crc32.Checksum(snapshotFixture[6:], crc32.MakeTable(crc32.Castagnoli)); got != 0x887eb0cd {
		t.Fatalf("fixture crc is %08x", got)
	}
	if got := encodeSnapshot(fixtureEntries); string(got) != string(snapshotFixture) {
		t.Fatalf("encode:\n got % x\nwant % x", got, snapshotFixture)
	}
	got, err := decodeSnapshot(snapshotFixture)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fixtureEntries) {
		t.Fatalf("decode: got %+v", got)
	}
	// Restoring gives back each producer's last batch.
	p := &Partition{producers: map[int64]*producerState{}}
	p.restoreSnapshotLocked(got)
	want := map[int64]batchMeta{
		7:    {firstSeq: 0, lastSeq: 2, firstOffset: 10, lastOffset: 12, timestamp: 1_700_000_000_000},
		1000: {firstSeq: 2147483645, lastSeq: 1, firstOffset: 1037, lastOffset: 1041, timestamp: -1},
	}
	for id, m := range want {
		st := p.producers[id]
		if st == nil || len(st.batches) != 1 || st.batches[0] != m {
			t.Fatalf("producer %d restored as %+v, want %+v", id, st, m)
		}
	}
	if !reflect.DeepEqual(p.snapshotEntriesLocked(), fixtureEntries) {
		t.Fatalf("state does not encode back to the fixture: %+v", p.snapshotEntriesLocked())
	}

	empty := encodeSnapshot(nil)
	if want := []byte{0, 1, 0x48, 0x67, 0x4b, 0xc7, 0, 0, 0, 0}; string(empty) != string(want) {
		t.Fatalf("empty snapshot % x, want % x", empty, want)
	}
}

func TestSnapshotDecodeRejectsDamage(t *testing.T) {
	for i := range snapshotFixture {
		bad := append([]byte(nil), snapshotFixture...)
		bad[i] ^= 0xff
		if _, err := decodeSnapshot(bad); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("byte %d flipped: err %v", i, err)
		}
	}
	for _, n := range []int{0, 5, 9, len(snapshotFixture) - 1} {
		if _, err := decodeSnapshot(snapshotFixture[:n]); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
	// A count that disagrees with the length, CRC recomputed.
	long := encodeSnapshot(fixtureEntries)
	long = append(long, 0)
	crc := crc32.Checksum(long[6:], castagnoli)
	long[2], long[3], long[4], long[5] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	if _, err := decodeSnapshot(long); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("trailing byte: err %v", err)
	}
}

func TestSnapshotOnRoll(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	const pid = 42
	base := p.Log.ActiveSegmentBaseOffset()
	var seq int32
	var lastBefore AppendResult
	for p.Log.ActiveSegmentBaseOffset() == base {
		lastBefore = appendBatch(t, p, producerBatch(t, pid, 0, seq, 2))
		seq += 2
	}
	// The batch just appended opened the new segment.
	roll := p.Log.ActiveSegmentBaseOffset()
	if roll != lastBefore.BaseOffset {
		t.Fatalf("rolled at %d, last append at %d", roll, lastBefore.BaseOffset)
	}
	p.snapWG.Wait() // written in the background
	if offs := snapshotOffsets(t, p); !reflect.DeepEqual(offs, []int64{roll}) {
		t.Fatalf("snapshots %v, want [%d]", offs, roll)
	}
	// The snapshot holds the state below the roll: the batch before it.
	want := []snapshotEntry{{
		ProducerID: pid, LastSequence: seq - 3, LastOffset: roll - 1, OffsetDelta: 1,
		Timestamp: testBaseTimestamp + int64(seq-4) + 1, CoordinatorEpoch: -1, CurrentTxnFirstOffset: -1,
	}}
	if got := readSnapshotFile(t, p.Log.Dir(), roll); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot at %d: got %+v, want %+v", roll, got, want)
	}

	// Only the latest two are kept.
	for p.Log.NumSegments() < 5 {
		appendBatch(t, p, producerBatch(t, pid, 0, seq, 2))
		seq += 2
	}
	bases := p.Log.SegmentBaseOffsets()
	p.snapWG.Wait()
	if offs := snapshotOffsets(t, p); !reflect.DeepEqual(offs, bases[3:]) {
		t.Fatalf("snapshots %v, want the last two segment bases of %v", offs, bases)
	}
}

// fillOtherSegments has a new producer, pid, write until the log has rolled
// rolls more times, pushing earlier batches out of the replay window.
func fillOtherSegments(t *testing.T, p *Partition, pid int64, rolls int) {
	t.Helper()
	want := p.Log.NumSegments() + rolls
	for seq := int32(0); p.Log.NumSegments() < want; seq++ {
		appendBatch(t, p, producerBatch(t, pid, 0, seq, 1))
	}
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1)) // and a non-idempotent one
}

func TestCleanRestartLoadsSnapshotWithoutReplay(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	appendBatch(t, p, producerBatch(t, 1, 0, 0, 3))
	first := appendBatch(t, p, producerBatch(t, 1, 0, 3, 3))
	fillOtherSegments(t, p, 100, 4)
	leo := p.Log.LogEndOffset()
	closeBroker(t, b)

	b = openBroker(t, dir)
	p = partition(t, b)
	if p.replayed != 0 || p.snapOffset != leo {
		t.Fatalf("after a clean close: replayed %d batches, snapshot %d (log end %d)", p.replayed, p.snapOffset, leo)
	}
	// Producer 1 wrote only in the first segment, four rolls ago: replaying
	// the last two segments would not know it. The snapshot does.
	res := appendBatch(t, p, producerBatch(t, 1, 0, 3, 3))
	if !res.Duplicate || res.BaseOffset != first.BaseOffset {
		t.Fatalf("retry after restart: %+v, want duplicate at %d", res, first.BaseOffset)
	}
	if _, err := p.Append(producerBatch(t, 1, 0, 9, 1), 1<<20, false); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap after restart: err %v", err)
	}
	closeBroker(t, b)

	// Control: without snapshots the replay window misses producer 1, and
	// the same retry is written again.
	for _, off := range snapshotOffsets(t, p) {
		if err := os.Remove(filepath.Join(p.Log.Dir(), snapshotName(off))); err != nil {
			t.Fatal(err)
		}
	}
	b = openBroker(t, dir)
	defer closeBroker(t, b)
	p = partition(t, b)
	if p.replayed == 0 {
		t.Fatal("no snapshot, yet nothing replayed")
	}
	if res := appendBatch(t, p, producerBatch(t, 1, 0, 3, 3)); res.Duplicate {
		t.Fatal("control: producer 1 remembered without snapshots; the test proves nothing")
	}
}

func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	first := appendBatch(t, p, producerBatch(t, 1, 0, 0, 3))
	fillOtherSegments(t, p, 100, 4)
	lastRoll := p.Log.ActiveSegmentBaseOffset()
	leo := p.Log.LogEndOffset()
	closeBroker(t, b)

	// Damage the clean-close snapshot, and plant one from a truncated
	// future.
	tpDir := filepath.Join(dir, testTP.String())
	path := filepath.Join(tpDir, snapshotName(leo))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-5] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(tpDir, snapshotName(leo+100))
	if err := os.WriteFile(future, encodeSnapshot(nil), 0o644); err != nil {
		t.Fatal(err)
	}

	b = openBroker(t, dir)
	defer closeBroker(t, b)
	p = partition(t, b)
	if p.snapOffset != lastRoll || p.replayed == 0 {
		t.Fatalf("loaded snapshot %d and replayed %d batches; want the roll snapshot %d and a replay", p.snapOffset, p.replayed, lastRoll)
	}
	if exists(t, path) || exists(t, future) {
		t.Fatal("corrupt or future snapshot left on disk")
	}
	if res := appendBatch(t, p, producerBatch(t, 1, 0, 0, 3)); !res.Duplicate || res.BaseOffset != first.BaseOffset {
		t.Fatalf("retry: %+v, want duplicate at %d", res, first.BaseOffset)
	}
}

func TestUncleanRestartReplaysFromRollSnapshot(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	defer closeBroker(t, b)
	p := partition(t, b)
	first := appendBatch(t, p, producerBatch(t, 1, 0, 0, 3))
	fillOtherSegments(t, p, 100, 4)
	// Batches after the last roll exist only in the log.
	last := appendBatch(t, p, producerBatch(t, 3, 0, 0, 1))
	lastRoll := p.Log.ActiveSegmentBaseOffset()
	p.snapWG.Wait() // roll snapshots are written in the background

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	b2 := openBroker(t, crashed)
	defer closeBroker(t, b2)
	p2 := partition(t, b2)
	if p2.snapOffset != lastRoll || p2.replayed == 0 {
		t.Fatalf("loaded snapshot %d, replayed %d; want the roll snapshot %d and a replay", p2.snapOffset, p2.replayed, lastRoll)
	}
	if res := appendBatch(t, p2, producerBatch(t, 1, 0, 0, 3)); !res.Duplicate || res.BaseOffset != first.BaseOffset {
		t.Fatalf("retry of a batch before the snapshot: %+v", res)
	}
	if res := appendBatch(t, p2, producerBatch(t, 3, 0, 0, 1)); !res.Duplicate || res.BaseOffset != last.BaseOffset {
		t.Fatalf("retry of a replayed batch: %+v", res)
	}
}

func TestSnapshotsBelowLogStartUnused(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	defer closeBroker(t, b)
	p := partition(t, b)
	appendBatch(t, p, producerBatch(t, 1, 0, 0, 1))
	fillOtherSegments(t, p, 100, 3)
	appendBatch(t, p, producerBatch(t, 1, 0, 1, 1))
	fillOtherSegments(t, p, 101, 1)
	// DeleteRecords moves the log start offset inside the active segment,
	// past every snapshot: producer 1's later batches are gone, so a
	// snapshot cannot be completed by replay and must not be used.
	appendBatch(t, p, producerBatch(t, 102, 0, 0, 1))
	start, err := p.Log.DeleteRecordsBefore(p.Log.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	p.snapWG.Wait() // roll snapshots are written in the background
	if offs := snapshotOffsets(t, p); len(offs) == 0 || offs[len(offs)-1] >= start {
		t.Fatalf("snapshots %v not all below the log start offset %d", offs, start)
	}
	last := appendBatch(t, p, producerBatch(t, 1, 0, 2, 1))
	if err := b.logs.Checkpoint(); err != nil {
		t.Fatal(err)
	}

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	b2 := openBroker(t, crashed)
	defer closeBroker(t, b2)
	p2 := partition(t, b2)
	if p2.Log.LogStartOffset() != start || p2.snapOffset != -1 {
		t.Fatalf("log start %d (want %d), snapshot loaded %d", p2.Log.LogStartOffset(), start, p2.snapOffset)
	}
	if res := appendBatch(t, p2, producerBatch(t, 1, 0, 2, 1)); !res.Duplicate || res.BaseOffset != last.BaseOffset {
		t.Fatalf("retry after DeleteRecords and restart: %+v", res)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	b := openBroker(t, t.TempDir())
	p := partition(t, b)
	closeBroker(t, b)
	if _, err := p.Append(producerBatch(t, 1, 0, 0, 1), 1<<20, false); !errors.Is(err, log.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestDecrementSequence(t *testing.T) {
	for _, c := range []struct{ seq, delta, want int32 }{
		{10, 3, 7}, {3, 3, 0}, {1, 4, 2147483645}, {0, 1, 2147483647},
	} {
		if got := decrementSequence(c.seq, c.delta); got != c.want {
			t.Errorf("decrementSequence(%d, %d) = %d, want %d", c.seq, c.delta, got, c.want)
		}
	}
}

func TestConcurrentProducersAcrossRollsAndRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	const producers, parts, batches = 4, 3, 60
	type last struct {
		seq  int32
		base int64
	}
	lasts := make([][producers]last, parts)
	var wg sync.WaitGroup
	for part := range parts {
		p, err := b.CreatePartition(log.TopicPartition{Topic: "many", Partition: int32(part)}, smallSegments())
		if err != nil {
			t.Fatal(err)
		}
		for pid := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := int32(0); seq < batches; seq++ {
					res, err := p.Append(producerBatch(t, int64(pid+1), 0, seq, 1), 1<<20, false)
					if err != nil {
						t.Error(err)
						return
					}
					lasts[part][pid] = last{seq, res.BaseOffset}
					p.Producers()
				}
			}()
		}
	}
	wg.Wait()
	closeBroker(t, b)

	b = openBroker(t, dir)
	defer closeBroker(t, b)
	for part := range parts {
		p := b.Partition(log.TopicPartition{Topic: "many", Partition: int32(part)})
		if p == nil {
			t.Fatalf("partition %d missing after reopen", part)
		}
		if p.Log.NumSegments() < 3 || p.replayed != 0 {
			t.Fatalf("partition %d after reopen: %d segments, %d batches replayed", part, p.Log.NumSegments(), p.replayed)
		}
		for pid, l := range lasts[part] {
			res := appendBatch(t, p, producerBatch(t, int64(pid+1), 0, l.seq, 1))
			if !res.Duplicate || res.BaseOffset != l.base {
				t.Fatalf("partition %d producer %d: retry %+v, want duplicate at %d", part, pid+1, res, l.base)
			}
		}
	}
}
