package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// The crash test kills a real process with SIGKILL while it appends with
// flush.messages=1, then checks that recovery kept every acknowledged batch.
// The test binary runs itself as the child (TestCrashChild), selected by
// these environment variables.
const (
	crashDirEnv = "STRATA_CRASH_CHILD_DIR"
	crashRunEnv = "STRATA_CRASH_CHILD_RUN"
	crashRPEnv  = "STRATA_CRASH_CHILD_RECOVERY_POINT"

	crashWriters = 4
	// crashChildLife bounds a child whose parent vanished without killing
	// it (its next ack write also kills it with SIGPIPE).
	crashChildLife = 60 * time.Second
)

// crashConfig: small segments so that the child rolls often, an index entry
// every 512 bytes, and an fsync per append (group commit across writers).
func crashConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 64 << 10
	c.IndexIntervalBytes = 512
	c.FlushMessages = 1
	c.FileDeleteDelayMs = 0
	return c
}

// crashValues returns the record values of batch seq of a writer in a run:
// 1-6 records of 10 to ~1.2 KB, so batches range from under the index
// interval to several times it. Deterministic, so the parent can rebuild
// any batch the child acknowledged.
func crashValues(run, writer, seq int) []string {
	n := 1 + (seq+writer)%6
	vals := make([]string, n)
	for i := range vals {
		pad := (seq*131 + i*977 + writer*389 + run*17) % 1200
		vals[i] = fmt.Sprintf("r%d-w%d-%d-%d-", run, writer, seq, i) + strings.Repeat(string(rune('a'+(seq+i)%26)), pad)
	}
	return vals
}

// crashBatch builds that batch; timestamps are deterministic too.
func crashBatch(tb testing.TB, run, writer, seq int) record.Batch {
	ts := 1_700_000_000_000 + int64(run)*1_000_000 + int64(seq)
	return recordtest.Values(tb, ts, crashValues(run, writer, seq)...)
}

// crashAck is one "ack" line of the child: a batch Append acknowledged.
type crashAck struct {
	first, last      int64
	crc              uint32
	run, writer, seq int
}

func parseCrashAck(line string) (crashAck, error) {
	f := strings.Fields(line)
	if len(f) != 7 || f[0] != "ack" {
		return crashAck{}, fmt.Errorf("malformed ack line %q", line)
	}
	var a crashAck
	var err error
	num := func(s string) int64 {
		v, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil && err == nil {
			err = perr
		}
		return v
	}
	a.first, a.last = num(f[1]), num(f[2])
	crc, cerr := strconv.ParseUint(f[3], 16, 32)
	if cerr != nil {
		return crashAck{}, fmt.Errorf("ack line %q: %w", line, cerr)
	}
	a.crc = uint32(crc)
	a.run, a.writer, a.seq = int(num(f[4])), int(num(f[5])), int(num(f[6]))
	if err != nil {
		return crashAck{}, fmt.Errorf("ack line %q: %w", line, err)
	}
	return a, nil
}

// TestCrashChild is the process TestCrashRecovery kills. It opens the log as
// a broker does after a crash (recovery on), then appends from crashWriters
// goroutines forever, printing "ack <first> <last> <crc> <run> <writer>
// <seq>" once each Append returns. It skips unless run as the child.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashRecovery")
	}
	run, err := strconv.Atoi(os.Getenv(crashRunEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: bad %s: %v\n", crashRunEnv, err)
		os.Exit(2)
	}
	rp, err := strconv.ParseInt(os.Getenv(crashRPEnv), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: bad %s: %v\n", crashRPEnv, err)
		os.Exit(2)
	}
	l, err := Open(dir, crashConfig(), Options{CleanShutdown: false, RecoveryPoint: rp})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: open: %v\n", err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	emit := func(line []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		// One unbuffered write per line: the parent sees an ack as soon
		// as it is given, and a line is never split across writes.
		if _, err := os.Stdout.Write(line); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	emit(fmt.Appendf(nil, "ready %d\n", l.LogEndOffset()))
	deadline := time.Now().Add(crashChildLife)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for seq := 0; time.Now().Before(deadline); seq++ {
				b := crashBatch(t, run, w, seq)
				crc := b.CRC()
				info, err := l.Append(b, int32(run))
				if err != nil {
					fmt.Fprintf(os.Stderr, "child: append run %d writer %d seq %d: %v\n", run, w, seq, err)
					os.Exit(2)
				}
				emit(fmt.Appendf(nil, "ack %d %d %08x %d %d %d\n", info.FirstOffset, info.LastOffset, crc, run, w, seq))
			}
		})
	}
	wg.Wait()
	fmt.Fprintln(os.Stderr, "child: lived past its deadline without being killed")
	os.Exit(4)
}

// ackCollector is the child's stdout: it keeps only complete lines, so a
// line cut off by the kill is ignored.
type ackCollector struct {
	mu      sync.Mutex
	partial []byte
	acks    []crashAck
	errs    []error
	ready   chan struct{}
	readyAt time.Time
}

func (c *ackCollector) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		switch {
		case strings.HasPrefix(line, "ready ") && c.readyAt.IsZero():
			c.readyAt = time.Now()
			close(c.ready)
		case strings.HasPrefix(line, "ack "):
			a, err := parseCrashAck(line)
			if err != nil {
				c.errs = append(c.errs, err)
				continue
			}
			c.acks = append(c.acks, a)
		}
		// Anything else is the testing package's own output.
	}
	return len(p), nil
}

// crashRun is what one child did before it was killed.
type crashRun struct {
	acks []crashAck
	// opened: the child had recovered and opened the log, openTook after
	// it started.
	opened   bool
	openTook time.Duration
}

// runCrashChild starts a child appending to dir, kills it with SIGKILL after
// a delay (from its start when early, else from when its log is open), and
// returns what it acknowledged.
func runCrashChild(t *testing.T, dir string, run int, recoveryPoint int64, early bool, delay time.Duration) crashRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRunEnv+"="+strconv.Itoa(run),
		crashRPEnv+"="+strconv.FormatInt(recoveryPoint, 10))
	out := &ackCollector{ready: make(chan struct{})}
	stderr := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = stderr
	// Bounds Wait if something inherited the pipes, so the goroutines
	// copying them always end.
	cmd.WaitDelay = 10 * time.Second
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait() // returns once the output is all copied
		close(exited)
	}()
	// On any way out of here, t.Fatal included, the child is dead and
	// reaped before the test goes on (or removes its temp dir).
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	if !early {
		select {
		case <-out.ready:
		case <-exited:
			t.Fatalf("run %d: child exited before opening the log (%v); stderr:\n%s", run, waitErr, stderr)
		case <-time.After(60 * time.Second):
			t.Fatalf("run %d: child did not open the log within 60s; stderr:\n%s", run, stderr)
		}
	}
	select {
	case <-time.After(delay):
	case <-exited:
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("run %d: kill child: %v", run, err)
	}
	<-exited

	// The child is reaped: the collector and stderr are complete.
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("run %d: child ended by itself (%v), not by our SIGKILL; stderr:\n%s", run, waitErr, stderr)
	}
	if s := stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") || strings.Contains(s, "child:") {
		t.Fatalf("run %d: child reported:\n%s", run, s)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	for _, err := range out.errs {
		t.Errorf("run %d: %v", run, err)
	}
	res := crashRun{acks: out.acks}
	if !out.readyAt.IsZero() {
		res.opened, res.openTook = true, out.readyAt.Sub(started)
	}
	return res
}

// lockedBuffer is the child's stderr, readable while the child runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// storedBatch is what the parent remembers of a batch it found in the log.
type storedBatch struct {
	base, last int64
	crc        uint32
}

// verifyCrashLog recovers the log in dir and checks it: contiguous valid
// batches from the log start to the log end; every batch seen by an earlier
// verification still there unchanged; every acknowledged batch present at
// its offsets with its CRC, leader epoch and values (values are decoded for
// the acks of the latest run; earlier ones were decoded when first seen and
// their CRC pins them). It returns the batches found and the log end offset.
func verifyCrashLog(t *testing.T, dir string, recoveryPoint int64, acked []crashAck, newFrom int, prev []storedBatch) ([]storedBatch, int64) {
	t.Helper()
	l, err := Open(dir, crashConfig(), Options{CleanShutdown: false, RecoveryPoint: recoveryPoint})
	if err != nil {
		t.Fatalf("recover after kill: %v", err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	start, leo := l.LogStartOffset(), l.LogEndOffset()
	if start != 0 {
		t.Fatalf("LogStartOffset = %d, want 0 (nothing deletes records)", start)
	}
	var stored []storedBatch
	batches := map[int64]record.Batch{}
	off := start
	for off < leo {
		r, err := l.Read(off, 1<<20, leo)
		if err != nil {
			t.Fatalf("Read(%d) with log end %d: %v", off, leo, err)
		}
		bs := regionBatches(t, r) // fails unless whole batches, each valid
		if len(bs) == 0 {
			t.Fatalf("Read(%d) returned nothing below log end %d", off, leo)
		}
		for _, b := range bs {
			if b.BaseOffset() != off {
				t.Fatalf("batch [%d,%d] follows offset %d: gap or overlap", b.BaseOffset(), b.LastOffset(), off-1)
			}
			if err := b.Validate(); err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			stored = append(stored, storedBatch{b.BaseOffset(), b.LastOffset(), b.CRC()})
			batches[b.BaseOffset()] = b
			off = b.NextOffset()
		}
	}
	if off != leo {
		t.Fatalf("batches end at %d, log end offset is %d", off, leo)
	}
	for i, p := range prev {
		if i >= len(stored) || stored[i] != p {
			got := "nothing"
			if i < len(stored) {
				got = fmt.Sprintf("%+v", stored[i])
			}
			t.Fatalf("batch %+v, in the log at the previous verification, is now %s", p, got)
		}
	}
	maxLast := int64(-1)
	for i, a := range acked {
		maxLast = max(maxLast, a.last)
		b, ok := batches[a.first]
		if !ok {
			t.Fatalf("acknowledged batch [%d,%d] (run %d writer %d seq %d) lost; log end %d", a.first, a.last, a.run, a.writer, a.seq, leo)
		}
		if b.LastOffset() != a.last || b.CRC() != a.crc {
			t.Fatalf("acknowledged batch [%d,%d] crc %08x is now [%d,%d] crc %08x", a.first, a.last, a.crc, b.BaseOffset(), b.LastOffset(), b.CRC())
		}
		if got := b.PartitionLeaderEpoch(); got != int32(a.run) {
			t.Fatalf("batch at %d: leader epoch %d, appended with %d", a.first, got, a.run)
		}
		if i < newFrom {
			continue
		}
		want := crashValues(a.run, a.writer, a.seq)
		if got := values(t, b); !slices.Equal(got, want) {
			t.Fatalf("batch at %d: values %.60q, want %.60q", a.first, got, want)
		}
		// The child's CRC is that of the batch the parent would build.
		if exp := crashBatch(t, a.run, a.writer, a.seq).CRC(); exp != a.crc {
			t.Fatalf("batch at %d: acked crc %08x, rebuilt batch has %08x", a.first, a.crc, exp)
		}
	}
	if leo < maxLast+1 {
		t.Fatalf("log end offset %d below last acknowledged offset %d + 1", leo, maxLast)
	}
	return stored, leo
}

// TestCrashRecovery repeatedly SIGKILLs a child process appending with
// fsync-per-append and checks after each kill that recovery keeps every
// acknowledged batch, intact, in a contiguous log. Every fourth kill comes
// early, often during the child's own recovery.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("running as the child")
	}
	rounds := 24
	if testing.Short() {
		rounds = 6
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	begin := time.Now()

	var acked []crashAck
	var stored []storedBatch
	var leo int64
	var early, beforeOpen int
	openTook := 50 * time.Millisecond // child start + recovery, as last measured
	for run := range rounds {
		isEarly := run%4 == 3
		var delay time.Duration
		if isEarly {
			// From the child's start, up to twice its last start-up
			// time: about half of these kill it before its log is open.
			early++
			delay = rand.N(2 * openTook)
		} else {
			delay = time.Duration(20+rng.IntN(281)) * time.Millisecond
		}
		// The recovery point is the log end offset the last
		// verification closed the log at (Close flushes all), as a
		// broker's recovery-point-offset-checkpoint would hold after a
		// clean shutdown; it is stale once the child appends.
		res := runCrashChild(t, dir, run, leo, isEarly, delay)
		if res.opened {
			openTook = res.openTook
		} else {
			beforeOpen++
		}
		newFrom := len(acked)
		acked = append(acked, res.acks...)
		stored, leo = verifyCrashLog(t, dir, leo, acked, newFrom, stored)
		how := fmt.Sprintf("%v after log open", delay.Round(time.Millisecond))
		if isEarly {
			how = fmt.Sprintf("%v after start (early, log open: %v)", delay.Round(time.Millisecond), res.opened)
		}
		t.Logf("run %2d: killed %s: %4d acks, log end %d", run, how, len(res.acks), leo)
	}
	// Finally recover every segment from the start once (recovery point
	// 0), as after losing the checkpoint file.
	if _, end := verifyCrashLog(t, dir, 0, acked, len(acked), stored); end != leo {
		t.Fatalf("full recovery: log end %d, was %d", end, leo)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	t.Logf("%d kills (%d early, %d before the log was open), %d acknowledged batches, %d batches in the log, final log end offset %d, %d segments, %v",
		rounds, early, beforeOpen, len(acked), len(stored), leo, len(segs), time.Since(begin).Round(time.Millisecond))
	if len(acked) == 0 {
		t.Fatal("no append was ever acknowledged: the test checked nothing")
	}
}

// TestTornWriteRecovery damages the end of the active segment's .log the
// way a crash can (a write cut short, or a range that reads back as zeros)
// and checks that an unclean open truncates the log just before the first
// damaged batch, keeps everything before it byte for byte, and appends and
// reads normally afterwards. Like etcd's TestOpenOnTornWrite.
func TestTornWriteRecovery(t *testing.T) {
	for _, variant := range []string{"truncate", "zero"} {
		for i := range 8 {
			t.Run(fmt.Sprintf("%s/%d", variant, i), func(t *testing.T) {
				seed := uint64(time.Now().UnixNano())
				t.Logf("seed %d", seed)
				testTornWrite(t, variant, rand.New(rand.NewPCG(seed, uint64(i))))
			})
		}
	}
}

func tornConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 16 << 10
	c.IndexIntervalBytes = 512
	c.FileDeleteDelayMs = 0
	return c
}

// tornBatch: 1-5 records of up to ~700 bytes.
func tornBatch(t *testing.T, tag string, i int) record.Batch {
	vals := make([]string, 1+i%5)
	for j := range vals {
		vals[j] = fmt.Sprintf("%s%d-%d-", tag, i, j) + strings.Repeat("v", (i*211+j*97)%700)
	}
	return recordtest.Values(t, 1_700_000_000_000+int64(i), vals...)
}

// activeSegmentFile returns the path and base offset of the .log with the
// highest base offset in dir.
func activeSegmentFile(t *testing.T, dir string) (string, int64) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	best, bestBase := "", int64(-1)
	for _, p := range paths {
		if base, ok := parseSegmentName(filepath.Base(p), logSuffix); ok && base > bestBase {
			best, bestBase = p, base
		}
	}
	return best, bestBase
}

func testTornWrite(t *testing.T, variant string, rng *rand.Rand) {
	const epoch = 7 // nonzero, so zeroing the header's epoch changes bytes
	cfg := tornConfig()
	dir := t.TempDir()
	l, err := Open(dir, cfg, Options{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	var want []record.Batch // as stored: Append patches offsets and epoch
	for i := range 40 + rng.IntN(20) {
		b := tornBatch(t, "a", i)
		if _, err := l.Append(b, epoch); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		want = append(want, b)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Locate the batches of the active segment in its file.
	path, base := activeSegmentFile(t, dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pos []int64 // file position of want[first+j]
	first := slices.IndexFunc(want, func(b record.Batch) bool { return b.BaseOffset() == base })
	if first < 0 {
		t.Fatalf("no appended batch starts at active segment base %d", base)
	}
	p := int64(0)
	for _, b := range want[first:] {
		if !bytes.Equal(data[p:p+int64(len(b))], b) {
			t.Fatalf("active segment at %d does not hold batch %d as appended", p, b.BaseOffset())
		}
		pos = append(pos, p)
		p += int64(len(b))
	}
	if p != int64(len(data)) {
		t.Fatalf("active segment is %d bytes, batches end at %d", len(data), p)
	}

	// Damage one of the last few batches (and maybe what follows it).
	k := len(pos) - 1 - rng.IntN(min(4, len(pos)))
	victim := want[first+k]
	vpos, vsize := pos[k], int64(len(victim))
	switch variant {
	case "truncate":
		cut := vpos + 1 + rng.Int64N(vsize-1)
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d batches, active segment %d: truncated %s from %d bytes to %d, inside batch %d (at %d, %d bytes)",
			len(want), base, filepath.Base(path), len(data), cut, victim.BaseOffset(), vpos, vsize)
	case "zero":
		// The range must change a byte of the victim that recovery can
		// see: anything but the leader epoch (bytes 12-15), which is
		// outside the CRC in Kafka's format and so never checked.
		var from, to int64
		for tries := 0; ; tries++ {
			if tries == 1000 {
				t.Fatal("could not find a range to zero")
			}
			from = vpos + rng.Int64N(vsize)
			if rng.IntN(3) == 0 {
				to = int64(len(data)) // zeros to the end of the file
			} else {
				to = min(from+1+rng.Int64N(256), int64(len(data)))
			}
			visible := false
			for q := from; q < min(to, vpos+vsize); q++ {
				if rel := q - vpos; data[q] != 0 && (rel < 12 || rel >= 16) {
					visible = true
					break
				}
			}
			if visible {
				break
			}
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d batches, active segment %d: zeroed [%d,%d) of %s (%d bytes), starting in batch %d (at %d, %d bytes)",
			len(want), base, from, to, filepath.Base(path), len(data), victim.BaseOffset(), vpos, vsize)
	}

	// Unclean open: the log must end right before the victim.
	l, err = Open(dir, cfg, Options{CleanShutdown: false})
	if err != nil {
		t.Fatalf("unclean open after torn write: %v", err)
	}
	defer l.Close()
	kept := want[:first+k]
	if got := l.LogEndOffset(); got != victim.BaseOffset() {
		t.Fatalf("LogEndOffset = %d, want %d (the damaged batch's base offset)", got, victim.BaseOffset())
	}
	if st, err := os.Stat(path); err != nil || st.Size() != vpos {
		t.Fatalf("active segment after recovery: %v, %v; want %d bytes", st.Size(), err, vpos)
	}
	checkTornLog(t, l, kept)

	// Appending continues at the victim's offset and reads back.
	var added []record.Batch
	next := victim.BaseOffset()
	for i := range 3 {
		b := tornBatch(t, "after", i)
		info, err := l.Append(b, epoch+1)
		if err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		if info.FirstOffset != next {
			t.Fatalf("append %d after recovery at offset %d, want %d", i, info.FirstOffset, next)
		}
		next = info.LastOffset + 1
		added = append(added, b)
	}
	all := append(slices.Clone(kept), added...)
	checkTornLog(t, l, all)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// And survives a clean restart.
	l2 := openAt(t, dir, cfg, Options{CleanShutdown: true})
	checkTornLog(t, l2, all)
}

// checkTornLog reads the whole log and compares it byte for byte with want.
func checkTornLog(t *testing.T, l *Log, want []record.Batch) {
	t.Helper()
	var wantEnd int64
	if len(want) > 0 {
		wantEnd = want[len(want)-1].NextOffset()
	}
	if got := l.LogEndOffset(); got != wantEnd {
		t.Fatalf("LogEndOffset = %d, want %d", got, wantEnd)
	}
	i := 0
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		bs := regionBatches(t, r)
		if len(bs) == 0 {
			t.Fatalf("Read(%d) returned nothing", off)
		}
		for _, b := range bs {
			if i >= len(want) || !bytes.Equal(b, want[i]) {
				t.Fatalf("batch %d at offset %d differs from what was appended", i, b.BaseOffset())
			}
			i++
			off = b.NextOffset()
		}
	}
	if i != len(want) {
		t.Fatalf("read %d batches, want %d", i, len(want))
	}
}
