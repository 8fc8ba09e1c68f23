package main

// strata produce: kafka-console-producer. One record per line of stdin,
// sent asynchronously so a file of a million lines goes at batch speed;
// every record's result is checked before exiting.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, produceCmd) }

// produceDeliveryTimeout bounds how long a record may wait for the broker,
// retries included: Kafka's producer default delivery.timeout.ms.
const produceDeliveryTimeout = 2 * time.Minute

// produceMaxErrorLines is how many failed records are reported one by one.
const produceMaxErrorLines = 20

// produceSummary is the --json output of `strata produce`.
type produceSummary struct {
	Topic    string `json:"topic"`
	Produced int64  `json:"produced"`
	Failed   int64  `json:"failed"`
}

func produceCmd() *cobra.Command {
	var (
		keySep      string
		headers     []string
		partition   int32
		compression string
		acks        string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write one record per line of stdin to a topic",
		Long: `Write one record per line of standard input to TOPIC, until end of input
(Ctrl-D) or Ctrl-C. Lines are values; with --key-separator each line is
split at the first separator into key and value.

  printf 'k1:hello\nk2:world\n' | strata produce orders --key-separator :

Every record is acknowledged before the command exits; if any failed, they
are reported on stderr and the exit code is 1.`,
		Args: needName("topic", "strata produce orders < records.txt"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			opts, err := produceOpts(compression, acks, partition)
			if err != nil {
				return err
			}
			hkvs, err := parseKVs("header", headers)
			if err != nil {
				return err
			}
			var hdrs []kgo.RecordHeader
			for _, kv := range hkvs {
				hdrs = append(hdrs, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cmd.SetContext(ctx)
			cl, err := newClient(cmd, opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := checkPartition(ctx, kadm.NewClient(cl), topic, partition); err != nil {
				return err
			}
			p := &lineProducer{cl: cl, topic: topic, keySep: []byte(keySep), headers: hdrs,
				partition: partition, errw: cmd.ErrOrStderr()}
			readErr := p.run(ctx, cmd.InOrStdin())
			sum := produceSummary{Topic: topic, Produced: p.ok, Failed: p.failed}
			if jsonOutput(cmd) {
				if err := printJSON(cmd.OutOrStdout(), sum); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "Produced %d %s to %s.\n", sum.Produced, plural(sum.Produced, "record"), topic)
			}
			switch {
			case readErr != nil:
				return fmt.Errorf("read stdin: %w", readErr)
			case p.failed > 0:
				return fmt.Errorf("%d of %d records were not produced to %s (see above)", p.failed, p.failed+p.ok, topic)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&keySep, "key-separator", "k", "", "split each line into key and value at the first occurrence of this string")
	f.StringArrayVarP(&headers, "header", "H", nil, "add a header key=value to every record (repeatable)")
	f.Int32VarP(&partition, "partition", "p", -1, "write every record to this partition (default: by key hash, or sticky when keyless)")
	f.StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.StringVar(&acks, "acks", "all", "acknowledgements to wait for: all (idempotent), 1 (leader only) or 0 (none)")
	return cmd
}

// produceOpts maps the flags to kgo options.
func produceOpts(compression, acks string, partition int32) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.ClientID("strata-produce"), kgo.RecordDeliveryTimeout(produceDeliveryTimeout)}
	switch strings.ToLower(compression) {
	case "none", "":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		return nil, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		// Idempotent writes need acks=all, as in Kafka's producer.
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: want all, 1 or 0", acks)
	}
	if partition < -1 {
		return nil, fmt.Errorf("--partition %d: must be a partition number (0 or more)", partition)
	}
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts, nil
}

// checkPartition fails clearly when the topic does not exist or lacks the
// partition, instead of letting the client retry and time out.
func checkPartition(ctx context.Context, adm *kadm.Client, topic string, partition int32) error {
	meta, err := adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %q: %w", topic, err)
	}
	t, ok := meta[topic]
	if !ok {
		return topicErr(topic, errors.New("missing from metadata"), "")
	}
	if t.Err != nil {
		return topicErr(topic, t.Err, "")
	}
	if partition >= int32(len(t.Partitions)) {
		return fmt.Errorf("--partition %d: topic %q has partitions 0 to %d", partition, topic, len(t.Partitions)-1)
	}
	return nil
}

// lineProducer sends lines as records and counts the results.
type lineProducer struct {
	cl        *kgo.Client
	topic     string
	keySep    []byte
	headers   []kgo.RecordHeader
	partition int32
	errw      io.Writer

	mu       sync.Mutex // guards the counts and errw from the produce callbacks
	ok       int64
	failed   int64
	reported int
}

// run produces every line of r until its end or ctx is done, then waits
// for every record's result. It returns the error reading r, if any.
func (p *lineProducer) run(ctx context.Context, r io.Reader) error {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	// The reader may block in Read after ctx is done (a terminal); it
	// is abandoned then, as the process is about to exit.
	go func() {
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				line = bytes.TrimSuffix(line, []byte("\n"))
				line = bytes.TrimSuffix(line, []byte("\r"))
				select {
				case lines <- line:
				case <-ctx.Done():
					readErr <- nil
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				readErr <- err
				close(lines)
				return
			}
		}
	}()
	var rerr error
	n := 0
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				rerr = <-readErr
				break loop
			}
			n++
			p.produce(ctx, n, line)
		case <-ctx.Done():
			break loop
		}
	}
	// Wait for what was sent even after Ctrl-C, so that every record
	// read is either acknowledged or reported.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), produceDeliveryTimeout)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		p.mu.Lock()
		fmt.Fprintf(p.errw, "waiting for acknowledgements: %v\n", err)
		p.mu.Unlock()
	}
	return rerr
}

func (p *lineProducer) produce(ctx context.Context, lineNo int, line []byte) {
	rec := &kgo.Record{Topic: p.topic, Value: line, Headers: p.headers}
	if p.partition >= 0 {
		rec.Partition = p.partition
	}
	if len(p.keySep) > 0 {
		k, v, ok := bytes.Cut(line, p.keySep)
		if !ok {
			p.fail(lineNo, fmt.Errorf("no key separator %q in the line", p.keySep))
			return
		}
		rec.Key, rec.Value = k, v
	}
	// The records outlive ctx: a Ctrl-C stops reading, not delivery.
	p.cl.Produce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			p.fail(lineNo, err)
			return
		}
		p.mu.Lock()
		p.ok++
		p.mu.Unlock()
	})
}

func (p *lineProducer) fail(lineNo int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed++
	p.reported++
	switch {
	case p.reported <= produceMaxErrorLines:
		fmt.Fprintf(p.errw, "line %d: %v\n", lineNo, err)
	case p.reported == produceMaxErrorLines+1:
		fmt.Fprintln(p.errw, "(further failures are counted, not listed)")
	}
}
