package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestUnreachableBroker: every client command fails at once, naming the
// address and what to do.
func TestUnreachableBroker(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"topic", "list"},
		{"topic", "create", "t"},
		{"topic", "describe", "t"},
		{"topic", "delete", "t"},
		{"topic", "alter-config", "t", "--set", "retention.ms=1"},
		{"topic", "add-partitions", "t", "--total", "2"},
		{"produce", "t"},
		{"consume", "t"},
		{"consume", "t", "--group", "g"},
		{"group", "list"},
		{"group", "describe", "g"},
		{"group", "delete", "g"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest"},
		{"cluster", "info"},
	} {
		start := time.Now()
		_, _, err := runCLI(t, addr, "x\n", args...)
		if err == nil {
			t.Errorf("strata %v: no error against a closed port", args)
			continue
		}
		want := "cannot reach a broker at " + addr
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--bootstrap") {
			t.Errorf("strata %v: error %q, want %q and a hint about --bootstrap", args, err, want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("strata %v: took %v to fail", args, d)
		}
	}
}

// TestUnknownTopicAndGroup: commands on names that do not exist say so
// and where to look, and fail.
func TestUnknownTopicAndGroup(t *testing.T) {
	addr := cliBroker(t)
	topicMsg := `topic "nope" does not exist (list topics with ` + "`strata topic list`)"
	groupMsg := `group "nope" does not exist (list groups with ` + "`strata group list`)"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "describe", "nope"}, topicMsg},
		{[]string{"topic", "delete", "nope"}, topicMsg},
		{[]string{"topic", "alter-config", "nope", "--delete", "retention.ms"}, topicMsg},
		{[]string{"topic", "add-partitions", "nope", "--total", "3"}, topicMsg},
		{[]string{"produce", "nope"}, topicMsg},
		{[]string{"consume", "nope"}, topicMsg},
		{[]string{"consume", "nope", "--group", "g"}, topicMsg},
		{[]string{"group", "reset-offsets", "g", "--topic", "nope", "--to-latest"}, topicMsg},
		{[]string{"group", "describe", "nope"}, groupMsg},
		{[]string{"group", "delete", "nope"}, groupMsg},
	} {
		_, _, err := runCLI(t, addr, "x\n", c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("strata %v: error %v, want %q", c.args, err, c.want)
		}
	}
	// Several names: the good ones are done, each bad one is reported.
	mustCLI(t, addr, "", "topic", "create", "a", "b")
	out, _, err := runCLI(t, addr, "", "topic", "delete", "a", "nope", "b", "nope2")
	if err == nil || !strings.Contains(err.Error(), "2 failures") || !strings.Contains(err.Error(), `"nope2" does not exist`) {
		t.Errorf("delete a nope b nope2: error %v", err)
	}
	if !strings.Contains(out, "a  ") || !strings.Contains(out, "b  ") {
		t.Errorf("delete a nope b nope2: printed %q, want a and b deleted", out)
	}
}

// TestInvalidFlags: bad flag values fail before anything is sent, saying
// what is wanted.
func TestInvalidFlags(t *testing.T) {
	addr := cliBroker(t)
	mustCLI(t, addr, "", "topic", "create", "t", "--partitions", "2")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "bogus"}, `unknown command "bogus" for "strata topic"`},
		{[]string{"group", "bogus"}, `unknown command "bogus" for "strata group"`},
		{[]string{"topic", "create"}, "give at least one topic name"},
		{[]string{"topic", "create", "x", "--replicas", "0"}, "--replicas 0: must be at least 1"},
		{[]string{"topic", "create", "x", "--partitions", "many"}, `invalid argument "many"`},
		{[]string{"topic", "alter-config", "t", "--set", "retention.ms"}, `--set "retention.ms": expected key=value`},
		{[]string{"produce"}, "give exactly one topic"},
		{[]string{"produce", "t", "--compression", "brotli"}, `--compression "brotli": want none, gzip, snappy, lz4 or zstd`},
		{[]string{"produce", "t", "--acks", "2"}, `--acks "2": want all, 1 or 0`},
		{[]string{"produce", "t", "--header", "x"}, `--header "x": expected key=value`},
		{[]string{"produce", "t", "--partition", "2"}, `--partition 2: topic "t" has partitions 0 to 1`},
		{[]string{"consume", "t", "--format", "xml"}, `--format "xml": want plain, kv or json`},
		{[]string{"consume", "t", "--from-beginning", "--offset", "3"}, "give only one of --from-beginning, --offset and --timestamp"},
		{[]string{"consume", "t", "--offset", "-5"}, "--offset -5: must be 0 or more"},
		{[]string{"consume", "t", "--timestamp", "-5"}, "--timestamp -5: want milliseconds since the epoch"},
		{[]string{"consume", "t", "--max", "-1"}, "--max -1"},
		{[]string{"consume", "t", "--partition", "7"}, `--partition 7: topic "t" has partitions 0 to 1`},
		{[]string{"consume", "t", "--group", "g", "--offset", "1"}, "with --group, the group's committed offsets decide where to start"},
		{[]string{"group", "describe"}, "give at least one group"},
		{[]string{"group", "reset-offsets", "g", "h"}, "give exactly one group"},
	} {
		_, _, err := runCLI(t, addr, "x\n", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("strata %v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
}

// TestExitCode runs the real main in a subprocess: an error is printed as
// "strata: ..." on stderr with exit code 1.
func TestExitCode(t *testing.T) {
	if os.Getenv("STRATA_CLI_MAIN") == "1" {
		os.Args = append([]string{"strata"}, strings.Fields(os.Getenv("STRATA_CLI_ARGS"))...)
		main()
		os.Exit(0)
	}
	addr := closedAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitCode$")
	cmd.Env = append(os.Environ(), "STRATA_CLI_MAIN=1", "STRATA_CLI_ARGS=topic list --bootstrap "+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want exit code 1; stderr %q", err, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "strata: cannot reach a broker at "+addr) {
		t.Fatalf("stderr %q", stderr.String())
	}
}
