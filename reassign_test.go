package strata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// reassign sends one partition's reassignment (nil replicas cancels) and
// returns its error.
func reassign(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, p int32, replicas []int32) error {
	t.Helper()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, p, replicas)
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatalf("reassign %s-%d to %v: %v", topic, p, replicas, err)
	}
	return rs[topic][p].Err
}

// listAll lists every reassignment in progress (a null topic list).
func listAll(t *testing.T, ctx context.Context, cl *kgo.Client) []kmsg.ListPartitionReassignmentsResponseTopic {
	t.Helper()
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("list reassignments: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Topics
}

// waitAssignment waits until every node's metadata gives topic's
// partition 0 the replicas want, with a leader among them, and no
// reassignment of it is listed.
func waitAssignment(t *testing.T, ctx context.Context, c *strata.Cluster, topic string, want []int32) {
	t.Helper()
	for _, n := range c.Nodes() {
		adm := kadm.NewClient(newClient(t, n.Addr()))
		for {
			md, err := adm.Metadata(ctx, topic)
			if err == nil {
				p := md.Topics[topic].Partitions[0]
				if slices.Equal(p.Replicas, want) && slices.Contains(want, p.Leader) {
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d never showed %s-0 on %v: %+v %v", n.ID(), topic, want, md.Topics[topic].Partitions, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rs, err := kadm.NewClient(newClient(t, c.Nodes()[0].Addr())).ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || len(rs[topic]) != 0 {
		t.Fatalf("reassignment of %s-0 still listed: %v %v", topic, rs, err)
	}
}

// waitNoDir waits until node has no live directory of topic's partitions.
func waitNoDir(t *testing.T, ctx context.Context, n *strata.Node, topic string) {
	t.Helper()
	for len(partitionDirs(t, n.Dir(), topic+"-")) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("node %d still has %v", n.ID(), partitionDirs(t, n.Dir(), topic+"-"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Partition reassignment (KIP-455) on three nodes, through kadm and
// forwarded from nodes that are not the controller: a single replica
// moves to another node while an acks=all producer writes, a
// reassignment held in progress (its new replica cut off from the leader)
// is listed and then completes byte for byte, one is cancelled, and two
// replicas move with the leader among those removed.
func TestReassignPartitions(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := others(ctrl)
	src, dst := o[0], o[1] // neither is the controller, so a cut between them leaves heartbeats alone
	admCl := newClient(t, c.Node(src).Addr())
	adm := kadm.NewClient(admCl)

	t.Run("move RF 1 while producing", func(t *testing.T) {
		createAssigned(t, ctx, admCl, "mv", []int32{src}, nil)
		p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("mv"))
		var (
			mu    sync.Mutex
			acked []string
			wg    sync.WaitGroup
		)
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("v%d", i)
				if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
					t.Errorf("produce %s: %v", v, err)
					return
				}
				mu.Lock()
				acked = append(acked, v)
				mu.Unlock()
			}
		}()
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 50 || ctx.Err() != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := reassign(t, ctx, adm, "mv", 0, []int32{dst}); err != nil {
			t.Fatal(err)
		}
		waitAssignment(t, ctx, c, "mv", []int32{dst})
		time.Sleep(200 * time.Millisecond) // a few more writes on the new leader
		close(stop)
		wg.Wait()
		waitNoDir(t, ctx, c.Node(src), "mv")

		cons := newClient(t, c.Node(ctrl).Addr(), kgo.ConsumeTopics("mv"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		var got []string
		for len(got) < len(acked) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d acknowledged records", len(got), len(acked))
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if !slices.Equal(got, acked) {
			t.Fatalf("read %d records, not the %d acknowledged in order", len(got), len(acked))
		}
	})

	t.Run("held in progress, listed, then byte-equal", func(t *testing.T) {
		createAssigned(t, ctx, admCl, "held", []int32{src}, nil)
		p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("held"))
		for i := range 100 {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "h%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		c.Cut(src, dst)
		if err := reassign(t, ctx, adm, "held", 0, []int32{dst}); err != nil {
			t.Fatal(err)
		}
		// Writes go on while the new replica cannot fetch.
		for i := 100; i < 150; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "h%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		for _, n := range c.Nodes() {
			topics := listAll(t, ctx, newClient(t, n.Addr()))
			if len(topics) != 1 || topics[0].Topic != "held" || len(topics[0].Partitions) != 1 {
				t.Fatalf("node %d lists %+v", n.ID(), topics)
			}
			lp := topics[0].Partitions[0]
			if !slices.Equal(lp.Replicas, []int32{dst, src}) || !slices.Equal(lp.AddingReplicas, []int32{dst}) || !slices.Equal(lp.RemovingReplicas, []int32{src}) {
				t.Fatalf("node %d lists %+v", n.ID(), lp)
			}
		}
		if n := c.Node(ctrl); n.HTTPAddr() != "" {
			if got := scrape(t, n.HTTPAddr())["strata_partitions_reassigning"]; got != 1 {
				t.Errorf("strata_partitions_reassigning = %v during the move, want 1", got)
			}
		}
		before := replicaLog(t, c.Node(src).Dir(), "held", 0)
		c.Heal(src, dst)
		waitAssignment(t, ctx, c, "held", []int32{dst})
		waitNoDir(t, ctx, c.Node(src), "held")
		if after := replicaLog(t, c.Node(dst).Dir(), "held", 0); !bytes.Equal(after, before) {
			t.Fatalf("new replica holds %d bytes, the old one held %d", len(after), len(before))
		}
	})

	t.Run("cancel", func(t *testing.T) {
		createAssigned(t, ctx, admCl, "cn", []int32{src}, nil)
		p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("cn"))
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		c.Cut(src, dst)
		defer c.Heal(src, dst)
		if err := reassign(t, ctx, adm, "cn", 0, []int32{dst}); err != nil {
			t.Fatal(err)
		}
		// The new replica exists (empty) on dst until the cancel.
		for len(partitionDirs(t, c.Node(dst).Dir(), "cn-")) == 0 {
			if ctx.Err() != nil {
				t.Fatal("no replica created on the new node")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := reassign(t, ctx, adm, "cn", 0, nil); err != nil {
			t.Fatal(err)
		}
		waitAssignment(t, ctx, c, "cn", []int32{src})
		waitNoDir(t, ctx, c.Node(dst), "cn")
		if err := reassign(t, ctx, adm, "cn", 0, nil); !errors.Is(err, kerr.NoReassignmentInProgress) {
			t.Fatalf("second cancel: %v", err)
		}
		if len(partitionDirs(t, c.Node(src).Dir(), "cn-")) != 1 {
			t.Fatal("the original replica is gone")
		}
	})

	t.Run("RF 2, leader removed", func(t *testing.T) {
		createAssigned(t, ctx, admCl, "two", []int32{src, dst}, nil)
		p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("two"))
		for i := range 100 {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "t%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := reassign(t, ctx, adm, "two", 0, []int32{ctrl, dst}); err != nil {
			t.Fatal(err)
		}
		waitAssignment(t, ctx, c, "two", []int32{ctrl, dst})
		waitNoDir(t, ctx, c.Node(src), "two")
		waitReplicasEqual(t, c, "two", 1, 30*time.Second)
		md, err := adm.Metadata(ctx, "two")
		if err != nil {
			t.Fatal(err)
		}
		if l := md.Topics["two"].Partitions[0].Leader; l != ctrl {
			t.Errorf("leader %d, want %d (first of the new replicas in the ISR)", l, ctrl)
		}
	})

	t.Run("removed while down: deleted once back", func(t *testing.T) {
		createAssigned(t, ctx, admCl, "away", []int32{src, dst}, nil)
		p := newClient(t, c.Node(ctrl).Addr(), kgo.DefaultProduceTopic("away"))
		for i := range 20 {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "a%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		waitReplicasEqual(t, c, "away", 1, 30*time.Second)
		if err := c.Node(src).Stop(); err != nil {
			t.Fatal(err)
		}
		// src is fenced and out of the ISR; ctrl joins, and the move
		// completes without src.
		if err := reassign(t, ctx, kadm.NewClient(newClient(t, c.Node(dst).Addr())), "away", 0, []int32{dst, ctrl}); err != nil {
			t.Fatal(err)
		}
		for {
			md, err := kadm.NewClient(newClient(t, c.Node(dst).Addr())).Metadata(ctx, "away")
			if err == nil && slices.Equal(md.Topics["away"].Partitions[0].Replicas, []int32{dst, ctrl}) {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("the move never completed")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(partitionDirs(t, c.Node(src).Dir(), "away-")) != 1 {
			t.Fatal("the stopped node's copy is not on disk")
		}
		if err := c.Node(src).Restart(); err != nil {
			t.Fatal(err)
		}
		waitNoDir(t, ctx, c.Node(src), "away")
		waitReplicasEqual(t, c, "away", 1, 30*time.Second)
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			topic    string
			replicas []int32
			want     error
		}{
			{"nope", []int32{1}, kerr.UnknownTopicOrPartition},
			{"mv", []int32{dst, dst}, kerr.InvalidReplicaAssignment},
			{"mv", []int32{9}, kerr.InvalidReplicaAssignment},
			{"mv", []int32{}, kerr.InvalidReplicaAssignment},
			{"mv", nil, kerr.NoReassignmentInProgress},
		} {
			if err := reassign(t, ctx, adm, tc.topic, 0, tc.replicas); !errors.Is(err, tc.want) {
				t.Errorf("%s to %v: %v, want %v", tc.topic, tc.replicas, err, tc.want)
			}
		}
	})
}
