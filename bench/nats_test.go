package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunNATS publishes and consumes 200,000 1 KiB messages through a
// real nats-server; it needs bench/.bin/nats and nats-server (bench/run.sh
// builds them).
func TestRunNATS(t *testing.T) {
	bin := ".bin" // relative, as bench's -bin default is
	for _, f := range []string{"nats", "nats-server"} {
		if _, err := os.Stat(filepath.Join(bin, f)); err != nil {
			t.Skipf("%s not built: %v", f, err)
		}
	}
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	r, err := runNATS(bin, t.TempDir(), 1024, 200000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	for _, c := range r.Cmds {
		t.Log(c)
	}
	if r.PubMBps <= 0 || r.SubMBps <= 0 || r.ServerCPUPub <= 0 || r.ServerCPUSub <= 0 || len(r.Cmds) != 2 {
		t.Errorf("implausible result %+v", r)
	}
}

func TestNATSPubWindow(t *testing.T) {
	for _, c := range []struct{ size, flow, outstanding int }{
		{100, 500, 20},   // 10,000 buffered records
		{1024, 500, 10},  // 4,882 messages ≈ 5 MB
		{10240, 488, 1},  // 488 messages ≈ 5 MB
		{1 << 20, 4, 1},  // 4 messages ≈ 5 MB
		{10 << 20, 1, 1}, // one message at a time
	} {
		f, o := natsPubWindow(c.size)
		if f != c.flow || o != c.outstanding {
			t.Errorf("natsPubWindow(%d) = %d, %d; want %d, %d", c.size, f, o, c.flow, c.outstanding)
		}
	}
}
