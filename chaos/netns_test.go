package chaos

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A helper process for TestLabCut, run inside a lab namespace by the test
// binary itself: "listen" accepts connections on CHAOS_LAB_ADDR until
// killed, "dial" exits 0 if it can connect to CHAOS_LAB_ADDR within a
// second and 1 if not.
func TestLabHelper(t *testing.T) {
	addr := os.Getenv("CHAOS_LAB_ADDR")
	switch os.Getenv("CHAOS_LAB_HELPER") {
	case "listen":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(2)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(2)
			}
			c.Close()
		}
	case "dial":
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	default:
		t.Skip("helper process of TestLabCut")
	}
}

// TestLabCut checks the network nemesis itself: node 0 of a two-node lab
// listens; cut drops node 1's connections but not the runner's, isolate
// drops both, and healing restores both. Then the lab is gone.
func TestLabCut(t *testing.T) {
	if err := LabAvailable(); err != nil {
		t.Skip(err)
	}
	lab, err := NewLab(2)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			lab.Close()
		}
	}()
	addr := net.JoinHostPort(lab.Hosts[0], "7000")
	helper := func(ns, mode string) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestLabHelper$")
		cmd.Env = append(os.Environ(), "CHAOS_LAB_HELPER="+mode, "CHAOS_LAB_ADDR="+addr)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	srv := helper(lab.NetNS[0], "listen")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	fromRunner := func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	fromNode1 := func() bool { return helper(lab.NetNS[1], "dial").Run() == nil }
	// The listener needs a moment to come up.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !fromRunner() {
		if ctx.Err() != nil {
			t.Fatal("the runner cannot reach node 0 before any cut")
		}
		time.Sleep(100 * time.Millisecond)
	}
	check := func(stage string, runner, node1 bool) {
		t.Helper()
		if got := fromRunner(); got != runner {
			t.Errorf("%s: runner reaches node 0: %v, want %v", stage, got, runner)
		}
		if got := fromNode1(); got != node1 {
			t.Errorf("%s: node 1 reaches node 0: %v, want %v", stage, got, node1)
		}
	}
	check("before", true, true)
	if err := lab.Cut(0, false); err != nil {
		t.Fatal(err)
	}
	check("cut", true, false)
	if err := lab.Heal(0); err != nil {
		t.Fatal(err)
	}
	check("healed cut", true, true)
	if err := lab.Cut(0, true); err != nil {
		t.Fatal(err)
	}
	check("isolate", false, false)
	if err := lab.Heal(0); err != nil {
		t.Fatal(err)
	}
	check("healed isolate", true, true)

	srv.Process.Kill()
	srv.Wait()
	lab.Close()
	closed = true
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, ns := range lab.NetNS {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s left after Close:\n%s", ns, out)
		}
	}
	if exec.Command("ip", "link", "show", lab.Bridge).Run() == nil {
		t.Errorf("bridge %s left after Close", lab.Bridge)
	}
}
