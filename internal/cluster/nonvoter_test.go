package cluster

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A node outside the voters follows the log as a raft non-voter once the
// leader adds it: it bootstraps nothing, is not caught up before, applies
// every change after, never leads, keeps its membership across a restart,
// and a second AddNonvoter changes nothing.
func TestQuorumNonvoter(t *testing.T) {
	c := startQuorum(t, 3, nil)
	l := c.leader()
	if _, err := l.s.CreateTopic("before", 1, nil, nil); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	nv := &qnode{id: 4, dir: filepath.Join(t.TempDir(), "__raft"), addr: addr}
	open := func(ln net.Listener) {
		s, err := OpenQuorum(Options{NodeID: nv.id}, QuorumOptions{Dir: nv.dir, Voters: c.voters, Listener: ln, Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		nv.s = s
	}
	open(ln)
	t.Cleanup(func() {
		if nv.s != nil {
			nv.s.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := nv.s.WaitCaughtUp(ctx); err == nil {
		t.Fatal("a non-voter not yet added is caught up")
	}
	cancel()
	if err := c.nodes[(l.id)%3].s.AddNonvoter(4, addr); !errors.Is(err, ErrNotController) {
		t.Fatalf("AddNonvoter on a follower: %v, want ErrNotController", err)
	}
	if err := l.s.AddNonvoter(4, addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), quorumWait)
	defer cancel()
	if err := nv.s.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.s.CreateTopic("after", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.nodes = append(c.nodes, nv)
	c.converged(l.s.Image())
	if id := nv.s.ControllerID(); id != l.id {
		t.Fatalf("non-voter sees controller %d, want %d", id, l.id)
	}
	members := func() []raft.Server {
		f := l.s.c.(*quorum).raft.GetConfiguration()
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		return f.Configuration().Servers
	}
	before := l.s.c.(*quorum).raft.LastIndex()
	for _, id := range []int32{4, 1} { // again, and a voter
		if err := l.s.AddNonvoter(id, addr); err != nil {
			t.Fatal(err)
		}
	}
	if after := l.s.c.(*quorum).raft.LastIndex(); after != before {
		t.Fatalf("an idempotent AddNonvoter appended to the log: %d -> %d", before, after)
	}
	nonvoters := 0
	for _, s := range members() {
		if s.Suffrage == raft.Nonvoter {
			nonvoters++
			if s.ID != raft.ServerID(strconv.Itoa(4)) {
				t.Fatalf("non-voter %s", s.ID)
			}
		}
	}
	if nonvoters != 1 || len(members()) != 4 {
		t.Fatalf("configuration %v", members())
	}

	// Restarted on its raft state, it follows again without being added.
	c.stop(nv)
	if _, err := l.s.CreateTopic("while-down", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	var ln2 net.Listener
	waitFor(t, "listen again", func() bool {
		var err error
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	open(ln2)
	c.converged(l.s.Image())
	if nv.s.Image().Topic("while-down") == nil {
		t.Fatal("restarted non-voter misses a change")
	}
}
