package strata_test

// Memory test with a real process: connections that announce huge requests
// and then send their bodies slowly must cost the broker about the bytes they
// really sent, not the sizes they announced, and that memory must go back to
// the OS once they close. A normal client keeps producing and consuming
// throughout. RSS is read from /proc, so only a separate broker process
// gives a figure that means anything.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
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

func TestSlowHugeRequestsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker process and 30 slow clients; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc for VmRSS")
	}
	const (
		topic     = "mem"
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
	b := &killBroker{t: t, bin: killBinary(t), dir: t.TempDir()}
	b.start(true)
	t.Cleanup(b.kill9)
	pid := b.cmd.Process.Pid
	m := readyHTTP.FindStringSubmatch(b.log.String())
	if m == nil {
		t.Fatalf("no http address in the broker's ready line:\n%s", b.log)
	}
	httpAddr := m[1]

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.addr()))
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	p := newClient(t, b.addr(), kgo.DefaultProduceTopic(topic))
	c := newClient(t, b.addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produced, consumed := 0, 0
	// roundTrip produces one record and consumes up to it: the normal
	// client's work, which must go on while the attackers hold their
	// connections.
	roundTrip := func() {
		t.Helper()
		v := fmt.Sprintf("v%d", produced)
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		produced++
		for consumed < produced {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("consume after %d records: %v", consumed, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if want := fmt.Sprintf("v%d", consumed); string(r.Value) != want {
					t.Fatalf("record %d = %q, want %q", consumed, r.Value, want)
				}
				consumed++
			})
		}
	}
	for range 20 {
		roundTrip() // warm up both clients and the broker's pools
	}
	base := procRSS(t, pid)
	t.Logf("base RSS %s", mib(base))

	var peak int64
	sample := func() int64 {
		rss := procRSS(t, pid)
		peak = max(peak, rss)
		return rss
	}

	frame := binary.BigEndian.AppendUint32(nil, announced)
	// A valid request header, so that only the size and the slowness are
	// suspicious: Produce v8, correlation 1, client id "slow".
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint16(frame, 8)
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "slow"...)
	conns := make([]net.Conn, attackers)
	for i := range conns {
		nc, err := net.Dial("tcp", b.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetWriteDeadline(time.Now().Add(2 * time.Minute))
		if _, err := nc.Write(frame); err != nil {
			t.Fatalf("attacker %d: %v", i, err)
		}
		conns[i] = nc
	}
	// Trickle: every attacker sends a piece, then the normal client does a
	// round trip, until each attacker has sent its share.
	chunk := make([]byte, piece)
	for off := len(frame) - 4; off < sent; off += piece {
		for i, nc := range conns {
			if _, err := nc.Write(chunk[:min(piece, sent-off)]); err != nil {
				t.Fatalf("attacker %d after %d bytes: %v", i, off, err)
			}
		}
		roundTrip()
		sample()
	}
	// Wait until the broker has read what the attackers sent: the memory
	// it charged for their requests covers it.
	charged := func() float64 {
		return scrape(t, httpAddr)["strata_request_memory_used_bytes"]
	}
	deadline := time.Now().Add(time.Minute)
	for charged() < attackers*sent && peak <= base+peakSlack {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not read the attackers' %s in a minute: %.0f bytes charged", mib(attackers*sent), charged())
		}
		roundTrip()
		sample()
	}
	for range 10 {
		roundTrip() // the normal client still works with the attackers at their peak
		sample()
	}
	heap := scrape(t, httpAddr)["go_memstats_heap_alloc_bytes"]
	t.Logf("attackers announced %s, sent %s; peak RSS %s (base %s), Go heap %s",
		mib(attackers*announced), mib(attackers*sent), mib(peak), mib(base), mib(int64(heap)))
	if peak > base+peakSlack {
		t.Errorf("peak RSS %s exceeds base %s + %s", mib(peak), mib(base), mib(peakSlack))
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
	var after int64
	deadline = time.Now().Add(time.Minute)
	for {
		roundTrip()
		after = sample()
		if after <= base+afterSlack && charged() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute after the attackers closed: RSS %s, base %s (+%s allowed), %.0f bytes still charged",
				mib(after), mib(base), mib(afterSlack), charged())
			break
		}
	}
	t.Logf("RSS after the attackers closed: %s; the normal client made %d round trips", mib(after), produced)
}
