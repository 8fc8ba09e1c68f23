package log

import (
	"fmt"
	"testing"
)

// BenchmarkManagerOpen opens a log dir of 2000 partitions with 3 segments
// each after a clean shutdown, and after a crash (no marker: every active
// segment from its recovery point is scanned). Closed segments open lazily,
// so a clean start touches one segment per partition.
func BenchmarkManagerOpen(b *testing.B) {
	const partitions, segmentsEach = 2000, 3
	dir := b.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	m, err := OpenManager(ManagerConfig{Dirs: []string{dir}, ConfigFor: func(TopicPartition) Config { return cfg }})
	if err != nil {
		b.Fatal(err)
	}
	batch := batchOf(b, "m", 10, 1)
	for p := 0; p < partitions; p++ {
		l, err := m.GetOrCreate(TopicPartition{Topic: "bench", Partition: int32(p)}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		for l.NumSegments() < segmentsEach {
			if _, err := l.Append(append([]byte(nil), batch...), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	for _, clean := range []bool{true, false} {
		b.Run(fmt.Sprintf("partitions=%d/clean=%v", partitions, clean), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if !clean {
					// A crash: the marker is gone. Recovery points from
					// the checkpoint still bound the scan.
					removeMarker(b, dir)
				}
				b.StartTimer()
				m, err := OpenManager(ManagerConfig{Dirs: []string{dir}, ConfigFor: func(TopicPartition) Config { return cfg }})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n := len(m.Logs()); n != partitions {
					b.Fatalf("%d logs", n)
				}
				m.Close()
				b.StartTimer()
			}
		})
	}
}
