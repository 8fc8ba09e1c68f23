package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-io/strata/internal/fs"
)

// Checkpoint file names in each log dir, as Kafka's LogManager and
// ReplicaManager write them.
const (
	RecoveryPointCheckpoint  = "recovery-point-offset-checkpoint"
	LogStartOffsetCheckpoint = "log-start-offset-checkpoint"
	ReplicationCheckpoint    = "replication-offset-checkpoint"
	CleanShutdownFile        = ".kafka_cleanshutdown"
)

var errBadCheckpoint = errors.New("log: malformed checkpoint file")

// readCheckpoint reads Kafka's offset checkpoint text format:
//
//	0                       version
//	2                       number of entries
//	orders 0 1042           topic partition offset
//	orders 1 977
//
// A missing file yields an empty map and no error.
func readCheckpoint(fsys fs.FS, path string) (map[TopicPartition]int64, error) {
	data, err := fsys.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	bad := func(what string) error { return fmt.Errorf("%w %s: %s", errBadCheckpoint, path, what) }
	if v, ok := line(); !ok || strings.TrimSpace(v) != "0" {
		return nil, bad("unsupported version")
	}
	cs, ok := line()
	count, err := strconv.Atoi(strings.TrimSpace(cs))
	if !ok || err != nil || count < 0 {
		return nil, bad("bad entry count")
	}
	out := make(map[TopicPartition]int64, count)
	for i := 0; i < count; i++ {
		l, ok := line()
		if !ok {
			return nil, bad(fmt.Sprintf("expected %d entries, found %d", count, i))
		}
		f := strings.Fields(l)
		if len(f) != 3 {
			return nil, bad(fmt.Sprintf("entry %q", l))
		}
		p, perr := strconv.ParseInt(f[1], 10, 32)
		o, oerr := strconv.ParseInt(f[2], 10, 64)
		if perr != nil || oerr != nil || p < 0 {
			return nil, bad(fmt.Sprintf("entry %q", l))
		}
		out[TopicPartition{Topic: f[0], Partition: int32(p)}] = o
	}
	if rest, ok := line(); ok && strings.TrimSpace(rest) != "" {
		return nil, bad("trailing data")
	}
	return out, nil
}

// writeCheckpoint writes entries atomically: temp file, fsync, rename, fsync
// of the directory.
func writeCheckpoint(fsys fs.FS, path string, entries map[TopicPartition]int64) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "0\n%d\n", len(entries))
	tps := make([]TopicPartition, 0, len(entries))
	for tp := range entries {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, TopicPartition.compare)
	for _, tp := range tps {
		fmt.Fprintf(&buf, "%s %d %d\n", tp.Topic, tp.Partition, entries[tp])
	}
	return fs.WriteAtomic(fsys, path, buf.Bytes())
}
