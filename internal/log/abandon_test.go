package log

import (
	"os"
	"path/filepath"
	"testing"
)

// Abandon leaves the dir as a kill would: no clean-shutdown marker, the
// active index untrimmed, and every appended record back after recovery.
func TestManagerAbandon(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(managerConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"t", 0}
	l, _ := m.GetOrCreate(tp, testConfig())
	for range 10 {
		mustAppend(t, l, batchOf(t, "a", 2, 1))
	}
	m.Abandon()
	m.Abandon() // a second call does nothing
	m.Close()   // nor does a Close after it
	if _, err := os.Stat(filepath.Join(dir, CleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatalf("abandoned dir has a clean-shutdown marker: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "t-0", segmentName(0)+indexSuffix)); err != nil || fi.Size() != int64(testConfig().SegmentIndexBytes) {
		t.Fatalf("active offset index trimmed or missing: %v, %v", fi, err)
	}
	m2, err := OpenManager(managerConfig(dir)) // the dir lock was released
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Get(tp).LogEndOffset(); got != 20 {
		t.Fatalf("end after abandon and restart %d, want 20", got)
	}
}
