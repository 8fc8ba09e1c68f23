package strata_test

// Crash test with a real process: the broker binary is SIGKILLed while an
// idempotent franz-go producer writes to it, then restarted on the same port
// and log dir. An acknowledged record must survive exactly once, and the
// broker's idempotent-producer dedupe (producer state rebuilt from the log
// after the crash) must turn every retry of a batch written just before the
// kill into a duplicate answer rather than a second copy.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// killBinary builds cmd/strata into a temp dir of t. The go build cache makes
// every build after the first cheap.
func killBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the strata binary for the SIGKILL test")
	}
	bin := filepath.Join(t.TempDir(), "strata")
	cmd := exec.Command(gobin, "build", "-buildvcs=false", "-o", bin, "./cmd/strata")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/strata: %v\n%s", err, out)
	}
	return bin
}

// killLog collects a broker process's output: it notices the "strata ready"
// line, keeps the last lines for failure messages, and keeps every line
// that contains one of its watched strings. Safe for concurrent use.
type killLog struct {
	ready chan struct{}
	watch []string
	mu    struct {
		sync.Mutex
		partial []byte
		lines   []string
		ready   bool
		seen    map[string][]string // by watched string
	}
}

const killLogLines = 40

func newKillLog(watch ...string) *killLog {
	l := &killLog{ready: make(chan struct{}), watch: watch}
	l.mu.seen = map[string][]string{}
	return l
}

// seen returns the lines so far that contain the watched string w.
func (l *killLog) seen(w string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.mu.seen[w])
}

func (l *killLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.partial = append(l.mu.partial, p...)
	for {
		i := bytes.IndexByte(l.mu.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.mu.partial[:i])
		l.mu.partial = l.mu.partial[i+1:]
		l.mu.lines = append(l.mu.lines, line)
		if len(l.mu.lines) > killLogLines {
			l.mu.lines = l.mu.lines[1:]
		}
		for _, w := range l.watch {
			if strings.Contains(line, w) {
				l.mu.seen[w] = append(l.mu.seen[w], line)
			}
		}
		if !l.mu.ready && strings.Contains(line, "strata ready") {
			l.mu.ready = true
			close(l.ready)
		}
	}
	return len(p), nil
}

func (l *killLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.mu.lines, "\n")
}

// killBroker is one broker process at a time, always on the same port and
// log dir, so that clients reconnect to the restarted broker. Owned by the
// test goroutine.
type killBroker struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	gen  int      // processes started so far
	sets []string // extra name=value properties, each passed with --set
	// ctrlPort, when not 0, is the port of a CONTROLLER listener (a node
	// of a controller quorum: cluster_process_test.go).
	ctrlPort int
	watch    []string // log lines to keep: killLog.seen

	cmd  *exec.Cmd
	done chan error // cmd.Wait's result
	log  *killLog
}

func (b *killBroker) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

func (b *killBroker) ctrlAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.ctrlPort))
}

func killFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs a broker and waits for its ready line. With pickPort it takes a
// fresh free port, and a new one if the bind loses a race; otherwise it keeps
// b.port and retries the same port a few times.
func (b *killBroker) start(pickPort bool) {
	b.t.Helper()
	var last string
	for attempt := 0; attempt < 5; attempt++ {
		if pickPort {
			b.port = killFreePort(b.t)
		}
		b.launch()
		if last = b.await(30 * time.Second); last == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.t.Fatalf("broker could not bind: %s", last)
}

// launch starts a broker process on b.port (and b.ctrlPort, when set, as
// its CONTROLLER listener) without waiting for it: the nodes of a
// controller quorum get ready only together.
func (b *killBroker) launch() {
	b.t.Helper()
	b.gen++
	b.log = newKillLog(b.watch...)
	listeners := "listeners=PLAINTEXT://" + b.addr()
	if b.ctrlPort != 0 {
		listeners += ",CONTROLLER://" + b.ctrlAddr()
	}
	args := []string{"serve",
		"--set", listeners,
		"--set", "log.dirs=" + b.dir,
		"--set", "http.listener=127.0.0.1:0"}
	for _, kv := range b.sets {
		args = append(args, "--set", kv)
	}
	b.cmd = exec.Command(b.bin, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("start broker: %v", err)
	}
	done := make(chan error, 1)
	go func(cmd *exec.Cmd) { done <- cmd.Wait() }(b.cmd)
	b.done = done
}

// await waits for the launched broker's ready line. It returns "" once
// ready, and the broker's output when the process exited because a port
// was taken (the caller may launch it again); any other exit, or no ready
// line within timeout, fails the test.
func (b *killBroker) await(timeout time.Duration) string {
	b.t.Helper()
	select {
	case <-b.log.ready:
		return ""
	case err := <-b.done:
		b.cmd = nil
		out := fmt.Sprintf("broker exited before ready (%v):\n%s", err, b.log)
		if !strings.Contains(out, "address already in use") {
			b.t.Fatal(out)
		}
		return out
	case <-time.After(timeout):
		b.cmd.Process.Kill()
		<-b.done
		b.cmd = nil
		b.t.Fatalf("broker not ready after %v:\n%s", timeout, b.log)
		return ""
	}
}

// kill9 SIGKILLs the broker and waits until it is reaped.
func (b *killBroker) kill9() {
	b.t.Helper()
	if b.cmd == nil {
		return
	}
	if err := b.cmd.Process.Kill(); err != nil {
		b.t.Fatalf("kill broker: %v", err)
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.t.Fatalf("broker pid %d did not die within 30s of SIGKILL", b.cmd.Process.Pid)
	}
	b.cmd = nil
}

// killRec is what the producer knows of one record it produced.
type killRec struct {
	gen    int   // broker generation when Produce was called
	ackGen int   // broker generation when the promise ran
	state  int8  // 0 in flight, 1 acked, -1 failed
	offset int64 // offset the broker acknowledged
	err    error // the promise's error, if failed
}

func TestKillNineIdempotentProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("SIGKILLs a real broker process for several seconds; skipped with -short")
	}
	const (
		topic      = "kill9"
		partitions = 3
		kills      = 6
	)
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)

	b := &killBroker{t: t, bin: killBinary(t), dir: t.TempDir()}
	t.Logf("binary built in %v", time.Since(start).Round(time.Millisecond))
	b.start(true)
	t.Cleanup(b.kill9)

	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()

	adm := kadm.NewClient(newClient(t, b.addr()))
	// Small segments: the log rolls several times while producing, so that
	// producer state must come back across segment boundaries (and from
	// whatever the broker persists at a roll), not just from one segment.
	segBytes := map[string]*string{"segment.bytes": kadm.StringPtr("16384")}
	if resp, err := adm.CreateTopic(ctx, partitions, 1, segBytes, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}

	// gen is the broker generation (process number) the producer talks to.
	var gen atomic.Int64
	gen.Store(int64(b.gen))
	var mu struct {
		sync.Mutex
		recs [partitions][]killRec // by n
	}
	var ackedN atomic.Int64

	p := newClient(t, b.addr(),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.MaxBufferedRecords(2000),
		// Reconnect promptly: by default a failed produce waits for a
		// metadata refresh no sooner than 5s after the last one.
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	)

	// Producer: round-robin over the partitions, value p<partition>-<n> with
	// n counting up per partition, until stop is closed.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopProducing := func() { stopOnce.Do(func() { close(stop) }) }
	prodDone := make(chan struct{})
	// On a t.Fatal before the producer is stopped, stop it before the
	// client closes (cleanups run last-in first-out); cancelling prodCtx
	// unblocks a Produce waiting for buffer space.
	prodCtx, prodCancel := context.WithCancel(context.Background())
	t.Cleanup(func() { stopProducing(); prodCancel(); <-prodDone })
	go func() {
		defer close(prodDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			part := int32(i % partitions)
			mu.Lock()
			n := len(mu.recs[part])
			mu.recs[part] = append(mu.recs[part], killRec{gen: int(gen.Load()), offset: -1})
			mu.Unlock()
			r := &kgo.Record{Partition: part, Value: fmt.Appendf(nil, "p%d-%d", part, n)}
			p.Produce(prodCtx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				rec := &mu.recs[part][n]
				rec.ackGen = int(gen.Load())
				if err != nil {
					rec.state, rec.err = -1, err
					return
				}
				rec.state, rec.offset = 1, r.Offset
				ackedN.Add(1)
			})
			if i%10 == 9 {
				// Pace to some thousands of records a second: enough for many
				// batches in flight at each kill, few enough to read back
				// quickly on a shared machine.
				time.Sleep(time.Millisecond)
			}
		}
	}()

	// waitAcks waits (bounded) until the producer gets acknowledgements
	// again, past since.
	waitAcks := func(since int64) time.Duration {
		t0 := time.Now()
		for ackedN.Load() <= since && time.Since(t0) < 20*time.Second {
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(t0)
	}

	resumed := waitAcks(0)
	for k := 1; k <= kills; k++ {
		// Let the producer run against this broker, then kill it at a random
		// moment.
		time.Sleep(time.Duration(300+rng.IntN(500)) * time.Millisecond)
		before := ackedN.Load()
		b.kill9()
		killedAt := time.Since(start)
		b.start(false)
		gen.Store(int64(b.gen))
		after := ackedN.Load()
		t.Logf("kill %d at %v: gen %d killed with %d acked so far (acks had resumed %v after its start); gen %d ready after %v",
			k, killedAt.Round(time.Millisecond), b.gen-1, before, resumed.Round(time.Millisecond), b.gen, (time.Since(start) - killedAt).Round(time.Millisecond))
		resumed = waitAcks(after)
	}
	time.Sleep(300 * time.Millisecond)
	stopProducing()
	<-prodDone
	fctx, fcancel := context.WithTimeout(ctx, 45*time.Second)
	if err := p.Flush(fctx); err != nil {
		t.Errorf("flush: %v", err)
	}
	fcancel()
	p.Close()

	// One more kill with everything acknowledged and nothing in flight:
	// acknowledged data must survive a SIGKILL at rest, and be readable
	// straight after the restart.
	b.kill9()
	b.start(false)
	mu.Lock()
	var maxAcked [partitions]int64
	for part := range maxAcked {
		maxAcked[part] = -1
		for _, rec := range mu.recs[part] {
			if rec.state == 1 {
				maxAcked[part] = max(maxAcked[part], rec.offset)
			}
		}
	}
	mu.Unlock()
	endOffsets := func() map[int32]int64 {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			t.Fatalf("list end offsets: %v", err)
		}
		end := map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
		return end
	}
	restartEnd := endOffsets()
	for part := int32(0); part < partitions; part++ {
		if restartEnd[part] <= maxAcked[part] {
			t.Errorf("HIGH WATERMARK partition %d: end offset %d right after the restart, but offsets up to %d were acknowledged before the kill (acknowledged records invisible to consumers until the next produce)",
				part, restartEnd[part], maxAcked[part])
		}
	}
	// A marker record per partition so that, should the check above fail,
	// the high watermark still moves to the log end and the idempotence
	// checks below see the whole log.
	mk := newClient(t, b.addr(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for part := int32(0); part < partitions; part++ {
		if err := mk.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("marker")}).FirstErr(); err != nil {
			t.Fatalf("produce marker to partition %d: %v", part, err)
		}
	}
	mk.Close()

	// Read every partition up to its end offset.
	end := endOffsets()
	offs := map[string]map[int32]kgo.Offset{topic: {}}
	for part := int32(0); part < partitions; part++ {
		offs[topic][part] = kgo.NewOffset().AtStart()
	}
	c := newClient(t, b.addr(), kgo.ConsumePartitions(offs), kgo.FetchMaxWait(500*time.Millisecond))
	got := map[int32][]*kgo.Record{}
	complete := func() bool {
		for part := int32(0); part < partitions; part++ {
			rs := got[part]
			if end[part] > 0 && (len(rs) == 0 || rs[len(rs)-1].Offset < end[part]-1) {
				return false
			}
		}
		return true
	}
	for !complete() {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume timed out; have %d/%d/%d records, end offsets %v", len(got[0]), len(got[1]), len(got[2]), end)
		}
		fs.EachError(func(_ string, part int32, err error) {
			t.Fatalf("consume partition %d: %v", part, err)
		})
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r) })
	}
	c.Close()

	// Check.
	mu.Lock()
	defer mu.Unlock()
	var produced, consumed, acked, retried, failed, dups, lost, disorder, foreign, moved int
	failReasons := map[string]int{}
	const show = 15
	for part := int32(0); part < partitions; part++ {
		recs := mu.recs[part]
		produced += len(recs)
		seen := make([][]int64, len(recs)) // by n: the offsets it was read at
		last, lastOff := -1, int64(-1)
		for _, r := range got[part] {
			if r.Offset >= end[part] {
				continue
			}
			if lastOff >= 0 && r.Offset != lastOff+1 {
				t.Errorf("partition %d: offset gap, %d after %d", part, r.Offset, lastOff)
			}
			lastOff = r.Offset
			v := string(r.Value)
			if v == "marker" && r.Offset == end[part]-1 {
				continue
			}
			consumed++
			var vp int32
			var n int
			if _, err := fmt.Sscanf(v, "p%d-%d", &vp, &n); err != nil || vp != part || n < 0 || n >= len(recs) {
				if foreign++; foreign <= show {
					t.Errorf("partition %d offset %d: unexpected value %q", part, r.Offset, v)
				}
				continue
			}
			rec := recs[n]
			seen[n] = append(seen[n], r.Offset)
			switch {
			case len(seen[n]) > 1:
				if dups++; dups <= show {
					t.Errorf("DUPLICATE partition %d: %q at offsets %v (produced during gen %d, promise ran during gen %d, state %d, acked offset %d)",
						part, v, seen[n], rec.gen, rec.ackGen, rec.state, rec.offset)
				}
			case n <= last:
				if disorder++; disorder <= show {
					t.Errorf("OUT OF ORDER partition %d offset %d: %q after p%d-%d (produced during gen %d)", part, r.Offset, v, part, last, rec.gen)
				}
			}
			if rec.state == 1 && rec.offset != r.Offset && len(seen[n]) == 1 {
				if moved++; moved <= show {
					t.Errorf("OFFSET partition %d: %q acknowledged at offset %d but read at %d (produced during gen %d, acked during gen %d)",
						part, v, rec.offset, r.Offset, rec.gen, rec.ackGen)
				}
			}
			last = max(last, n)
		}
		for n, rec := range recs {
			switch rec.state {
			case 1:
				acked++
				if rec.ackGen > rec.gen {
					retried++
				}
				if len(seen[n]) == 0 {
					if lost++; lost <= show {
						t.Errorf("LOST partition %d: p%d-%d acknowledged at offset %d (produced during gen %d, acked during gen %d) is not in the log",
							part, part, n, rec.offset, rec.gen, rec.ackGen)
					}
				}
			case -1:
				failed++
				failReasons[rec.err.Error()]++
			default:
				t.Errorf("partition %d: p%d-%d never completed after Flush", part, part, n)
			}
		}
		segs, _ := filepath.Glob(filepath.Join(b.dir, fmt.Sprintf("%s-%d", topic, part), "*.log"))
		t.Logf("partition %d: produced %d, end offset %d after the final restart, %d with the marker, %d segments",
			part, len(recs), restartEnd[part], end[part], len(segs))
	}
	for reason, n := range failReasons {
		t.Logf("failed %d records: %s", n, reason)
	}
	t.Logf("kills %d (+1 at rest), produced %d, acked %d (%d of them acked by a later broker than the one they were produced to), failed %d, consumed %d; duplicates %d, lost %d, out of order %d, offset moved %d, unexpected %d; took %v",
		kills, produced, acked, retried, failed, consumed, dups, lost, disorder, moved, foreign, time.Since(start).Round(time.Millisecond))
	if acked == 0 {
		t.Errorf("no record was acknowledged")
	}
	if t.Failed() {
		t.Logf("last broker output:\n%s", b.log)
	}
}
