package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func perfE2ECmd() *cobra.Command {
	var (
		f       perfProduceFlags
		timeout time.Duration
		warmup  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "e2e --topic T (--num-records N | --duration D)",
		Short: "Measure end-to-end latency: produce at a fixed rate and read back in the same process",
		Long: `Produce at a fixed rate and consume the same records in the same process,
measuring each record's end-to-end latency, like Kafka's EndToEndLatency tool:

  strata perf e2e --topic e2e --throughput 10000 --record-size 1024 --duration 10s

The producer writes the send time (nanoseconds on this process's monotonic
clock) into the first 8 bytes of each value; a consumer fetching every
partition directly, from the end offsets at start, takes now minus that
stamp when a poll hands it the record. The run stops after --num-records or
--duration, then waits up to --timeout for the records still on their way.
With --warmup D, records sent in the first D count in every figure but the
end-to-end latency.

Defaults differ from perf produce where latency needs it: --throughput
10000 records/s and --linger 0 (a linger would be added to every latency).

Reported: records read back, bytes (key+value), time from the first send to
the last record read, records/s and MB/s over that time (MB = 10^6 bytes),
end-to-end latency (latency_ms) and produce latency (produce_latency_ms) as
p50, p95, p99, p99.9, max and mean, errors (failed sends plus acknowledged
records that never came back), and whether the checksum of the values read
equals that of the values acknowledged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPerfE2E(cmd, &f, timeout, warmup) },
	}
	f.register(cmd, true)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "after sending stops, wait this long for the rest to be read back")
	cmd.Flags().DurationVar(&warmup, "warmup", 0, "leave the records sent in this first part of the run out of the end-to-end latency figures (the clients' start-up: connections, producer id, metadata); they are still read back and checked")
	return cmd
}

// perfE2EReport is perf e2e's --json output; field names are stable and
// shared with perf produce where they mean the same.
type perfE2EReport struct {
	Mode           string            `json:"mode"` // "e2e"
	Topic          string            `json:"topic"`
	Records        int64             `json:"records"`  // read back
	Produced       int64             `json:"produced"` // acknowledged
	Bytes          int64             `json:"bytes"`    // key+value bytes read back
	Seconds        float64           `json:"seconds"`  // first send to last record read
	RecordsPerSec  float64           `json:"records_per_sec"`
	MBPerSec       float64           `json:"mb_per_sec"`
	Latency        perfLatency       `json:"latency_ms"`         // send to read back
	ProduceLatency perfLatency       `json:"produce_latency_ms"` // send to ack
	Errors         int64             `json:"errors"`
	Checksum       string            `json:"checksum"`    // of the values read back
	ChecksumOK     bool              `json:"checksum_ok"` // equals the acknowledged values'
	Interrupted    bool              `json:"interrupted,omitempty"`
	Config         perfProduceConfig `json:"config"`
}

// perfE2EConsumer reads the records back. Its goroutine owns hist, checksum and
// last until done is closed; the atomics feed progress lines and the stop
// condition.
type perfE2EConsumer struct {
	cl   *kgo.Client
	base time.Time
	done chan struct{}

	received, bytes      atomic.Int64
	target               atomic.Int64 // stop once received reaches this
	winN, winSum, winMax atomic.Int64

	hist     perfHist
	warmup   time.Duration // records stamped earlier stay out of hist
	checksum uint64
	last     time.Time
	foreign  int64 // values too short to hold a stamp: not ours
}

func (c *perfE2EConsumer) run(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		fetches := c.cl.PollFetches(ctx)
		now := time.Now()
		age := now.Sub(c.base)
		var n, b int64
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < 8 {
				c.foreign++
				return
			}
			sent := time.Duration(binary.BigEndian.Uint64(r.Value))
			lat := age - sent
			if sent >= c.warmup {
				c.hist.record(lat)
			}
			c.winN.Add(1)
			c.winSum.Add(int64(lat))
			perfMax(&c.winMax, int64(lat))
			c.checksum += xxhash.Sum64(r.Value)
			n++
			b += int64(len(r.Key) + len(r.Value))
		})
		if n > 0 {
			c.last = now
			c.bytes.Add(b)
			if c.received.Add(n) >= c.target.Load() {
				return
			}
		}
	}
}

func runPerfE2E(cmd *cobra.Command, f *perfProduceFlags, timeout, warmup time.Duration) error {
	if err := f.validate(true); err != nil {
		return err
	}
	if timeout <= 0 {
		return fmt.Errorf("--timeout must be positive")
	}
	ctx, stop := perfContext(cmd)
	defer stop()
	parts, err := perfTopic(ctx, cmd, f.topic, f.partitions, true)
	if err != nil {
		return err
	}
	pcl, err := newClient(cmd, f.opts()...)
	if err != nil {
		return err
	}
	defer pcl.Close()
	adm := kadm.NewClient(pcl)
	// Start reading exactly where this run's records will go.
	ends, err := adm.ListEndOffsets(ctx, f.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", f.topic, err)
	}
	ccl, err := newClient(cmd, kgo.ConsumePartitions(ends.KOffsets()))
	if err != nil {
		return err
	}
	defer ccl.Close()

	p := newPerfProducer(pcl, f, true)
	c := &perfE2EConsumer{cl: ccl, base: p.base, warmup: warmup, done: make(chan struct{})}
	c.target.Store(math.MaxInt64)
	cctx, cancelConsumer := context.WithCancel(context.Background())
	defer cancelConsumer()
	// Let the consumer's first fetch reach the broker before the first
	// send, so that the first records do not pay for its start-up.
	warm, cancelWarm := context.WithTimeout(ctx, 100*time.Millisecond)
	ccl.PollFetches(warm) // the topic has nothing past ends yet
	cancelWarm()
	go c.run(cctx)

	var prev struct{ received int64 }
	stopProgress := perfProgress(cmd.ErrOrStderr(), f.reportInterval, func(elapsed time.Duration) string {
		n, sum, mx := c.winN.Swap(0), c.winSum.Swap(0), c.winMax.Swap(0)
		received := c.received.Load()
		d := received - prev.received
		prev.received = received
		avg := time.Duration(0)
		if n > 0 {
			avg = time.Duration(sum / n)
		}
		s := p.stats()
		return fmt.Sprintf("e2e: %d sent, %d acked, %d read back, %.1f records/s, e2e latency avg %.2f ms max %.2f ms, %d errors",
			s.sent, s.acked, received, perfRate(d, elapsed.Seconds()), perfMs(avg), perfMs(time.Duration(mx)), s.failed)
	})
	p.run(ctx)

	// Sending is over and every send has its outcome: wait until the
	// acknowledged records are read back, or --timeout.
	pr := p.result()
	acked := pr.records
	c.target.Store(acked)
	if c.received.Load() >= acked {
		cancelConsumer()
	}
	t := time.NewTimer(timeout)
	select {
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	cancelConsumer()
	<-c.done
	stopProgress()

	received := c.received.Load()
	var secs float64
	if !c.last.IsZero() {
		secs = c.last.Sub(p.first).Seconds()
	}
	rep := perfE2EReport{
		Mode:           "e2e",
		Topic:          f.topic,
		Records:        received,
		Produced:       pr.records,
		Bytes:          c.bytes.Load(),
		Seconds:        perfRound(secs, 6),
		RecordsPerSec:  perfRound(perfRate(received, secs), 1),
		MBPerSec:       perfRound(perfRate(c.bytes.Load(), secs)/1e6, 3),
		Latency:        c.hist.summary(),
		ProduceLatency: pr.latency,
		Errors:         pr.errors + max(0, pr.records-received) + c.foreign,
		Checksum:       perfHex(c.checksum),
		ChecksumOK:     c.checksum == pr.checksum && received == pr.records && c.foreign == 0,
		Interrupted:    pr.interrupted || ctx.Err() != nil,
		Config:         f.configJSON(parts),
	}
	if jsonOutput(cmd) {
		err = printJSON(cmd.OutOrStdout(), rep)
	} else {
		err = perfKeyValues(cmd.OutOrStdout(), [][2]string{
			{"topic", fmt.Sprintf("%s (%d partitions, acks=%s, compression=%s, linger=%s, throughput=%g/s, payload=%s)",
				f.topic, parts, rep.Config.Acks, rep.Config.Compression, f.linger, f.throughput, f.payload)},
			{"records", fmt.Sprintf("%d read back of %d acknowledged", rep.Records, rep.Produced)},
			{"bytes", fmt.Sprintf("%d (key+value)", rep.Bytes)},
			{"seconds", fmt.Sprintf("%.3f (first send to last record read)", rep.Seconds)},
			{"throughput", perfRateRow(rep.Records, rep.Bytes, secs) + " (MB = 10^6 bytes)"},
			{"e2e latency ms", perfLatencyRow(rep.Latency) + " (send to read back)"},
			{"produce latency ms", perfLatencyRow(rep.ProduceLatency) + " (send to ack)"},
			{"errors", fmt.Sprint(rep.Errors)},
			{"checksum", fmt.Sprintf("%s (matches acknowledged: %v)", rep.Checksum, rep.ChecksumOK)},
		})
	}
	if err != nil {
		return err
	}
	if err := pr.err(); err != nil {
		return err
	}
	if !rep.ChecksumOK && !rep.Interrupted {
		return fmt.Errorf("read back %d records of %d acknowledged (%d not ours); checksums %s and %s", received, pr.records, c.foreign, rep.Checksum, perfHex(pr.checksum))
	}
	return nil
}
