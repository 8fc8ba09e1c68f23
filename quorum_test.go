package strata_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
)

// A node whose controller.quorum.voters names only itself runs its
// metadata on a one-voter raft quorum: it elects itself, serves as a
// single node does, and keeps its topics across a restart from the raft
// state under <log dir>/__raft.
func TestSingleVoterQuorumTopicsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	// The voter list must name the controller address before the node
	// starts, so the port is found free first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctrl := ln.Addr().String()
	ln.Close()
	props := map[string]string{
		"listeners":                "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + ctrl,
		"controller.quorum.voters": "1@" + ctrl,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	b, err := strata.Start(strata.Options{Dir: dir, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "q"); err != nil {
		t.Fatal(err)
	}
	topics, err := adm.ListTopics(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	id := topics["q"].ID
	produce := func(addr string, from, to int) {
		p := newClient(t, addr, kgo.DefaultProduceTopic("q"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		for i := from; i < to; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	consume := func(addr string, n int) {
		c := newClient(t, addr, kgo.ConsumeTopics("q"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		seen := map[string]bool{}
		for len(seen) < n {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
		for i := range n {
			if !seen[fmt.Sprintf("v%d", i)] {
				t.Fatalf("record v%d not consumed", i)
			}
		}
	}
	produce(b.Addr(), 0, 30)
	consume(b.Addr(), 30)
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nstrata_controller_id 1\n", "\nstrata_controller_active 1\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(string(body), "\nstrata_quorum_term 0\n") || !strings.Contains(string(body), "\nstrata_quorum_term ") {
		t.Error("metrics show no raft term")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The metadata is in raft's state, not in a local metadata log.
	if _, err := os.Stat(filepath.Join(dir, strata.RaftDir, "raft.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "__cluster_metadata-0")); !os.IsNotExist(err) {
		t.Fatalf("quorum mode made a local metadata log: %v", err)
	}

	b, err = strata.Start(strata.Options{Dir: dir, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	adm = kadm.NewClient(newClient(t, b.Addr()))
	topics, err = adm.ListTopics(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if got := topics["q"]; got.ID != id || len(got.Partitions) != 3 {
		t.Fatalf("after restart topic q has id %s and %d partitions, want %s and 3", got.ID, len(got.Partitions), id)
	}
	produce(b.Addr(), 30, 40)
	consume(b.Addr(), 40)
}

// A data dir stays in the mode it was made in: each mode would find none
// of the other's metadata, and local mode would then remove every
// partition as unknown.
func TestQuorumModeSwitchRefusedAtRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctrl := ln.Addr().String()
	ln.Close()
	quorum := map[string]string{
		"listeners":                "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + ctrl,
		"controller.quorum.voters": "1@" + ctrl,
	}

	local := t.TempDir()
	b, err := strata.Start(strata.Options{Dir: local})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := strata.Start(strata.Options{Dir: local, Properties: quorum}); err == nil || !strings.Contains(err.Error(), "local metadata log") {
		t.Fatalf("quorum start on a local data dir: %v", err)
	}

	raftDir := t.TempDir()
	b, err = strata.Start(strata.Options{Dir: raftDir, Properties: quorum})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := strata.Start(strata.Options{Dir: raftDir}); err == nil || !strings.Contains(err.Error(), "controller.quorum.voters") {
		t.Fatalf("local start on a quorum data dir: %v", err)
	}
	// The refused starts left both dirs usable in their own mode.
	b, err = strata.Start(strata.Options{Dir: raftDir, Properties: quorum})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = strata.Start(strata.Options{Dir: local})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}
