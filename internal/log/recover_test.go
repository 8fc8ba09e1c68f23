package log

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-io/strata/internal/record"
)

// writeLog appends n batches of 2 records and closes the log; it returns the
// log end offset and the stored bytes of each batch.
func writeLog(t *testing.T, dir string, cfg Config, n int) (int64, [][]byte) {
	t.Helper()
	l, err := Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	for i := 0; i < n; i++ {
		b := append([]byte(nil), batchOf(t, fmt.Sprint(i), 2, int64(i))...)
		if _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, b)
	}
	end := l.LogEndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return end, stored
}

func segmentFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// checkPrefix verifies that the log holds exactly the first n stored batches.
func checkPrefix(t *testing.T, l *Log, stored [][]byte, n int) {
	t.Helper()
	// stored may hold one extra (nil) entry: a batch appended after
	// recovery, counted in the end but not compared.
	if want := int64(2 * len(stored[:n])); n < len(stored) && stored[n] == nil {
		if l.LogEndOffset() != want+2 {
			t.Fatalf("log end %d, want %d", l.LogEndOffset(), want+2)
		}
	} else if l.LogEndOffset() != want {
		t.Fatalf("log end %d, want %d", l.LogEndOffset(), want)
	}
	for i := 0; i < n; i++ {
		r, err := l.Read(int64(2*i), 1, l.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if got := readRegion(t, r); !bytes.Equal(got, stored[i]) {
			t.Fatalf("batch %d differs after recovery", i)
		}
	}
}

func TestRecovery(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	const n = 60
	for _, tc := range []struct {
		name string
		// damage changes files in dir and returns how many batches survive.
		damage func(t *testing.T, dir string, stored [][]byte) int
	}{
		{"intact", func(t *testing.T, dir string, stored [][]byte) int { return n }},
		{"garbage appended to active segment", func(t *testing.T, dir string, _ [][]byte) int {
			logs := segmentFiles(t, dir, logSuffix)
			f, _ := os.OpenFile(logs[len(logs)-1], os.O_WRONLY|os.O_APPEND, 0)
			f.Write(bytes.Repeat([]byte{0xAB}, 100))
			f.Close()
			return n
		}},
		{"zeros appended (preallocated tail)", func(t *testing.T, dir string, _ [][]byte) int {
			logs := segmentFiles(t, dir, logSuffix)
			f, _ := os.OpenFile(logs[len(logs)-1], os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, 5000))
			f.Close()
			return n
		}},
		{"torn last batch", func(t *testing.T, dir string, stored [][]byte) int {
			logs := segmentFiles(t, dir, logSuffix)
			st, _ := os.Stat(logs[len(logs)-1])
			os.Truncate(logs[len(logs)-1], st.Size()-int64(len(stored[n-1])/2))
			return n - 1
		}},
		{"flipped bit in an older segment drops the rest", func(t *testing.T, dir string, stored [][]byte) int {
			logs := segmentFiles(t, dir, logSuffix)
			data, _ := os.ReadFile(logs[1])
			data[record.HeaderSize+3] ^= 0x10 // first batch of segment 1
			os.WriteFile(logs[1], data, 0o644)
			base, _ := parseSegmentName(filepath.Base(logs[1]), logSuffix)
			return int(base / 2)
		}},
		{"missing indexes", func(t *testing.T, dir string, _ [][]byte) int {
			for _, p := range append(segmentFiles(t, dir, indexSuffix), segmentFiles(t, dir, timeIndexSuffix)...) {
				os.Remove(p)
			}
			return n
		}},
		{"truncated and garbage indexes", func(t *testing.T, dir string, _ [][]byte) int {
			for i, p := range segmentFiles(t, dir, indexSuffix) {
				if i%2 == 0 {
					os.Truncate(p, 3)
				} else {
					os.WriteFile(p, bytes.Repeat([]byte{0xff}, 64), 0o644)
				}
			}
			return n
		}},
		{"leftover deleted and orphan files", func(t *testing.T, dir string, _ [][]byte) int {
			os.WriteFile(filepath.Join(dir, segmentName(999999)+logSuffix+deletedSuffix), []byte("x"), 0o644)
			os.WriteFile(filepath.Join(dir, segmentName(888888)+indexSuffix), []byte("x"), 0o644)
			return n
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, stored := writeLog(t, dir, cfg, n)
			survivors := tc.damage(t, dir, stored)
			// Unclean: recover from the start.
			l := openAt(t, dir, cfg, Options{CleanShutdown: false})
			checkPrefix(t, l, stored, survivors)
			// The log stays writable and readable after recovery.
			info := mustAppend(t, l, batchOf(t, "after", 2, 1))
			if info.FirstOffset != int64(2*survivors) {
				t.Fatalf("append after recovery at %d, want %d", info.FirstOffset, 2*survivors)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, p := range segmentFiles(t, dir, deletedSuffix) {
				t.Errorf("leftover %s", p)
			}
			// And a clean reopen agrees.
			l2 := openAt(t, dir, cfg, Options{CleanShutdown: true})
			checkPrefix(t, l2, append(stored[:survivors:survivors], nil), survivors)
		})
	}
}

// TestCleanOpenRecoversInconsistentActiveSegment: a marker that lies (the
// active segment has a torn tail) is caught by the tail walk.
func TestCleanOpenRecoversInconsistentActiveSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	_, stored := writeLog(t, dir, cfg, 10)
	logs := segmentFiles(t, dir, logSuffix)
	f, _ := os.OpenFile(logs[len(logs)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write(stored[0][:30])
	f.Close()
	l := openAt(t, dir, cfg, Options{CleanShutdown: true})
	checkPrefix(t, l, stored, 10)
}

func TestRecoveryPointLimitsScan(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2048
	end, stored := writeLog(t, dir, cfg, 60)
	// Damage an old segment; a recovery point past it means it is not
	// scanned (it was flushed), so the damage is not found by recovery.
	logs := segmentFiles(t, dir, logSuffix)
	data, _ := os.ReadFile(logs[0])
	data[len(data)-1] ^= 1
	os.WriteFile(logs[0], data, 0o644)
	l := openAt(t, dir, cfg, Options{CleanShutdown: false, RecoveryPoint: end})
	if l.LogEndOffset() != end {
		t.Fatalf("end %d, want %d", l.LogEndOffset(), end)
	}
	_ = stored
}

func TestOpenRejectsNothingAndNeverPanicsOnGarbageSegment(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), bytes.Repeat([]byte("garbage!"), 100), 0o644)
	os.WriteFile(filepath.Join(dir, segmentName(0)+indexSuffix), []byte("nonsense"), 0o644)
	l := openAt(t, dir, testConfig(), Options{})
	if l.LogEndOffset() != 0 {
		t.Fatalf("end %d", l.LogEndOffset())
	}
	if size, _ := l.Size(); size != 0 {
		t.Fatalf("garbage kept: size %d", size)
	}
	if _, err := l.Read(0, 100, 0); err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatal(err)
	}
}

// FuzzRecover writes a valid log, then damages the active segment's tail
// with fuzzed bytes at a fuzzed position. Invariants: Open never fails or
// panics, every batch before the damage survives byte for byte, what remains
// is a contiguous run of valid batches, and the log accepts appends after.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(0), []byte{})
	f.Add(uint16(10), []byte{0, 0, 0, 0})
	f.Add(uint16(500), bytes.Repeat([]byte{0xff}, 80))
	f.Add(uint16(61), []byte("\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x31\xff\xff\xff\xff\x02"))
	f.Fuzz(func(t *testing.T, at uint16, tail []byte) {
		dir := t.TempDir()
		cfg := testConfig()
		_, stored := writeLog(t, dir, cfg, 8)
		logs := segmentFiles(t, dir, logSuffix)
		path := logs[len(logs)-1]
		data, _ := os.ReadFile(path)
		cut := int(at) % (len(data) + 1)
		data = append(data[:cut:cut], tail...)
		os.WriteFile(path, data, 0o644)

		l, err := Open(dir, cfg, Options{})
		if err != nil {
			t.Fatalf("Open after damage: %v", err)
		}
		defer l.Close()
		// Batches wholly before the cut survive.
		intact, pos := 0, 0
		for intact < len(stored) && pos+len(stored[intact]) <= cut {
			pos += len(stored[intact])
			intact++
		}
		if l.LogEndOffset() < int64(2*intact) {
			t.Fatalf("end %d, but %d batches were intact", l.LogEndOffset(), intact)
		}
		for off := l.LogStartOffset(); off < l.LogEndOffset(); {
			r, err := l.Read(off, 1<<20, l.LogEndOffset())
			if err != nil {
				t.Fatal(err)
			}
			bs := regionBatches(t, r)
			if len(bs) == 0 || bs[0].BaseOffset() != off {
				t.Fatalf("gap at %d", off)
			}
			off = bs[len(bs)-1].NextOffset()
		}
		info, err := l.Append(batchOf(t, "after", 1, 1), 0)
		if err != nil || info.FirstOffset != l.LogEndOffset()-1 {
			t.Fatalf("append after recovery: %+v, %v", info, err)
		}
	})
}
