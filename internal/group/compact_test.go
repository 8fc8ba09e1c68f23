package group

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// logStorage keeps each __consumer_offsets partition in a real log under
// dir, as the broker does, and implements Compactor.
type logStorage struct {
	t    *testing.T
	dir  string
	mu   sync.Mutex
	logs map[int32]*log.Log
}

func (s *logStorage) log(p int32) *log.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[p]; l != nil {
		return l
	}
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0 // removed segments go at once, before TempDir's cleanup
	l, err := log.Open(filepath.Join(s.dir, fmt.Sprintf("%s-%d", Topic, p)), cfg, log.Options{CleanShutdown: true})
	if err != nil {
		s.t.Fatal(err)
	}
	s.logs[p] = l
	return l
}

func (s *logStorage) Append(p int32, batch []byte) error {
	l := s.log(p)
	if _, err := l.Append(batch, 0); err != nil {
		return err
	}
	l.SetHighWatermark(l.LogEndOffset())
	return nil
}

func (s *logStorage) Roll(p int32) (int64, error) {
	l := s.log(p)
	return l.LogEndOffset(), l.Roll()
}

func (s *logStorage) DeleteBefore(p int32, offset int64) error {
	_, err := s.log(p).DeleteRecordsBefore(offset)
	return err
}

func (s *logStorage) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, l := range s.logs {
		l.Close()
		delete(s.logs, p)
	}
}

func commitReq(group string, offset int64, partitions int) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = int32(p), offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestCompactionKeepsLiveStateOnly commits the same offsets many times,
// deletes a group, and checks that compaction leaves a partition holding
// only the live records, from which a restart loads the same state.
func TestCompactionKeepsLiveStateOnly(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	cfg := Config{Partitions: 1, Storage: st, CompactAfterRecords: 100}
	c := newOwning(cfg)
	for i := range 60 {
		for _, g := range []string{"keep", "drop"} {
			resp := c.Commit(commitReq(g, int64(i), 4))
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("commit: code %d", code)
			}
		}
	}
	if code := c.DeleteGroup("drop"); code != 0 {
		t.Fatalf("delete group: code %d", code)
	}
	// 480 offset records and 5 tombstones were written. The background
	// compaction keeps the partition within about CompactAfterRecords of
	// the live state; a compaction now leaves exactly the 4 live offsets.
	l := st.log(0)
	count := func() int {
		for {
			var n int
			err := l.Scan(0, func(b record.Batch) error { n += int(b.RecordCount()); return nil })
			if err == nil {
				return n
			}
			if !errors.Is(err, log.ErrOffsetOutOfRange) {
				t.Fatal(err)
			}
			// A compaction moved the log start while we read: again.
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for n := count(); n > 2*100+8; n = count() {
		if time.Now().After(deadline) {
			t.Fatalf("partition holds %d records; background compaction should keep it near 100", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Compact now, holding the flag the background loop takes, so that
	// no background rewrite interleaves with this one.
	for !c.compacting[0].CompareAndSwap(false, true) {
		runtime.Gosched()
	}
	err := c.compact(st, 0)
	c.compacting[0].Store(false)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 4 {
		t.Fatalf("partition holds %d records after compaction, want the 4 live offsets", n)
	}
	c.Close()

	c2 := New(Config{Partitions: 1, Storage: st, CompactAfterRecords: 100})
	defer c2.Close()
	if err := c2.Load(0, l); err != nil {
		t.Fatal(err)
	}
	got, code := c2.FetchOffsets("keep", nil)
	if code != 0 || len(got) != 1 || len(got[0].Partitions) != 4 {
		t.Fatalf("offsets after reload: %+v code %d", got, code)
	}
	for _, p := range got[0].Partitions {
		if p.Offset != 59 {
			t.Fatalf("partition %d offset %d after reload, want 59", p.Partition, p.Offset)
		}
	}
	if d := c2.Describe("drop", 5); d.State != Dead.String() {
		t.Fatalf("deleted group came back as %s", d.State)
	}
}

// failingRolls is a logStorage whose compactions fail at the roll, as on a
// full disk or a partition whose leadership just moved away.
type failingRolls struct {
	*logStorage
	rolls atomic.Int32
}

func (s *failingRolls) Roll(int32) (int64, error) {
	s.rolls.Add(1)
	return 0, errors.New("no space left on device")
}

// A compaction that fails is not retried at once: commits keep asking for
// one (the partition still holds too many records), and without a pause
// the loop would spin on the error.
func TestCompactionFailureBacksOff(t *testing.T) {
	st := &failingRolls{logStorage: &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}}
	defer st.close()
	c := newOwning(Config{Partitions: 1, Storage: st, CompactAfterRecords: 10})
	deadline := time.Now().Add(500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		c.Commit(commitReq("g", int64(i), 1))
	}
	if n := st.rolls.Load(); n < 1 || n > 2 {
		t.Fatalf("%d compactions tried in 0.5 s of commits; want 1 or 2 (one, then a pause of %v)", n, compactRetryBackoff)
	}
}
