package main

// Helpers for the client commands' tests: an embedded broker, running
// commands in-process, and transcripts compared with golden files under
// testdata/ (go test ./cmd/strata -run X -update rewrites them).

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// cliTimeout bounds one command in a test, so that a consume that waits
// for records that never come fails instead of hanging.
const cliTimeout = 30 * time.Second

// cliBroker starts an embedded broker for the test and returns its address.
func cliBroker(t *testing.T) string {
	t.Helper()
	b, err := strata.Start(strata.Options{
		Dir:        t.TempDir(),
		Properties: map[string]string{"group.initial.rebalance.delay.ms": "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLIContext runs `strata args... --bootstrap addr` in-process.
func runCLIContext(ctx context.Context, addr, stdin string, stdout, stderr *syncBuffer, args ...string) error {
	root := newRoot()
	root.SetArgs(append(append([]string{}, args...), "--bootstrap", addr))
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// runCLI runs a command to completion and returns its output.
func runCLI(t *testing.T, addr, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	var o, e syncBuffer
	err = runCLIContext(ctx, addr, stdin, &o, &e, args...)
	return o.String(), e.String(), err
}

// mustCLI runs a command that must succeed and returns its stdout.
func mustCLI(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, addr, stdin, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// transcript records commands and everything they printed, for a golden
// file.
type transcript struct {
	t    *testing.T
	addr string
	b    strings.Builder
}

func newTranscript(t *testing.T, addr string) *transcript {
	return &transcript{t: t, addr: addr}
}

// run runs a command and records it; it returns stdout and the error.
func (s *transcript) run(stdin string, args ...string) (string, error) {
	s.t.Helper()
	out, errOut, err := runCLI(s.t, s.addr, stdin, args...)
	fmt.Fprintf(&s.b, "$ strata %s\n", strings.Join(args, " "))
	if stdin != "" {
		for _, l := range strings.SplitAfter(strings.TrimSuffix(stdin, "\n"), "\n") {
			fmt.Fprintf(&s.b, "< %s", strings.TrimSuffix(l, "\n")+"\n")
		}
	}
	s.b.WriteString(out)
	if errOut != "" {
		for _, l := range strings.Split(strings.TrimSuffix(errOut, "\n"), "\n") {
			fmt.Fprintf(&s.b, "stderr: %s\n", l)
		}
	}
	if err != nil {
		fmt.Fprintf(&s.b, "error: %v\n", err)
	}
	s.b.WriteString("\n")
	return out, err
}

// ok runs a command that must succeed.
func (s *transcript) ok(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.run(stdin, args...)
	if err != nil {
		s.t.Fatalf("strata %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fails runs a command that must fail with an error containing want.
func (s *transcript) fails(want string, stdin string, args ...string) {
	s.t.Helper()
	_, err := s.run(stdin, args...)
	if err == nil {
		s.t.Fatalf("strata %s: succeeded, want an error containing %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(err.Error(), want) {
		s.t.Fatalf("strata %s: error %q, want it to contain %q", strings.Join(args, " "), err, want)
	}
}

// check compares the transcript with testdata/name.
func (s *transcript) check(name string) {
	s.t.Helper()
	checkGolden(s.t, name, normalizeCLI(s.b.String(), s.addr))
}

var (
	reBase64ID  = regexp.MustCompile(`[A-Za-z0-9+/_-]{22}==`) // topic ids, KIP-848 member ids
	reUUID      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reTimestamp = regexp.MustCompile(`"timestamp": ?[0-9]+`)
	reHost      = regexp.MustCompile(`/127\.0\.0\.1\b|/::1\b`)
)

// normalizeCLI replaces what differs between runs: the broker's address,
// topic ids, member ids, client hosts and record timestamps. Every
// replacement keeps its length, so table columns stay aligned.
func normalizeCLI(s, addr string) string {
	same := func(tag string) func(string) string {
		return func(m string) string {
			if len(m) <= len(tag) {
				return tag[:len(m)]
			}
			return tag + strings.Repeat("X", len(m)-len(tag))
		}
	}
	s = strings.ReplaceAll(s, addr, "BROKER")
	s = reBase64ID.ReplaceAllStringFunc(s, same("BASE64-ID"))
	s = reUUID.ReplaceAllStringFunc(s, same("UUID"))
	s = reTimestamp.ReplaceAllStringFunc(s, func(m string) string {
		return m[:strings.IndexAny(m, "0123456789")] + "TIMESTAMP"
	})
	s = reHost.ReplaceAllStringFunc(s, same("/HOST"))
	return s
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/strata -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (-update rewrites it):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the lines that differ, with line numbers.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(cliTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
