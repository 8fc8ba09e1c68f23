package main

// strata consume: kafka-console-consumer. Reads a topic from its end (by
// default), its beginning, an offset or a timestamp, alone or in a group,
// and prints records as plain values, key/value with metadata, or JSON
// lines.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, consumeCmd) }

// consumeCommitTimeout bounds the final offset commit of a group consumer.
const consumeCommitTimeout = 10 * time.Second

// consumedRecord is one line of --format json.
type consumedRecord struct {
	Topic     string           `json:"topic"`
	Partition int32            `json:"partition"`
	Offset    int64            `json:"offset"`
	Timestamp int64            `json:"timestamp"`
	Key       *string          `json:"key"`
	Value     *string          `json:"value"`
	Headers   []consumedHeader `json:"headers"`
}

type consumedHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// consoleFlags are the consume command's flags.
type consoleFlags struct {
	fromBeginning bool
	offset        int64
	timestamp     int64
	partition     int32
	group         string
	format        string
	max           int
}

func consumeCmd() *cobra.Command {
	var f consoleFlags
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records from a topic",
		Long: `Print records from TOPIC, following it until Ctrl-C or until --max
records. Without a position flag it starts at the end (new records only).

Without --group the command reads every partition (or --partition) on its
own and commits nothing. With --group it joins that consumer group, starts
from the group's committed offsets (or the start/end when it has none) and
commits what it printed.

Formats: plain (the value), kv (partition, offset, key, value, headers),
json (one object per line: topic, partition, offset, timestamp in ms, key,
value, headers; null for a missing key or value).

  strata consume orders --from-beginning --max 10 --format kv`,
		Args: needName("topic", "strata consume orders --from-beginning"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if jsonOutput(cmd) {
				f.format = "json"
			}
			opts, err := f.opts(cmd, args[0])
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cmd.SetContext(ctx)
			// Check the topic first with a plain client: a consumer of a
			// missing topic would otherwise wait silently forever.
			adm, done, err := newAdmin(cmd)
			if err != nil {
				return err
			}
			err = checkPartition(ctx, adm, args[0], f.partition)
			done()
			if err != nil {
				return err
			}
			cl, err := newClient(cmd, opts...)
			if err != nil {
				return err
			}
			n, err := consoleConsume(ctx, cl, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if f.group != "" {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consumeCommitTimeout)
				if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
					err = fmt.Errorf("commit offsets for group %q: %w", f.group, cerr)
				}
				cancel()
			}
			cl.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "Processed a total of %d %s.\n", n, plural(int64(n), "record"))
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record (with --group: when the group has no committed offset)")
	fl.Int64Var(&f.offset, "offset", -1, "start at this offset in every partition (or --partition); out-of-range offsets start at the nearest end")
	fl.Int64Var(&f.timestamp, "timestamp", -1, "start at the first record at or after this time, in ms since the epoch")
	fl.Int32VarP(&f.partition, "partition", "p", -1, "read only this partition")
	fl.StringVarP(&f.group, "group", "g", "", "consume as a member of this consumer group, committing offsets")
	fl.StringVarP(&f.format, "format", "f", "plain", "output: plain (value), kv (partition, offset, key, value) or json (one object per line)")
	fl.IntVarP(&f.max, "max", "n", 0, "stop after this many records (default: follow until Ctrl-C)")
	return cmd
}

// opts validates the flags and maps them to kgo options.
func (f *consoleFlags) opts(cmd *cobra.Command, topic string) ([]kgo.Opt, error) {
	switch f.format {
	case "plain", "kv", "json":
	default:
		return nil, fmt.Errorf("--format %q: want plain, kv or json", f.format)
	}
	if f.max < 0 {
		return nil, fmt.Errorf("--max %d: must be 0 (follow) or more", f.max)
	}
	if f.partition < -1 {
		return nil, fmt.Errorf("--partition %d: must be a partition number (0 or more)", f.partition)
	}
	fl := cmd.Flags()
	positions := 0
	for _, name := range []string{"from-beginning", "offset", "timestamp"} {
		if fl.Changed(name) {
			positions++
		}
	}
	if positions > 1 {
		return nil, errors.New("give only one of --from-beginning, --offset and --timestamp")
	}
	if fl.Changed("offset") && f.offset < 0 {
		return nil, fmt.Errorf("--offset %d: must be 0 or more (use --from-beginning for the oldest record)", f.offset)
	}
	if fl.Changed("timestamp") && f.timestamp < 0 {
		return nil, fmt.Errorf("--timestamp %d: want milliseconds since the epoch, e.g. %d", f.timestamp, time.Now().UnixMilli())
	}
	start := kgo.NewOffset().AtEnd()
	switch {
	case f.fromBeginning:
		start = kgo.NewOffset().AtStart()
	case fl.Changed("offset"):
		start = kgo.NewOffset().At(f.offset)
	case fl.Changed("timestamp"):
		start = kgo.NewOffset().AfterMilli(f.timestamp)
	}
	opts := []kgo.Opt{kgo.ClientID("strata-consume"), kgo.ConsumeStartOffset(start)}
	if f.group != "" {
		if fl.Changed("offset") || fl.Changed("timestamp") || f.partition >= 0 {
			return nil, errors.New("--offset, --timestamp and --partition read without a group: with --group, the group's committed offsets decide where to start (move them with `strata group reset-offsets`)")
		}
		// Kafka's console consumer sets auto.offset.reset the same
		// way: earliest with --from-beginning, else latest.
		return append(opts, kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(start), kgo.AutoCommitMarks()), nil
	}
	if f.partition >= 0 {
		return append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {f.partition: start}})), nil
	}
	return append(opts, kgo.ConsumeTopics(topic)), nil
}

// consoleConsume prints records until ctx is done or f.max records, returning
// how many it printed. Fetch errors are reported on errw once per
// partition and error, and consuming goes on: the client retries them.
func consoleConsume(ctx context.Context, cl *kgo.Client, f consoleFlags, out, errw io.Writer) (int, error) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	enc := json.NewEncoder(w)
	lastErr := map[string]string{}
	n := 0
	for f.max == 0 || n < f.max {
		limit := -1
		if f.max > 0 {
			limit = f.max - n
		}
		fetches := cl.PollRecords(ctx, limit)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			k := t + "/" + strconv.Itoa(int(p))
			if lastErr[k] != err.Error() {
				lastErr[k] = err.Error()
				fmt.Fprintf(errw, "topic %s partition %d: %v\n", t, p, err)
			}
		})
		var werr error
		fetches.EachRecord(func(r *kgo.Record) {
			if werr != nil || (f.max > 0 && n >= f.max) {
				return
			}
			werr = writeRecord(w, enc, f.format, r)
			n++
			if f.group != "" {
				cl.MarkCommitRecords(r)
			}
		})
		if werr == nil {
			werr = w.Flush()
		}
		if werr != nil {
			return n, fmt.Errorf("write output: %w", werr)
		}
	}
	return n, w.Flush()
}

func writeRecord(w *bufio.Writer, enc *json.Encoder, format string, r *kgo.Record) error {
	switch format {
	case "plain":
		w.Write(r.Value)
		return w.WriteByte('\n')
	case "kv":
		key := "null"
		if r.Key != nil {
			key = string(r.Key)
		}
		fmt.Fprintf(w, "Partition:%d\tOffset:%d\tKey:%s\tValue:%s", r.Partition, r.Offset, key, r.Value)
		if len(r.Headers) > 0 {
			hs := make([]string, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = h.Key + "=" + string(h.Value)
			}
			fmt.Fprintf(w, "\tHeaders:%s", strings.Join(hs, ","))
		}
		return w.WriteByte('\n')
	}
	jr := consumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), Key: bytesPtr(r.Key), Value: bytesPtr(r.Value),
		Headers: make([]consumedHeader, len(r.Headers))}
	for i, h := range r.Headers {
		jr.Headers[i] = consumedHeader{h.Key, string(h.Value)}
	}
	return enc.Encode(jr)
}

// bytesPtr is b as a string, or nil for a null key or value.
func bytesPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
