package main

// The NATS JetStream peer: a fresh nats-server per run, driven by natscli's
// own benchmark (`nats bench js`, natscli v0.5.0), with the settings that
// ask of JetStream what `strata perf` (franz-go defaults) asks of a Kafka
// broker:
//
//   - Server: `nats-server -js -sd DIR -a 127.0.0.1 -p PORT`. File storage;
//     JetStream's default sync policy (sync_interval 2m, no fsync per
//     message), as strata's default leaves writes in the page cache. No
//     monitoring port; info-level logging (no -D/-V) into the log file.
//
//   - Publish: `nats bench js pub fast`, one client, one R1 file stream
//     created by the command (--create --storage file --replicas 1), the
//     default persist mode (not --persistasync). Fast batch publishing is
//     JetStream's counterpart of an idempotent pipelined Kafka producer:
//     every message carries a batch sequence, the server persists in order,
//     acks every --batch messages (it caps this at 500) and abandons the
//     batch on a gap (Kafka: OutOfOrderSequence), and the client keeps at
//     most --max-outstanding-acks acks outstanding. The window
//     batch*outstanding is sized as franz-go's: at most 5 produce requests
//     of ~1 MB (1000012 B) in flight and at most 10,000 buffered records,
//     i.e. min(10000, 5*1000012/size) messages; 5,000 at 1 KiB. The run
//     ends with the ack of the whole batch. `pub async` was the
//     alternative: it acks every message separately and natscli waits for
//     all of a --batch to be acked before sending the next (no sliding
//     window), which is neither what a Kafka producer does nor faster.
//     No --dedup: Kafka's idempotence is per-producer sequence numbers,
//     which fast batches have; Nats-Msg-Id de-duplication keeps every ID
//     in a server-side table and is another, dearer, feature.
//
//   - Consume: `nats bench js ordered`, one ephemeral ordered consumer
//     from the first message, no acks (AckNone), client flow control with
//     --batch messages buffered ≈ 1 MiB, franz-go's per-partition fetch
//     size. That is what a Kafka consumer reading a partition from offset
//     0 does: read in order, acknowledge nothing per message. The durable
//     `consume` and `fetch` benches ack every message by default (a
//     per-message round trip Kafka does not have); with --acks none they
//     are the same protocol plus durable consumer state, and were not
//     faster in our trials.
//
//   - Numbers come from natscli's --csv file (one row per client). Its
//     clock runs, for publish, from the first publish to the last ack and,
//     for consume, from the first message received to the last; process
//     start, connect and stream or consumer creation are outside it (but
//     inside the server CPU figures, which are read just before and after
//     each command; they are small). The publish phase is checked against
//     the stream (exactly msgs messages), and natscli's consumer stops
//     only once it has received msgs messages (we time it out otherwise).
//
//   - --timeout 30s raises natscli's 5 s ack/request wait, so a busy
//     shared machine fails no run; it does not change throughput.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type natsResult struct {
	Msgs                       int64   // messages published (and consumed)
	Size                       int     // message payload bytes
	PubSeconds                 float64 // wall time of the publish phase
	PubMsgsPerSec, PubMBps     float64 // MB = 10^6 bytes of payload
	SubSeconds                 float64
	SubMsgsPerSec, SubMBps     float64
	ServerCPUPub, ServerCPUSub float64 // nats-server CPU seconds in each phase
	Cmds                       []string
}

// franz-go's producer and consumer defaults (kgo/config.go), which the
// NATS settings mirror.
const (
	kgoMaxBatchBytes   = 1000012 // ProducerBatchMaxBytes
	kgoMaxInflight     = 5       // produce requests in flight with idempotence
	kgoMaxBuffered     = 10000   // MaxBufferedRecords
	kgoFetchPartBytes  = 1 << 20 // FetchMaxPartitionBytes
	natsMaxFlow        = 500     // nats-server acks a fast batch at least every 500 messages
	natsStream         = "benchstream"
	natsSubject        = "bench"
	natsStoreOverhead  = 64 // per-message bytes on disk beyond the payload (~35 measured)
	natsRequestTimeout = "30s"
)

// natsPubWindow returns fast batch publishing's --batch (messages per ack)
// and --max-outstanding-acks for messages of size bytes.
func natsPubWindow(size int) (flow, outstanding int) {
	w := max(1, min(kgoMaxBuffered, kgoMaxInflight*kgoMaxBatchBytes/max(size, 1)))
	flow = min(natsMaxFlow, w)
	return flow, (w + flow - 1) / flow
}

// runNATS starts a fresh nats-server with JetStream and file storage in workDir
// on a free 127.0.0.1 port, publishes msgs messages of size bytes with `nats bench js pub`,
// consumes them all back with the natscli consume benchmark, and stops the server.
func runNATS(binDir, workDir string, size int, msgs int64) (natsResult, error) {
	r := natsResult{Msgs: msgs, Size: size}
	if size <= 0 || msgs <= 0 {
		return r, fmt.Errorf("nats: size %d and msgs %d must be positive", size, msgs)
	}
	// The nats commands run in the run's directory, so a relative binDir
	// would no longer name the binaries.
	binDir, err := filepath.Abs(binDir)
	if err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp(workDir, "nats-")
	if err != nil {
		return r, err
	}
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	host, port, _ := net.SplitHostPort(addr)
	p, err := startProc("nats-server", filepath.Join(dir, "nats-server.log"), addr,
		filepath.Join(binDir, "nats-server"), "-js", "-sd", filepath.Join(dir, "store"), "-a", host, "-p", port)
	if err != nil {
		return r, err
	}
	ok := false
	defer func() {
		p.stop()
		if ok { // a failed run keeps its logs and data
			os.RemoveAll(dir)
		}
	}()

	// A generous limit: natscli's consumer waits forever for missing messages.
	timeout := 2*time.Minute + time.Duration(float64(msgs)*float64(size)/5e6*float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// natsCLI runs `nats ARGS` against the server in dir, saving its
	// output in dir/NAME.out (stdout) and dir/NAME.err (stderr), and
	// returns its stdout.
	natsCLI := func(name string, args ...string) ([]byte, error) {
		argv := append([]string{"-s", "nats://" + addr, "--no-context", "--timeout", natsRequestTimeout}, args...)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "nats"), argv...)
		cmd.Dir = dir
		cmd.Env = natsEnv()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if args[0] == "bench" {
			r.Cmds = append(r.Cmds, "nats "+strings.Join(argv, " "))
		}
		err := cmd.Run()
		os.WriteFile(filepath.Join(dir, name+".out"), out.Bytes(), 0o644)
		os.WriteFile(filepath.Join(dir, name+".err"), errb.Bytes(), 0o644)
		what := "nats " + strings.Join(args[:min(4, len(args))], " ")
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: timed out after %s (output in %s)", what, timeout, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %s", what, err, lastLines(errb.String()+out.String(), 5))
		}
		return out.Bytes(), nil
	}
	sizeArg, msgsArg := strconv.Itoa(size), strconv.FormatInt(msgs, 10)
	maxBytes := max(1<<30, msgs*int64(size+natsStoreOverhead)+64<<20)
	flow, outstanding := natsPubWindow(size)
	fetch := max(1, kgoFetchPartBytes/size)

	c0 := p.cpu()
	_, err = natsCLI("pub", "bench", "js", "pub", "fast", natsSubject,
		"--stream", natsStream, "--create", "--storage", "file", "--replicas", "1",
		"--maxbytes", strconv.FormatInt(maxBytes, 10),
		"--batch", strconv.Itoa(flow), "--max-outstanding-acks", strconv.Itoa(outstanding),
		"--clients", "1", "--msgs", msgsArg, "--size", sizeArg, "--no-progress", "--csv", "pub.csv")
	r.ServerCPUPub = p.cpu() - c0
	if err != nil {
		return r, err
	}
	pub, err := readNATSCSV(filepath.Join(dir, "pub.csv"))
	if err != nil {
		return r, err
	}
	if err := checkNATSRow(pub, "publish", size, msgs); err != nil {
		return r, err
	}
	r.PubSeconds = pub.seconds
	r.PubMsgsPerSec, r.PubMBps = float64(msgs)/pub.seconds, pub.bytes/pub.seconds/1e6

	// Nothing lost on the way: fast batches report errors (a full stream,
	// say) only to an error handler natscli does not install.
	js, err := natsCLI("stream-info", "stream", "info", natsStream, "--json")
	if err != nil {
		return r, err
	}
	var info struct {
		State struct {
			Msgs    int64  `json:"messages"`
			LastSeq uint64 `json:"last_seq"`
		} `json:"state"`
	}
	if err := json.Unmarshal(js, &info); err != nil {
		return r, fmt.Errorf("nats stream info: %v", err)
	}
	if info.State.Msgs != msgs || info.State.LastSeq != uint64(msgs) {
		return r, fmt.Errorf("nats publish: stream holds %d messages (last seq %d), want %d",
			info.State.Msgs, info.State.LastSeq, msgs)
	}

	c0 = p.cpu()
	_, err = natsCLI("sub", "bench", "js", "ordered", "--stream", natsStream,
		"--batch", strconv.Itoa(fetch),
		"--clients", "1", "--msgs", msgsArg, "--size", sizeArg, "--no-progress", "--csv", "sub.csv")
	r.ServerCPUSub = p.cpu() - c0
	if err != nil {
		return r, err
	}
	sub, err := readNATSCSV(filepath.Join(dir, "sub.csv"))
	if err != nil {
		return r, err
	}
	if err := checkNATSRow(sub, "consume", size, msgs); err != nil {
		return r, err
	}
	r.SubSeconds = sub.seconds
	r.SubMsgsPerSec, r.SubMBps = float64(msgs)/sub.seconds, sub.bytes/sub.seconds/1e6

	ok = true
	return r, nil
}

// natsRow is one client's line of a `nats bench --csv` file.
type natsRow struct {
	protoMsgs int64   // MsgCount: messages in and out on the client's connection
	bytes     float64 // MsgBytes: payload bytes, size × the job's message count
	seconds   float64 // DurationSecs
}

// readNATSCSV reads the single client row of a `nats bench --csv` file
// (header "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,
// DurationSecs[,latencies...]"), finding columns by name.
func readNATSCSV(path string) (natsRow, error) {
	var row natsRow
	f, err := os.Open(path)
	if err != nil {
		return row, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return row, fmt.Errorf("%s: %v", path, err)
	}
	if len(recs) != 2 {
		return row, fmt.Errorf("%s: %d lines, want a header and one client", path, len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimPrefix(h, "#")] = i
	}
	get := func(name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(recs[1]) {
			return 0, fmt.Errorf("%s: no column %s", path, name)
		}
		return strconv.ParseFloat(recs[1][i], 64)
	}
	var msgs float64
	if msgs, err = get("MsgCount"); err != nil {
		return row, err
	}
	row.protoMsgs = int64(msgs)
	if row.bytes, err = get("MsgBytes"); err != nil {
		return row, err
	}
	if row.seconds, err = get("DurationSecs"); err != nil {
		return row, err
	}
	if row.seconds <= 0 {
		return row, fmt.Errorf("%s: duration %v", path, row.seconds)
	}
	return row, nil
}

// checkNATSRow checks that a phase's row covers msgs messages of size
// bytes and that its connection carried at least that many messages.
func checkNATSRow(row natsRow, phase string, size int, msgs int64) error {
	if row.bytes != float64(size)*float64(msgs) {
		return fmt.Errorf("nats %s: %.0f payload bytes, want %d", phase, row.bytes, int64(size)*msgs)
	}
	if row.protoMsgs < msgs {
		return fmt.Errorf("nats %s: the client's connection carried %d messages, want at least %d", phase, row.protoMsgs, msgs)
	}
	return nil
}

// natsEnv is the environment without NATS_* variables, so that a user's
// context, credentials or URL cannot steer the benchmark client.
func natsEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return env
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
