package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func perfConsumeCmd() *cobra.Command {
	var f perfConsumeFlags
	cmd := &cobra.Command{
		Use:   "consume --topic T [--num-records N | --duration D] [--group G]",
		Short: "Consume a topic as fast as possible; report records/s, MB/s, count and checksum",
		Long: `Consume a topic and report throughput, like kafka-consumer-perf-test, and
what was read, so that a benchmark can prove every record came back:

  strata perf produce --topic perf --num-records 1000000 --json   # "records", "checksum"
  strata perf consume --topic perf --json                         # the same two values

Without --num-records or --duration it reads every partition up to the end
offsets it finds at start (records appended later are not counted), then
stops. With --num-records it stops after that many records, with
--duration that long after fetching started; whichever comes first.

Without --group it fetches the partitions directly, from the log start
(--from-beginning, default) or the end. With --group it joins that consumer
group and starts from the group's committed offsets, or where
--from-beginning says for partitions without one; the end offsets to read up
to assume it is the group's only member.

Measured: records and bytes read (bytes = key+value bytes), time from when
fetching started (after the group join, if any; the time before is reported
as startup) to the last record, records/s and MB/s over that time (MB =
10^6 bytes), and the checksum of the values read (see strata perf --help).
The run fails if no record arrives for --timeout before it is done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPerfConsume(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.topic, "topic", "", "topic to consume (required)")
	fs.Int64Var(&f.numRecords, "num-records", 0, "stop after this many records (0: no limit)")
	fs.DurationVar(&f.duration, "duration", 0, "stop this long after fetching started (0: no limit)")
	fs.StringVar(&f.group, "group", "", "consume as a member of this consumer group (default: fetch partitions directly)")
	fs.BoolVar(&f.fromBeginning, "from-beginning", true, "start at the log start (false: at the end) where no committed offset says otherwise")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "fail if no record arrives for this long before the run is done")
	fs.Int32Var(&f.fetchMaxBytes, "fetch-max-bytes", 50<<20, "maximum bytes of a fetch response (kgo.FetchMaxBytes)")
	fs.Int32Var(&f.fetchMaxPartitionBytes, "fetch-max-partition-bytes", 1<<20, "maximum bytes per partition in a fetch response (kgo.FetchMaxPartitionBytes)")
	fs.DurationVar(&f.reportInterval, "report-interval", time.Second, "progress line on stderr this often (0: none)")
	return cmd
}

type perfConsumeFlags struct {
	topic                  string
	numRecords             int64
	duration               time.Duration
	group                  string
	fromBeginning          bool
	timeout                time.Duration
	fetchMaxBytes          int32
	fetchMaxPartitionBytes int32
	reportInterval         time.Duration
}

// perfConsumeReport is perf consume's --json output; field names are stable.
type perfConsumeReport struct {
	Mode           string            `json:"mode"` // "consume"
	Topic          string            `json:"topic"`
	Records        int64             `json:"records"`
	Bytes          int64             `json:"bytes"`   // key+value bytes read
	Seconds        float64           `json:"seconds"` // fetching started to last record
	RecordsPerSec  float64           `json:"records_per_sec"`
	MBPerSec       float64           `json:"mb_per_sec"` // 10^6 bytes
	Errors         int64             `json:"errors"`     // fetch errors reported by the client
	Checksum       string            `json:"checksum"`
	StartupSeconds float64           `json:"startup_seconds"` // command start to fetching started
	Interrupted    bool              `json:"interrupted,omitempty"`
	TimedOut       bool              `json:"timed_out,omitempty"`
	Config         perfConsumeConfig `json:"config"`
}

type perfConsumeConfig struct {
	Partitions             int32  `json:"partitions"`
	Group                  string `json:"group,omitempty"`
	FromBeginning          bool   `json:"from_beginning"`
	Until                  string `json:"until"` // "end", "num-records", "duration" or both joined by "|"
	FetchMaxBytes          int32  `json:"fetch_max_bytes"`
	FetchMaxPartitionBytes int32  `json:"fetch_max_partition_bytes"`
}

func runPerfConsume(cmd *cobra.Command, f *perfConsumeFlags) error {
	if f.topic == "" {
		return errors.New("--topic is required")
	}
	if f.numRecords < 0 || f.duration < 0 {
		return errors.New("--num-records and --duration must not be negative")
	}
	if f.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	untilEnd := f.numRecords == 0 && f.duration == 0
	if untilEnd && !f.fromBeginning && f.group == "" {
		return errors.New("--from-beginning=false starts at the end, where there is nothing to read yet: give --num-records or --duration")
	}
	ctx, stop := perfContext(cmd)
	defer stop()
	started := time.Now()

	parts, err := perfTopic(ctx, cmd, f.topic, -1, false)
	if err != nil {
		return err
	}
	adm, closeAdm, err := newAdmin(cmd)
	if err != nil {
		return err
	}
	defer closeAdm()
	starts, ends, err := perfConsumeRange(ctx, adm, f)
	if err != nil {
		return err
	}
	// pending: partitions to read to their end offset, when reading to the end.
	pending := map[int32]int64{}
	for p, end := range ends {
		if starts[p] < end {
			pending[p] = end
		}
	}

	c := &perfConsumer{f: f, untilEnd: untilEnd, pending: pending}
	if !untilEnd || len(pending) > 0 {
		if err := c.run(ctx, cmd, starts); err != nil {
			return err
		}
	}

	rep := perfConsumeReport{
		Mode:        "consume",
		Topic:       f.topic,
		Records:     c.records.Load(),
		Bytes:       c.bytes.Load(),
		Errors:      c.errors,
		Checksum:    perfHex(c.checksum),
		Interrupted: c.interrupted,
		TimedOut:    c.timedOut,
		Config: perfConsumeConfig{
			Partitions:             parts,
			Group:                  f.group,
			FromBeginning:          f.fromBeginning,
			Until:                  f.until(),
			FetchMaxBytes:          f.fetchMaxBytes,
			FetchMaxPartitionBytes: f.fetchMaxPartitionBytes,
		},
	}
	var secs float64
	if fs := c.fetchStart(); !fs.IsZero() {
		rep.StartupSeconds = perfRound(fs.Sub(started).Seconds(), 6)
		if !c.last.IsZero() {
			secs = c.last.Sub(fs).Seconds()
		}
	}
	rep.Seconds = perfRound(secs, 6)
	rep.RecordsPerSec = perfRound(perfRate(rep.Records, secs), 1)
	rep.MBPerSec = perfRound(perfRate(rep.Bytes, secs)/1e6, 3)

	if jsonOutput(cmd) {
		err = printJSON(cmd.OutOrStdout(), rep)
	} else {
		how := "directly"
		if f.group != "" {
			how = "group " + f.group
		}
		err = perfKeyValues(cmd.OutOrStdout(), [][2]string{
			{"topic", fmt.Sprintf("%s (%d partitions, %s, until %s)", f.topic, parts, how, rep.Config.Until)},
			{"records", fmt.Sprint(rep.Records)},
			{"bytes", fmt.Sprintf("%d (key+value)", rep.Bytes)},
			{"seconds", fmt.Sprintf("%.3f (fetching started to last record; %.3f s startup before)", rep.Seconds, rep.StartupSeconds)},
			{"throughput", perfRateRow(rep.Records, rep.Bytes, secs) + " (MB = 10^6 bytes)"},
			{"errors", fmt.Sprint(rep.Errors)},
			{"checksum", rep.Checksum},
		})
	}
	if err != nil {
		return err
	}
	switch {
	case c.errors > 0:
		return fmt.Errorf("%d fetch errors; first: %w", c.errors, c.firstErr)
	case c.timedOut:
		return fmt.Errorf("no record for %s: read %d records, %s", f.timeout, rep.Records, c.missing())
	}
	return nil
}

func (f *perfConsumeFlags) until() string {
	var u []string
	if f.numRecords > 0 {
		u = append(u, "num-records")
	}
	if f.duration > 0 {
		u = append(u, "duration")
	}
	if len(u) == 0 {
		return "end"
	}
	return strings.Join(u, "|")
}

// perfConsumeRange returns each partition's first offset to read and its end
// offset now. Without a group the start is the log start or end; with one,
// the committed offset where there is one, as the consumer will resume there.
func perfConsumeRange(ctx context.Context, adm *kadm.Client, f *perfConsumeFlags) (starts, ends map[int32]int64, err error) {
	le, err := adm.ListEndOffsets(ctx, f.topic)
	if err == nil {
		err = le.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", f.topic, err)
	}
	ls, err := adm.ListStartOffsets(ctx, f.topic)
	if err == nil {
		err = ls.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of %s: %w", f.topic, err)
	}
	var committed kadm.OffsetResponses
	if f.group != "" {
		if committed, err = adm.FetchOffsets(ctx, f.group); err != nil {
			return nil, nil, fmt.Errorf("fetch committed offsets of group %s: %w", f.group, err)
		}
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	le.Each(func(o kadm.ListedOffset) {
		ends[o.Partition] = o.Offset
		start := o.Offset
		if f.fromBeginning {
			if s, ok := ls.Lookup(f.topic, o.Partition); ok {
				start = s.Offset
			}
		}
		if c, ok := committed.Lookup(f.topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			start = c.At
		}
		starts[o.Partition] = start
	})
	return starts, ends, nil
}

// perfConsumer reads and measures; run's goroutine owns everything but the
// atomics (read by progress lines) and mu (written by the group
// assignment callback).
type perfConsumer struct {
	f        *perfConsumeFlags
	untilEnd bool
	pending  map[int32]int64 // partition -> end offset, until read

	records, bytes atomic.Int64
	checksum       uint64
	last           time.Time // last record
	errors         int64
	firstErr       error
	interrupted    bool
	timedOut       bool

	prev struct{ records, bytes int64 } // owned by the progress goroutine

	mu struct {
		sync.Mutex
		fetchStart time.Time
	}
}

func (c *perfConsumer) fetchStart() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.fetchStart
}

func (c *perfConsumer) setFetchStart(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.fetchStart.IsZero() {
		c.mu.fetchStart = t
	}
}

func (c *perfConsumer) run(ctx context.Context, cmd *cobra.Command, starts map[int32]int64) error {
	f := c.f
	opts := []kgo.Opt{
		kgo.FetchMaxBytes(f.fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(f.fetchMaxPartitionBytes),
	}
	if f.group == "" {
		offsets := map[int32]kgo.Offset{}
		for p, o := range starts {
			offsets[p] = kgo.NewOffset().At(o)
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: offsets}))
	} else {
		reset := kgo.NewOffset().AtEnd()
		if f.fromBeginning {
			reset = kgo.NewOffset().AtStart()
		}
		opts = append(opts,
			kgo.ConsumerGroup(f.group),
			kgo.ConsumeTopics(f.topic),
			kgo.ConsumeResetOffset(reset),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
				c.setFetchStart(time.Now())
			}),
		)
	}
	if f.group == "" {
		// A direct consumer starts fetching as the client starts.
		c.setFetchStart(time.Now())
	}
	cl, err := newClient(cmd, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	stopProgress := perfProgress(cmd.ErrOrStderr(), f.reportInterval, c.progressLine)
	defer stopProgress()

	lastProgress := time.Now() // last record, or the start
	for {
		wait := f.timeout - time.Since(lastProgress)
		if fs := c.fetchStart(); f.duration > 0 && !fs.IsZero() {
			wait = min(wait, f.duration-time.Since(fs))
		}
		var fetches kgo.Fetches
		if wait > 0 {
			pctx, cancel := context.WithTimeout(ctx, wait)
			fetches = cl.PollFetches(pctx)
			cancel()
		}
		now := time.Now()
		fetches.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if c.errors++; c.firstErr == nil {
				c.firstErr = err
			}
		})
		if c.take(fetches, now) {
			return nil
		}
		if ctx.Err() != nil {
			c.interrupted = true
			return nil
		}
		if fetches.NumRecords() > 0 {
			lastProgress = now
		}
		if fs := c.fetchStart(); f.duration > 0 && !fs.IsZero() && now.Sub(fs) >= f.duration {
			return nil
		}
		if now.Sub(lastProgress) >= f.timeout {
			c.timedOut = true
			return nil
		}
	}
}

// take counts the records of one poll; true when the run is done.
func (c *perfConsumer) take(fetches kgo.Fetches, now time.Time) bool {
	var n, b int64
	done := false
	for it := fetches.RecordIter(); !it.Done(); {
		r := it.Next()
		if c.untilEnd {
			end, ok := c.pending[r.Partition]
			if !ok {
				continue // read to its end already, or empty at start
			}
			if r.Offset >= end {
				continue // appended after the run started
			}
			if r.Offset >= end-1 {
				delete(c.pending, r.Partition)
			}
		}
		n++
		b += int64(len(r.Key) + len(r.Value))
		c.checksum += xxhash.Sum64(r.Value)
		if c.f.numRecords > 0 && c.records.Load()+n >= c.f.numRecords {
			done = true
			break
		}
	}
	if n > 0 {
		c.last = now
		if c.fetchStart().IsZero() {
			c.setFetchStart(now) // no assignment callback seen; be conservative
		}
		c.bytes.Add(b)
		c.records.Add(n)
	}
	return done || (c.untilEnd && len(c.pending) == 0)
}

func (c *perfConsumer) progressLine(elapsed time.Duration) string {
	records, bytes := c.records.Load(), c.bytes.Load()
	d, db := records-c.prev.records, bytes-c.prev.bytes
	c.prev.records, c.prev.bytes = records, bytes
	return fmt.Sprintf("consume: %d records read, %s", records, perfRateRow(d, db, elapsed.Seconds()))
}

// missing says what a timed-out run did not get.
func (c *perfConsumer) missing() string {
	if c.f.numRecords > 0 {
		return fmt.Sprintf("%d short of --num-records %d", c.f.numRecords-c.records.Load(), c.f.numRecords)
	}
	if len(c.pending) > 0 {
		ps := make([]int, 0, len(c.pending))
		for p := range c.pending {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		return fmt.Sprintf("partitions %v not read to their end offsets", ps)
	}
	return "waiting for more"
}
