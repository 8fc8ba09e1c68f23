package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
)

// The perf tests run the commands in-process against an embedded broker
// and hold their numbers against independent counts: the broker's end
// offsets, the segment files on disk, and a plain kgo consumer's count and
// checksum. They assert no timing.

func startPerfBroker(t *testing.T) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	b, err := strata.Start(strata.Options{Dir: dir, Properties: map[string]string{
		"group.initial.rebalance.delay.ms": "0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr(), dir
}

// runPerf runs `strata perf ARGS --bootstrap addr` in-process.
func runPerf(t *testing.T, addr string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append(append([]string{"perf"}, args...), "--bootstrap", addr))
	err = root.Execute()
	return out.String(), errb.String(), err
}

// runPerfJSON runs a perf command with --json and decodes its report.
func runPerfJSON(t *testing.T, addr string, args ...string) map[string]any {
	t.Helper()
	out, stderr, err := runPerf(t, addr, append(args, "--json", "--report-interval", "0")...)
	if err != nil {
		t.Fatalf("strata perf %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("strata perf %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	return rep
}

// perfNum reads a JSON number at a dotted path.
func perfNum(t *testing.T, rep map[string]any, path string) float64 {
	t.Helper()
	var v any = rep
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q in %v", path, k, rep)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("report has no %s: %v", path, rep)
		}
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%s = %v, not a number", path, v)
	}
	return f
}

func perfStr(t *testing.T, rep map[string]any, key string) string {
	t.Helper()
	s, ok := rep[key].(string)
	if !ok {
		t.Fatalf("%s = %v, not a string", key, rep[key])
	}
	return s
}

// perfEndOffsetSum is the broker's count of records in topic.
func perfEndOffsetSum(t *testing.T, addr, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		n += o.Offset - s.Offset
	})
	return n
}

// perfReadAll consumes n records of topic with a plain kgo client and returns
// their count, key+value bytes, XXH64 sum and number of distinct values.
func perfReadAll(t *testing.T, addr, topic string, n int) (count, size int64, sum uint64, distinct int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for count < int64(n) {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("reading %s back: %v after %d records", topic, err, count)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			count++
			size += int64(len(r.Key) + len(r.Value))
			sum += xxhash.Sum64(r.Value)
			seen[string(r.Value)] = true
		})
	}
	return count, size, sum, len(seen)
}

// perfSegmentBytes is the size of topic's .log segment files under dir, and
// how many partition directories hold them.
func perfSegmentBytes(t *testing.T, dir, topic string) (size int64, partitions int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), topic+"-") {
				partitions++
			}
			return nil
		}
		if filepath.Ext(path) == ".log" && strings.HasPrefix(filepath.Base(filepath.Dir(path)), topic+"-") {
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size, partitions
}

// The stable field names a benchmark script reads.
var perfProduceFields = []string{
	"records", "bytes", "seconds", "records_per_sec", "mb_per_sec", "errors", "checksum",
	"latency_ms.p50", "latency_ms.p95", "latency_ms.p99", "latency_ms.p999", "latency_ms.max",
}

func TestPerfProduceAgreesWithBrokerAndDisk(t *testing.T) {
	addr, dir := startPerfBroker(t)
	const n, size = 2000, 100
	rep := runPerfJSON(t, addr, "produce", "--topic", "zeros", "--num-records", fmt.Sprint(n),
		"--record-size", fmt.Sprint(size), "--payload", "zeros", "--partitions", "3")
	for _, f := range perfProduceFields {
		if f != "checksum" {
			perfNum(t, rep, f)
		}
	}
	if got := perfNum(t, rep, "records"); got != n {
		t.Errorf("records = %v, want %d", got, n)
	}
	if got := perfNum(t, rep, "bytes"); got != n*size {
		t.Errorf("bytes = %v, want %d", got, n*size)
	}
	if got := perfNum(t, rep, "errors"); got != 0 {
		t.Errorf("errors = %v", got)
	}
	if got := perfNum(t, rep, "config.partitions"); got != 3 {
		t.Errorf("config.partitions = %v, want 3", got)
	}
	if p50, p99, mx := perfNum(t, rep, "latency_ms.p50"), perfNum(t, rep, "latency_ms.p99"), perfNum(t, rep, "latency_ms.max"); p50 > p99 || p99 > mx || p50 <= 0 {
		t.Errorf("latency p50 %v, p99 %v, max %v: not ordered", p50, p99, mx)
	}
	// The produce requests carried every value, with framing.
	reqs, mean, rtt := perfNum(t, rep, "produce_requests.count"), perfNum(t, rep, "produce_requests.mean_bytes"), perfNum(t, rep, "produce_requests.mean_round_trip_ms")
	if reqs < 1 || reqs*mean < n*size || rtt <= 0 {
		t.Errorf("produce requests: %v of %v bytes on average, %v ms round trip: want at least %d bytes in all", reqs, mean, rtt, n*size)
	}

	// The broker's count.
	if got := perfEndOffsetSum(t, addr, "zeros"); got != n {
		t.Errorf("end offsets sum to %d, want %d", got, n)
	}
	// The bytes on disk: every value is there, uncompressed, plus record
	// and batch framing (at most 61 bytes per batch and a few per record).
	disk, parts := perfSegmentBytes(t, dir, "zeros")
	if parts != 3 {
		t.Errorf("%d partition directories, want 3", parts)
	}
	if disk < n*size || disk > n*(size+80) {
		t.Errorf("segment files hold %d bytes; want between %d and %d", disk, n*size, n*(size+80))
	}
	// A plain consumer's count and checksum.
	count, bytes, sum, _ := perfReadAll(t, addr, "zeros", n)
	if count != n || bytes != n*size {
		t.Errorf("read back %d records, %d bytes", count, bytes)
	}
	if got := perfStr(t, rep, "checksum"); got != perfHex(sum) {
		t.Errorf("produce checksum %s, a plain consumer's %s", got, perfHex(sum))
	}
	c := runPerfJSON(t, addr, "consume", "--topic", "zeros")
	if perfNum(t, c, "records") != n || perfNum(t, c, "bytes") != n*size || perfStr(t, c, "checksum") != perfHex(sum) {
		t.Errorf("perf consume read %v records, %v bytes, checksum %v; want %d, %d, %s",
			c["records"], c["bytes"], c["checksum"], n, n*size, perfHex(sum))
	}
}

func TestPerfConsumeChecksumProvesEveryRecord(t *testing.T) {
	addr, _ := startPerfBroker(t)
	const n, size = 3000, 64
	rep := runPerfJSON(t, addr, "produce", "--topic", "rnd", "--num-records", fmt.Sprint(n),
		"--record-size", fmt.Sprint(size), "--compression", "lz4", "--partitions", "4", "--linger", "1ms")
	if perfNum(t, rep, "records") != n || perfNum(t, rep, "bytes") != n*size {
		t.Fatalf("produce reported %v records, %v bytes", rep["records"], rep["bytes"])
	}
	count, bytes, sum, distinct := perfReadAll(t, addr, "rnd", n)
	if count != n || bytes != n*size {
		t.Fatalf("read back %d records, %d bytes", count, bytes)
	}
	if distinct != n {
		t.Errorf("%d distinct values among %d random records; each should be unique", distinct, n)
	}
	want := perfHex(sum)
	if got := perfStr(t, rep, "checksum"); got != want {
		t.Errorf("produce checksum %s, a plain consumer's %s", got, want)
	}

	for _, args := range [][]string{
		{"consume", "--topic", "rnd"},                                 // to the end, direct
		{"consume", "--topic", "rnd", "--num-records", fmt.Sprint(n)}, // a count, direct
		{"consume", "--topic", "rnd", "--group", "perf-g"},            // to the end, in a group
		{"consume", "--topic", "rnd", "--group", "perf-g2", "--num-records", fmt.Sprint(n)},
	} {
		c := runPerfJSON(t, addr, args...)
		if perfNum(t, c, "records") != n || perfNum(t, c, "bytes") != n*size || perfStr(t, c, "checksum") != want || perfNum(t, c, "errors") != 0 {
			t.Errorf("%v: %v records, %v bytes, checksum %v, %v errors; want %d, %d, %s",
				args, c["records"], c["bytes"], c["checksum"], c["errors"], n, n*size, want)
		}
	}

	// Fewer than there are: exactly that many.
	c := runPerfJSON(t, addr, "consume", "--topic", "rnd", "--num-records", "1000")
	if perfNum(t, c, "records") != 1000 || perfNum(t, c, "bytes") != 1000*size {
		t.Errorf("--num-records 1000 read %v records, %v bytes", c["records"], c["bytes"])
	}

	// More than there are: the run times out and says so.
	out, _, err := runPerf(t, addr, "consume", "--topic", "rnd", "--num-records", fmt.Sprint(n+1),
		"--timeout", "300ms", "--json", "--report-interval", "0")
	if err == nil || !strings.Contains(err.Error(), "1 short of --num-records") {
		t.Errorf("consume past the end: err = %v", err)
	}
	var tr perfConsumeReport
	if err := json.Unmarshal([]byte(out), &tr); err != nil || !tr.TimedOut || tr.Records != n || tr.Checksum != want {
		t.Errorf("timed-out report %+v (%v); want timed_out, %d records, checksum %s", tr, err, n, want)
	}
}

func TestPerfProduceDurationMatchesBroker(t *testing.T) {
	addr, _ := startPerfBroker(t)
	rep := runPerfJSON(t, addr, "produce", "--topic", "dur", "--duration", "200ms",
		"--throughput", "5000", "--record-size", "10", "--partitions", "2")
	records := int64(perfNum(t, rep, "records"))
	if records == 0 || perfNum(t, rep, "errors") != 0 {
		t.Fatalf("--duration run: %v records, %v errors", rep["records"], rep["errors"])
	}
	if perfNum(t, rep, "bytes") != float64(records*10) {
		t.Errorf("bytes = %v, want %d", rep["bytes"], records*10)
	}
	if got := perfEndOffsetSum(t, addr, "dur"); got != records {
		t.Errorf("reported %d records, the broker has %d", records, got)
	}
}

func TestPerfE2E(t *testing.T) {
	addr, _ := startPerfBroker(t)
	const n = 300
	rep := runPerfJSON(t, addr, "e2e", "--topic", "e2e", "--num-records", fmt.Sprint(n),
		"--throughput", "3000", "--record-size", "64", "--partitions", "2")
	for _, f := range append(perfProduceFields, "produced", "produce_latency_ms.p50", "produce_latency_ms.p999") {
		if f != "checksum" {
			perfNum(t, rep, f)
		}
	}
	if perfNum(t, rep, "records") != n || perfNum(t, rep, "produced") != n || perfNum(t, rep, "bytes") != n*64 || perfNum(t, rep, "errors") != 0 {
		t.Errorf("e2e: %v read back of %v produced, %v bytes, %v errors; want %d", rep["records"], rep["produced"], rep["bytes"], rep["errors"], n)
	}
	if ok, _ := rep["checksum_ok"].(bool); !ok {
		t.Errorf("checksum_ok = %v", rep["checksum_ok"])
	}
	if p50, p999, mx := perfNum(t, rep, "latency_ms.p50"), perfNum(t, rep, "latency_ms.p999"), perfNum(t, rep, "latency_ms.max"); p50 > p999 || p999 > mx || p50 <= 0 {
		t.Errorf("e2e latency p50 %v, p99.9 %v, max %v: not ordered", p50, p999, mx)
	}
	if got := perfEndOffsetSum(t, addr, "e2e"); got != n {
		t.Errorf("broker has %d records, want %d", got, n)
	}
	_, _, sum, _ := perfReadAll(t, addr, "e2e", n)
	if got := perfStr(t, rep, "checksum"); got != perfHex(sum) {
		t.Errorf("e2e checksum %s, a plain consumer's %s", got, perfHex(sum))
	}
}

// --warmup keeps the records sent first out of the latency figures only:
// with a warmup longer than the run none is measured, yet every record is
// read back and checked.
func TestPerfE2EWarmup(t *testing.T) {
	addr, _ := startPerfBroker(t)
	const n = 100
	rep := runPerfJSON(t, addr, "e2e", "--topic", "warm", "--num-records", fmt.Sprint(n),
		"--throughput", "2000", "--record-size", "64", "--warmup", "1h")
	if perfNum(t, rep, "records") != n || perfNum(t, rep, "errors") != 0 {
		t.Errorf("e2e with warmup: %v read back, %v errors; want %d and 0", rep["records"], rep["errors"], n)
	}
	if mx := perfNum(t, rep, "latency_ms.max"); mx != 0 {
		t.Errorf("latency max %v with every record in the warmup; want 0 (none measured)", mx)
	}
	if ok, _ := rep["checksum_ok"].(bool); !ok {
		t.Errorf("checksum_ok = %v", rep["checksum_ok"])
	}
}

func TestPerfHumanOutput(t *testing.T) {
	addr, _ := startPerfBroker(t)
	out, _, err := runPerf(t, addr, "produce", "--topic", "h", "--num-records", "10", "--report-interval", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records     10 acknowledged", "bytes       1000 (key+value)", "first send to last ack", "MB = 10^6 bytes", "p99.9", "round trip on average", "errors      0", "checksum"} {
		if !strings.Contains(out, want) {
			t.Errorf("produce output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runPerf(t, addr, "consume", "--topic", "h", "--report-interval", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records     10\n", "bytes       1000 (key+value)", "checksum"} {
		if !strings.Contains(out, want) {
			t.Errorf("consume output lacks %q:\n%s", want, out)
		}
	}
}

func TestPerfErrors(t *testing.T) {
	addr, _ := startPerfBroker(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"produce", "--num-records", "1"}, "--topic is required"},
		{[]string{"produce", "--topic", "x"}, "give --num-records N or --duration D"},
		{[]string{"produce", "--topic", "x", "--num-records", "1", "--acks", "2"}, `--acks "2"`},
		{[]string{"produce", "--topic", "x", "--num-records", "1", "--compression", "brotli"}, `--compression "brotli"`},
		{[]string{"produce", "--topic", "x", "--num-records", "1", "--payload", "ones"}, `--payload "ones"`},
		{[]string{"e2e", "--topic", "x", "--num-records", "1", "--record-size", "4"}, "at least 8"},
		{[]string{"consume", "--topic", "missing"}, "topic missing does not exist"},
		{[]string{"consume", "--topic", "x", "--from-beginning=false"}, "give --num-records or --duration"},
	} {
		_, _, err := runPerf(t, addr, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("strata perf %s: err = %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
