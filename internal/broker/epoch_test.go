package broker

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestEpochCacheEndOffsetFor(t *testing.T) {
	const leo = 400
	c := &epochCache{entries: []epochEntry{{0, 0}, {2, 100}, {5, 250}}}
	for _, tc := range []struct {
		epoch      int32
		wantEpoch  int32
		wantOffset int64
	}{
		{-1, -1, -1},  // undefined epoch
		{5, 5, leo},   // the latest epoch ends at the log end
		{6, -1, -1},   // newer than any known
		{4, 2, 250},   // between: the epoch below, ending where 5 starts
		{2, 2, 250},   // an older epoch ends where the next starts
		{1, 0, 100},   // a gap: epoch 0 was the one in force
		{0, 0, 100},   //
		{-2, -2, 0},   // below the earliest: its start offset
		{100, -1, -1}, //
	} {
		e, o := c.EndOffsetFor(tc.epoch, leo)
		if e != tc.wantEpoch || o != tc.wantOffset {
			t.Errorf("EndOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.epoch, e, o, tc.wantEpoch, tc.wantOffset)
		}
	}
	// Older than the earliest epoch: the requested epoch, ending where the
	// earliest starts (Kafka: the data is gone, replicate from there).
	c = &epochCache{entries: []epochEntry{{3, 70}, {4, 90}}}
	if e, o := c.EndOffsetFor(1, leo); e != 1 || o != 70 {
		t.Errorf("EndOffsetFor(1) below the earliest = (%d, %d), want (1, 70)", e, o)
	}
	if e, o := (&epochCache{}).EndOffsetFor(0, leo); e != -1 || o != -1 {
		t.Errorf("empty cache: (%d, %d)", e, o)
	}
}

func TestEpochCacheAssignAndTruncate(t *testing.T) {
	c := &epochCache{}
	if !c.assign(0, 0) || c.assign(0, 10) || !c.assign(1, 50) || !c.assign(2, 80) {
		t.Fatalf("assign results wrong: %v", c.entries)
	}
	// A new epoch at an offset not above older epochs' starts replaces them.
	if !c.assign(3, 50) || len(c.entries) != 2 || c.entries[1] != (epochEntry{3, 50}) {
		t.Fatalf("after assign(3, 50): %v", c.entries)
	}
	if !c.truncateFromStart(60) || len(c.entries) != 1 || c.entries[0] != (epochEntry{3, 60}) {
		t.Fatalf("after truncateFromStart(60): %v", c.entries)
	}
	if c.truncateFromStart(60) || c.truncateFromStart(10) {
		t.Fatal("truncateFromStart changed nothing but reported a change")
	}
}

func TestEpochCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	path := filepath.Join(p.Log.Dir(), leaderEpochCheckpointFile)
	if data, err := os.ReadFile(path); err != nil || string(data) != "0\n1\n0 0\n" {
		t.Fatalf("new partition's checkpoint %q, %v", data, err)
	}
	for seq := int32(0); p.Log.NumSegments() < 3; seq++ {
		appendBatch(t, p, producerBatch(t, 1, 0, seq, 1))
	}
	if e, o := p.EndOffsetForEpoch(0); e != 0 || o != p.Log.LogEndOffset() {
		t.Fatalf("EndOffsetForEpoch(0) = (%d, %d), want (0, %d)", e, o, p.Log.LogEndOffset())
	}
	if e, o := p.EndOffsetForEpoch(1); e != -1 || o != -1 {
		t.Fatalf("EndOffsetForEpoch(1) = (%d, %d), want undefined", e, o)
	}
	// The epoch's start follows the log start offset, written at the next
	// roll or close.
	start, err := p.Log.DeleteRecordsBefore(p.Log.SegmentBaseOffsets()[1])
	if err != nil {
		t.Fatal(err)
	}
	closeBroker(t, b)
	want := "0\n1\n0 " + strconv.FormatInt(start, 10) + "\n"
	if data, err := os.ReadFile(path); err != nil || string(data) != want {
		t.Fatalf("checkpoint after DeleteRecords %q, %v; want %q", data, err, want)
	}

	// A partition found without the file (a dir from before strata wrote
	// it) gets one from its log start offset; a malformed one is rewritten.
	for _, damage := range []func() error{
		func() error { return os.Remove(path) },
		func() error { return os.WriteFile(path, []byte("0\n2\n0 5\n"), 0o644) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		b = openBroker(t, dir)
		if data, err := os.ReadFile(path); err != nil || string(data) != want {
			t.Fatalf("checkpoint rewritten at open %q, %v; want %q", data, err, want)
		}
		closeBroker(t, b)
	}
}
