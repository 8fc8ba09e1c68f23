package main

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// TestStartup runs runStartup when STRATA_BENCH_STARTUP names the strata
// binary (go build -o /tmp/strata ./cmd/strata). STRATA_BENCH_STARTUP_GIB
// (default 10) and STRATA_BENCH_STARTUP_PARTITIONS (default 100) size it;
// STRATA_BENCH_WORKDIR holds the data (default: the test's temp dir).
//
//	STRATA_BENCH_STARTUP=/tmp/strata go test -run TestStartup -v -timeout 1h
func TestStartup(t *testing.T) {
	bin := os.Getenv("STRATA_BENCH_STARTUP")
	if bin == "" {
		t.Skip("set STRATA_BENCH_STARTUP to the strata binary to run")
	}
	gib, partitions := 10.0, 100
	if v := os.Getenv("STRATA_BENCH_STARTUP_GIB"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		gib = f
	}
	if v := os.Getenv("STRATA_BENCH_STARTUP_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		partitions = n
	}
	dir := os.Getenv("STRATA_BENCH_WORKDIR")
	if dir == "" {
		dir = t.TempDir()
	}
	res, err := runStartup(bin, dir, partitions, int64(gib*(1<<30)))
	out, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
}
