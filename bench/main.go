// Command bench runs strata against its peers on this machine and prints
// medians, spreads and same-repetition ratios as Markdown tables (see
// bench/run.sh, which builds the binaries it needs, and docs/BENCHMARKS.md).
//
// Targets, each started fresh for every repetition: strata (fresh data
// dir), franz-go's kfake (in memory), kfake discarding what it receives,
// the null broker (bench/cmd/nullbroker: answers produce requests, keeps
// nothing, decodes only what the answer needs: the produce ceiling of the
// client on this machine), the null broker storing the record bytes it
// receives in a file per partition (null-store: the least a broker that
// keeps its records must do) and NATS JetStream (file storage). The Kafka
// targets are driven by the same client, `strata perf`, with the same
// settings and record counts; the order of targets rotates from one
// repetition to the next, and every consume phase must return every
// record (count and checksum).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type bench struct {
	bin, work, profile string
	reps               int
	phase              time.Duration
	smoke              bool
	verbose            bool
	out                io.Writer

	Machine machine
	Probe   *probeResult
	Runs    []run
	NATS    []natsRun
	Startup *startupResult
	Cmds    []string
}

type natsRun struct {
	Workload string
	Rep      int
	natsResult
}

func main() {
	b := &bench{out: os.Stdout}
	var sections, jsonPath string
	flag.StringVar(&b.bin, "bin", "bench/.bin", "directory holding strata, kfake, nats-server and nats")
	flag.StringVar(&b.work, "work", "", "scratch directory for data (default: a new directory under $TMPDIR)")
	flag.StringVar(&b.profile, "profile", "", "also save pprof CPU and allocation profiles of strata for each workload here")
	flag.IntVar(&b.reps, "reps", 3, "repetitions of each comparison")
	flag.DurationVar(&b.phase, "phase", 5*time.Second, "shortest phase: record counts are sized so the fastest target takes this long")
	flag.BoolVar(&b.smoke, "smoke", false, "tiny record counts, one repetition: proves the harness works, measures nothing")
	flag.BoolVar(&b.verbose, "v", false, "print each command as it runs")
	flag.StringVar(&sections, "only", "probe,kafka,e2e,fsync,compression,nats,startup", "comma-separated sections to run")
	flag.StringVar(&jsonPath, "json", "", "also write every raw result to this file")
	startupGiB := flag.Float64("startup-gib", 10, "GiB of data in the start-up test's 100 partitions")
	flag.Parse()

	if b.smoke {
		b.reps = 1
	}
	if b.work == "" {
		d, err := os.MkdirTemp("", "strata-bench-")
		check(err)
		defer os.RemoveAll(d)
		b.work = d
	}
	check(os.MkdirAll(b.work, 0o755))
	if b.profile != "" {
		check(os.MkdirAll(b.profile, 0o755))
	}
	b.Machine = describeMachine(b.work)
	b.printMachine()
	want := strings.Split(sections, ",")
	has := func(s string) bool { return slices.Contains(want, s) }

	if has("probe") {
		d, size := 3*time.Second, int64(1<<30)
		if b.smoke {
			d, size = 300*time.Millisecond, 64<<20
		}
		r, err := probe(b.work, d, size)
		check(err)
		b.Probe = &r
		b.printProbe()
	}
	if has("kafka") || has("nats") {
		b.kafkaSection(has("kafka"), has("nats"))
	}
	if has("e2e") {
		b.e2eSection()
	}
	if has("fsync") {
		b.fsyncSection()
	}
	if has("compression") {
		b.compressionSection()
	}
	if has("startup") {
		gib := *startupGiB
		if b.smoke {
			gib = 0.05
		}
		r, err := runStartup(filepath.Join(b.bin, "strata"), b.work, 100, int64(gib*(1<<30)))
		check(err)
		b.Startup = &r
		b.printStartup()
	}
	if jsonPath != "" {
		data, err := json.MarshalIndent(b, "", "  ")
		check(err)
		check(os.WriteFile(jsonPath, data, 0o644))
	}
}

var (
	strata       = strataTarget("strata")
	strataFsync  = strataTarget("strata-fsync", "log.flush.interval.messages=1")
	kfake        = kfakeTarget("kfake", false)
	kfakeDiscard = kfakeTarget("kfake-discard", true)
	null         = nullTarget("null", false)
	nullStore    = nullTarget("null-store", true)
)

// kafkaSection: produce and consume throughput, latency and broker CPU for
// 100 B and 1 KiB records over 1 and 8 partitions; NATS JetStream joins
// the 1 KiB workloads with the same message count.
func (b *bench) kafkaSection(kafka, nats bool) {
	for _, size := range []int{100, 1024} {
		for _, parts := range []int{1, 8} {
			w := workload{size: size, partitions: parts}
			if !kafka && (size != 1024 || parts != 1) {
				continue
			}
			w.records = b.calibrate(w)
			withNATS := nats && size == 1024 && parts == 1
			targets := []target{strata, kfake, kfakeDiscard, null, nullStore}
			if !kafka {
				targets = []target{strata} // NATS is compared with strata in the same repetitions
			}
			for rep := range b.reps {
				for i := range targets {
					t := targets[(i+rep)%len(targets)]
					b.logf("%s %s rep %d: %d records", t.name, w, rep+1, w.records)
					r, err := b.runOnce(t, w, rep)
					check(err)
					b.Runs = append(b.Runs, r)
				}
				if withNATS {
					b.logf("nats %s rep %d: %d messages", w, rep+1, w.records)
					nr, err := runNATS(b.bin, b.work, w.size, w.records)
					check(err)
					b.NATS = append(b.NATS, natsRun{Workload: w.String(), Rep: rep, natsResult: nr})
				}
			}
			if kafka {
				b.printKafka(w)
				b.profileWorkload(strata, w)
			}
			if withNATS {
				b.printNATS(w)
			}
		}
	}
}

// calibrate sizes a workload's record count so that the fastest of
// strata's produce, strata's consume and the null broker's produce lasts
// b.phase.
func (b *bench) calibrate(w workload) int64 {
	if b.smoke {
		return int64(2<<20) / int64(w.size) // 2 MiB
	}
	probeW := w
	probeW.records = 0
	var best float64
	for _, t := range []target{strata, null} {
		dir, err := os.MkdirTemp(b.work, "calibrate-")
		check(err)
		s, err := t.start(b, dir)
		check(err)
		p, err := b.perf("produce", s.addr, produceArgs(probeW, "bench", 0, "--duration", "2s")...)
		check(err)
		best = max(best, p.RecordsPerSec)
		if t.canConsume {
			c, err := b.perf("consume", s.addr, "--topic", "bench", "--num-records", fmt.Sprint(p.Records))
			check(err)
			best = max(best, c.RecordsPerSec)
		}
		s.stop()
		os.RemoveAll(dir)
	}
	n := int64(best*b.phase.Seconds()*1.1/1000+1) * 1000
	b.logf("calibrated %s: %d records (fastest %.0f records/s)", w, n, best)
	return n
}

// profileWorkload saves strata's profiles for w, from one more run.
func (b *bench) profileWorkload(t target, w workload) {
	if b.profile == "" {
		return
	}
	var ps, cs sample
	for _, r := range b.runs(t.name, w.String()) {
		ps = append(ps, r.Produce.Seconds)
		if r.Consume != nil {
			cs = append(cs, r.Consume.Seconds)
		}
	}
	b.logf("profiling %s %s", t.name, w)
	check(b.profileOnce(t, w, ps.median(), cs.median()))
}

// e2eSection: end-to-end latency at 10k records/s of 1 KiB.
func (b *bench) e2eSection() {
	w := workload{size: 1024, partitions: 1}
	d := 10 * time.Second
	if b.smoke {
		d = time.Second
	}
	targets := []target{strata, kfake}
	b.interleave(targets, func(t target, rep int) {
		b.logf("%s e2e %s rep %d", t.name, w, rep+1)
		r, err := b.runE2E(t, w, 10000, d, rep)
		check(err)
		r.Workload = "e2e " + r.Workload
		b.Runs = append(b.Runs, r)
	})
	b.printE2E(w, targets)
}

// fsyncSection: produce with fsync per append (group commit) against the
// default page-cache mode.
func (b *bench) fsyncSection() {
	for _, parts := range []int{1, 8} {
		w := workload{size: 1024, partitions: parts}
		w.records = b.calibrate(w)
		b.interleave([]target{strata, strataFsync}, func(t target, rep int) {
			b.logf("%s fsync %s rep %d", t.name, w, rep+1)
			r, err := b.runOnce(t, w, rep)
			check(err)
			r.Workload = "fsync " + r.Workload
			b.Runs = append(b.Runs, r)
		})
		b.printFsync(w)
	}
}

// compressionSection: snappy, lz4 and zstd batches of text-like values.
func (b *bench) compressionSection() {
	for _, codec := range []string{"snappy", "lz4", "zstd"} {
		w := workload{size: 1024, partitions: 8, compression: codec, payload: "text"}
		w.records = b.calibrate(w)
		b.interleave([]target{strata, kfake}, func(t target, rep int) {
			b.logf("%s %s rep %d", t.name, w, rep+1)
			r, err := b.runOnce(t, w, rep)
			check(err)
			b.Runs = append(b.Runs, r)
		})
		b.printKafka(w)
		b.profileWorkload(strata, w)
	}
}

// interleave calls fn for every target in every repetition, rotating the
// order of the targets from one repetition to the next (A B, B A, ...).
func (b *bench) interleave(targets []target, fn func(t target, rep int)) {
	for rep := range b.reps {
		for i := range targets {
			fn(targets[(i+rep)%len(targets)], rep)
		}
	}
}

// runs returns the runs of a target in a workload, in repetition order.
func (b *bench) runs(target, workload string) []run {
	var rs []run
	for _, r := range b.Runs {
		if r.Target == target && r.Workload == workload {
			rs = append(rs, r)
		}
	}
	return rs
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// logCmd records a command line for the report (once per shape).
func (b *bench) logCmd(cmd string) {
	if b.verbose {
		fmt.Fprintln(os.Stderr, "+", cmd)
	}
	if len(b.Cmds) < 1000 {
		b.Cmds = append(b.Cmds, cmd)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
