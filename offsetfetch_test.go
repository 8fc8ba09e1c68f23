package strata_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetFetchChecksMemberEpoch sends OffsetFetch v9 as a KIP-848
// member would: the member's current epoch is accepted, another epoch is
// STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID, and a fetch
// without a member (admin clients) is not checked (Kafka's
// ConsumerGroup.validateOffsetFetch). Before v9 nothing is checked.
func TestOffsetFetchChecksMemberEpoch(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), consumerGroupProps())
	const topic, group = "of9", "of9-group"
	createPartitioned(t, b.Addr(), topic, 2)
	cl := newClient(t, b.Addr())
	ctx := ctxT(t)

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version = 1
	hb.Group, hb.MemberID, hb.MemberEpoch = group, "member-a", 0
	hb.RebalanceTimeoutMillis = 30000
	hb.SubscribedTopicNames = []string{topic}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hbr, err := hb.RequestWith(ctx, cl)
	if err != nil || hbr.ErrorCode != 0 || hbr.MemberEpoch <= 0 {
		t.Fatalf("join: %v %+v", err, hbr)
	}
	epoch := hbr.MemberEpoch

	fetch := func(version int16, member *string, memberEpoch int32) error {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = version
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = group, member, memberEpoch
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0, 1}}}
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Groups) != 1 {
			t.Fatalf("OffsetFetch v%d answered %d groups", version, len(resp.Groups))
		}
		return kerr.ErrorForCode(resp.Groups[0].ErrorCode)
	}
	for _, c := range []struct {
		what    string
		version int16
		member  *string
		epoch   int32
		want    error
	}{
		{"current epoch", 9, kmsg.StringPtr("member-a"), epoch, nil},
		{"older epoch", 9, kmsg.StringPtr("member-a"), epoch - 1, kerr.StaleMemberEpoch},
		{"newer epoch", 9, kmsg.StringPtr("member-a"), epoch + 1, kerr.StaleMemberEpoch},
		{"unknown member", 9, kmsg.StringPtr("member-z"), epoch, kerr.UnknownMemberID},
		{"admin fetch", 9, nil, -1, nil},
		{"empty member id", 9, kmsg.StringPtr(""), -1, nil},
		{"v8 has no member", 8, nil, -1, nil},
	} {
		if err := fetch(c.version, c.member, c.epoch); err != c.want {
			t.Errorf("%s: OffsetFetch v%d answered %v, want %v", c.what, c.version, err, c.want)
		}
	}
}
