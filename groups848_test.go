package strata_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerGroupProps makes KIP-848 members heartbeat every 250 ms, so that
// reconciliation steps take a fraction of a second.
func consumerGroupProps() map[string]string {
	p := groupProps()
	p["group.consumer.heartbeat.interval.ms"] = "250"
	p["group.consumer.session.timeout.ms"] = "6000"
	return p
}

// consumerGroupStable waits until ConsumerGroupDescribe shows the group
// Stable with the named members (by client id), each at the assignment
// epoch, every partition of topic owned by exactly one of them.
func consumerGroupStable(t *testing.T, cl *kgo.Client, group, topic string, partitions int, clients ...string) map[string][]int32 {
	t.Helper()
	var got map[string][]int32
	waitFor(t, 30*time.Second, fmt.Sprintf("consumer group %s stable with %v", group, clients), func() bool {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{group}
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			return false
		}
		d := resp.Groups[0]
		if d.State != "Stable" || len(d.Members) != len(clients) {
			return false
		}
		got = map[string][]int32{}
		owners := map[int32]int{}
		for _, m := range d.Members {
			if m.MemberEpoch != d.AssignmentEpoch {
				return false
			}
			found := false
			for _, c := range clients {
				found = found || c == m.ClientID
			}
			if !found {
				return false
			}
			for _, tp := range m.Assignment.TopicPartitions {
				if tp.Topic != topic {
					continue
				}
				for _, p := range tp.Partitions {
					owners[p]++
					got[m.ClientID] = append(got[m.ClientID], p)
				}
			}
		}
		if len(owners) != partitions {
			return false
		}
		for p, n := range owners {
			if n != 1 {
				t.Fatalf("partition %d owned by %d members: %v", p, n, got)
			}
		}
		return true
	})
	return got
}

// TestConsumerGroupProtocol runs franz-go's KIP-848 consumer (server-side
// assignment) with both server assignors: three members share a
// 12-partition topic across a join and a leave, every record consumed
// exactly once.
func TestConsumerGroupProtocol(t *testing.T) {
	for name, balancer := range map[string]func() kgo.GroupBalancer{
		"uniform": func() kgo.GroupBalancer { return kgo.StickyBalancer() },
		"range":   kgo.RangeBalancer,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, t.TempDir(), consumerGroupProps())
			const topic, group, partitions, perPhase = "kip848", "kip848-group", 12, 600
			createPartitioned(t, b.Addr(), topic, partitions)
			admin := newClient(t, b.Addr())
			l := newLedger()
			opts := []kgo.Opt{kgo.Balancers(balancer()), kgo.ServerSideBalancer()}

			produceSpread(t, b.Addr(), topic, "a", perPhase)
			m1 := startMember(t, b.Addr(), group, topic, "m1", l, opts...)
			m2 := startMember(t, b.Addr(), group, topic, "m2", l, opts...)
			consumerGroupStable(t, admin, group, topic, partitions, "m1", "m2")
			waitFor(t, 30*time.Second, "phase 1 consumed", func() bool { return l.total() >= perPhase })

			m3 := startMember(t, b.Addr(), group, topic, "m3", l, opts...)
			consumerGroupStable(t, admin, group, topic, partitions, "m1", "m2", "m3")
			produceSpread(t, b.Addr(), topic, "b", perPhase)
			waitFor(t, 30*time.Second, "phase 2 consumed", func() bool { return l.total() >= 2*perPhase })
			if l.of("m3") == 0 {
				t.Fatal("the member that joined consumed nothing")
			}

			m1.stop()
			consumerGroupStable(t, admin, group, topic, partitions, "m2", "m3")
			before := l.of("m1")
			produceSpread(t, b.Addr(), topic, "c", perPhase)
			waitFor(t, 30*time.Second, "phase 3 consumed", func() bool { return l.total() >= 3*perPhase })
			if l.of("m1") != before {
				t.Fatal("a member that left kept consuming")
			}
			m2.stop()
			m3.stop()

			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.seen) != 3*perPhase {
				t.Fatalf("consumed %d distinct records, produced %d", len(l.seen), 3*perPhase)
			}
			for k, n := range l.seen {
				if n != 1 {
					t.Fatalf("record %s consumed %d times", k, n)
				}
			}
		})
	}
}

// TestConsumerGroupRevokesBeforeAssigning drives two KIP-848 members with
// raw heartbeats: partitions the second member's arrival takes from the
// first are not given to it until the first reports them revoked, and the
// protocol's misuses get Kafka's error codes.
func TestConsumerGroupRevokesBeforeAssigning(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), consumerGroupProps())
	createPartitioned(t, b.Addr(), "rv", 4)
	cl := newClient(t, b.Addr())
	ctx := ctxT(t)
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("rv")}}
	mdr, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	topicID := mdr.Topics[0].TopicID

	type hbResult struct {
		code     int16
		epoch    int32
		assigned []int32 // nil: no assignment in the response
	}
	hb := func(member string, epoch int32, owned []int32, assignor string) hbResult {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version = 1
		req.Group, req.MemberID, req.MemberEpoch = "rv-group", member, epoch
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"rv"}
		if assignor != "" {
			req.ServerAssignor = &assignor
		}
		if owned != nil {
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID, Partitions: owned}}
			if epoch == 0 {
				req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			}
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		r := hbResult{code: resp.ErrorCode, epoch: resp.MemberEpoch}
		if resp.Assignment != nil {
			r.assigned = []int32{}
			for _, at := range resp.Assignment.Topics {
				r.assigned = append(r.assigned, at.Partitions...)
			}
		}
		return r
	}
	want := func(what string, got hbResult, code error, assigned []int32) {
		t.Helper()
		if kerr.ErrorForCode(got.code) != code {
			t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got.code), code)
		}
		if assigned != nil && !slices.Equal(got.assigned, assigned) {
			t.Fatalf("%s: assigned %v, want %v", what, got.assigned, assigned)
		}
	}

	want("unknown assignor", hb("a", 0, []int32{}, "nope"), kerr.UnsupportedAssignor, nil)
	a := hb("a", 0, []int32{}, "range")
	want("first member joins", a, nil, []int32{0, 1, 2, 3})
	want("a owns everything", hb("a", a.epoch, []int32{0, 1, 2, 3}, ""), nil, nil)

	bj := hb("b", 0, []int32{}, "range")
	want("second member joins: nothing is free yet", bj, nil, []int32{})
	ar := hb("a", a.epoch, []int32{0, 1, 2, 3}, "")
	want("first member is told to revoke 2 and 3", ar, nil, []int32{0, 1})
	if ar.epoch != a.epoch {
		t.Fatalf("epoch moved to %d before the revocation completed", ar.epoch)
	}
	want("b still waits", hb("b", bj.epoch, []int32{}, ""), nil, nil)
	ad := hb("a", a.epoch, []int32{0, 1}, "")
	want("a reports 2 and 3 revoked", ad, nil, nil)
	if ad.epoch <= a.epoch {
		t.Fatalf("a's epoch %d did not advance after revoking", ad.epoch)
	}
	bg := hb("b", bj.epoch, []int32{}, "")
	want("b gets the released partitions", bg, nil, []int32{2, 3})

	// The previous epoch with owned partitions it still holds is
	// accepted (the response with the new epoch may have been lost);
	// an epoch the member never had is fenced.
	want("previous epoch, holding a subset", hb("a", a.epoch, []int32{0, 1}, ""), nil, nil)
	want("previous epoch, holding revoked partitions", hb("a", a.epoch, []int32{0, 1, 2}, ""), kerr.FencedMemberEpoch, nil)
	want("future epoch", hb("a", ad.epoch+5, []int32{0, 1}, ""), kerr.FencedMemberEpoch, nil)
	want("unknown member", hb("nobody", 5, []int32{}, ""), kerr.UnknownMemberID, nil)
	inv := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	inv.Version, inv.Group, inv.MemberID = 1, "rv-group", "c" // epoch 0 without a subscription
	if r, err := inv.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("join without subscription: %+v %v", r, err)
	}

	commit := func(member string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "rv-group", member, epoch
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "rv", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 2, Offset: 1}}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit("b", bg.epoch); code != 0 {
		t.Fatalf("commit at the member's epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit("b", bg.epoch+1); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit at a future epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis = "rv-group", "consumer", 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	if r, err := join.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic JoinGroup into a consumer group: %+v %v", r, err)
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.TypesFilter = []string{"consumer"}
	if r, err := lg.RequestWith(ctx, cl); err != nil || len(r.Groups) != 1 || r.Groups[0].GroupType != "consumer" || r.Groups[0].GroupState != "Stable" {
		t.Fatalf("ListGroups of consumer groups: %+v %v", r, err)
	}

	want("a leaves", hb("a", -1, nil, ""), nil, nil)
	bl := hb("b", bg.epoch, []int32{2, 3}, "")
	want("b takes over a's partitions", bl, nil, []int32{0, 1, 2, 3})
}

// TestConsumerGroupDeadMemberExpires cuts a KIP-848 member off the network:
// after group.consumer.session.timeout.ms (6 s here) its partitions go to
// the survivor.
func TestConsumerGroupDeadMemberExpires(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), consumerGroupProps())
	const topic, group, partitions = "dead848", "dead848-group", 6
	createPartitioned(t, b.Addr(), topic, partitions)
	admin := newClient(t, b.Addr())
	l := newLedger()
	d := &killableDialer{}
	opts := []kgo.Opt{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()}
	victim := startMember(t, b.Addr(), group, topic, "victim", l, append(opts, kgo.Dialer(d.dial))...)
	startMember(t, b.Addr(), group, topic, "survivor", l, opts...)
	consumerGroupStable(t, admin, group, topic, partitions, "victim", "survivor")
	d.kill()
	killed := time.Now()
	consumerGroupStable(t, admin, group, topic, partitions, "survivor")
	took := time.Since(killed)
	t.Logf("dead member's partitions reassigned %v after the kill", took.Round(time.Millisecond))
	if took < 5*time.Second || took > 16*time.Second {
		t.Fatalf("reassigned after %v; the session timeout is 6 s", took)
	}
	produceSpread(t, b.Addr(), topic, "after", 120)
	waitFor(t, 30*time.Second, "survivor consumes every partition", func() bool { return l.of("survivor") >= 120 })
	victim.cancel()
}
