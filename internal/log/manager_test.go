package log

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-io/strata/internal/fs"
)

func managerConfig(dirs ...string) ManagerConfig {
	return ManagerConfig{Dirs: dirs, ConfigFor: func(TopicPartition) Config { return testConfig() }}
}

func TestManagerLifecycle(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	m, err := OpenManager(managerConfig(d1, d2))
	if err != nil {
		t.Fatal(err)
	}
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"my-topic-with-dashes", 3}, {"x", 0}}
	for i, tp := range tps {
		l, err := m.GetOrCreate(tp, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j <= i; j++ {
			mustAppend(t, l, batchOf(t, tp.String(), 2, 1))
		}
		l.SetHighWatermark(l.LogEndOffset())
	}
	if again, _ := m.GetOrCreate(tps[0], testConfig()); again != m.Get(tps[0]) {
		t.Fatal("GetOrCreate made a second log")
	}
	// Partitions spread over both dirs.
	for _, d := range []string{d1, d2} {
		if ents, _ := filepath.Glob(filepath.Join(d, "*-[0-9]*")); len(ents) != 2 {
			t.Fatalf("%s holds %d partitions, want 2", d, len(ents))
		}
	}
	// A second broker cannot take the dirs.
	if _, err := OpenManager(managerConfig(d1)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second manager on a locked dir: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Kafka's checkpoint text format and the clean-shutdown marker.
	for _, d := range []string{d1, d2} {
		if _, err := os.Stat(filepath.Join(d, CleanShutdownFile)); err != nil {
			t.Fatalf("no clean-shutdown marker in %s", d)
		}
		data, err := os.ReadFile(filepath.Join(d, RecoveryPointCheckpoint))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if lines[0] != "0" || lines[1] != "2" || len(lines) != 4 {
			t.Fatalf("%s checkpoint:\n%s", d, data)
		}
	}
	all := map[TopicPartition]int64{}
	for _, d := range []string{d1, d2} {
		cp, err := readCheckpoint(fs.OS, filepath.Join(d, ReplicationCheckpoint))
		if err != nil {
			t.Fatal(err)
		}
		for tp, o := range cp {
			all[tp] = o
		}
	}
	for i, tp := range tps {
		if all[tp] != int64(2*(i+1)) {
			t.Fatalf("high watermark checkpoint of %v = %d, want %d", tp, all[tp], 2*(i+1))
		}
	}

	// Reopen: the marker is consumed, every log is back.
	m2, err := OpenManager(managerConfig(d1, d2))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if _, err := os.Stat(filepath.Join(d1, CleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatal("clean-shutdown marker still there after open")
	}
	for i, tp := range tps {
		l := m2.Get(tp)
		if l == nil || l.LogEndOffset() != int64(2*(i+1)) || l.HighWatermark() != int64(2*(i+1)) {
			t.Fatalf("%v after reopen: %v", tp, l)
		}
	}
	if err := m2.Delete(tps[0]); err != nil {
		t.Fatal(err)
	}
	if m2.Get(tps[0]) != nil {
		t.Fatal("deleted log still served")
	}
	m2.Close()
	m3, err := OpenManager(managerConfig(d1, d2))
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if m3.Get(tps[0]) != nil || len(m3.Logs()) != 3 {
		t.Fatalf("after delete and restart: %d logs", len(m3.Logs()))
	}
}

// TestManagerUncleanRestart: without the marker the logs are recovered, and
// a corrupt tail written after the last checkpoint is cut off.
func TestManagerUncleanRestart(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(managerConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"t", 0}
	l, _ := m.GetOrCreate(tp, testConfig())
	for i := 0; i < 10; i++ {
		mustAppend(t, l, batchOf(t, "u", 2, 1))
	}
	// Crash: no Close, so no flush, checkpoint or marker. Release the lock
	// as process death would, and damage the tail.
	m.unlock()
	f, _ := os.OpenFile(filepath.Join(dir, "t-0", segmentName(0)+logSuffix), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("torn write"))
	f.Close()
	m2, err := OpenManager(managerConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Get(tp).LogEndOffset(); got != 20 {
		t.Fatalf("end after unclean restart %d, want 20", got)
	}
	if size, _ := m2.Get(tp).Size(); size != int64(10*len(batchOf(t, "u", 2, 1))) {
		t.Fatalf("torn tail kept: size %d", size)
	}
}

func TestManagerIgnoresBadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m, _ := OpenManager(managerConfig(dir))
	l, _ := m.GetOrCreate(TopicPartition{"t", 0}, testConfig())
	mustAppend(t, l, batchOf(t, "c", 3, 1))
	m.Close()
	for _, content := range []string{"", "7\n", "0\n5\nt 0 1\n", "0\n1\nt zero 3\n", "\x00\xff"} {
		os.WriteFile(filepath.Join(dir, RecoveryPointCheckpoint), []byte(content), 0o644)
		m2, err := OpenManager(managerConfig(dir))
		if err != nil {
			t.Fatalf("checkpoint %q: %v", content, err)
		}
		if got := m2.Get(TopicPartition{"t", 0}).LogEndOffset(); got != 3 {
			t.Fatalf("checkpoint %q: end %d", content, got)
		}
		m2.Close()
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp")
	in := map[TopicPartition]int64{{"a", 0}: 5, {"a", 1}: 0, {"b.c_d-e", 12}: 1 << 40}
	if err := writeCheckpoint(fs.OS, path, in); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if want := "0\n3\na 0 5\na 1 0\nb.c_d-e 12 1099511627776\n"; string(data) != want {
		t.Fatalf("checkpoint file:\n%s\nwant:\n%s", data, want)
	}
	out, err := readCheckpoint(fs.OS, path)
	if err != nil || len(out) != 3 || out[TopicPartition{"b.c_d-e", 12}] != 1<<40 {
		t.Fatalf("read back %v, %v", out, err)
	}
	if m, err := readCheckpoint(fs.OS, filepath.Join(t.TempDir(), "missing")); err != nil || len(m) != 0 {
		t.Fatalf("missing checkpoint: %v %v", m, err)
	}
}

func TestParsePartitionDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		tp   TopicPartition
		ok   bool
	}{
		{"orders-0", TopicPartition{"orders", 0}, true},
		{"a-b-c-12", TopicPartition{"a-b-c", 12}, true},
		{"__consumer_offsets-49", TopicPartition{"__consumer_offsets", 49}, true},
		{"orders", TopicPartition{}, false},
		{"orders-x", TopicPartition{}, false},
		{"-1", TopicPartition{}, false},
		{"orders--1", TopicPartition{"orders-", 1}, true}, // topic "orders-" is legal
	} {
		tp, ok := parsePartitionDir(tc.name)
		if ok != tc.ok || tp != tc.tp {
			t.Errorf("parsePartitionDir(%q) = %v %v", tc.name, tp, ok)
		}
	}
}

func removeMarker(tb testing.TB, dir string) {
	tb.Helper()
	if err := os.Remove(filepath.Join(dir, CleanShutdownFile)); err != nil {
		tb.Fatal(err)
	}
}
