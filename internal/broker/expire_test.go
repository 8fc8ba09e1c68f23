package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// producerBatchAt is producerBatch with every record at timestamp ts.
func producerBatchAt(t *testing.T, pid int64, seq int32, ts int64) []byte {
	t.Helper()
	b, err := record.Build(record.BuildOptions{ProducerID: pid, BaseSequence: seq}, record.NewRecord{Value: []byte("v"), Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func producerIDs(p *Partition) map[int64]bool {
	out := map[int64]bool{}
	for _, pi := range p.Producers() {
		out[pi.ProducerID] = true
	}
	return out
}

// TestProducersExpire: producer.id.expiration.ms removes idle producers, by
// the timestamp of their last batch as Kafka does, on the broker's
// schedule; an expired producer that writes again is accepted as new.
func TestProducersExpire(t *testing.T) {
	b, err := Open(Config{LogDirs: []string{t.TempDir()}, ProducerIDExpiration: time.Hour, ProducerIDExpirationCheck: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker(t, b)
	p := partition(t, b)
	now := time.Now()
	appendBatch(t, p, producerBatchAt(t, 1, 0, now.Add(-2*time.Hour).UnixMilli())) // idle for two hours
	appendBatch(t, p, producerBatchAt(t, 2, 0, now.UnixMilli()))
	deadline := time.Now().Add(30 * time.Second)
	for producerIDs(p)[1] {
		if time.Now().After(deadline) {
			t.Fatal("producer 1 never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !producerIDs(p)[2] {
		t.Fatal("the active producer 2 expired too")
	}
	// Forgotten: a sequence that would be out of order for the old state
	// is the start of a new one.
	if _, err := p.Append(producerBatchAt(t, 1, 42, now.UnixMilli()), 1<<20, false); err != nil {
		t.Fatalf("expired producer writing again: %v", err)
	}
	// Producer 2 is still checked.
	if _, err := p.Append(producerBatchAt(t, 2, 42, now.UnixMilli()), 1<<20, false); err == nil {
		t.Fatal("live producer's sequence gap accepted")
	}
}

// TestExpiredProducersStayGoneAfterRestart: a producer that expired while
// the broker was down is not brought back by the snapshot.
func TestExpiredProducersStayGoneAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Config{LogDirs: []string{dir}, ProducerIDExpiration: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := partition(t, b)
	now := time.Now()
	appendBatch(t, p, producerBatchAt(t, 1, 0, now.Add(-time.Hour).UnixMilli()))
	appendBatch(t, p, producerBatchAt(t, 2, 0, now.UnixMilli()))
	closeBroker(t, b)

	b, err = Open(Config{LogDirs: []string{dir}, ProducerIDExpiration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBroker(t, b)
	p = partition(t, b)
	if ids := producerIDs(p); ids[1] || !ids[2] {
		t.Fatalf("producers after restart: %v, want only 2", ids)
	}
}

// TestRollDoesNotWaitForSnapshot: the producer-state snapshot a roll calls
// for is written off the produce path, so an append that rolls the log
// returns while the snapshot files are busy.
func TestRollDoesNotWaitForSnapshot(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	p.snapMu.Lock() // the snapshot files are busy (a slow fsync)
	done := make(chan error, 1)
	go func() {
		var err error
		for seq := int32(0); p.Log.NumSegments() < 3 && err == nil; seq++ {
			_, err = p.Append(producerBatch(t, 1, 0, seq, 1), 1<<20, false)
		}
		done <- err
	}()
	select {
	case err := <-done:
		p.snapMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		p.snapMu.Unlock()
		t.Fatal("appends that rolled the log waited for the snapshot")
	}
	p.snapWG.Wait()
	bases := p.Log.SegmentBaseOffsets()
	offs := snapshotOffsets(t, p)
	if len(offs) == 0 || offs[len(offs)-1] != bases[len(bases)-1] {
		t.Fatalf("snapshots %v after the rolls to %v", offs, bases)
	}
}

// TestUnfenceNeverReopensAClosedPartition: a failed delete unfences its
// partitions; one closed meanwhile (the broker stopping) stays closed.
func TestUnfenceNeverReopensAClosedPartition(t *testing.T) {
	b := openBroker(t, t.TempDir())
	defer closeBroker(t, b)
	p := partition(t, b)
	p.Fence()
	if _, err := p.Append(producerBatch(t, 0, 0, 0, 1), 1<<20, false); !errors.Is(err, log.ErrClosed) {
		t.Fatalf("append to a fenced partition: %v", err)
	}
	p.Unfence()
	appendBatch(t, p, producerBatch(t, 0, 0, 0, 1))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Fence()
	p.Unfence()
	if _, err := p.Append(producerBatch(t, 0, 0, 0, 1), 1<<20, false); !errors.Is(err, log.ErrClosed) {
		t.Fatalf("append after Close, Fence, Unfence: %v", err)
	}
}
