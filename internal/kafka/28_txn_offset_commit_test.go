package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// txnOffsetCommit commits offset of t-0 for groupID in producer pid's
// transaction, and returns the partition's code.
func txnOffsetCommit(t *testing.T, h *Handler, groupID string, pid int64, epoch int16, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group = "tx", groupID
	req.ProducerID, req.ProducerEpoch = pid, epoch
	req.Generation = -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	resp := roundTrip[*kmsg.TxnOffsetCommitResponse](t, h, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("TxnOffsetCommit answered %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchStable is fetchOffset with require_stable.
func fetchStable(t *testing.T, h *Handler, groupID string, version int16) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.RequireStable = version, true
	if version >= 8 {
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: groupID, MemberEpoch: -1, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
		resp := roundTrip[*kmsg.OffsetFetchResponse](t, h, req)
		g := resp.Groups[0]
		if g.ErrorCode != 0 {
			return -1, g.ErrorCode
		}
		return g.Topics[0].Partitions[0].Offset, g.Topics[0].Partitions[0].ErrorCode
	}
	req.Group = groupID
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	resp := roundTrip[*kmsg.OffsetFetchResponse](t, h, req)
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].Offset, resp.Topics[0].Partitions[0].ErrorCode
}

// TestTxnOffsetCommit: a TxnOffsetCommit is written to __consumer_offsets
// as the producer's transactional batch (the partition takes several of
// one transaction, and refuses an older epoch), is invisible to
// OffsetFetch (UNSTABLE_OFFSET_COMMIT with require_stable) until the
// group coordinator is told of the COMMIT marker, and then committed.
func TestTxnOffsetCommit(t *testing.T) {
	h, _ := openGroupHandler(t, t.TempDir(), 1)
	if _, err := h.createTopic(context.Background(), "t", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	findCoordinator(t, h, 4, "g") // creates __consumer_offsets
	mustCode(t, "commit", commitOffset(t, h, "g", 5), 0)
	const pid = 1000
	mustCode(t, "TxnOffsetCommit", txnOffsetCommit(t, h, "g", pid, 1, 10), 0)
	mustCode(t, "TxnOffsetCommit again", txnOffsetCommit(t, h, "g", pid, 1, 11), 0)
	mustCode(t, "TxnOffsetCommit of an older epoch", txnOffsetCommit(t, h, "g", pid, 0, 12), kerr.InvalidProducerEpoch.Code)

	p := group.PartitionFor("g", 4)
	part := h.broker.Partition(log.TopicPartition{Topic: group.Topic, Partition: p})
	var txnBatches int
	if err := part.Log.Scan(0, func(b record.Batch) error {
		if b.IsTransactional() {
			txnBatches++
			if b.ProducerID() != pid || b.ProducerEpoch() != 1 {
				t.Errorf("transactional batch of producer %d epoch %d", b.ProducerID(), b.ProducerEpoch())
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if txnBatches != 2 {
		t.Fatalf("%d transactional batches in the log, want 2", txnBatches)
	}

	if off, code := fetchOffset(t, h, "g"); code != 0 || off != 5 {
		t.Fatalf("OffsetFetch during the transaction: %d, %v", off, kerr.ErrorForCode(code))
	}
	for _, v := range []int16{7, 8} {
		if off, code := fetchStable(t, h, "g", v); code != kerr.UnstableOffsetCommit.Code || off != -1 {
			t.Fatalf("OffsetFetch v%d require_stable: %d, %v", v, off, kerr.ErrorForCode(code))
		}
	}
	h.groups.CompleteTxn(p, pid, 1, true)
	for _, v := range []int16{7, 8} {
		if off, code := fetchStable(t, h, "g", v); code != 0 || off != 11 {
			t.Fatalf("OffsetFetch v%d after COMMIT: %d, %v", v, off, kerr.ErrorForCode(code))
		}
	}

	// Checks of the group: v3's generation of an unknown group.
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group, req.ProducerID, req.Generation, req.MemberID = "tx", "nogroup", pid, 4, "m"
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if r := roundTrip[*kmsg.TxnOffsetCommitResponse](t, h, req); r.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("unknown group with a generation: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	// Unknown topic.
	req.Group, req.Generation, req.MemberID = "g", -1, ""
	req.Topics[0].Topic = "nope"
	if r := roundTrip[*kmsg.TxnOffsetCommitResponse](t, h, req); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
}
