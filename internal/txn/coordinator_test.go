package txn

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

type kv struct{ key, value []byte }

// memStorage keeps each partition's records in memory.
type memStorage struct {
	mu   sync.Mutex
	recs map[int32][]kv
	fail error
}

func (s *memStorage) Append(p int32, key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.recs == nil {
		s.recs = map[int32][]kv{}
	}
	s.recs[p] = append(s.recs[p], kv{key, value})
	return nil
}

func (s *memStorage) Read(p int32, fn func(key, value []byte) error) error {
	s.mu.Lock()
	recs := append([]kv(nil), s.recs[p]...)
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

// fakeMarkers records markers; while block is set, every partition fails.
type fakeMarkers struct {
	mu      sync.Mutex
	written []Marker
	block   bool
	err     error
}

func (f *fakeMarkers) WriteMarkers(_ context.Context, m Marker) map[TopicPartition]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.block {
		out := map[TopicPartition]error{}
		for _, tp := range m.Partitions {
			out[tp] = cmpOr(f.err, kerr.NotLeaderForPartition)
		}
		return out
	}
	f.written = append(f.written, m)
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (f *fakeMarkers) setBlock(b bool) {
	f.mu.Lock()
	f.block = b
	f.mu.Unlock()
}

func (f *fakeMarkers) markers() []Marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Marker(nil), f.written...)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	c     *Coordinator
	store *memStorage
	mk    *fakeMarkers
	clock *fakeClock
	next  int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{store: &memStorage{}, mk: &fakeMarkers{}, clock: &fakeClock{now: time.UnixMilli(1_000_000)}, next: 1000}
	e.c = e.newCoordinator()
	t.Cleanup(e.c.Close)
	for p := range int32(4) {
		if err := e.c.Load(p, 7); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) newCoordinator() *Coordinator {
	var mu sync.Mutex
	return New(Config{
		Partitions: 4, MaxTimeout: time.Minute, IDExpiration: time.Hour,
		MarkerRetryBackoff: time.Millisecond,
		Storage:            e.store, Markers: e.mk, Clock: e.clock,
		ProducerIDs: func() (int64, error) { mu.Lock(); defer mu.Unlock(); e.next++; return e.next, nil },
	})
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

// waitState waits until the markers completed the transaction.
func waitState(t *testing.T, c *Coordinator, id string, want State) Description {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := c.Describe(id)
		if err == nil && d.State == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %v (err %v), want %v", id, d.State, err, want)
		}
		time.Sleep(time.Millisecond)
	}
}

var tp0 = TopicPartition{"t", 0}
var tp1 = TopicPartition{"t", 1}

func TestInitProducerIDBumpsEpoch(t *testing.T) {
	e := newEnv(t)
	pid, epoch, err := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, nil)
	if epoch != 0 {
		t.Fatalf("first epoch %d", epoch)
	}
	pid2, epoch2, err := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, nil)
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d/%d, want %d/1", pid2, epoch2, pid)
	}
	// The old epoch is fenced.
	wantErr(t, e.c.AddPartitions("a", pid, 0, []TopicPartition{tp0}), kerr.ProducerFenced)
	wantErr(t, e.c.AddPartitions("a", pid+1, 1, []TopicPartition{tp0}), kerr.InvalidProducerIDMapping)
	// KIP-360: the current epoch bumps; the previous epoch is a retry.
	_, ep, err := e.c.InitProducerID("a", 1000, pid, 1)
	wantErr(t, err, nil)
	if ep != 2 {
		t.Fatalf("KIP-360 bump: epoch %d", ep)
	}
	_, ep, err = e.c.InitProducerID("a", 1000, pid, 1)
	wantErr(t, err, nil)
	if ep != 2 {
		t.Fatalf("KIP-360 retry: epoch %d, want 2", ep)
	}
	_, _, err = e.c.InitProducerID("a", 1000, pid, 0)
	wantErr(t, err, kerr.ProducerFenced)
	_, _, err = e.c.InitProducerID("a", 1000, pid+77, 0)
	wantErr(t, err, kerr.ProducerFenced)
}

func TestInitProducerIDErrors(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.c.InitProducerID("a", int32(time.Minute/time.Millisecond)+1, -1, -1)
	wantErr(t, err, kerr.InvalidTransactionTimeout)
	_, _, err = e.c.InitProducerID("a", 0, -1, -1)
	wantErr(t, err, kerr.InvalidTransactionTimeout)
	_, _, err = e.c.InitProducerID("", 10, -1, -1)
	wantErr(t, err, kerr.InvalidRequest)
	e.c.Unload(PartitionFor("a", 4))
	_, _, err = e.c.InitProducerID("a", 10, -1, -1)
	wantErr(t, err, kerr.NotCoordinator)
	e.store.fail = kerr.NotEnoughReplicas
	_, _, err = e.c.InitProducerID("b", 10, -1, -1)
	if PartitionFor("b", 4) != PartitionFor("a", 4) {
		wantErr(t, err, kerr.CoordinatorNotAvailable)
	}
}

func TestCommitSendsMarkersThenCompletes(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0, tp1}), nil)
	// Adding the same partitions again is a no-op.
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp1}), nil)
	d, _ := e.c.Describe("a")
	if d.State != Ongoing || len(d.Partitions) != 2 || d.StartMs != e.clock.Now().UnixMilli() {
		t.Fatalf("after add: %+v", d)
	}
	e.mk.setBlock(true)
	_, _, err := e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, nil)
	// While markers are pending: retries of the commit are
	// CONCURRENT_TRANSACTIONS, an abort is INVALID_TXN_STATE.
	_, _, err = e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, kerr.ConcurrentTransactions)
	_, _, err = e.c.EndTxn("a", pid, epoch, false, false)
	wantErr(t, err, kerr.InvalidTxnState)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), kerr.ConcurrentTransactions)
	_, _, err = e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, kerr.ConcurrentTransactions)
	if ongoing, pending := e.c.Stats(); ongoing != 1 || pending != 1 {
		t.Fatalf("stats %d %d", ongoing, pending)
	}
	e.mk.setBlock(false)
	waitState(t, e.c, "a", CompleteCommit)
	ms := e.mk.markers()
	if len(ms) != 1 || !ms[0].Commit || ms[0].ProducerID != pid || ms[0].ProducerEpoch != epoch || ms[0].CoordinatorEpoch != 7 || len(ms[0].Partitions) != 2 {
		t.Fatalf("markers %+v", ms)
	}
	// A retried commit after completion succeeds; an abort does not.
	_, _, err = e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, nil)
	_, _, err = e.c.EndTxn("a", pid, epoch, false, false)
	wantErr(t, err, kerr.InvalidTxnState)
	// Ending with no transaction.
	_, _, err = e.c.EndTxn("nobody", 1, 0, true, false)
	if PartitionFor("nobody", 4) >= 0 {
		wantErr(t, err, kerr.InvalidProducerIDMapping)
	}
	// A new transaction after the completed one.
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp1}), nil)
	_, _, err = e.c.EndTxn("a", pid, epoch, false, false)
	wantErr(t, err, nil)
	waitState(t, e.c, "a", CompleteAbort)
}

func TestEndTxnEmptyIsInvalid(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	_, _, err := e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, kerr.InvalidTxnState)
	_, _, err = e.c.EndTxn("a", pid, epoch+1, true, false)
	wantErr(t, err, kerr.ProducerFenced)
}

func TestInitProducerIDAbortsOngoing(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	_, _, err := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, kerr.ConcurrentTransactions)
	waitState(t, e.c, "a", CompleteAbort)
	ms := e.mk.markers()
	if len(ms) != 1 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("fence markers %+v", ms)
	}
	// The old producer is fenced; the retry gets the epoch after the
	// fence's.
	_, _, err = e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, kerr.ProducerFenced)
	_, ep, err := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, nil)
	if ep != epoch+2 {
		t.Fatalf("epoch after fence %d, want %d", ep, epoch+2)
	}
}

func TestEpochExhaustionRotatesProducerID(t *testing.T) {
	e := newEnv(t)
	pid, _, _ := e.c.InitProducerID("a", 1000, -1, -1)
	e.c.mu.Lock()
	e.c.txns["a"].epoch = math.MaxInt16 - 1
	e.c.mu.Unlock()
	pid2, ep, err := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, nil)
	if pid2 == pid || ep != 0 {
		t.Fatalf("after exhaustion %d/%d", pid2, ep)
	}
}

func TestTimedOutTransactionIsAborted(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	e.clock.Advance(999 * time.Millisecond)
	e.c.AbortTimedOut()
	if d, _ := e.c.Describe("a"); d.State != Ongoing {
		t.Fatalf("aborted early: %v", d.State)
	}
	e.clock.Advance(2 * time.Millisecond)
	e.c.AbortTimedOut()
	d := waitState(t, e.c, "a", CompleteAbort)
	if d.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch %d after timeout, want %d", d.ProducerEpoch, epoch+1)
	}
	_, _, err := e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, kerr.ProducerFenced)
}

// TestTimedOutAbortFencesAfterFailedWrite: a timed-out transaction whose
// first abort could not be written (too few in-sync replicas) is still
// aborted with a bumped epoch when a later attempt succeeds, so the
// producer that let it time out is fenced. Aborting with the old epoch
// left that producer able to go on: its next transaction's batches joined
// the partitions' view of the aborted one (chaos seed 103 lost an
// acknowledged record that way: the partition answered a new batch as a
// duplicate of an aborted one with the same epoch and sequence).
func TestTimedOutAbortFencesAfterFailedWrite(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	e.clock.Advance(2 * time.Second)
	e.store.mu.Lock()
	e.store.fail = kerr.NotEnoughReplicas
	e.store.mu.Unlock()
	e.c.AbortTimedOut()
	e.c.AbortTimedOut()
	if d, _ := e.c.Describe("a"); d.State != Ongoing || d.ProducerEpoch != epoch {
		t.Fatalf("after failed aborts: %v epoch %d", d.State, d.ProducerEpoch)
	}
	e.store.mu.Lock()
	e.store.fail = nil
	e.store.mu.Unlock()
	e.c.AbortTimedOut()
	d := waitState(t, e.c, "a", CompleteAbort)
	if d.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch %d after the timeout abort, want %d", d.ProducerEpoch, epoch+1)
	}
	if ms := e.mk.markers(); len(ms) != 1 || ms[0].Commit || ms[0].ProducerEpoch != epoch+1 {
		t.Fatalf("abort markers %+v, want one abort with epoch %d", ms, epoch+1)
	}
	_, _, err := e.c.EndTxn("a", pid, epoch, false, false)
	wantErr(t, err, kerr.ProducerFenced)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), kerr.ProducerFenced)
}

func TestExpiredIDIsRemoved(t *testing.T) {
	e := newEnv(t)
	e.c.InitProducerID("a", 1000, -1, -1)
	e.clock.Advance(time.Hour)
	e.c.RemoveExpired()
	_, err := e.c.Describe("a")
	wantErr(t, err, kerr.TransactionalIDNotFound)
	// And stays removed after a reload (the tombstone).
	p := PartitionFor("a", 4)
	e.c.Unload(p)
	wantErr(t, e.c.Load(p, 8), nil)
	_, err = e.c.Describe("a")
	wantErr(t, err, kerr.TransactionalIDNotFound)
}

func TestReloadResumesMarkers(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	e.mk.setBlock(true)
	_, _, err := e.c.EndTxn("a", pid, epoch, true, false)
	wantErr(t, err, nil)
	p := PartitionFor("a", 4)
	e.c.Unload(p)
	_, err = e.c.Describe("a")
	wantErr(t, err, kerr.NotCoordinator)

	// Another coordinator loads the partition in a new epoch and
	// finishes the commit.
	c2 := e.newCoordinator()
	defer c2.Close()
	e.mk.setBlock(false)
	wantErr(t, c2.Load(p, 8), nil)
	waitState(t, c2, "a", CompleteCommit)
	ms := e.mk.markers()
	if len(ms) != 1 || ms[0].CoordinatorEpoch != 8 || !ms[0].Commit {
		t.Fatalf("resumed markers %+v", ms)
	}
	// The id's producer carries on.
	wantErr(t, c2.AddPartitions("a", pid, epoch, []TopicPartition{tp1}), nil)
}

func TestMarkersAbandonedWhenFenced(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	e.mk.mu.Lock()
	e.mk.block, e.mk.err = true, kerr.TransactionCoordinatorFenced
	e.mk.mu.Unlock()
	_, _, err := e.c.EndTxn("a", pid, epoch, false, false)
	wantErr(t, err, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, pending := e.c.Stats(); pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("markers still pending")
		}
		time.Sleep(time.Millisecond)
	}
	if d, _ := e.c.Describe("a"); d.State != PrepareAbort {
		t.Fatalf("state %v", d.State)
	}
}

func TestVerifyPartitions(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	res, err := e.c.VerifyPartitions("a", pid, epoch, []TopicPartition{tp0, tp1})
	wantErr(t, err, nil)
	if res[tp0] != nil || !errors.Is(res[tp1], kerr.TransactionAbortable) {
		t.Fatalf("verify %v", res)
	}
	_, err = e.c.VerifyPartitions("a", pid, epoch+1, []TopicPartition{tp0})
	wantErr(t, err, kerr.ProducerFenced)
	_, err = e.c.VerifyPartitions("zz", pid, epoch, []TopicPartition{tp0})
	wantErr(t, err, kerr.InvalidProducerIDMapping)
}

// TestEndTxnV2 covers transaction version 2 (EndTxn v5): the epoch is
// bumped at every end, and the retry of an end is recognised by it.
func TestEndTxnV2(t *testing.T) {
	e := newEnv(t)
	pid, epoch, _ := e.c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, e.c.AddPartitions("a", pid, epoch, []TopicPartition{tp0}), nil)
	npid, nep, err := e.c.EndTxn("a", pid, epoch, true, true)
	wantErr(t, err, nil)
	if npid != pid || nep != epoch+1 {
		t.Fatalf("v2 end: %d/%d", npid, nep)
	}
	waitState(t, e.c, "a", CompleteCommit)
	if ms := e.mk.markers(); ms[0].ProducerEpoch != epoch+1 || ms[0].TransactionVersion != 2 {
		t.Fatalf("markers %+v", ms)
	}
	// The retry with the old epoch is answered as done.
	_, ep, err := e.c.EndTxn("a", pid, epoch, true, true)
	wantErr(t, err, nil)
	if ep != epoch+1 {
		t.Fatalf("retry epoch %d", ep)
	}
	// Aborting with no transaction is allowed in v2.
	_, ep, err = e.c.EndTxn("a", pid, epoch+1, false, true)
	wantErr(t, err, nil)
	if ep != epoch+2 {
		t.Fatalf("empty abort epoch %d", ep)
	}
	waitState(t, e.c, "a", CompleteAbort)
	_, _, err = e.c.EndTxn("a", pid, epoch+7, false, true)
	wantErr(t, err, kerr.ProducerFenced)
}

func TestLoadInProgress(t *testing.T) {
	store := &memStorage{}
	block := make(chan struct{})
	bs := &blockingStorage{memStorage: store, block: block}
	c := New(Config{Partitions: 1, Storage: bs, Markers: &fakeMarkers{}, ProducerIDs: func() (int64, error) { return 1, nil }})
	defer c.Close()
	done := make(chan error)
	go func() { done <- c.Load(0, 1) }()
	for {
		if _, ok := c.Loaded(0); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, _, err := c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, kerr.CoordinatorLoadInProgress)
	_, err = c.List()
	wantErr(t, err, kerr.CoordinatorLoadInProgress)
	close(block)
	wantErr(t, <-done, nil)
	_, _, err = c.InitProducerID("a", 1000, -1, -1)
	wantErr(t, err, nil)
	l, err := c.List()
	if err != nil || len(l) != 1 || l[0].TransactionalID != "a" || l[0].State != Empty {
		t.Fatalf("list %+v %v", l, err)
	}
}

type blockingStorage struct {
	*memStorage
	block chan struct{}
}

func (b *blockingStorage) Read(p int32, fn func(key, value []byte) error) error {
	<-b.block
	return b.memStorage.Read(p, fn)
}

func TestPartitionForMatchesJava(t *testing.T) {
	// "my-txn".hashCode() = -1061187895 in Java; abs % 50 = 45. An
	// emoji is two UTF-16 units to Java.
	for _, c := range []struct {
		id   string
		want int32
	}{{"my-txn", 45}, {"", 0}, {"a", 47}, {"\U0001F600x", 39}} {
		if got := PartitionFor(c.id, 50); got != c.want {
			t.Errorf("PartitionFor(%q) = %d, want %d", c.id, got, c.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	m := &meta{id: "x", producerID: 5, prevProducerID: 4, nextProducerID: -1, epoch: 3, lastEpoch: -1, timeoutMs: 60000,
		state: Ongoing, partitions: map[TopicPartition]struct{}{tp0: {}, tp1: {}}, start: 10, lastUpdate: 20, txnVersion: 2}
	id, got, err := decodeRecord(encodeKey("x"), encodeValue(m))
	if err != nil || id != "x" {
		t.Fatal(id, err)
	}
	if got.producerID != 5 || got.prevProducerID != 4 || got.epoch != 3 || got.state != Ongoing || len(got.partitions) != 2 || got.start != 10 || got.lastUpdate != 20 || got.txnVersion != 2 {
		t.Fatalf("round trip %+v", got)
	}
	m.txnVersion = 0
	if _, got, err = decodeRecord(encodeKey("x"), encodeValue(m)); err != nil || got.prevProducerID != -1 {
		t.Fatalf("v0: %+v %v", got, err)
	}
	if _, _, err := decodeRecord([]byte{0, 1, 0, 0}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("key version 1: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	m := &meta{id: "x", producerID: 5, epoch: 3, timeoutMs: 60000, state: Ongoing,
		partitions: map[TopicPartition]struct{}{tp0: {}}, start: 10, lastUpdate: 20}
	f.Add(encodeKey("x"), encodeValue(m))
	m.txnVersion = 2
	f.Add(encodeKey("x"), encodeValue(m))
	f.Add(encodeKey("y"), []byte(nil))
	f.Add([]byte{0, 0, 0}, []byte{0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		id, got, err := decodeRecord(key, value)
		if err != nil || got == nil {
			return
		}
		// What decodes encodes back to the same state.
		_, again, err := decodeRecord(encodeKey(id), encodeValue(got))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.producerID != got.producerID || again.epoch != got.epoch || again.state != got.state || len(again.partitions) != len(got.partitions) {
			t.Fatalf("round trip: %+v != %+v", again, got)
		}
	})
}

// compactingStorage is memStorage with Rewrite.
type compactingStorage struct {
	memStorage
	rewrites int
}

func (s *compactingStorage) Rewrite(p int32, keys, values [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rewrites++
	s.recs[p] = nil
	for i := range keys {
		s.recs[p] = append(s.recs[p], kv{keys[i], values[i]})
	}
	return nil
}

func (s *compactingStorage) count(p int32) (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs[p]), s.rewrites
}

func TestCompaction(t *testing.T) {
	store := &compactingStorage{}
	var next int64
	c := New(Config{Partitions: 1, Storage: store, Markers: &fakeMarkers{}, ProducerIDs: func() (int64, error) { next++; return next, nil }})
	defer c.Close()
	wantErr(t, c.Load(0, 1), nil)
	var pid int64
	var epoch int16
	for i := range 1500 {
		var err error
		pid, epoch, err = c.InitProducerID("a", 1000, -1, -1)
		wantErr(t, err, nil)
		if i == 0 {
			_, _, err = c.InitProducerID("b", 1000, -1, -1)
			wantErr(t, err, nil)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, rewrites := store.count(0)
		if rewrites > 0 && n < 600 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not compacted: %d records, %d rewrites", n, rewrites)
		}
		time.Sleep(time.Millisecond)
	}
	c.Unload(0)
	wantErr(t, c.Load(0, 2), nil)
	d, err := c.Describe("a")
	if err != nil || d.ProducerID != pid || d.ProducerEpoch != epoch {
		t.Fatalf("after compaction and reload: %+v %v, want %d/%d", d, err, pid, epoch)
	}
	if _, err := c.Describe("b"); err != nil {
		t.Fatalf("b lost: %v", err)
	}
}

// TestEndTxnV2EpochOverflow: a transaction version 2 end at the last epoch
// moves the id to a new producer id, epoch 0, and the retry of that end
// with the old id is answered as done.
func TestEndTxnV2EpochOverflow(t *testing.T) {
	e := newEnv(t)
	pid, _, _ := e.c.InitProducerID("a", 1000, -1, -1)
	e.c.mu.Lock()
	e.c.txns["a"].epoch = math.MaxInt16 - 1
	e.c.mu.Unlock()
	const last = math.MaxInt16 - 1
	wantErr(t, e.c.AddPartitions("a", pid, last, []TopicPartition{tp0}), nil)
	npid, nep, err := e.c.EndTxn("a", pid, last, true, true)
	wantErr(t, err, nil)
	if npid == pid || nep != 0 {
		t.Fatalf("overflow end: %d/%d", npid, nep)
	}
	d := waitState(t, e.c, "a", CompleteCommit)
	if d.ProducerID != npid || d.ProducerEpoch != 0 {
		t.Fatalf("after overflow: %+v", d)
	}
	if ms := e.mk.markers(); ms[0].ProducerID != pid || ms[0].ProducerEpoch != math.MaxInt16 {
		t.Fatalf("overflow markers %+v", ms)
	}
	rpid, rep, err := e.c.EndTxn("a", pid, last, true, true)
	wantErr(t, err, nil)
	if rpid != npid || rep != 0 {
		t.Fatalf("retry after overflow: %d/%d", rpid, rep)
	}
	// The new id carries on.
	wantErr(t, e.c.AddPartitions("a", npid, 0, []TopicPartition{tp1}), nil)
}
