package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/record"
)

// txnBatch builds a transactional batch of n records.
func txnBatch(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	recs := make([]record.NewRecord, n)
	for i := range recs {
		recs[i] = record.NewRecord{Value: []byte("transactional value"), Timestamp: testBaseTimestamp + int64(seq) + int64(i)}
	}
	b, err := record.Build(record.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marker(t *testing.T, p *Partition, pid int64, epoch int16, commit bool, coordEpoch int32) AppendResult {
	t.Helper()
	res, err := p.AppendTxnMarker(pid, epoch, commit, coordEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestMarkerBatchIsKafkas(t *testing.T) {
	b := buildMarker(42, 3, true, 7, 1_700_000_000_000)
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if !b.IsControl() || !b.IsTransactional() || b.ProducerID() != 42 || b.ProducerEpoch() != 3 || b.BaseSequence() != -1 || b.RecordCount() != 1 {
		t.Fatalf("header: control %v txn %v pid %d epoch %d seq %d count %d", b.IsControl(), b.IsTransactional(), b.ProducerID(), b.ProducerEpoch(), b.BaseSequence(), b.RecordCount())
	}
	recs, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	// Kafka's EndTransactionMarker: key (version 0, type 1 COMMIT),
	// value (version 0, coordinator epoch 7).
	if want := []byte{0, 0, 0, 1}; string(recs[0].Key) != string(want) {
		t.Fatalf("key % x, want % x", recs[0].Key, want)
	}
	if want := []byte{0, 0, 0, 0, 0, 7}; string(recs[0].Value) != string(want) {
		t.Fatalf("value % x, want % x", recs[0].Value, want)
	}
	commit, ce, ok := parseMarker(b)
	if !commit || ce != 7 || !ok {
		t.Fatalf("parseMarker = %v %d %v", commit, ce, ok)
	}
	if commit, _, _ := parseMarker(buildMarker(42, 3, false, 7, 0)); commit {
		t.Fatal("abort read as commit")
	}
}

func TestLastStableOffset(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 2)) // 0-1
	appendBatch(t, p, txnBatch(t, 10, 0, 0, 3))     // 2-4, txn of 10
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1)) // 5
	appendBatch(t, p, txnBatch(t, 11, 0, 0, 2))     // 6-7, txn of 11
	appendBatch(t, p, txnBatch(t, 10, 0, 3, 1))     // 8
	if hw, lso := p.Log.HighWatermark(), p.LastStableOffset(); hw != 9 || lso != 2 {
		t.Fatalf("hw %d lso %d, want 9 and 2", hw, lso)
	}
	if n := p.OngoingTransactions(); n != 2 {
		t.Fatalf("%d ongoing, want 2", n)
	}
	// A non-transactional batch of a producer inside a transaction.
	if _, err := p.Append(producerBatch(t, 10, 0, 4, 1), 1<<20, false); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v", err)
	}
	// An older epoch's marker is fenced; a coordinator epoch is kept.
	marker(t, p, 10, 0, false, 5) // 9: abort of 10
	if lso := p.LastStableOffset(); lso != 6 {
		t.Fatalf("lso %d after the abort of 10, want 6", lso)
	}
	if _, err := p.AppendTxnMarker(11, 0, true, 4); !errors.Is(err, nil) {
		t.Fatalf("first marker of 11 from coordinator epoch 4: %v", err)
	}
	// 10: commit of 11.
	if lso, hw := p.LastStableOffset(), p.Log.HighWatermark(); lso != hw || hw != 11 {
		t.Fatalf("lso %d hw %d, want 11", lso, hw)
	}
	if _, err := p.AppendTxnMarker(10, 0, true, 4); !errors.Is(err, ErrTransactionCoordinatorFenced) {
		t.Fatalf("marker from an older coordinator epoch: %v", err)
	}
	appendBatch(t, p, txnBatch(t, 10, 1, 0, 1)) // 11: new epoch
	if _, err := p.AppendTxnMarker(10, 0, false, 5); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	marker(t, p, 10, 2, false, 5) // 12: a higher epoch is taken (KIP-890)
	got := p.AbortedTransactions(0, 100)
	want := []AbortedTxn{
		{ProducerID: 10, FirstOffset: 2, LastOffset: 9, LastStableOffset: 6},
		{ProducerID: 10, FirstOffset: 11, LastOffset: 12, LastStableOffset: 13},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted %+v, want %+v", got, want)
	}
	if got := p.AbortedTransactions(10, 11); len(got) != 0 {
		t.Fatalf("aborted in [10, 11): %+v", got)
	}
	if got := p.AbortedTransactions(9, 10); len(got) != 1 || got[0].LastOffset != 9 {
		t.Fatalf("aborted in [9, 10): %+v", got)
	}
	if got := p.AbortedTransactions(0, 2); len(got) != 0 {
		t.Fatalf("aborted in [0, 2): %+v", got)
	}
}

// TestLSOWaitsForReplicatedMarker: a committed transaction holds the LSO
// until its marker is below the high watermark (Kafka's unreplicatedTxns).
func TestLSOWaitsForReplicatedMarker(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	leading(t, p, []int32{1, 2}, 1)
	appendBatch(t, p, txnBatch(t, 10, 0, 0, 3)) // 0-2
	p.FollowerFetch(2, 1, 3, time.Now())
	if hw, lso := p.Log.HighWatermark(), p.LastStableOffset(); hw != 3 || lso != 0 {
		t.Fatalf("hw %d lso %d, want 3, 0", hw, lso)
	}
	res := marker(t, p, 10, 0, true, 0) // 3
	if w, ok := p.WaitFor(res.NextOffset); !ok || w.Target != 4 {
		t.Fatalf("WaitFor(%d) = %+v %v", res.NextOffset, w, ok)
	}
	if lso := p.LastStableOffset(); lso != 0 {
		t.Fatalf("lso %d with the marker unreplicated, want 0", lso)
	}
	p.FollowerFetch(2, 1, 4, time.Now())
	if lso := p.LastStableOffset(); lso != 4 {
		t.Fatalf("lso %d with the marker replicated, want 4", lso)
	}
}

// TestTxnStateSurvivesRestart: an open transaction is in the snapshot
// (current_txn_first_offset) and the aborted ones in .txnindex files;
// after a clean or unclean restart, LSO and aborts are the same.
func TestTxnStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	var seq10 int32
	for i := range 6 { // aborted transactions across several segments
		appendBatch(t, p, txnBatch(t, 10, 0, seq10, 3))
		seq10 += 3
		appendBatch(t, p, producerBatch(t, 0, 0, 0, 2))
		marker(t, p, 10, 0, i%2 == 0, 1)
	}
	appendBatch(t, p, txnBatch(t, 11, 0, 0, 2)) // left open
	first11, _ := p.OngoingTxnFirstOffset(11)
	lso, aborted := p.LastStableOffset(), p.AbortedTransactions(0, 1<<40)
	if lso != first11 || len(aborted) != 3 {
		t.Fatalf("lso %d (txn of 11 at %d), %d aborted", lso, first11, len(aborted))
	}
	if n := len(p.Log.SegmentBaseOffsets()); n < 3 {
		t.Fatalf("%d segments; the test wants rolls", n)
	}
	pdir := p.Log.Dir()
	// Files of Kafka's format, one per segment holding an abort marker.
	var files int
	for _, base := range p.Log.SegmentBaseOffsets() {
		data, err := os.ReadFile(filepath.Join(pdir, txnIndexName(base)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		files++
		entries, err := decodeTxnIndex(data)
		if err != nil || len(entries) == 0 {
			t.Fatalf("txnindex %d: %v, %d entries", base, err, len(entries))
		}
	}
	if files == 0 {
		t.Fatal("no .txnindex file")
	}
	crashDir := t.TempDir()
	copyDir(t, dir, crashDir) // as a crash would leave it
	closeBroker(t, b)

	for _, d := range []string{dir, crashDir} {
		b := openBroker(t, d)
		p := partition(t, b)
		if got := p.LastStableOffset(); got != lso {
			t.Errorf("%s: lso %d after restart, want %d", d, got, lso)
		}
		if got := p.AbortedTransactions(0, 1<<40); !reflect.DeepEqual(got, aborted) {
			t.Errorf("%s: aborted %+v after restart, want %+v", d, got, aborted)
		}
		// The snapshot at close carries the open transaction.
		marker(t, p, 11, 0, false, 1)
		if got := p.LastStableOffset(); got != p.Log.HighWatermark() {
			t.Errorf("lso %d after the abort of 11, hw %d", got, p.Log.HighWatermark())
		}
		closeBroker(t, b)
	}
	// Clean restart: from the snapshot alone (nothing replayed).
	b = openBroker(t, dir)
	p = partition(t, b)
	if p.replayed != 0 {
		t.Errorf("replayed %d batches after a clean close", p.replayed)
	}
	if got := len(p.AbortedTransactions(0, 1<<40)); got != 4 {
		t.Errorf("%d aborted after reopen, want 4", got)
	}
	closeBroker(t, b)
}

// TestSnapshotCarriesOpenTxn: the snapshot entry of a producer with an
// open transaction has its first offset and the last coordinator epoch.
func TestSnapshotCarriesOpenTxn(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	appendBatch(t, p, txnBatch(t, 7, 0, 0, 2))
	marker(t, p, 7, 0, true, 9)
	appendBatch(t, p, txnBatch(t, 7, 0, 2, 2)) // 3-4
	closeBroker(t, b)
	entries := readSnapshotFile(t, p.Log.Dir(), 5)
	if len(entries) != 1 || entries[0].CurrentTxnFirstOffset != 3 || entries[0].CoordinatorEpoch != 9 {
		t.Fatalf("snapshot entries %+v", entries)
	}
}

// TestFollowerTracksTxns: a follower learns open transactions and aborts
// from the batches it copies, truncation forgets what it cut, and the
// txn index follows.
func TestFollowerTracksTxns(t *testing.T) {
	lb := openBroker(t, t.TempDir())
	defer closeBroker(t, lb)
	fb := openBroker(t, t.TempDir())
	defer closeBroker(t, fb)
	leader, follower := partition(t, lb), partition(t, fb)
	appendBatch(t, leader, txnBatch(t, 5, 0, 0, 2)) // 0-1
	appendBatch(t, leader, txnBatch(t, 6, 0, 0, 2)) // 2-3
	marker(t, leader, 5, 0, false, 0)               // 4
	appendBatch(t, leader, txnBatch(t, 5, 0, 2, 2)) // 5-6
	marker(t, leader, 5, 0, false, 0)               // 7
	copyToFollower(t, leader, follower, leader.Log.LogEndOffset())
	follower.UpdateFollowerHighWatermark(leader.Log.HighWatermark())
	if got, want := follower.LastStableOffset(), int64(2); got != want {
		t.Fatalf("follower lso %d, want %d", got, want)
	}
	if got, want := follower.AbortedTransactions(0, 100), leader.AbortedTransactions(0, 100); !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Fatalf("follower aborted %+v, leader %+v", got, want)
	}
	if err := follower.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	if got := follower.AbortedTransactions(0, 100); len(got) != 1 || got[0].LastOffset != 4 {
		t.Fatalf("after truncation to 5: aborted %+v", got)
	}
	if first, ok := follower.OngoingTxnFirstOffset(5); ok {
		t.Fatalf("producer 5's transaction at %d survived the truncation", first)
	}
	if err := follower.TruncateTo(3); err != nil {
		t.Fatal(err)
	}
	if got := follower.AbortedTransactions(0, 100); len(got) != 0 {
		t.Fatalf("after truncation to 3: aborted %+v", got)
	}
	if first, ok := follower.OngoingTxnFirstOffset(5); !ok || first != 0 {
		t.Fatalf("producer 5's transaction (%d, %v) after truncation to 3, want open at 0", first, ok)
	}
	for _, base := range follower.Log.SegmentBaseOffsets() {
		if exists(t, filepath.Join(follower.Log.Dir(), txnIndexName(base))) {
			t.Fatalf("txnindex of segment %d left with no entry", base)
		}
	}
}

func TestTxnIndexRoundTrip(t *testing.T) {
	in := []AbortedTxn{
		{ProducerID: 1, FirstOffset: 0, LastOffset: 5, LastStableOffset: 6},
		{ProducerID: 1 << 40, FirstOffset: 3, LastOffset: 9, LastStableOffset: 7},
	}
	var data []byte
	for _, e := range in {
		data = encodeAbortedTxn(data, e)
	}
	if len(data) != 2*34 {
		t.Fatalf("%d bytes", len(data))
	}
	// Kafka's AbortedTxn layout, field by field.
	want0 := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6}
	if string(data[:34]) != string(want0) {
		t.Fatalf("entry 0: % x", data[:34])
	}
	got, err := decodeTxnIndex(data)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	if got, err := decodeTxnIndex(data[:50]); !errors.Is(err, ErrCorruptTxnIndex) || len(got) != 1 {
		t.Fatalf("torn: %+v, %v", got, err)
	}
	bad := append([]byte(nil), data...)
	bad[34+1] = 1 // version 1
	if got, err := decodeTxnIndex(bad); !errors.Is(err, ErrCorruptTxnIndex) || len(got) != 1 {
		t.Fatalf("bad version: %+v, %v", got, err)
	}
}

func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeAbortedTxn(nil, AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 5, LastStableOffset: 6}))
	f.Add([]byte{})
	f.Add(make([]byte, 35))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decodeTxnIndex(data)
		var back []byte
		for _, e := range entries {
			back = encodeAbortedTxn(back, e)
		}
		if string(back) != string(data[:len(back)]) {
			t.Fatal("entries do not encode back to the bytes they came from")
		}
		if err == nil && len(back) != len(data) {
			t.Fatal("no error, yet bytes left over")
		}
	})
}

// TestTxnIndexGoesWithItsSegment: a segment deleted by DeleteRecords (or
// retention) takes its .txnindex with it, and the aborted transactions
// below the log start are no longer reported.
func TestTxnIndexGoesWithItsSegment(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	appendBatch(t, p, txnBatch(t, 3, 0, 0, 2))
	marker(t, p, 3, 0, false, 0) // 2: abort in the first segment
	first := p.Log.SegmentBaseOffsets()[0]
	path := filepath.Join(p.Log.Dir(), txnIndexName(first))
	if !exists(t, path) {
		t.Fatal("no txnindex for the first segment")
	}
	for i := int32(0); len(p.Log.SegmentBaseOffsets()) < 3; i++ {
		appendBatch(t, p, producerBatch(t, 4, 0, i*3, 3))
	}
	if err := p.Log.Flush(); err != nil {
		t.Fatal(err)
	}
	start := p.Log.SegmentBaseOffsets()[1]
	if _, err := p.Log.DeleteRecordsBefore(start); err != nil {
		t.Fatal(err)
	}
	if exists(t, path) {
		t.Fatal("the deleted segment's txnindex is still there")
	}
	if got := p.AbortedTransactions(start, 1<<40); len(got) != 0 {
		t.Fatalf("aborted below the log start reported: %+v", got)
	}
}

// TestTxnIndexRecovery: a crash that loses the ABORT marker from the log
// (not fsynced) but not its fsynced txnindex entry: recovery cuts the log,
// loading cuts the entry (and the file with it), and the transaction is
// open again.
func TestTxnIndexRecovery(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1)) // 0
	appendBatch(t, p, txnBatch(t, 3, 0, 0, 2))      // 1-2
	seg := filepath.Join(p.Log.Dir(), fmt.Sprintf("%020d.log", p.Log.ActiveSegmentBaseOffset()))
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	marker(t, p, 3, 0, false, 0) // 3
	idx := txnIndexName(p.Log.ActiveSegmentBaseOffset())
	crashDir := t.TempDir()
	copyDir(t, dir, crashDir)
	closeBroker(t, b)
	rel, _ := filepath.Rel(dir, seg)
	if err := os.Truncate(filepath.Join(crashDir, rel), st.Size()); err != nil {
		t.Fatal(err)
	}
	b = openBroker(t, crashDir)
	defer closeBroker(t, b)
	p = partition(t, b)
	if leo := p.Log.LogEndOffset(); leo != 3 {
		t.Fatalf("log end offset %d after recovery, want 3", leo)
	}
	if got := p.AbortedTransactions(0, 1<<40); len(got) != 0 {
		t.Fatalf("aborted %+v: the entry of a lost marker survived", got)
	}
	if exists(t, filepath.Join(p.Log.Dir(), idx)) {
		t.Fatal("txnindex with no entry left")
	}
	if first, ok := p.OngoingTxnFirstOffset(3); !ok || first != 1 {
		t.Fatalf("producer 3's transaction (%d, %v), want open at 1", first, ok)
	}
	if lso := p.LastStableOffset(); lso != 1 {
		t.Fatalf("lso %d, want 1", lso)
	}
}

// TestTxnVerificationGuard: a verification with the coordinator that a
// marker of the producer overtook is stale: its batch is refused, as
// Kafka's VerificationGuard does; a fresh one is taken, and the producer's
// next batches in the transaction need none.
func TestTxnVerificationGuard(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	appendBatch(t, p, txnBatch(t, 10, 0, 0, 1)) // 0: an earlier transaction
	stale, needed := p.StartTxnVerification(10)
	if needed {
		t.Fatal("verification needed inside an open transaction")
	}
	marker(t, p, 10, 0, true, 0) // 1: it ends
	stale, needed = p.StartTxnVerification(10)
	if !needed || stale == 0 {
		t.Fatalf("verification after the marker: guard %d needed %v", stale, needed)
	}
	marker(t, p, 10, 0, false, 0) // 2: the coordinator aborted meanwhile
	_, err := p.AppendVerifiedNoWait(txnBatch(t, 10, 0, 1, 1), 1<<20, false, stale)
	if !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("append under a stale guard: %v", err)
	}
	if n := p.OngoingTransactions(); n != 0 {
		t.Fatalf("%d ongoing after a refused batch", n)
	}
	guard, needed := p.StartTxnVerification(10)
	if !needed || guard == stale {
		t.Fatalf("fresh verification: guard %d (stale %d) needed %v", guard, stale, needed)
	}
	if again, _ := p.StartTxnVerification(10); again != guard {
		t.Fatalf("a verification running at once got guard %d, want %d", again, guard)
	}
	if _, err := p.AppendVerifiedNoWait(txnBatch(t, 10, 0, 1, 1), 1<<20, false, guard); err != nil {
		t.Fatal(err)
	}
	if _, needed := p.StartTxnVerification(10); needed {
		t.Fatal("verification needed once the transaction is open")
	}
	// A failed verification leaves nothing behind.
	g, _ := p.StartTxnVerification(11)
	p.AbandonTxnVerification(11, g)
	if _, err := p.AppendVerifiedNoWait(txnBatch(t, 11, 0, 0, 1), 1<<20, false, g); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("append under an abandoned guard: %v", err)
	}
}
