package log

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// Benchmarks of the storage engine, with baselines that do the same I/O
// with plain system calls. docs/BENCHMARKS.md has the commands and results.

// appendBenchBatch is 16 records of 1 KiB in one uncompressed batch (about
// 16.6 KB), a typical producer batch.
func appendBenchBatch(b *testing.B) record.Batch {
	recs := make([]recordtest.Record, 16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range recs {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte('a' + rng.IntN(26))
		}
		recs[i] = recordtest.Record{Value: v, Timestamp: 1_700_000_000_000 + int64(i)}
	}
	return recordtest.Build(b, recordtest.Options{}, recs...)
}

// BenchmarkAppend appends the same 16 KiB batch over and over in page-cache
// mode (no fsync per append). The buffer is reused: Append patches only the
// base offset and leader epoch, which are outside the CRC. Segments of 256
// MiB, so a 2 s run rolls several times (each roll flushes the old segment
// in the background, as Kafka does).
func BenchmarkAppend(b *testing.B) {
	batch := appendBenchBatch(b)
	cfg := DefaultConfig()
	cfg.SegmentBytes = 256 << 20
	l, err := Open(b.TempDir(), cfg, Options{CleanShutdown: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(l.NumSegments()), "segments")
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendBaseline writes the same bytes with sequential
// (*os.File).Write calls to one file: the ceiling BenchmarkAppend is measured
// against.
func BenchmarkAppendBaseline(b *testing.B) {
	batch := appendBenchBatch(b)
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// deviceFlushes returns the number of flush requests the block device
// holding dir has completed (/proc/diskstats, field 16), or -1 if unknown.
// It counts every process's flushes on that device, not only ours.
func deviceFlushes(dir string) int64 {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return -1
	}
	data, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return -1
	}
	major, minor := strconv.Itoa(int(unix.Major(st.Dev))), strconv.Itoa(int(unix.Minor(st.Dev)))
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 20 && f[0] == major && f[1] == minor {
			n, err := strconv.ParseInt(f[18], 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// reportFlushes reports device flushes per op since before.
func reportFlushes(b *testing.B, dir string, before int64) {
	if after := deviceFlushes(dir); before >= 0 && after >= 0 {
		b.ReportMetric(float64(after-before)/float64(b.N), "devflush/op")
	}
}

// BenchmarkAppendSync appends with flush.messages=1: every Append returns
// after an fdatasync, which concurrent appenders share (group commit). ns/op
// is per appended batch over all appenders; devflush/op counts the block
// device's flush requests (one or two per fdatasync on ext4, see the
// baseline; the count includes other processes' flushes).
func BenchmarkAppendSync(b *testing.B) {
	for _, appenders := range []int{1, 8} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			batch := appendBenchBatch(b)
			cfg := DefaultConfig()
			cfg.FlushMessages = 1
			dir := b.TempDir()
			l, err := Open(dir, cfg, Options{CleanShutdown: true})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			flushes := deviceFlushes(dir)
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range appenders {
				buf := append([]byte(nil), batch...) // Append patches its input
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(buf, 0); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			reportFlushes(b, dir, flushes)
		})
	}
}

// BenchmarkAppendSyncBaseline writes each batch and fdatasyncs the file, one
// writer: the cost of one durable write per batch without group commit.
func BenchmarkAppendSyncBaseline(b *testing.B) {
	batch := appendBenchBatch(b)
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	flushes := deviceFlushes(dir)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportFlushes(b, dir, flushes)
}

// lookupSizes are the log sizes the lookup benchmarks compare, in batches
// of one 64-byte record (134 bytes each): 20k batches is a 2.7 MB segment
// with ~650 offset-index entries, 640k batches an 86 MB segment with ~21k.
// Both fit one segment (default segment.bytes, index.interval.bytes 4096).
var lookupSizes = []struct {
	name    string
	batches int
}{
	{"20k", 20_000},
	{"640k", 640_000},
}

const lookupBaseTimestamp = 1_700_000_000_000

// buildLookupLog appends n one-record batches, batch i with timestamp
// lookupBaseTimestamp+i, closes the log and reopens it as after a clean
// shutdown.
func buildLookupLog(b *testing.B, n int) *Log {
	b.Helper()
	tmpl := recordtest.Values(b, lookupBaseTimestamp, strings.Repeat("v", 64))
	size := len(tmpl)
	dir := b.TempDir()
	cfg := DefaultConfig()
	l, err := Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		b.Fatal(err)
	}
	// Append 1024 batches per call; timestamps are inside the CRC, so
	// each copy gets its own timestamps and CRC.
	const chunk = 1024
	buf := make([]byte, 0, chunk*size)
	for i := 0; i < n; {
		buf = buf[:0]
		for j := 0; j < chunk && i < n; j, i = j+1, i+1 {
			buf = append(buf, tmpl...)
			bt := record.Batch(buf[len(buf)-size:])
			ts := uint64(lookupBaseTimestamp + int64(i))
			binary.BigEndian.PutUint64(bt[27:], ts) // base timestamp
			binary.BigEndian.PutUint64(bt[35:], ts) // max timestamp
			bt.UpdateCRC()
			if bt.BaseTimestamp() != int64(ts) || bt.MaxTimestamp() != int64(ts) {
				b.Fatal("timestamp fields are not where the benchmark patches them")
			}
		}
		if _, err := l.Append(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l, err = Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if got := l.LogEndOffset(); got != int64(n) {
		b.Fatalf("built log ends at %d, want %d", got, n)
	}
	return l
}

// BenchmarkReadLookup measures Read of one batch at a random offset (maxBytes
// 1: only the batch holding the offset): segment search, offset-index binary
// search, and the scan of batch headers after the index entry. The region is
// not read. Each sub-benchmark builds its log once (b.Loop runs the body
// once per -count).
func BenchmarkReadLookup(b *testing.B) {
	for _, sz := range lookupSizes {
		b.Run("size="+sz.name, func(b *testing.B) {
			l := buildLookupLog(b, sz.batches)
			rng := rand.New(rand.NewPCG(3, 4))
			offsets := make([]int64, 1<<16)
			for i := range offsets {
				offsets[i] = rng.Int64N(int64(sz.batches))
			}
			leo := l.LogEndOffset()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				off := offsets[i&(len(offsets)-1)]
				i++
				r, err := l.Read(off, 1, leo)
				if err != nil || r.Len == 0 {
					b.Fatalf("Read(%d) = %+v, %v", off, r, err)
				}
			}
		})
	}
}

// BenchmarkTimestampLookup measures OffsetForTimestamp with random
// timestamps (ListOffsets by time): time index, offset index, header scan,
// and decoding the records of the batch found.
func BenchmarkTimestampLookup(b *testing.B) {
	for _, sz := range lookupSizes {
		b.Run("size="+sz.name, func(b *testing.B) {
			l := buildLookupLog(b, sz.batches)
			rng := rand.New(rand.NewPCG(5, 6))
			tss := make([]int64, 1<<16)
			for i := range tss {
				tss[i] = lookupBaseTimestamp + rng.Int64N(int64(sz.batches))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ts := tss[i&(len(tss)-1)]
				i++
				found, ok, err := l.OffsetForTimestamp(ts, nil)
				if err != nil || !ok || found.Offset != ts-lookupBaseTimestamp {
					b.Fatalf("OffsetForTimestamp(%d) = %+v, %v, %v; want offset %d", ts, found, ok, err, ts-lookupBaseTimestamp)
				}
			}
		})
	}
}
