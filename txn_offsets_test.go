package strata_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnOffsetCommitACLs: TxnOffsetCommit on a real broker needs WRITE
// on the transactional id, READ on the group and READ on the topic, as
// Kafka's KafkaApis checks them; the offsets an allowed principal commits
// are pending (OffsetFetch require_stable: UNSTABLE_OFFSET_COMMIT) until
// the transaction's marker.
func TestTxnOffsetCommitACLs(t *testing.T) {
	b := startBroker(t, t.TempDir(), aclProps)
	addrs := []string{b.Addr()}
	ctx := context.Background()
	admin := kadm.NewClient(principalClient(t, addrs, "User:admin"))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"User:alice", "User:carol", "User:dave"} {
		mustCreateACLs(t, admin, kadm.NewACLs().Allow(p).TransactionalIDs("tx").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	}
	for _, p := range []string{"User:alice", "User:carol"} {
		mustCreateACLs(t, admin, kadm.NewACLs().Allow(p).Groups("g").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	}
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

	adminCl := principalClient(t, addrs, "User:admin")
	commit := func() kmsg.Request {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = "tx", "g", 5000, 0
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = 17
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	code := func(r kmsg.Response) int16 {
		return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
		brokerRequest(t, adminCl, fc) // creates __consumer_offsets
		c := code(brokerRequest(t, adminCl, commit()))
		if c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin TxnOffsetCommit: %v", kerr.ErrorForCode(c))
		}
	}
	for _, tc := range []struct {
		principal string
		want      int16
	}{
		{"User:alice", 0},
		{"User:carol", kerr.TopicAuthorizationFailed.Code},
		{"User:dave", kerr.GroupAuthorizationFailed.Code},
		{"User:bob", kerr.TransactionalIDAuthorizationFailed.Code},
	} {
		if got := code(brokerRequest(t, principalClient(t, addrs, tc.principal), commit())); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.principal, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.RequireStable = true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group, rg.MemberEpoch = "g", -1
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}
	fetch.Groups = append(fetch.Groups, rg)
	fetch.Group, fetch.Topics = "g", []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	fr := brokerRequest(t, adminCl, fetch).(*kmsg.OffsetFetchResponse)
	var got int16
	if len(fr.Groups) > 0 {
		got = fr.Groups[0].Topics[0].Partitions[0].ErrorCode
	} else {
		got = fr.Topics[0].Partitions[0].ErrorCode
	}
	if got != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("OffsetFetch require_stable during the transaction: %v", kerr.ErrorForCode(got))
	}
}
