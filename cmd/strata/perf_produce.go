package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func perfProduceCmd() *cobra.Command {
	var f perfProduceFlags
	cmd := &cobra.Command{
		Use:   "produce --topic T (--num-records N | --duration D)",
		Short: "Produce records as fast as allowed; report records/s, MB/s and ack latency",
		Long: `Produce fixed-size records to a topic and report throughput and produce
latency, like kafka-producer-perf-test:

  strata perf produce --topic perf --num-records 1000000 --record-size 1024 --partitions 8 --acks all

The run stops after --num-records or --duration, whichever comes first, or
at Ctrl-C; records still in flight are then awaited. The topic is created
with --partitions (default: the broker's num.partitions) if it is missing.

Records have no key; the value is --record-size bytes. With --payload random
(default) values are incompressible and unique: random bytes that do not
repeat within a batch, the record's sequence number in the first 8 bytes.
With --payload text they are random capital letters, as Kafka's
kafka-producer-perf-test makes them (they compress to about 60%, like
text). With --payload zeros they are all zero bytes (compress very well).

Measured: records and bytes acknowledged (bytes = key+value bytes, no
headers or batch overhead), time from the first send to the last
acknowledgement, records/s and MB/s over that time (MB = 10^6 bytes),
latency from handing a record to the client to its acknowledgement
(client buffering, lingering and the broker round trip) as p50, p95, p99,
p99.9, max and mean, failed records, and the checksum of the acknowledged
values (see strata perf --help). The client settings not given as flags are
franz-go's defaults (idempotent producer with acks=all, up to 5 requests in
flight per broker, uniform-bytes partitioner).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPerfProduce(cmd, &f) },
	}
	f.register(cmd, false)
	return cmd
}

// perfProduceFlags are the workload flags of perf produce, shared with perf e2e.
type perfProduceFlags struct {
	topic           string
	numRecords      int64
	duration        time.Duration
	recordSize      int
	throughput      float64
	acks            string
	idempotent      bool
	linger          time.Duration
	batchSize       int32
	compression     string
	partitions      int32
	payload         string
	reportInterval  time.Duration
	deliveryTimeout time.Duration
}

func (f *perfProduceFlags) register(cmd *cobra.Command, e2e bool) {
	fs := cmd.Flags()
	throughput, linger := -1.0, 10*time.Millisecond
	if e2e {
		// Latency is measured at a fixed load and without lingering, as
		// Kafka's EndToEndLatency tool sets linger.ms=0.
		throughput, linger = 10000, 0
	}
	fs.StringVar(&f.topic, "topic", "", "topic to produce to (required; created if missing)")
	fs.Int64Var(&f.numRecords, "num-records", 0, "records to send (0: no limit, give --duration)")
	fs.DurationVar(&f.duration, "duration", 0, "stop sending this long after the first send (0: no limit, give --num-records)")
	fs.IntVar(&f.recordSize, "record-size", 100, "record value size in bytes (records have no key)")
	fs.Float64Var(&f.throughput, "throughput", throughput, "records/s to send at most (-1: unlimited)")
	fs.StringVar(&f.acks, "acks", "all", "acknowledgements: all, 1 or 0 (1 and 0 turn idempotence off)")
	fs.BoolVar(&f.idempotent, "idempotent", true, "idempotent producer (acks=all only)")
	fs.DurationVar(&f.linger, "linger", linger, "how long a partition's batch waits for more records")
	fs.Int32Var(&f.batchSize, "batch-size", 1000012, "maximum bytes of a record batch (kgo.ProducerBatchMaxBytes)")
	fs.StringVar(&f.compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.Int32Var(&f.partitions, "partitions", -1, "partitions of the topic if it has to be created (-1: broker default)")
	fs.StringVar(&f.payload, "payload", "random", "record values: random (incompressible, unique), text (random capital letters) or zeros")
	fs.DurationVar(&f.reportInterval, "report-interval", time.Second, "progress line on stderr this often (0: none)")
	fs.DurationVar(&f.deliveryTimeout, "delivery-timeout", 2*time.Minute, "fail a record not acknowledged within this time (Kafka's delivery.timeout.ms)")
}

func (f *perfProduceFlags) validate(e2e bool) error {
	if f.topic == "" {
		return errors.New("--topic is required")
	}
	if f.numRecords < 0 || f.duration < 0 {
		return errors.New("--num-records and --duration must not be negative")
	}
	if f.numRecords == 0 && f.duration == 0 {
		return errors.New("give --num-records N or --duration D (or both: whichever comes first)")
	}
	if f.recordSize < 0 {
		return errors.New("--record-size must not be negative")
	}
	if e2e && f.recordSize < 8 {
		return errors.New("--record-size must be at least 8: the value starts with the send time")
	}
	if f.batchSize <= 0 {
		return errors.New("--batch-size must be positive")
	}
	if f.payload != "random" && f.payload != "text" && f.payload != "zeros" {
		return fmt.Errorf("--payload %q: want random, text or zeros", f.payload)
	}
	if _, err := perfAcks(f.acks); err != nil {
		return err
	}
	_, err := perfCodec(f.compression)
	return err
}

func perfCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// inFlight is how many records may be sent and not yet acknowledged: kgo's
// default buffer of 50,000 records, fewer for big records so that the
// buffers stay within about 256 MiB.
func (f *perfProduceFlags) inFlight() int {
	n := 50000
	if f.recordSize > 0 {
		n = min(n, max(16, (256<<20)/f.recordSize))
	}
	return n
}

func (f *perfProduceFlags) opts() []kgo.Opt {
	acks, _ := perfAcks(f.acks)
	c, _ := perfCodec(f.compression)
	opts := []kgo.Opt{
		kgo.ProducerLinger(f.linger),
		kgo.ProducerBatchMaxBytes(f.batchSize),
		kgo.ProducerBatchCompression(c),
		kgo.RecordDeliveryTimeout(f.deliveryTimeout),
		// perfProducer.get keeps at most inFlight records in flight;
		// kgo's limit is one above, so that Produce never parks (kgo
		// parks each blocked Produce on a goroutine of its own).
		kgo.MaxBufferedRecords(f.inFlight() + 1),
	}
	switch acks {
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
		if !f.idempotent {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	return opts
}

// perfProduceConfig echoes the workload in --json output, so that a
// benchmark's results file says what was run.
type perfProduceConfig struct {
	Partitions  int32   `json:"partitions"`
	RecordSize  int     `json:"record_size"`
	Throughput  float64 `json:"throughput"`
	Acks        string  `json:"acks"`
	Idempotent  bool    `json:"idempotent"`
	LingerMs    float64 `json:"linger_ms"`
	BatchSize   int32   `json:"batch_size"`
	Compression string  `json:"compression"`
	Payload     string  `json:"payload"`
}

func (f *perfProduceFlags) configJSON(partitions int32) perfProduceConfig {
	acks, _ := perfAcks(f.acks)
	return perfProduceConfig{
		Partitions:  partitions,
		RecordSize:  f.recordSize,
		Throughput:  f.throughput,
		Acks:        strings.ToLower(f.acks),
		Idempotent:  acks == -1 && f.idempotent,
		LingerMs:    perfMs(f.linger),
		BatchSize:   f.batchSize,
		Compression: strings.ToLower(f.compression),
		Payload:     f.payload,
	}
}

// perfProduceReport is perf produce's --json output. Field names are stable:
// scripts (bench/) read them.
type perfProduceReport struct {
	Mode          string            `json:"mode"` // "produce"
	Topic         string            `json:"topic"`
	Records       int64             `json:"records"` // acknowledged
	Bytes         int64             `json:"bytes"`   // key+value bytes acknowledged
	Seconds       float64           `json:"seconds"` // first send to last ack
	RecordsPerSec float64           `json:"records_per_sec"`
	MBPerSec      float64           `json:"mb_per_sec"` // 10^6 bytes
	Latency       perfLatency       `json:"latency_ms"` // send to ack
	Errors        int64             `json:"errors"`     // failed records
	Checksum      string            `json:"checksum"`   // of acknowledged values
	Interrupted   bool              `json:"interrupted,omitempty"`
	Requests      perfRequests      `json:"produce_requests"`
	Config        perfProduceConfig `json:"config"`
}

// perfRequests sums the Produce requests the client sent (kgo's
// HookBrokerE2E): how many, how big, and how long each took from the
// start of its write to the end of reading its response. With at most N
// requests in flight per broker (5 for kgo's idempotent producer),
// throughput is at most N × bytes per request ÷ round trip.
type perfRequests struct {
	Count     int64   `json:"count"`
	MeanBytes float64 `json:"mean_bytes"`
	MeanMs    float64 `json:"mean_round_trip_ms"`
}

// perfRequestHook counts Produce requests for perfRequests.
type perfRequestHook struct{ n, bytes, nanos atomic.Int64 }

func (h *perfRequestHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != 0 || e.WriteErr != nil || e.ReadErr != nil {
		return
	}
	h.n.Add(1)
	h.bytes.Add(int64(e.BytesWritten))
	h.nanos.Add(int64(e.TimeToWrite + e.ReadWait + e.TimeToRead))
}

func (h *perfRequestHook) summary() perfRequests {
	r := perfRequests{Count: h.n.Load()}
	if r.Count > 0 {
		r.MeanBytes = perfRound(float64(h.bytes.Load())/float64(r.Count), 0)
		r.MeanMs = perfRound(float64(h.nanos.Load())/float64(r.Count)/1e6, 3)
	}
	return r
}

func runPerfProduce(cmd *cobra.Command, f *perfProduceFlags) error {
	if err := f.validate(false); err != nil {
		return err
	}
	ctx, stop := perfContext(cmd)
	defer stop()
	parts, err := perfTopic(ctx, cmd, f.topic, f.partitions, true)
	if err != nil {
		return err
	}
	reqs := &perfRequestHook{}
	cl, err := newClient(cmd, append(f.opts(), kgo.WithHooks(reqs))...)
	if err != nil {
		return err
	}
	defer cl.Close()

	p := newPerfProducer(cl, f, false)
	stopProgress := perfProgress(cmd.ErrOrStderr(), f.reportInterval, p.progressLine)
	p.run(ctx)
	stopProgress()

	res := p.result()
	rep := perfProduceReport{
		Mode:          "produce",
		Topic:         f.topic,
		Records:       res.records,
		Bytes:         res.bytes,
		Seconds:       perfRound(res.seconds, 6),
		RecordsPerSec: perfRound(perfRate(res.records, res.seconds), 1),
		MBPerSec:      perfRound(perfRate(res.bytes, res.seconds)/1e6, 3),
		Latency:       res.latency,
		Errors:        res.errors,
		Checksum:      perfHex(res.checksum),
		Interrupted:   res.interrupted,
		Requests:      reqs.summary(),
		Config:        f.configJSON(parts),
	}
	if jsonOutput(cmd) {
		err = printJSON(cmd.OutOrStdout(), rep)
	} else {
		err = perfKeyValues(cmd.OutOrStdout(), [][2]string{
			{"topic", fmt.Sprintf("%s (%d partitions, acks=%s, compression=%s, linger=%s, batch-size=%d, payload=%s)",
				f.topic, parts, rep.Config.Acks, rep.Config.Compression, f.linger, f.batchSize, f.payload)},
			{"records", fmt.Sprintf("%d acknowledged", rep.Records)},
			{"bytes", fmt.Sprintf("%d (key+value)", rep.Bytes)},
			{"seconds", fmt.Sprintf("%.3f (first send to last ack)", rep.Seconds)},
			{"throughput", perfRateRow(rep.Records, rep.Bytes, res.seconds) + " (MB = 10^6 bytes)"},
			{"latency ms", perfLatencyRow(rep.Latency) + " (send to ack)"},
			{"requests", fmt.Sprintf("%d Produce, %.0f bytes and %.3f ms round trip on average", rep.Requests.Count, rep.Requests.MeanBytes, rep.Requests.MeanMs)},
			{"errors", fmt.Sprint(rep.Errors)},
			{"checksum", rep.Checksum},
		})
	}
	if err != nil {
		return err
	}
	return res.err()
}

// perfRec is one record in flight with what the producer needs back in the
// promise. It is its record's Context, so the promise finds it without a
// map or an allocation; the embedded context is Background, so that kgo
// never drops a record once sent (an interrupted run waits for its acks).
type perfRec struct {
	context.Context
	rec  kgo.Record
	buf  []byte
	sent time.Time
}

// perfProducer sends a workload through a kgo client and measures it. run owns
// the sending side; the promise runs on kgo's single promise goroutine and
// keeps its state under mu, which progress lines take once per interval.
// Per record the promise takes mu once, and the sender takes it only when
// its local free list runs dry: no atomics or channel operations per
// record, which at a million records a second would cost more than the
// measuring is worth.
type perfProducer struct {
	cl    *kgo.Client
	f     *perfProduceFlags
	stamp bool      // e2e: values start with the send time
	base  time.Time // stamps are nanoseconds since base (monotonic)

	random []byte // --payload random: values are windows of this
	period int    // ... starting at multiples of the record size modulo period
	zeros  []byte // --payload zeros without stamps: every value

	// Owned by run.
	first     time.Time // first send; set before any promise can run
	local     []*perfRec
	allocated int // records made; at most f.inFlight()
	wake      chan struct{}

	sent        atomic.Int64
	interrupted bool // written by run, read after it

	mu struct {
		sync.Mutex
		free    []*perfRec // acknowledged records, for run to reuse
		waiting bool       // run waits on wake for free records

		acked, ackedBytes, failed int64
		winN, winSum, winMax      int64 // since the last progress line, ns
		hist                      perfHist
		lastAck                   time.Time
		checksum                  uint64
		firstErr                  error
	}
	prev struct{ acked, bytes int64 } // owned by the progress goroutine
}

func newPerfProducer(cl *kgo.Client, f *perfProduceFlags, stamp bool) *perfProducer {
	p := &perfProducer{cl: cl, f: f, stamp: stamp, base: time.Now(), wake: make(chan struct{}, 1)}
	switch {
	case f.payload == "random" || f.payload == "text":
		// The values must not repeat within a batch, or compression
		// codecs would find the repeats.
		p.period = max(4<<20, int(f.batchSize))
		p.random = make([]byte, p.period+f.recordSize)
		rand.Read(p.random)
		if f.payload == "text" {
			for i, b := range p.random {
				p.random[i] = 'A' + b%26
			}
		}
	case !stamp:
		p.zeros = make([]byte, f.recordSize)
	}
	return p
}

// run sends until the workload is done or ctx ends, then waits for every
// record in flight.
func (p *perfProducer) run(ctx context.Context) {
	th := perfThrottle{rate: p.f.throughput}
	var deadline time.Time
	for i := int64(0); p.f.numRecords == 0 || i < p.f.numRecords; i++ {
		if !th.wait(ctx, i) {
			break
		}
		pr := p.get(ctx)
		if pr == nil {
			break
		}
		now := time.Now()
		if i == 0 {
			p.first, th.start = now, now
			if p.f.duration > 0 {
				deadline = now.Add(p.f.duration)
			}
		} else if !deadline.IsZero() && now.After(deadline) {
			break
		}
		p.fill(pr, i, now)
		p.sent.Add(1)
		p.cl.Produce(context.Background(), &pr.rec, p.promise)
	}
	p.interrupted = ctx.Err() != nil
	// Delivery timeouts bound this; records already sent are acknowledged
	// or failed, never dropped.
	p.cl.Flush(context.Background())
}

// get returns a record to send, waiting while f.inFlight() are in flight;
// nil if ctx ended first.
func (p *perfProducer) get(ctx context.Context) *perfRec {
	for {
		if n := len(p.local); n > 0 {
			pr := p.local[n-1]
			p.local = p.local[:n-1]
			return pr
		}
		if p.allocated < p.f.inFlight() {
			p.allocated++
			pr := &perfRec{Context: context.Background()}
			if p.zeros == nil {
				pr.buf = make([]byte, p.f.recordSize)
			}
			return pr
		}
		p.mu.Lock()
		p.local, p.mu.free = p.mu.free, p.local
		p.mu.waiting = len(p.local) == 0
		p.mu.Unlock()
		if len(p.local) > 0 {
			continue
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// fill makes pr record i, sent at now.
func (p *perfProducer) fill(pr *perfRec, i int64, now time.Time) {
	size := p.f.recordSize
	v := p.zeros
	if v == nil {
		v = pr.buf
		if p.random != nil {
			off := int((uint64(i) * uint64(size)) % uint64(p.period))
			copy(v, p.random[off:off+size])
		}
		h := 0
		if p.stamp {
			binary.BigEndian.PutUint64(v, uint64(now.Sub(p.base)))
			h = 8
		}
		if p.random != nil && size >= h+8 {
			binary.BigEndian.PutUint64(v[h:], uint64(i))
		}
	}
	pr.sent = now
	pr.rec = kgo.Record{Topic: p.f.topic, Value: v, Timestamp: now, Context: pr}
}

// promise runs on kgo's promise goroutine, serially, for every record.
func (p *perfProducer) promise(r *kgo.Record, err error) {
	now := time.Now()
	pr := r.Context.(*perfRec)
	var sum uint64
	if err == nil {
		sum = xxhash.Sum64(r.Value)
	}
	lat := now.Sub(pr.sent)
	n := int64(len(r.Key) + len(r.Value))
	pr.rec = kgo.Record{}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.mu.failed++; p.mu.firstErr == nil {
			p.mu.firstErr = err
		}
	} else {
		p.mu.hist.record(lat)
		p.mu.lastAck = now
		p.mu.checksum += sum
		p.mu.acked++
		p.mu.ackedBytes += n
		p.mu.winN++
		p.mu.winSum += int64(lat)
		p.mu.winMax = max(p.mu.winMax, int64(lat))
	}
	p.mu.free = append(p.mu.free, pr)
	if p.mu.waiting {
		p.mu.waiting = false
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// perfProducerStats is a snapshot for progress lines.
type perfProducerStats struct {
	sent, acked, ackedBytes, failed int64
	winN, winSum, winMax            int64
}

// stats snapshots the counters and starts a new progress window.
func (p *perfProducer) stats() perfProducerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := perfProducerStats{
		sent: p.sent.Load(), acked: p.mu.acked, ackedBytes: p.mu.ackedBytes, failed: p.mu.failed,
		winN: p.mu.winN, winSum: p.mu.winSum, winMax: p.mu.winMax,
	}
	p.mu.winN, p.mu.winSum, p.mu.winMax = 0, 0, 0
	return s
}

// progressLine is the periodic stderr line: like kafka-producer-perf-test's,
// over the last interval.
func (p *perfProducer) progressLine(elapsed time.Duration) string {
	s := p.stats()
	d, db := s.acked-p.prev.acked, s.ackedBytes-p.prev.bytes
	p.prev.acked, p.prev.bytes = s.acked, s.ackedBytes
	avg := time.Duration(0)
	if s.winN > 0 {
		avg = time.Duration(s.winSum / s.winN)
	}
	return fmt.Sprintf("produce: %d records acked, %s, latency avg %.2f ms max %.2f ms, %d errors",
		s.acked, perfRateRow(d, db, elapsed.Seconds()), perfMs(avg), perfMs(time.Duration(s.winMax)), s.failed)
}

type perfProduceResult struct {
	records, bytes, errors int64
	seconds                float64
	latency                perfLatency
	checksum               uint64
	interrupted            bool
	firstErr               error
	sent                   int64
}

// result is the final measurement; call after run returned.
func (p *perfProducer) result() perfProduceResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := perfProduceResult{
		records:     p.mu.acked,
		bytes:       p.mu.ackedBytes,
		errors:      p.mu.failed,
		latency:     p.mu.hist.summary(),
		checksum:    p.mu.checksum,
		interrupted: p.interrupted,
		firstErr:    p.mu.firstErr,
		sent:        p.sent.Load(),
	}
	if !p.mu.lastAck.IsZero() {
		r.seconds = p.mu.lastAck.Sub(p.first).Seconds()
	}
	return r
}

func (r perfProduceResult) err() error {
	if r.errors == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d records failed; first error: %w", r.errors, r.sent, r.firstErr)
}
