package main

// strata perf: the counterparts of Kafka's kafka-producer-perf-test,
// kafka-consumer-perf-test and EndToEndLatency tools, on franz-go kgo, for
// any Kafka-compatible broker. The numbers are meant to be compared across
// brokers (a benchmark runs them against strata and kfake alike), so every
// report says what it measured:
//
//   - bytes are key+value bytes of the records (headers, batch and protocol
//     overhead are not counted), and MB is 10^6 bytes, as Kafka's tools;
//   - produce time runs from the first send to the last acknowledgement,
//     consume time from the moment fetching starts (after any group join)
//     to the last record, end-to-end time from the first send to the last
//     record read back;
//   - latency percentiles come from a fixed-size log-linear histogram
//     (perf_hist.go), within 0.8% of the exact sample;
//   - the checksum is the sum modulo 2^64 of XXH64 of every record value,
//     so it does not depend on order or partitioning: produce reports it for
//     the acknowledged records and consume for the records read, and equal
//     counts and checksums prove every record came back.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { commands = append(commands, perfCmd) }

func perfCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "perf",
		Short: "Measure produce and consume throughput and latency (kafka-*-perf-test)",
		Long: `Load generators and meters for any Kafka-compatible broker, in the manner
of Kafka's kafka-producer-perf-test and kafka-consumer-perf-test:

  strata perf produce --topic perf --num-records 1000000 --record-size 1024 --partitions 8
  strata perf consume --topic perf
  strata perf e2e --topic perf-e2e --throughput 10000 --duration 10s

A progress line goes to stderr every second (--report-interval); the final
summary goes to stdout, as a table or, with --json, as one JSON object with
stable field names (records, bytes, seconds, records_per_sec, mb_per_sec,
latency_ms{p50,p95,p99,p999,max,mean}, errors, checksum); produce adds
produce_requests{count,mean_bytes,mean_round_trip_ms}, the Produce requests
the client sent and how long each took to answer.

Bytes are key+value bytes; MB is 10^6 bytes, as Kafka's tools. The checksum
is the sum (mod 2^64) of XXH64 over every record value, independent of order
and partitioning: compare produce's and consume's to prove every record came
back. Ctrl-C stops a run early and still prints what was measured.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(perfProduceCmd(), perfConsumeCmd(), perfE2ECmd())
	return cmd
}

// perfContext is the command's context, also canceled by SIGINT or
// SIGTERM so that an interrupted run still reports what it measured.
func perfContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// perfTopic returns the partition count of topic, creating the topic with
// partitions partitions (-1: the broker's num.partitions) when create is
// set and it does not exist. It uses a client of its own: kgo caches
// metadata it has fetched for admin requests, and a client that has seen
// the topic missing would not find it right after creating it.
func perfTopic(ctx context.Context, cmd *cobra.Command, topic string, partitions int32, create bool) (int32, error) {
	if topic == "" {
		return 0, errors.New("--topic is required")
	}
	adm, closeAdm, err := newAdmin(cmd)
	if err != nil {
		return 0, err
	}
	defer closeAdm()
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	switch {
	case ok && d.Err == nil && len(d.Partitions) > 0:
		n := int32(len(d.Partitions))
		if partitions > 0 && n != partitions {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: topic %s exists with %d partitions; --partitions %d ignored\n", topic, n, partitions)
		}
		return n, nil
	case ok && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return 0, fmt.Errorf("describe topic %s: %w", topic, d.Err)
	case !create:
		return 0, fmt.Errorf("topic %s does not exist; create it with `strata perf produce --topic %s --partitions N ...` or `strata topic create %s`", topic, topic, topic)
	}
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return perfTopic(ctx, cmd, topic, partitions, false) // lost a race; a fresh client sees it
	}
	if err != nil {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	if resp.NumPartitions <= 0 { // CreateTopics before v5 does not say
		return perfTopic(ctx, cmd, topic, partitions, false)
	}
	return resp.NumPartitions, nil
}

// perfThrottle paces a loop at rate iterations per second the way Kafka's
// ThroughputThrottler does: iteration i may start at start + i/rate, so a
// late wake-up is made up by the next iterations instead of lowering the
// rate. Not safe for concurrent use.
type perfThrottle struct {
	rate  float64 // <= 0: unlimited
	start time.Time
	timer *time.Timer
}

// wait blocks until iteration i may start; false if ctx ended first.
func (t *perfThrottle) wait(ctx context.Context, i int64) bool {
	if t.rate <= 0 || i == 0 {
		return ctx.Err() == nil
	}
	d := time.Until(t.start.Add(time.Duration(float64(i) * 1e9 / t.rate)))
	if d <= 0 {
		return ctx.Err() == nil
	}
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d)
	}
	select {
	case <-t.timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// perfProgress prints a line to w every interval until stop is called; line
// gets the time since the previous line. The goroutine is owned by the
// caller of perfProgress, and stop waits for it.
func perfProgress(w io.Writer, interval time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				fmt.Fprintln(w, line(now.Sub(last)))
				last = now
			}
		}
	}()
	return func() { close(quit); <-done }
}

// perfMax raises m to v.
func perfMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// perfRate is n per second over secs, 0 for an empty interval (JSON has no
// infinity).
func perfRate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

// perfRound keeps d decimals.
func perfRound(v float64, d int) float64 {
	p := math.Pow10(d)
	return math.Round(v*p) / p
}

// perfHex formats a checksum; a string in JSON, since JSON numbers lose
// 64-bit integers in most readers (jq included).
func perfHex(v uint64) string { return fmt.Sprintf("%016x", v) }

// perfRateRow is the human form of a rate: "81037.3 records/s, 81.04 MB/s".
func perfRateRow(records, bytes int64, secs float64) string {
	return fmt.Sprintf("%.1f records/s, %.2f MB/s", perfRate(records, secs), perfRate(bytes, secs)/1e6)
}

// perfLatencyRow is the human form of a latency summary.
func perfLatencyRow(l perfLatency) string {
	return fmt.Sprintf("p50 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f", l.P50, l.P95, l.P99, l.P999, l.Max, l.Mean)
}

// perfKeyValues writes aligned "key  value" lines.
func perfKeyValues(w io.Writer, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// perfAcks maps --acks to the produce request's acks value.
func perfAcks(s string) (int16, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return -1, nil
	case "1", "leader":
		return 1, nil
	case "0", "none":
		return 0, nil
	}
	return 0, fmt.Errorf("--acks %q: want all, 1 or 0", s)
}
