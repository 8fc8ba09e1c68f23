package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/controller"
)

// setPartition proposes a partition's leader and ISR directly.
func setPartition(t *testing.T, h *Handler, topic string, p, leader int32, isr ...int32) {
	t.Helper()
	if _, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		rec := records.NewPartitionChange(records.UUID(im.Topic(topic).ID), p)
		rec.Leader, rec.Isr = leader, isr
		return []records.Record{rec}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAutoLeaderRebalance: the active controller's loop moves leadership
// back to the preferred replica every leader.imbalance.check.interval.
func TestAutoLeaderRebalance(t *testing.T) {
	h := quorumHandlerWith(t, 3, nil, func(c *controller.Config) {
		c.AutoLeaderRebalance, c.LeaderImbalanceCheckInterval, c.SessionTimeout = true, 20*time.Millisecond, time.Hour
	})
	mustCode(t, "create", createTopic(t, h, false, "bal", -1, -1, []int32{2, 1}).ErrorCode, 0)
	setPartition(t, h, "bal", 0, 1)
	if p := h.meta.Image().Topic("bal").PartitionStates[0]; p.Leader != 1 {
		t.Fatalf("setup: %+v", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.ctrl.RunController(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for h.meta.Image().Topic("bal").PartitionStates[0].Leader != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("leadership not moved back: %+v", h.meta.Image().Topic("bal").PartitionStates[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBalanceLeadersOff: without auto.leader.rebalance.enable nothing
// moves; with unclean.leader.election.enable a leaderless partition whose
// ISR is fenced gets a replica outside it as leader.
func TestBalanceLeadersOff(t *testing.T) {
	h := quorumHandlerWith(t, 3, []int32{3}, func(c *controller.Config) { c.UncleanLeaderElection = true })
	mustCode(t, "create", createTopic(t, h, false, "u", -1, -1, []int32{2, 1}, []int32{3, 2}).ErrorCode, 0)
	setPartition(t, h, "u", 0, 1)
	setPartition(t, h, "u", 1, -1, 3)
	if n, err := h.ctrl.BalanceLeaders(); err != nil || n != 1 {
		t.Fatalf("BalanceLeaders: %d changes, %v; want the unclean election only", n, err)
	}
	ps := h.meta.Image().Topic("u").PartitionStates
	if ps[0].Leader != 1 {
		t.Fatalf("rebalanced without auto.leader.rebalance.enable: %+v", ps[0])
	}
	if ps[1].Leader != 2 || !slices.Equal(ps[1].ISR, []int32{2}) || ps[1].LeaderRecoveryState != 1 {
		t.Fatalf("unclean election: %+v", ps[1])
	}
}
