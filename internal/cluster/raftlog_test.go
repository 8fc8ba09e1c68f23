package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestRaftLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := raftLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Trace("appendEntries details", "peer", 2)
	l.Debug("pipelining", "peer", 2)
	l.Named("snapshot").Info("entering follower state", "leader-id", "3")
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []int{1, 2}))
	l.Warn("heartbeat timeout reached", "last-leader-id", "3")
	l.Error("failed to contact", "server-id", "2", "error", errors.New("refused"))
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="entering follower state" logger=raft.snapshot leader-id=3`,
		`level=INFO msg="initial configuration" logger=raft servers="[1 2]"`,
		`level=WARN msg="heartbeat timeout reached" logger=raft last-leader-id=3`,
		`level=ERROR msg="failed to contact" logger=raft server-id=2 error=refused`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "appendEntries") || strings.Contains(out, "pipelining") {
		t.Errorf("trace and debug reached an Info logger:\n%s", out)
	}
}
