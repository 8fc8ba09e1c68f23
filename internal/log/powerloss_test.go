package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/fs"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// Power-loss tests: a Manager with several partitions appends from
// concurrent writers (group commit), rolls, runs retention and writes
// checkpoints on an fs.CrashFS; at a random moment the machine "loses
// power" (CrashClone), and the clone is reopened with recovery and checked.
// Unlike the SIGKILL tests, a crash here loses whatever was not fsynced,
// so a missing fsync shows (TestPowerLossNeedsEverySync proves it).
//
// STRATA_POWERLOSS_SEEDS sets the seeds per mode (default 5) for long runs;
// a failure prints its seed, and STRATA_POWERLOSS_SEED=<n> reruns only it.

var powerTPs = []TopicPartition{{"orders", 0}, {"orders", 1}, {"audit-log", 0}}

// powerConfig: small segments and indexes so that a short run rolls and
// deletes segments; fsync mode acknowledges after fdatasync
// (flush.messages=1), page-cache mode never flushes but on roll and close.
func powerConfig(fsync bool) Config {
	c := DefaultConfig()
	c.SegmentBytes = 8 << 10
	c.SegmentIndexBytes = 4 << 10
	c.IndexIntervalBytes = 512
	c.RetentionBytes = 32 << 10
	c.FileDeleteDelayMs = 0
	if fsync {
		c.FlushMessages = 1
	}
	return c
}

// powerBatch is a batch of 1-4 records of 10 to 710 bytes, timestamps mostly
// rising (some late, so the time index's running maximum matters).
func powerBatch(tb testing.TB, rng *rand.Rand, ts int64) record.Batch {
	vals := make([]string, 1+rng.IntN(4))
	for i := range vals {
		vals[i] = strings.Repeat(string(rune('a'+rng.IntN(26))), 10+rng.IntN(700))
	}
	return recordtest.Values(tb, ts, vals...)
}

// ackedBatch is a batch as the log acknowledged or recovered it.
type ackedBatch struct {
	first, last int64
	data        []byte
}

// powerState is what the test knows must survive: per partition, the
// batches acknowledged as durable (fsync mode: Append returned; page-cache
// mode: below the log's DurableOffset) and the log start offset.
type powerState struct {
	batches map[TopicPartition][]ackedBatch
	start   map[TopicPartition]int64
}

// powerRun is one seed: several cycles of run, crash, reopen, check.
type powerRun struct {
	t      *testing.T
	seed   uint64
	fsync  bool
	strict bool // crash keeps exactly the synced state (no torn tails)
	drop   func(site string) bool
	rng    *rand.Rand
	cfs    *fs.CrashFS
	dir    string // log dir, under cfs's root
	m      *Manager
	want   powerState
	now    int64
	sites  map[string]int // syncs per call site, over every generation
}

// collect adds the syncs c saw to r.sites.
func (r *powerRun) collect(c *fs.CrashFS) {
	for s, n := range c.Sites() {
		r.sites[s] += n
	}
}

func (r *powerRun) openManager() error {
	m, err := OpenManager(ManagerConfig{
		Dirs:                   []string{r.dir},
		RetentionCheckInterval: time.Hour, // the test drives them
		CheckpointInterval:     time.Hour,
		FlushCheckInterval:     time.Hour,
		ConfigFor:              func(TopicPartition) Config { return powerConfig(r.fsync) },
		FS:                     r.cfs,
	})
	if err != nil {
		return fmt.Errorf("open manager after crash: %w", err)
	}
	r.m = m
	return nil
}

// runPowerLoss runs cycles of the seed and returns the first violation.
func runPowerLoss(t *testing.T, seed uint64, fsync, strict bool, cycles int, drop func(string) bool) (sites map[string]int, err error) {
	r := &powerRun{t: t, seed: seed, fsync: fsync, strict: strict, drop: drop,
		rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: 1_700_000_000_000}
	root := filepath.Join(t.TempDir(), "gen0")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if r.cfs, err = fs.NewCrashFS(root); err != nil {
		t.Fatal(err)
	}
	r.cfs.SetDropSync(drop)
	r.setTrace()
	r.sites = map[string]int{}
	r.dir = filepath.Join(root, "data")
	r.want = powerState{batches: map[TopicPartition][]ackedBatch{}, start: map[TopicPartition]int64{}}
	if err := r.openManager(); err != nil {
		return r.sites, err
	}
	for _, tp := range powerTPs {
		if _, err := r.m.GetOrCreate(tp, powerConfig(fsync)); err != nil {
			t.Fatal(err)
		}
	}
	for cycle := range cycles {
		clean := r.rng.IntN(4) == 0
		if err := r.cycle(cycle, clean); err != nil {
			r.m.Close()
			r.collect(r.cfs)
			return r.sites, fmt.Errorf("cycle %d (clean close first: %v): %w", cycle, clean, err)
		}
	}
	r.m.Close()
	r.collect(r.cfs)
	return r.sites, nil
}

// cycle appends until a random moment, crashes, reopens and checks.
func (r *powerRun) cycle(cycle int, cleanFirst bool) error {
	var (
		mu      sync.Mutex // orders acks against the crash
		crashed bool
		acked   = map[TopicPartition][]ackedBatch{}
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for ti, tp := range powerTPs {
		l := r.m.Get(tp)
		for w := range 2 {
			// Batches are built up front: recordtest fails the test
			// from the goroutine otherwise.
			wrng := rand.New(rand.NewPCG(r.seed, uint64(cycle*100+ti*10+w)))
			batches := make([]record.Batch, 150)
			for i := range batches {
				ts := r.now + int64(i*3) - int64(wrng.IntN(5))
				batches[i] = powerBatch(r.t, wrng, ts)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, b := range batches {
					select {
					case <-stop:
						return
					default:
					}
					info, err := l.Append(b, int32(cycle))
					if err != nil {
						return // closed by the crash, or offline
					}
					mu.Lock()
					if !crashed {
						acked[tp] = append(acked[tp], ackedBatch{info.FirstOffset, info.LastOffset, b})
					}
					mu.Unlock()
				}
			}()
		}
	}
	r.now += 1000
	// The driver: rolls, retention, flushes and checkpoints between
	// appends, until a random number of steps.
	steps := 20 + r.rng.IntN(80)
	for range steps {
		time.Sleep(time.Duration(r.rng.IntN(300)) * time.Microsecond)
		l := r.m.Get(powerTPs[r.rng.IntN(len(powerTPs))])
		switch r.rng.IntN(8) {
		case 0:
			l.Roll()
		case 1:
			for _, l := range r.m.Logs() {
				l.SetHighWatermark(l.LogEndOffset())
			}
			r.m.RunRetention()
		case 2:
			l.Flush()
		case 3:
			r.m.Checkpoint()
		}
	}
	if cleanFirst {
		close(stop)
		wg.Wait()
		for _, tp := range powerTPs {
			r.want.start[tp] = r.m.Get(tp).LogStartOffset()
		}
		if err := r.m.Close(); err != nil {
			return fmt.Errorf("clean close: %w", err)
		}
	}
	// Power loss: what the log said was durable must survive.
	mu.Lock()
	crashed = true
	durable := map[TopicPartition]int64{}
	for _, tp := range powerTPs {
		l := r.m.Get(tp)
		if cleanFirst {
			l = nil
		}
		r.want.batches[tp] = append(r.want.batches[tp], acked[tp]...)
		slices.SortFunc(r.want.batches[tp], func(a, b ackedBatch) int { return int(a.first - b.first) })
		if l != nil {
			durable[tp] = l.DurableOffset()
			r.want.start[tp] = l.LogStartOffset()
		}
	}
	if cleanFirst {
		for tp, bs := range r.want.batches {
			if len(bs) > 0 {
				durable[tp] = bs[len(bs)-1].last + 1
			}
		}
	}
	var rng *rand.Rand
	if !r.strict {
		rng = r.rng
	}
	dst := filepath.Join(r.t.TempDir(), fmt.Sprintf("gen%d", cycle+1))
	next, err := r.cfs.CrashClone(dst, rng)
	mu.Unlock()
	if err != nil {
		r.t.Fatal(err)
	}
	if !cleanFirst {
		close(stop) // a clean close already stopped the writers
	}
	wg.Wait()
	if !cleanFirst {
		r.m.Close() // the dead machine's files; the clone is separate
	}
	if !r.fsync {
		// Page-cache mode promises only what was flushed.
		for tp, bs := range r.want.batches {
			r.want.batches[tp] = slices.DeleteFunc(bs, func(b ackedBatch) bool { return b.last >= durable[tp] })
		}
	}
	r.collect(r.cfs)
	r.cfs = next
	r.cfs.SetDropSync(r.drop)
	r.setTrace()
	r.dir = filepath.Join(dst, "data")
	if err := r.openManager(); err != nil {
		return err
	}
	return r.check()
}

// check verifies every partition of the reopened manager and makes what it
// holds the new expectation (recovery flushed it).
func (r *powerRun) check() error {
	for _, tp := range powerTPs {
		l := r.m.Get(tp)
		if l == nil {
			return fmt.Errorf("%s: partition missing after the crash", tp)
		}
		// Below the log start offset before the crash is retention's:
		// a deleted segment may come back (its removal was not yet
		// durable), with whatever of it was synced.
		from := l.LogStartOffset()
		if ws, ok := r.want.start[tp]; ok {
			from = max(from, ws)
		}
		got, err := checkLog(l, from)
		if err != nil {
			return fmt.Errorf("%s: %w (segments %v)", tp, err, l.SegmentBaseOffsets())
		}
		start := l.LogStartOffset()
		if ws, ok := r.want.start[tp]; ok && start > ws {
			return fmt.Errorf("%s: log start offset %d after the crash, was %d", tp, start, ws)
		}
		byFirst := map[int64]ackedBatch{}
		for _, b := range got {
			byFirst[b.first] = b
		}
		for _, w := range r.want.batches[tp] {
			if w.first < from {
				continue
			}
			g, ok := byFirst[w.first]
			if !ok {
				var firsts []int64
				for _, g := range got[:min(len(got), 5)] {
					firsts = append(firsts, g.first)
				}
				return fmt.Errorf("%s: durable batch %d-%d lost (log %d-%d, segments %v, batches from %v)", tp, w.first, w.last, start, l.LogEndOffset(), l.SegmentBaseOffsets(), firsts)
			}
			if !bytes.Equal(g.data, w.data) {
				return fmt.Errorf("%s: durable batch at %d differs after the crash", tp, w.first)
			}
		}
		r.want.batches[tp] = got
		r.want.start[tp] = start
	}
	return nil
}

// checkLog reads every segment of l and checks that the log is a
// consistent prefix: valid CRCs, offsets contiguous from the first segment
// to the log end offset, and indexes equal to what appending the same
// batches writes. Segments that end at or below from are not checked. It
// returns the batches.
func checkLog(l *Log, from int64) ([]ackedBatch, error) {
	l.structMu.RLock()
	defer l.structMu.RUnlock()
	segs := *l.segs.Load()
	var out []ackedBatch
	next := int64(-1)
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].baseOffset <= from {
			continue
		}
		if err := s.open(i == len(segs)-1); err != nil {
			return nil, fmt.Errorf("open segment %d: %w", s.baseOffset, err)
		}
		data := make([]byte, s.size.Load())
		if _, err := s.file.ReadAt(data, 0); err != nil {
			return nil, fmt.Errorf("read segment %d: %w", s.baseOffset, err)
		}
		var batches []record.Batch
		for rest := data; len(rest) > 0; {
			b, r, err := record.Parse(rest)
			if err != nil {
				return nil, fmt.Errorf("segment %d at %d: %w", s.baseOffset, len(data)-len(rest), err)
			}
			if next >= 0 && b.BaseOffset() != next {
				return nil, fmt.Errorf("segment %d: batch at offset %d, expected %d", s.baseOffset, b.BaseOffset(), next)
			}
			if next < 0 && b.BaseOffset() < s.baseOffset {
				return nil, fmt.Errorf("segment %d starts with offset %d", s.baseOffset, b.BaseOffset())
			}
			next = b.NextOffset()
			batches = append(batches, b)
			out = append(out, ackedBatch{b.BaseOffset(), b.LastOffset(), bytes.Clone(b)})
			rest = r
		}
		if len(batches) == 0 && next >= 0 && i < len(segs)-1 {
			return nil, fmt.Errorf("empty closed segment %d inside the log", s.baseOffset)
		}
		if next >= 0 && i+1 < len(segs) && segs[i+1].baseOffset != next {
			return nil, fmt.Errorf("segment %d follows offset %d: a hole in the log", segs[i+1].baseOffset, next)
		}
		if err := checkIndexes(s, batches, i == len(segs)-1, l.cfg.Load().IndexIntervalBytes); err != nil {
			return nil, fmt.Errorf("segment %d: %w", s.baseOffset, err)
		}
	}
	if next < 0 {
		next = segs[len(segs)-1].baseOffset
	}
	if leo := l.LogEndOffset(); leo != next {
		return nil, fmt.Errorf("log end offset %d, batches end at %d", leo, next)
	}
	return out, nil
}

// checkIndexes replays segment.indexBatch over batches and compares: the
// offset index must hold exactly those entries; the time index those, plus
// the closing entry (required on a closed segment, optional on the active
// one, which has it after a clean shutdown).
func checkIndexes(s *segment, batches []record.Batch, active bool, interval int) error {
	var since, pos int
	maxTS, offOfMax := int64(-1), s.baseOffset
	var wantOff, wantTime [][2]int64
	for _, b := range batches {
		if ts := b.MaxTimestamp(); ts > maxTS {
			maxTS, offOfMax = ts, b.LastOffset()
		}
		if since > interval {
			wantOff = append(wantOff, [2]int64{b.LastOffset(), int64(pos)})
			if n := len(wantTime); n == 0 || (maxTS > wantTime[n-1][0] && offOfMax >= wantTime[n-1][1]) {
				wantTime = append(wantTime, [2]int64{maxTS, offOfMax})
			}
			since = 0
		}
		since += b.Size()
		pos += b.Size()
	}
	var gotOff, gotTime [][2]int64
	for i := range s.offsets.entries.Load() {
		o, p := s.offsets.at(i)
		gotOff = append(gotOff, [2]int64{o, p})
	}
	for i := range s.times.entries.Load() {
		ts, o := s.times.at(i)
		gotTime = append(gotTime, [2]int64{ts, o})
	}
	if !slices.Equal(gotOff, wantOff) {
		return fmt.Errorf("offset index %v, batches give %v", gotOff, wantOff)
	}
	withFinal := wantTime
	if n := len(wantTime); maxTS >= 0 && (n == 0 || (maxTS > wantTime[n-1][0] && offOfMax >= wantTime[n-1][1])) {
		withFinal = append(slices.Clone(wantTime), [2]int64{maxTS, offOfMax})
	}
	if !slices.Equal(gotTime, withFinal) && (!active || !slices.Equal(gotTime, wantTime)) {
		return fmt.Errorf("time index %v, batches give %v (closed: %v)", gotTime, withFinal, !active)
	}
	return nil
}

// setTrace logs the CrashFS's operations when STRATA_POWERLOSS_TRACE is
// set (with STRATA_POWERLOSS_SEED, to debug one seed).
func (r *powerRun) setTrace() {
	if os.Getenv("STRATA_POWERLOSS_TRACE") == "" {
		return
	}
	r.cfs.SetTrace(func(op, path, site string) { r.t.Logf("crashfs: %s %s %s", op, path, site) })
}

func powerSeeds(t *testing.T) []uint64 {
	if s := os.Getenv("STRATA_POWERLOSS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []uint64{v}
	}
	n := 5
	if s := os.Getenv("STRATA_POWERLOSS_SEEDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// TestPowerLoss: fsync mode keeps every acknowledged batch byte for byte at
// its offsets; page-cache mode keeps a consistent prefix holding everything
// flushed; recovery never fails. Crashes keep torn tails of unsynced data.
func TestPowerLoss(t *testing.T) {
	for _, mode := range []struct {
		name  string
		fsync bool
	}{{"fsync", true}, {"pagecache", false}} {
		t.Run(mode.name, func(t *testing.T) {
			for _, seed := range powerSeeds(t) {
				if _, err := runPowerLoss(t, seed, mode.fsync, seed%3 == 0, 3, nil); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}
