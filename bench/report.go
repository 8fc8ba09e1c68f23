package main

import (
	"fmt"
	"strings"
)

// metric extracts one number from a run; ok=false skips the run.
type metric func(r run) (float64, bool)

func (b *bench) sample(target, workload string, m metric) sample {
	var s sample
	for _, r := range b.runs(target, workload) {
		if v, ok := m(r); ok {
			s = append(s, v)
		}
	}
	return s
}

var (
	produceMBps = func(r run) (float64, bool) { return r.Produce.MBPerSec, true }
	produceRecs = func(r run) (float64, bool) { return r.Produce.RecordsPerSec, true }
	produceP50  = func(r run) (float64, bool) { return r.Produce.Latency.P50, true }
	produceP99  = func(r run) (float64, bool) { return r.Produce.Latency.P99, true }
	consumeMBps = func(r run) (float64, bool) {
		if r.Consume == nil {
			return 0, false
		}
		return r.Consume.MBPerSec, true
	}
	// CPU seconds of the broker process per GB (10^9 bytes of record
	// values) moved.
	produceCPUPerGB = func(r run) (float64, bool) {
		return r.ProduceCPU / (float64(r.Produce.Bytes) / 1e9), r.Produce.Bytes > 0
	}
	produceClientCPUPerGB = func(r run) (float64, bool) {
		return r.Produce.ClientCPU / (float64(r.Produce.Bytes) / 1e9), r.Produce.Bytes > 0 && r.Produce.ClientCPU > 0
	}
	produceReqKB    = func(r run) (float64, bool) { return r.Produce.Requests.MeanBytes / 1024, r.Produce.Requests.Count > 0 }
	produceReqMs    = func(r run) (float64, bool) { return r.Produce.Requests.MeanMs, r.Produce.Requests.Count > 0 }
	consumeCPUPerGB = func(r run) (float64, bool) {
		if r.Consume == nil || r.Consume.Bytes == 0 {
			return 0, false
		}
		return r.ConsumeCPU / (float64(r.Consume.Bytes) / 1e9), true
	}
	e2eP50 = func(r run) (float64, bool) { return e2eLat(r, func(l latencyMs) float64 { return l.P50 }) }
	e2eP99 = func(r run) (float64, bool) { return e2eLat(r, func(l latencyMs) float64 { return l.P99 }) }
)

func e2eLat(r run, f func(latencyMs) float64) (float64, bool) {
	if r.E2E == nil {
		return 0, false
	}
	return f(r.E2E.Latency), true
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

func (b *bench) printMachine() {
	m := b.Machine
	b.printf("## Machine\n\n| | |\n| --- | --- |\n")
	b.printf("| CPU | %d cores, %s |\n| Memory | %.1f GiB |\n| Disk | %s |\n| Kernel | %s |\n| Go | %s |\n\n",
		m.Cores, m.CPU, m.MemGiB, m.Disk, m.Kernel, m.Go)
}

func (b *bench) printProbe() {
	p := b.Probe
	b.printf("## Machine limits (no broker)\n\n| Probe | Result |\n| --- | ---: |\n")
	b.printf("| Loopback TCP, one stream, 256 KiB writes | %.0f MB/s |\n", p.LoopbackMBps)
	b.printf("| sendfile(2) from page cache to loopback TCP | %.0f MB/s |\n", p.SendfileMBps)
	b.printf("| Sequential 1 MiB write + fdatasync | %.0f MB/s |\n", p.FdatasyncMBps)
	b.printf("| 16 KiB write + fdatasync, one writer | %.0f syncs/s |\n", p.Fdatasync16KOps)
	b.printf("| 1 KiB loopback TCP ping-pong at 10k/s, round trip p50 / p99 / p99.9 | %.3f / %.3f / %.3f ms |\n\n", p.PingP50Ms, p.PingP99Ms, p.PingP999Ms)
}

// printKafka prints a workload's per-target table and strata's ratios.
func (b *bench) printKafka(w workload) {
	ws := w.String()
	b.printf("## %s: %d records of %d bytes, %d partition(s)", ws, w.records, w.size, w.partitions)
	if w.compression != "" {
		b.printf(", %s, payload %s", w.compression, w.payload)
	}
	b.printf("\n\nMedian ±half-spread over %d repetitions; produce acks=all, idempotent (franz-go defaults), linger 10ms.\n\n", b.reps)
	b.printf("| Target | Produce MB/s | Produce rec/s | Latency p50 ms | p99 ms | Consume MB/s | Broker CPU s/GB produce | consume | Client CPU s/GB produce | Request KiB | Round trip ms |\n")
	b.printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, t := range []string{"strata", "kfake", "kfake-discard", "null", "null-store"} {
		if len(b.runs(t, ws)) == 0 {
			continue
		}
		b.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
			fmtMed(b.sample(t, ws, produceMBps), 0), fmtMed(b.sample(t, ws, produceRecs), 0),
			fmtMed(b.sample(t, ws, produceP50), 1), fmtMed(b.sample(t, ws, produceP99), 1),
			fmtMed(b.sample(t, ws, consumeMBps), 0),
			fmtMed(b.sample(t, ws, produceCPUPerGB), 2), fmtMed(b.sample(t, ws, consumeCPUPerGB), 2),
			fmtMed(b.sample(t, ws, produceClientCPUPerGB), 2),
			fmtMed(b.sample(t, ws, produceReqKB), 0), fmtMed(b.sample(t, ws, produceReqMs), 2))
	}
	b.printf("\n| strata ÷ | Produce MB/s | Consume MB/s | CPU/GB produce | CPU/GB consume |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, t := range []string{"kfake", "kfake-discard", "null", "null-store"} {
		if len(b.runs(t, ws)) == 0 {
			continue
		}
		b.printf("| %s | %s | %s | %s | %s |\n", t,
			fmtRatio(b.ratio(ws, "strata", t, produceMBps)), fmtRatio(b.ratio(ws, "strata", t, consumeMBps)),
			fmtRatio(b.ratio(ws, "strata", t, produceCPUPerGB)), fmtRatio(b.ratio(ws, "strata", t, consumeCPUPerGB)))
	}
	b.printf("\n")
}

// ratio is a÷b per repetition for one workload.
func (b *bench) ratio(ws, a, bt string, m metric) sample {
	return ratios(b.sample(a, ws, m), b.sample(bt, ws, m))
}

func (b *bench) printE2E(w workload, targets []target) {
	ws := "e2e " + w.String()
	b.printf("## End-to-end latency, 10,000 records/s of %d bytes, %d partition(s)\n\n", w.size, w.partitions)
	b.printf("| Target | p50 ms | p99 ms |\n| --- | ---: | ---: |\n")
	for _, t := range targets {
		b.printf("| %s | %s | %s |\n", t.name, fmtMed(b.sample(t.name, ws, e2eP50), 2), fmtMed(b.sample(t.name, ws, e2eP99), 2))
	}
	b.printf("\n")
}

func (b *bench) printFsync(w workload) {
	ws := "fsync " + w.String()
	b.printf("## Durability: fsync per append (log.flush.interval.messages=1) vs page cache, %s, %d records\n\n", w, w.records)
	b.printf("| Mode | Produce MB/s | Latency p50 ms | p99 ms | Broker CPU s/GB |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, t := range []string{"strata", "strata-fsync"} {
		b.printf("| %s | %s | %s | %s | %s |\n", t,
			fmtMed(b.sample(t, ws, produceMBps), 0), fmtMed(b.sample(t, ws, produceP50), 1),
			fmtMed(b.sample(t, ws, produceP99), 1), fmtMed(b.sample(t, ws, produceCPUPerGB), 2))
	}
	b.printf("\nfsync ÷ page cache, produce MB/s: %s\n\n", fmtRatio(b.ratio(ws, "strata-fsync", "strata", produceMBps)))
}

func (b *bench) printNATS(w workload) {
	ws := w.String()
	var pub, sub, pubCPU, subCPU sample
	for _, n := range b.NATS {
		if n.Workload == ws {
			pub = append(pub, n.PubMBps)
			sub = append(sub, n.SubMBps)
			pubCPU = append(pubCPU, n.ServerCPUPub/(float64(n.Msgs)*float64(n.Size)/1e9))
			subCPU = append(subCPU, n.ServerCPUSub/(float64(n.Msgs)*float64(n.Size)/1e9))
		}
	}
	if len(pub) == 0 {
		return
	}
	b.printf("## NATS JetStream, %s: %d messages of %d bytes\n\n", ws, w.records, w.size)
	b.printf("| Target | Publish MB/s | Consume MB/s | Server CPU s/GB publish | consume |\n| --- | ---: | ---: | ---: | ---: |\n")
	b.printf("| strata | %s | %s | %s | %s |\n", fmtMed(b.sample("strata", ws, produceMBps), 0), fmtMed(b.sample("strata", ws, consumeMBps), 0),
		fmtMed(b.sample("strata", ws, produceCPUPerGB), 2), fmtMed(b.sample("strata", ws, consumeCPUPerGB), 2))
	b.printf("| nats | %s | %s | %s | %s |\n\n", fmtMed(pub, 0), fmtMed(sub, 0), fmtMed(pubCPU, 2), fmtMed(subCPU, 2))
	b.printf("strata ÷ NATS: publish %s, consume %s\n\n",
		fmtRatio(ratios(b.sample("strata", ws, produceMBps), pub)), fmtRatio(ratios(b.sample("strata", ws, consumeMBps), sub)))
	for _, n := range b.NATS {
		if n.Workload == ws {
			b.printf("NATS commands: `%s`\n\n", strings.Join(n.Cmds, "`, `"))
			break
		}
	}
}

func (b *bench) printStartup() {
	s := b.Startup
	b.printf("## Start-up and memory\n\n| | |\n| --- | ---: |\n")
	b.printf("| Idle RSS, fresh broker | %.1f MiB |\n", s.IdleRSSMiB)
	b.printf("| Data | %d partitions, %.2f GiB |\n", s.Partitions, float64(s.DataBytes)/(1<<30))
	b.printf("| Start-up after clean shutdown (median of %d) | %.3f s |\n", len(s.StartSecondsAll), s.StartSeconds)
	if s.ColdStartSeconds >= 0 {
		b.printf("| Start-up after clean shutdown, page cache dropped | %.3f s |\n", s.ColdStartSeconds)
	}
	b.printf("| RSS after that start, idle | %.1f MiB |\n\n", s.RSSAfterStartMiB)
}
