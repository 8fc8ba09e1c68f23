package broker

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

var testTP = log.TopicPartition{Topic: "orders", Partition: 0}

// smallSegments rolls about every ten test batches.
func smallSegments() log.Config {
	c := log.DefaultConfig()
	c.SegmentBytes = 1024
	c.SegmentIndexBytes = 4096
	return c
}

func openBroker(t *testing.T, dir string) *Broker {
	t.Helper()
	b, err := Open(Config{LogDirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// partition creates (or, after a reopen, reconfigures) testTP.
func partition(t *testing.T, b *Broker) *Partition {
	t.Helper()
	p, err := b.CreatePartition(testTP, smallSegments())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func closeBroker(t *testing.T, b *Broker) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// testBaseTimestamp is recent, so that producers written by the tests are
// not already past producer.id.expiration.ms when a partition is reopened.
var testBaseTimestamp = time.Now().UnixMilli()

// producerBatch builds a batch of n records from an idempotent producer
// (pid 0 means none). Append patches batches in place, so every call builds
// a fresh one; a retry is the same call again.
func producerBatch(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	recs := make([]record.NewRecord, n)
	for i := range recs {
		recs[i] = record.NewRecord{Value: []byte("some value of a record"), Timestamp: testBaseTimestamp + int64(seq) + int64(i)}
	}
	b, err := record.Build(record.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendBatch(t *testing.T, p *Partition, data []byte) AppendResult {
	t.Helper()
	res, err := p.Append(data, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func snapshotOffsets(t *testing.T, p *Partition) []int64 {
	t.Helper()
	offs, err := listSnapshots(p.Log.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

func readSnapshotFile(t *testing.T, dir string, offset int64) []snapshotEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, snapshotName(offset)))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// copyDir copies a log dir file by file, as a crash would leave it: without
// the clean-shutdown marker (the broker is still running) and so recovered
// at the next open.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Name() == ".lock" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
