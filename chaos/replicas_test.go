package chaos

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBatch is a v2 batch header (61 bytes) and a payload: enough for the
// replica check, which reads baseOffset, batchLength and lastOffsetDelta
// and compares bytes.
func fakeBatch(base int64, records int, fill byte) []byte {
	b := make([]byte, 61+16)
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	b[16] = 2 // magic
	binary.BigEndian.PutUint32(b[23:], uint32(records-1))
	for i := 61; i < len(b); i++ {
		b[i] = fill
	}
	return b
}

// writeReplica lays out one node's log dir: the batches of partition 0 of
// "chaos", split into segments at the given base offsets, and a
// replication-offset-checkpoint with hw (none when hw < 0).
func writeReplica(t *testing.T, batches [][]byte, rolls []int64, hw int64) string {
	t.Helper()
	dir := t.TempDir()
	pd := filepath.Join(dir, "chaos-0")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	segs := map[int64][]byte{}
	cur := int64(0)
	for _, b := range batches {
		base := int64(binary.BigEndian.Uint64(b))
		for _, r := range rolls {
			if base == r {
				cur = r
			}
		}
		segs[cur] = append(segs[cur], b...)
	}
	for base, data := range segs {
		if err := os.WriteFile(filepath.Join(pd, fmt.Sprintf("%020d.log", base)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if hw >= 0 {
		cp := fmt.Sprintf("0\n2\nchaos 0 %d\nother 0 99\n", hw)
		if err := os.WriteFile(filepath.Join(dir, replicaCheckpoint), []byte(cp), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCompareReplicas plants each kind of divergence in hand-made log
// dirs, and checks what must not count: bytes above the high watermark,
// segments rolled at other offsets, a partition with one replica.
func TestCompareReplicas(t *testing.T) {
	// Three batches: offsets 0-1, 2-4, 5.
	log := func(fill byte) [][]byte {
		return [][]byte{fakeBatch(0, 2, 1), fakeBatch(2, 3, 2), fakeBatch(5, 1, fill)}
	}
	cases := []struct {
		name    string
		dirs    func(t *testing.T) []string
		wantErr string // "" when the replicas agree
		wantOff int64
	}{
		{"equal", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(3), nil, 6), writeReplica(t, log(3), nil, 6)}
		}, "", 6},
		{"other segment rolls", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(3), []int64{2, 5}, 6)}
		}, "", 6},
		{"differ above the follower's HW only", func(t *testing.T) []string {
			// Node 2's HW is 5: its last batch is not committed there and
			// may still be replaced.
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(9), nil, 5)}
		}, "", 6},
		{"follower lags", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(3)[:2], nil, 5)}
		}, "", 6},
		{"stale follower: other bytes above its own HW", func(t *testing.T) []string {
			// Out of the ISR, it learned no HW past 2; its batch at 2 is
			// from an older leader and will be truncated when it fetches.
			stale := log(3)
			stale[1] = fakeBatch(2, 3, 7)
			return []string{writeReplica(t, stale, nil, 2), writeReplica(t, log(3), nil, 6)}
		}, "", 6},
		{"stale follower: other bytes below its own HW", func(t *testing.T) []string {
			stale := log(3)
			stale[0] = fakeBatch(0, 2, 7)
			return []string{writeReplica(t, stale, nil, 2), writeReplica(t, log(3), nil, 6)}
		}, "node 1 differs from node 2 below its HW 2: batch at offset 0 has other bytes", 6},
		{"one replica", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), t.TempDir()}
		}, "", 6},
		{"a byte differs below the HW", func(t *testing.T) []string {
			bad := log(3)
			bad[1] = fakeBatch(2, 3, 7)
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, bad, nil, 6)}
		}, "node 2 differs from node 1 below its HW 6: batch at offset 2 has other bytes", 6},
		{"batch boundaries differ", func(t *testing.T) []string {
			other := [][]byte{fakeBatch(0, 3, 1), fakeBatch(3, 2, 2), fakeBatch(5, 1, 3)}
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, other, nil, 6)}
		}, "batch [0, 1] against [0, 2]", 6},
		{"log shorter than its own HW", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(3)[:2], nil, 6)}
		}, "node 2's log ends at offset 5, below its high watermark 6", 6},
		{"records without a checkpointed HW", func(t *testing.T) []string {
			return []string{writeReplica(t, log(3), nil, 6), writeReplica(t, log(3), nil, -1)}
		}, "node 2 has records up to 6 but no high watermark checkpointed", 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := CompareReplicas(c.dirs(t), "chaos", 1)
			if len(evs) != 1 || evs[0].Kind != KindReplica || evs[0].Part != 0 {
				t.Fatalf("events %+v, want one replica event for partition 0", evs)
			}
			e := evs[0]
			if (c.wantErr == "") != (e.Err == "") || !strings.Contains(e.Err, c.wantErr) {
				t.Errorf("err %q, want %q (info %q)", e.Err, c.wantErr, e.Info)
			}
			if e.Off != c.wantOff {
				t.Errorf("compared up to %d, want %d (info %q)", e.Off, c.wantOff, e.Info)
			}
			if got := Check([]Event{e}).Count(AnomalyDiverged); got != map[bool]int{true: 0, false: 1}[c.wantErr == ""] {
				t.Errorf("checker reports %d diverged", got)
			}
		})
	}
}

// A torn tail (a partial batch after a kill) is above the HW and allowed;
// it is noted in the summary.
func TestCompareReplicasTornTail(t *testing.T) {
	a := writeReplica(t, [][]byte{fakeBatch(0, 2, 1), fakeBatch(2, 1, 2)}, nil, 3)
	f, err := os.OpenFile(filepath.Join(a, "chaos-0", fmt.Sprintf("%020d.log", 0)), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(fakeBatch(3, 1, 3)[:30])
	f.Close()
	b := writeReplica(t, [][]byte{fakeBatch(0, 2, 1), fakeBatch(2, 1, 2)}, nil, 3)
	e := CompareReplicas([]string{a, b}, "chaos", 1)[0]
	if e.Err != "" || !strings.Contains(e.Info, "partial batch") {
		t.Errorf("torn tail above the HW: err %q, info %q", e.Err, e.Info)
	}
}
