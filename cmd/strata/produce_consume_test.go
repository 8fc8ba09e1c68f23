package main

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProduceConsume produces with keys, headers and a fixed partition and
// reads back in every format and from every kind of start position;
// testdata/produce_consume.golden holds the transcript.
func TestProduceConsume(t *testing.T) {
	addr := cliBroker(t)
	s := newTranscript(t, addr)
	s.ok("", "topic", "create", "single", "--partitions", "1")
	s.ok("", "topic", "create", "multi", "--partitions", "3")

	s.ok("k1:hello\nk2:world, with: colons\n:empty key\nk4:\n", "produce", "single", "--key-separator", ":", "--header", "source=test", "--header", "trace=a=b")
	s.ok("plain one\r\nplain two\n\nlast without newline", "produce", "single")
	s.fails("2 of 3 records were not produced to single", "ok:1\nno separator\nalso none\n", "produce", "single", "--key-separator", ":")
	s.ok("p2-a\np2-b\n", "produce", "multi", "--partition", "2", "--json")

	s.ok("", "consume", "single", "--from-beginning", "--max", "9")
	s.ok("", "consume", "single", "--from-beginning", "--max", "9", "--format", "kv")
	s.ok("", "consume", "single", "--from-beginning", "--max", "3", "--format", "json")
	s.ok("", "consume", "single", "--offset", "4", "--max", "2", "--json")
	s.ok("", "consume", "multi", "--partition", "2", "--from-beginning", "--max", "2", "--format", "kv")
	s.ok("", "consume", "multi", "--partition", "2", "--offset", "1", "--max", "1")
	s.check("produce_consume.golden")
}

// TestProduceOptions writes with every codec and acks setting and checks
// every record arrives.
func TestProduceOptions(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "codecs", "--partitions", "1")
	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		for _, acks := range []string{"all", "1", "0"} {
			v := codec + "/" + acks
			want = append(want, v+" a", v+" b")
			// Batches long enough that the codecs really compress.
			in := v + " a\n" + v + " b\n"
			_, errOut, err := runCLI(t, addr, in, "produce", "codecs", "--compression", codec, "--acks", acks)
			if err != nil || !strings.Contains(errOut, "Produced 2 records") {
				t.Fatalf("produce --compression %s --acks %s: %v, %s", codec, acks, err, errOut)
			}
		}
	}
	out := mustCLI(t, addr, "", "consume", "codecs", "--from-beginning", "--max", strconv.Itoa(len(want)))
	// In any order: an acks=0 produce returns before the broker has
	// appended, so the next command's records may be stored first.
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("consumed %q, want %q", got, want)
	}
	for _, args := range [][]string{
		{"--compression", "brotli"},
		{"--acks", "2"},
		{"--partition", "-3"},
		{"--header", "novalue"},
	} {
		_, _, err := runCLI(t, addr, "x\n", append([]string{"produce", "codecs"}, args...)...)
		if err == nil {
			t.Errorf("produce %v: no error", args)
		}
	}
}

// TestConsumeTimestamp starts at the first record at or after a time.
func TestConsumeTimestamp(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "ts", "--partitions", "2")
	mustCLI(t, addr, "old-1\nold-2\n", "produce", "ts")
	time.Sleep(5 * time.Millisecond)
	at := time.Now().UnixMilli()
	time.Sleep(5 * time.Millisecond)
	mustCLI(t, addr, "new-1\nnew-2\n", "produce", "ts")
	out := mustCLI(t, addr, "", "consume", "ts", "--timestamp", strconv.FormatInt(at, 10), "--max", "2", "--json")
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r consumedRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if r.Timestamp < at {
			t.Errorf("record %q at %d, before --timestamp %d", *r.Value, r.Timestamp, at)
		}
		got = append(got, *r.Value)
	}
	if strings.Join(got, ",") != "new-1,new-2" {
		t.Fatalf("consumed %v, want new-1,new-2", got)
	}
}

// TestConsumeFollow follows a topic from its end until cancelled, as on
// Ctrl-C: only records produced after the start appear, and the command
// returns without an error.
func TestConsumeFollow(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "live", "--partitions", "2")
	mustCLI(t, addr, "before\n", "produce", "live")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- runCLIContext(ctx, addr, "", &out, &errOut, "consume", "live") }()
	// The consumer starts at the end once it has listed the offsets;
	// keep producing until a record shows up.
	waitFor(t, "the follower to print a record", func() bool {
		mustCLI(t, addr, "after\n", "produce", "live")
		return strings.Contains(out.String(), "after")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("consume returned %v after cancel", err)
		}
	case <-time.After(cliTimeout):
		t.Fatal("consume did not stop when cancelled")
	}
	if strings.Contains(out.String(), "before") {
		t.Errorf("a consumer starting at the end printed an older record:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "Processed a total of") {
		t.Errorf("stderr %q: no total", errOut.String())
	}
}

// TestConsumeGroup commits exactly what it printed: a second run with the
// same group continues where the first stopped, and describe shows the lag.
func TestConsumeGroup(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "jobs", "--partitions", "1")
	mustCLI(t, addr, "j1\nj2\nj3\nj4\nj5\n", "produce", "jobs")
	if out := mustCLI(t, addr, "", "consume", "jobs", "--group", "workers", "--from-beginning", "--max", "2"); out != "j1\nj2\n" {
		t.Fatalf("first run printed %q", out)
	}
	var g []groupDescription
	if err := json.Unmarshal([]byte(mustCLI(t, addr, "", "group", "describe", "workers", "--json")), &g); err != nil {
		t.Fatal(err)
	}
	if len(g) != 1 || len(g[0].Offsets) != 1 || *g[0].Offsets[0].CommittedOffset != 2 || *g[0].Offsets[0].Lag != 3 || g[0].TotalLag != 3 {
		t.Fatalf("after 2 of 5 records: %+v", g)
	}
	if out := mustCLI(t, addr, "", "consume", "jobs", "--group", "workers", "--max", "3"); out != "j3\nj4\nj5\n" {
		t.Fatalf("second run printed %q, want j3..j5", out)
	}
}
