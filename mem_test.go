package strata_test

// Memory tests with a real process: connections that announce huge requests
// must cost the broker about the bytes they really sent, not the sizes they
// announced, never more than queued.max.request.bytes (plus one request),
// and that memory must go back to the OS once they close. A normal client
// produces and consumes through it. RSS is read from /proc, so only a
// separate broker process (built and run as in kill_test.go) gives a figure
// that means anything.
//
// Measured on a 2-core machine, with
//
//	go test -count=1 -v -run 'TestSlowHugeRequestsMemoryBounded|TestPushingHugeRequestsMemoryBounded' .
//
// (base RSS 15 MiB in every run):
//
//	                                     before the fix       after
//	slow (30 x 2 MiB of 99 MiB sent)
//	  peak RSS                           >135 MiB, rising     77 MiB
//	  Go heap                            3033 MiB             1.5 MiB
//	  RSS a minute after they closed     260 MiB              19 MiB (at once)
//	pushing (30 x 90 MiB of 99 MiB)
//	  peak RSS                           >1943 MiB, rising    275 MiB
//	  Go heap                            2972 MiB             3.4 MiB
//	  RSS a minute after they closed     2533 MiB             21 MiB (at once)

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// procRSS returns the resident set size of pid in bytes (VmRSS).
func procRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

var readyHTTP = regexp.MustCompile(`http=(127\.0\.0\.1:[0-9]+)`)

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// memRig is a broker process, a normal client that produces and consumes
// through it, and the broker's RSS and metrics. Owned by the test goroutine.
type memRig struct {
	t        *testing.T
	b        *killBroker
	pid      int
	httpAddr string
	ctx      context.Context
	p, c     *kgo.Client
	produced int
	consumed int
	peak     int64
}

func newMemRig(t *testing.T, sets ...string) *memRig {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a broker process and 30 misbehaving clients; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc for VmRSS")
	}
	b := &killBroker{t: t, bin: killBinary(t), dir: t.TempDir(), sets: sets}
	b.start(true)
	t.Cleanup(b.kill9)
	m := readyHTTP.FindStringSubmatch(b.log.String())
	if m == nil {
		t.Fatalf("no http address in the broker's ready line:\n%s", b.log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	r := &memRig{t: t, b: b, pid: b.cmd.Process.Pid, httpAddr: m[1], ctx: ctx}
	const topic = "mem"
	adm := kadm.NewClient(newClient(t, b.addr()))
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	r.p = newClient(t, b.addr(), kgo.DefaultProduceTopic(topic))
	r.c = newClient(t, b.addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for range 20 {
		r.roundTrip() // warm up both clients and the broker's pools
	}
	return r
}

// roundTrip produces one record and consumes up to it: the normal client's
// work.
func (r *memRig) roundTrip() {
	t := r.t
	t.Helper()
	v := fmt.Sprintf("v%d", r.produced)
	if err := r.p.ProduceSync(r.ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", v, err)
	}
	r.produced++
	for r.consumed < r.produced {
		fs := r.c.PollFetches(r.ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", r.consumed, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if want := fmt.Sprintf("v%d", r.consumed); string(rec.Value) != want {
				t.Fatalf("record %d = %q, want %q", r.consumed, rec.Value, want)
			}
			r.consumed++
		})
	}
}

// rss samples the broker's RSS, keeping the peak.
func (r *memRig) rss() int64 {
	v := procRSS(r.t, r.pid)
	r.peak = max(r.peak, v)
	return v
}

func (r *memRig) metric(name string) float64 { return scrape(r.t, r.httpAddr)[name] }

// charged is the broker's request memory (queued.max.request.bytes use).
func (r *memRig) charged() float64 { return r.metric("strata_request_memory_used_bytes") }

// attackConns dials n connections that each announce a request of
// announced bytes with a valid header (Produce v8, client id "slow"), so
// that only the size and what follows are suspicious.
func (r *memRig) attackConns(n int, announced uint32) ([]net.Conn, int) {
	t := r.t
	t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, announced)
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint16(frame, 8)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "slow"...)
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.Dial("tcp", r.b.addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetWriteDeadline(time.Now().Add(3 * time.Minute))
		if _, err := nc.Write(frame); err != nil {
			t.Fatalf("attacker %d: %v", i, err)
		}
		conns[i] = nc
	}
	return conns, len(frame) - 4
}

// waitRSSBack waits, with the normal client working, until the broker's
// RSS is back within slack of base and no request memory is charged, and
// returns the RSS. It fails the test after a minute: the broker must give
// memory back without waiting for a GC that an idle broker would not run
// for minutes.
func (r *memRig) waitRSSBack(base, slack int64) int64 {
	t := r.t
	t.Helper()
	var after int64
	deadline := time.Now().Add(time.Minute)
	for {
		r.roundTrip()
		after = r.rss()
		if after <= base+slack && r.charged() == 0 {
			return after
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute after the attackers closed: RSS %s, base %s (+%s allowed), %.0f bytes still charged",
				mib(after), mib(base), mib(slack), r.charged())
			return after
		}
	}
}

// TestSlowHugeRequestsMemoryBounded: 30 connections announce 99 MiB
// requests and trickle 2 MiB each; the broker's memory follows what they
// sent, the normal client works throughout, and RSS returns to its base
// once they close.
func TestSlowHugeRequestsMemoryBounded(t *testing.T) {
	const (
		attackers = 30
		announced = 99 << 20 // each announces a 99 MiB request...
		sent      = 2 << 20  // ...and sends only this much of it
		piece     = 64 << 10
		// The peak may exceed the base by what the attackers sent (60
		// MiB) and as much again for the normal client's work and the
		// runtime's slack: well under 30 x 99 MiB, which an eager
		// allocation reserves, and under what an eager allocation's
		// inflated GC goal lets ordinary garbage grow to.
		peakSlack  = 120 << 20
		afterSlack = 48 << 20
		heapLimit  = 64 << 20
	)
	r := newMemRig(t)
	base := r.rss()
	r.peak = 0
	t.Logf("base RSS %s", mib(base))

	conns, hdr := r.attackConns(attackers, announced)
	// Trickle: every attacker sends a piece, then the normal client does a
	// round trip, until each attacker has sent its share.
	chunk := make([]byte, piece)
	for off := hdr; off < sent; off += piece {
		for i, nc := range conns {
			if _, err := nc.Write(chunk[:min(piece, sent-off)]); err != nil {
				t.Fatalf("attacker %d after %d bytes: %v", i, off, err)
			}
		}
		r.roundTrip()
		r.rss()
	}
	// Wait until the broker has read what the attackers sent: the memory
	// it charged for their requests covers it.
	deadline := time.Now().Add(time.Minute)
	for r.charged() < attackers*sent && r.peak <= base+peakSlack {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not read the attackers' %s in a minute: %.0f bytes charged", mib(attackers*sent), r.charged())
		}
		r.roundTrip()
		r.rss()
	}
	for range 10 {
		r.roundTrip() // the normal client still works with the attackers at their peak
		r.rss()
	}
	heap := r.metric("go_memstats_heap_alloc_bytes")
	t.Logf("attackers announced %s, sent %s; peak RSS %s (base %s), Go heap %s",
		mib(attackers*announced), mib(attackers*sent), mib(r.peak), mib(base), mib(int64(heap)))
	if r.peak > base+peakSlack {
		t.Errorf("peak RSS %s exceeds base %s + %s", mib(r.peak), mib(base), mib(peakSlack))
	}
	// The Go heap sets the GC's goal: buffers sized by what clients
	// announce would let ordinary garbage grow as large before a GC.
	if heap > heapLimit {
		t.Errorf("Go heap %s with the attackers connected, want under %s", mib(int64(heap)), mib(heapLimit))
	}

	for _, nc := range conns {
		nc.Close()
	}
	// Memory goes back to the OS once the attackers are gone, without
	// waiting for a GC that an idle broker would not run for minutes.
	after := r.waitRSSBack(base, afterSlack)
	t.Logf("RSS after the attackers closed: %s; the normal client made %d round trips", mib(after), r.produced)
}

// TestPushingHugeRequestsMemoryBounded: 30 connections announce 99 MiB
// requests and send 90 MiB each as fast as the broker reads. The broker
// reads until queued.max.request.bytes (256 MiB by default) is charged,
// plus the one request Kafka's non-strict pool lets past it, and no further;
// after they close, RSS returns to its base and the normal client, which
// had to wait for memory, works again.
func TestPushingHugeRequestsMemoryBounded(t *testing.T) {
	const (
		attackers = 30
		announced = 99 << 20
		sent      = 90 << 20
		limit     = 256 << 20 // the default queued.max.request.bytes
		// Past the base: the limit, one request past it, and slack for
		// the runtime and the chunks charged ahead of their bytes.
		peakSlack  = limit + announced + 64<<20
		afterSlack = 48 << 20
	)
	r := newMemRig(t)
	base := r.rss()
	r.peak = 0
	t.Logf("base RSS %s", mib(base))
	if l := r.metric("strata_request_memory_limit_bytes"); l != limit {
		t.Fatalf("queued.max.request.bytes %.0f, want the default %d", l, limit)
	}

	conns, hdr := r.attackConns(attackers, announced)
	var wg sync.WaitGroup
	defer wg.Wait() // after the conns are closed below: their writes fail
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chunk := make([]byte, 1<<20)
			for off := hdr; off < sent; off += len(chunk) {
				if _, err := nc.Write(chunk[:min(len(chunk), sent-off)]); err != nil {
					return // closed by the test, or the broker pushing back until the deadline
				}
			}
		}()
	}
	closeAll := func() {
		for _, nc := range conns {
			nc.Close()
		}
	}
	defer closeAll()
	// The broker reads until the pool is spent.
	deadline := time.Now().Add(2 * time.Minute)
	for r.charged() < limit && r.rss() <= base+peakSlack {
		if time.Now().After(deadline) {
			t.Fatalf("broker charged only %.0f bytes in two minutes", r.charged())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Then it reads no more than one request past it: watch for a while.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		r.rss()
		time.Sleep(10 * time.Millisecond)
	}
	charged, heap := r.charged(), r.metric("go_memstats_heap_alloc_bytes")
	t.Logf("attackers announced %s, offered %s; %s charged, peak RSS %s (base %s), Go heap %s",
		mib(attackers*announced), mib(attackers*sent), mib(int64(charged)), mib(r.peak), mib(base), mib(int64(heap)))
	if r.peak > base+peakSlack {
		t.Errorf("peak RSS %s exceeds base %s + %s", mib(r.peak), mib(base), mib(peakSlack))
	}
	if charged > limit+announced {
		t.Errorf("%s charged, over the limit by more than one request", mib(int64(charged)))
	}

	closeAll()
	after := r.waitRSSBack(base, afterSlack)
	t.Logf("RSS after the attackers closed: %s; the normal client made %d round trips", mib(after), r.produced)
}
