package chaos

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Replica check: after a run every node is stopped cleanly and, for each
// partition of the workload's topic, the replicas on disk are compared
// byte for byte up to the high watermark. Committed records (below the
// HW) must be identical on every replica, batch headers included: a
// follower appends the leader's batches as they are (offsets, leader
// epochs, CRCs), as Kafka's ReplicaFetcherThread does.
//
// The files, as internal/log writes them (see its doc.go):
//
//	<log.dir>/replication-offset-checkpoint   "0", count, "topic partition hw" lines
//	<log.dir>/<topic>-<partition>/%020d.log   v2 record batches back to back
//
// A batch starts with baseOffset (int64), batchLength (int32: bytes after
// this field), partitionLeaderEpoch (int32), magic (int8), crc (uint32),
// attributes (int16) and lastOffsetDelta (int32, at byte 23).
//
// Segments may roll at different offsets on different replicas, so the
// comparison is over the stream of batches, not file by file. The result
// is one KindReplica event per partition: Off is the highest HW, Info has
// every replica's HW, Err says how the replicas diverged (the checker's
// "diverged").

// replicaCheckpoint is the high-watermark checkpoint file of a log dir
// (log.ReplicationCheckpoint in internal/log).
const replicaCheckpoint = "replication-offset-checkpoint"

type batchRef struct {
	base, last int64
	data       []byte
}

type replicaLog struct {
	node    int // 1-based
	hw      int64
	hasHW   bool
	batches []batchRef
	torn    string // a note when the last segment ends in a partial batch
}

// readHWs parses a replication-offset-checkpoint file.
func readHWs(path string) (map[string]int64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	out := map[string]int64{}
	for i := 0; sc.Scan(); i++ {
		if i < 2 {
			continue // version, count
		}
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		hw, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("chaos: %s: bad entry %q", path, sc.Text())
		}
		out[f[0]+"-"+f[1]] = hw
	}
	return out, sc.Err()
}

// readBatches reads every complete batch of a partition dir's segments.
func readBatches(dir string) ([]batchRef, string, error) {
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, "", err
	}
	sort.Strings(segs) // %020d names sort by base offset
	var out []batchRef
	torn := ""
	for _, seg := range segs {
		data, err := os.ReadFile(seg)
		if err != nil {
			return nil, "", err
		}
		for pos := 0; pos < len(data); {
			if len(data)-pos < 27 {
				torn = fmt.Sprintf("%s: %d trailing bytes", filepath.Base(seg), len(data)-pos)
				break
			}
			base := int64(binary.BigEndian.Uint64(data[pos:]))
			size := 12 + int(int32(binary.BigEndian.Uint32(data[pos+8:])))
			if size < 27 || pos+size > len(data) {
				torn = fmt.Sprintf("%s: partial batch at byte %d", filepath.Base(seg), pos)
				break
			}
			last := base + int64(int32(binary.BigEndian.Uint32(data[pos+23:])))
			out = append(out, batchRef{base: base, last: last, data: data[pos : pos+size]})
			pos += size
		}
	}
	return out, torn, nil
}

// CompareReplicas compares, for each partition of topic, the replicas found
// in the given log dirs (dirs[i] is node i+1's): each replica up to its own
// high watermark against the replica with the highest one. The nodes must
// be stopped.
func CompareReplicas(dirs []string, topic string, partitions int) []Event {
	hws := make([]map[string]int64, len(dirs))
	var events []Event
	for i, d := range dirs {
		m, err := readHWs(filepath.Join(d, replicaCheckpoint))
		if err != nil {
			events = append(events, Event{Kind: KindInfo, Proc: "replicas", Part: -1, Off: -1, Err: err.Error()})
		}
		hws[i] = m
	}
	for p := 0; p < partitions; p++ {
		name := fmt.Sprintf("%s-%d", topic, p)
		var reps []replicaLog
		ev := Event{Kind: KindReplica, Proc: "replicas", Part: int32(p), Off: -1}
		for i, d := range dirs {
			pd := filepath.Join(d, name)
			if _, err := os.Stat(pd); err != nil {
				continue // not a replica of p
			}
			bs, torn, err := readBatches(pd)
			if err != nil {
				ev.Err = fmt.Sprintf("node %d: %v", i+1, err)
				break
			}
			hw, ok := hws[i][name]
			reps = append(reps, replicaLog{node: i + 1, hw: hw, hasHW: ok, batches: bs, torn: torn})
		}
		if ev.Err == "" {
			ev.Off, ev.Info, ev.Err = compareReplicaLogs(reps)
		}
		events = append(events, ev)
	}
	return events
}

// compareReplicaLogs returns the offset compared up to (the highest HW),
// a summary, and a description of the first divergence ("" if none).
//
// Each replica's own high watermark is what it learned was committed, so
// everything below it must be on it, and equal to the same range of the
// replica with the highest HW (the reference, normally the leader). A
// follower that lagged or was out of the ISR has a lower HW and is
// compared over less; a divergent uncommitted tail above its HW is allowed
// (the follower truncates it when it fetches again).
func compareReplicaLogs(reps []replicaLog) (int64, string, string) {
	if len(reps) == 0 {
		return -1, "no replica on disk", ""
	}
	ref := reps[0]
	from := int64(0)
	var hws []string
	for _, r := range reps {
		if r.hw > ref.hw {
			ref = r
		}
		if len(r.batches) > 0 {
			from = max(from, r.batches[0].base)
		}
		hw := strconv.FormatInt(r.hw, 10)
		if !r.hasHW {
			hw = "none"
		}
		hws = append(hws, fmt.Sprintf("node %d HW %s", r.node, hw))
	}
	var problems []string
	for _, r := range reps {
		end := int64(0)
		if n := len(r.batches); n > 0 {
			end = r.batches[n-1].last + 1
		}
		if r.hw > end {
			problems = append(problems, fmt.Sprintf("node %d's log ends at offset %d, below its high watermark %d", r.node, end, r.hw))
		}
		if !r.hasHW && end > 0 {
			problems = append(problems, fmt.Sprintf("node %d has records up to %d but no high watermark checkpointed", r.node, end))
		}
	}
	// prefix is r's batches in [from, hw).
	prefix := func(r replicaLog, hw int64) ([]byte, int) {
		var b []byte
		n := 0
		for _, bt := range r.batches {
			if bt.base >= hw {
				break
			}
			if bt.last < from {
				continue
			}
			b = append(b, bt.data...)
			n++
		}
		return b, n
	}
	refBytes, nb := prefix(ref, ref.hw)
	compared := 0
	for _, r := range reps {
		if r.node == ref.node {
			continue
		}
		want, _ := prefix(ref, r.hw)
		got, _ := prefix(r, r.hw)
		compared += len(got)
		if !bytes.Equal(want, got) {
			problems = append(problems, fmt.Sprintf("node %d differs from node %d below its HW %d: %s", r.node, ref.node, r.hw, firstDiff(ref, r, from, r.hw)))
		}
	}
	info := fmt.Sprintf("%d replica(s), %s; node %d's %d batches, %d bytes in [%d, %d) the reference; %d bytes of the others compared up to their own HW",
		len(reps), strings.Join(hws, ", "), ref.node, nb, len(refBytes), from, ref.hw, compared)
	for _, r := range reps {
		if r.torn != "" {
			info += fmt.Sprintf("; node %d %s (above the HW is allowed)", r.node, r.torn)
		}
	}
	return ref.hw, info, strings.Join(problems, "; ")
}

// firstDiff names the first batch in [from, hw) where two replicas differ.
func firstDiff(a, b replicaLog, from, hw int64) string {
	in := func(bs []batchRef) []batchRef {
		var out []batchRef
		for _, bt := range bs {
			if bt.last >= from && bt.base < hw {
				out = append(out, bt)
			}
		}
		return out
	}
	as, bs := in(a.batches), in(b.batches)
	for i := 0; ; i++ {
		var x, y *batchRef
		if i < len(as) {
			x = &as[i]
		}
		if i < len(bs) {
			y = &bs[i]
		}
		switch {
		case x == nil && y == nil:
			return "same batches, different bytes"
		case x == nil:
			return fmt.Sprintf("extra batch at offset %d", y.base)
		case y == nil:
			return fmt.Sprintf("missing batch at offset %d", x.base)
		case x.base != y.base || x.last != y.last:
			return fmt.Sprintf("batch [%d, %d] against [%d, %d]", x.base, x.last, y.base, y.last)
		case !bytes.Equal(x.data, y.data):
			return fmt.Sprintf("batch at offset %d has other bytes", x.base)
		}
	}
}
