package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `strata serve --dev-cluster 3` runs three nodes in-process (on ports the
// OS picks, through the hidden --dev-free-ports), each answers Kafka
// clients, and cancelling the command stops them all cleanly.
func TestServeDevCluster(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		done <- runCLIContext(ctx, "unused:0", "", &stdout, &stderr, "serve", "--dev-cluster", "3", "--dev-free-ports", "--dir", dir)
	}()
	// On failure too, the nodes stop before the temp dir goes.
	defer func() { cancel(nil); <-exited }()
	ready := regexp.MustCompile(`msg="development cluster ready" bootstrap=(\S+)`)
	var bootstrap []string
	deadline := time.Now().Add(2 * time.Minute)
	for bootstrap == nil {
		if m := ready.FindStringSubmatch(stderr.String()); m != nil {
			bootstrap = strings.Split(m[1], ",")
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve --dev-cluster exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line:\n%s", stderr.String())
		}
	}
	if len(bootstrap) != 3 {
		t.Fatalf("bootstrap %v, want 3 addresses", bootstrap)
	}
	for i, addr := range bootstrap {
		if !strings.Contains(stderr.String(), "node="+string(rune('1'+i))+" addr="+addr) {
			t.Errorf("no ready line of node %d at %s", i+1, addr)
		}
		// Every node answers a client.
		mustCLI(t, addr, "", "topic", "list")
		if _, err := os.Stat(filepath.Join(dir, "node-"+string(rune('1'+i)), "meta.properties")); err != nil {
			t.Errorf("node %d's data dir: %v", i+1, err)
		}
	}

	cancel(errors.New("test done"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve --dev-cluster: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve --dev-cluster did not stop")
	}
	if !strings.Contains(stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean stop:\n%s", stderr.String())
	}
	for i := 1; i <= 3; i++ {
		if _, err := os.Stat(filepath.Join(dir, "node-"+string(rune('0'+i)), ".kafka_cleanshutdown")); err != nil {
			t.Errorf("node %d left no clean-shutdown marker: %v", i, err)
		}
	}
}

func TestServeDevClusterRefusesOwnedProperties(t *testing.T) {
	_, _, err := runCLI(t, "unused:0", "", "serve", "--dev-cluster", "3", "--dev-free-ports", "--dir", t.TempDir(), "--set", "log.dirs=/tmp/x")
	if err == nil || !strings.Contains(err.Error(), "log.dirs") {
		t.Fatalf("--set log.dirs with --dev-cluster: %v", err)
	}
	_, _, err = runCLI(t, "unused:0", "", "serve", "--dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--dev-cluster") {
		t.Fatalf("--dir without --dev-cluster: %v", err)
	}
}
