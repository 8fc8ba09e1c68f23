package group

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// txnCommitReq is a TxnOffsetCommit of offset for partitions 0..n-1 of
// topic "t", by producer pid (epoch 0), without member or generation.
func txnCommitReq(group string, pid int64, offset int64, n int) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID = fmt.Sprintf("txn-%d", pid)
	req.Group, req.ProducerID, req.ProducerEpoch = group, pid, 0
	req.Generation, req.MemberID = -1, ""
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := range n {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = int32(p), offset, 7
		meta := fmt.Sprintf("m%d", offset)
		rp.Metadata = &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// txnCodes is every partition's code of a TxnOffsetCommit answer.
func txnCodes(resp *kmsg.TxnOffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func wantTxnCodes(t *testing.T, what string, resp *kmsg.TxnOffsetCommitResponse, want int16) {
	t.Helper()
	codes := txnCodes(resp)
	if len(codes) == 0 {
		t.Fatalf("%s: no partition answered", what)
	}
	for _, c := range codes {
		if c != want {
			t.Fatalf("%s: codes %v, want %s", what, codes, codeName(want))
		}
	}
}

// fetched is OffsetFetch's answer for t-p: offset and code.
func fetched(t *testing.T, c *Coordinator, group string, p int32, stable bool) (int64, int16) {
	t.Helper()
	got, code := c.FetchOffsetsStable(group, nil, -1, []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{p}}}, stable)
	if code != 0 || len(got) != 1 || len(got[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch: %s %+v", codeName(code), got)
	}
	return got[0].Partitions[0].Offset, got[0].Partitions[0].ErrorCode
}

func wantOffset(t *testing.T, c *Coordinator, group string, p int32, want int64) {
	t.Helper()
	if got, code := fetched(t, c, group, p, false); got != want || code != 0 {
		t.Fatalf("%s t-%d: offset %d (%s), want %d", group, p, got, codeName(code), want)
	}
}

// markerBatch is the control batch the transaction coordinator's
// WriteTxnMarkers writes (Kafka's EndTransactionMarker).
func markerBatch(t testing.TB, pid int64, epoch int16, commit bool) []byte {
	t.Helper()
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], markerCommit)
	}
	value := make([]byte, 6) // version 0, coordinator epoch 0
	b, err := buildBatch(record.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true},
		record.NewRecord{Key: key, Value: value, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	const attributesPos = 21
	b[attributesPos+1] |= 0x20 // control
	b.UpdateCRC()
	if !b.IsControl() || !b.IsTransactional() {
		t.Fatal("not a control batch")
	}
	return b
}

// marker appends a marker to partition p as Part P's WriteTxnMarkers
// does, then tells the coordinator.
func (h *harness) marker(p int32, pid int64, commit bool) {
	h.t.Helper()
	h.st.mu.Lock()
	h.st.batches[p] = append(h.st.batches[p], markerBatch(h.t, pid, 0, commit))
	h.st.mu.Unlock()
	h.c.CompleteTxn(p, pid, 0, commit)
}

func TestTxnOffsetsPendingUntilCommit(t *testing.T) {
	h := newHarness(t, nil)
	p := PartitionFor("g", h.cfg.Partitions)
	wantCode(t, "commit", h.commit("g", "", -1, nil, 7), 0) // t-0 at 10
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 42, 100, 2)), 0)

	// The batch written is the producer's transactional batch.
	bs := h.st.partitions()[p]
	b := record.Batch(bs[len(bs)-1])
	if !b.IsTransactional() || b.ProducerID() != 42 || b.ProducerEpoch() != 0 || b.BaseSequence() != -1 || b.RecordCount() != 2 {
		t.Fatalf("batch: transactional %v producer %d epoch %d seq %d records %d", b.IsTransactional(), b.ProducerID(), b.ProducerEpoch(), b.BaseSequence(), b.RecordCount())
	}

	// Pending: not visible, and unstable with require_stable.
	wantOffset(t, h.c, "g", 0, 10)
	wantOffset(t, h.c, "g", 1, -1)
	for _, tp := range []int32{0, 1} {
		if off, code := fetched(t, h.c, "g", tp, true); code != kerr.UnstableOffsetCommit.Code || off != -1 {
			t.Fatalf("require_stable t-%d: %d %s", tp, off, codeName(code))
		}
	}
	if _, code := fetched(t, h.c, "g", 2, true); code != 0 {
		t.Fatalf("require_stable of a partition without pending offsets: %s", codeName(code))
	}
	// All partitions (null topics): committed ones only, t-0 unstable.
	all, _ := h.c.FetchOffsetsStable("g", nil, -1, nil, true)
	if len(all) != 1 || len(all[0].Partitions) != 1 || all[0].Partitions[0].ErrorCode != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("all offsets, require_stable: %+v", all)
	}

	// Another producer's marker, or a marker elsewhere, changes nothing.
	h.marker(p, 43, true)
	h.marker((p+1)%h.cfg.Partitions, 42, true)
	wantOffset(t, h.c, "g", 1, -1)

	h.marker(p, 42, true)
	wantOffset(t, h.c, "g", 0, 100)
	wantOffset(t, h.c, "g", 1, 100)
	if _, code := fetched(t, h.c, "g", 0, true); code != 0 {
		t.Fatalf("require_stable after COMMIT: %s", codeName(code))
	}
	got, _ := h.c.FetchOffsets("g", []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{1}}})
	if rp := got[0].Partitions[0]; rp.LeaderEpoch != 7 || rp.Metadata == nil || *rp.Metadata != "m100" {
		t.Fatalf("committed t-1: %+v", rp)
	}
	if n, _ := h.c.PendingTxnOffsets("g"); n != 0 {
		t.Fatalf("%d offsets still pending", n)
	}

	// An aborted transaction leaves the committed offsets.
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 42, 200, 2)), 0)
	h.marker(p, 42, false)
	wantOffset(t, h.c, "g", 0, 100)
	if n, _ := h.c.PendingTxnOffsets("g"); n != 0 {
		t.Fatalf("%d offsets still pending after ABORT", n)
	}

	// The same outcome after a restart, with one transaction left open.
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 44, 300, 1)), 0)
	r := newReplayLogs(t)
	c2 := r.load(h.st, h.cfg)
	defer c2.Close()
	wantOffset(t, c2, "g", 0, 100)
	wantOffset(t, c2, "g", 1, 100)
	if _, code := fetched(t, c2, "g", 0, true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("open transaction after a restart: %s", codeName(code))
	}
	c2.CompleteTxn(p, 44, 0, true)
	wantOffset(t, c2, "g", 0, 300)
}

// TestTxnCommitOrder: a COMMIT applies a transactional offset only over
// an older one; an OffsetCommit written after it wins, live and replayed.
func TestTxnCommitOrder(t *testing.T) {
	h := newHarness(t, nil)
	p := PartitionFor("g", h.cfg.Partitions)
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 7, 100, 1)), 0)
	wantCode(t, "commit", h.commit("g", "", -1, nil, 7), 0) // t-0 at 10, after
	h.marker(p, 7, true)
	wantOffset(t, h.c, "g", 0, 10)
	c2 := loadCoordinator(t, h.st, h.cfg)
	defer c2.Close()
	wantOffset(t, c2, "g", 0, 10)
}

// TestTxnReplayMarkers loads a partition holding interleaved transactions
// of several producers and groups, their markers, tombstones and plain
// commits, and checks that each ends as the live coordinator left it.
func TestTxnReplayMarkers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Partitions = 1 })
	ok := func(resp *kmsg.TxnOffsetCommitResponse) { t.Helper(); wantTxnCodes(t, "TxnOffsetCommit", resp, 0) }
	ok(h.c.TxnCommit(txnCommitReq("a", 0, 11, 2))) // committed (producer id 0 is one)
	ok(h.c.TxnCommit(txnCommitReq("b", 0, 12, 1))) // committed, other group
	ok(h.c.TxnCommit(txnCommitReq("a", 2, 21, 3))) // aborted
	ok(h.c.TxnCommit(txnCommitReq("c", 3, 31, 1))) // left open
	h.marker(0, 2, false)
	h.marker(0, 0, true)
	ok(h.c.TxnCommit(txnCommitReq("only-txn", 4, 41, 1))) // a group with pending offsets only
	ok(h.c.TxnCommit(txnCommitReq("a", 5, 51, 1)))
	h.marker(0, 5, true) // a later transaction of the group: t-0 at 51
	check := func(c *Coordinator, when string) {
		t.Helper()
		for _, w := range []struct {
			group string
			p     int32
			want  int64
		}{{"a", 0, 51}, {"a", 1, 11}, {"a", 2, -1}, {"b", 0, 12}, {"c", 0, -1}, {"only-txn", 0, -1}} {
			if got, code := fetched(t, c, w.group, w.p, false); got != w.want || code != 0 {
				t.Fatalf("%s: %s t-%d at %d (%s), want %d", when, w.group, w.p, got, codeName(code), w.want)
			}
		}
		for _, g := range []string{"c", "only-txn"} {
			if _, code := fetched(t, c, g, 0, true); code != kerr.UnstableOffsetCommit.Code {
				t.Fatalf("%s: %s has no open transaction (%s)", when, g, codeName(code))
			}
		}
		if _, code := fetched(t, c, "a", 2, true); code != 0 {
			t.Fatalf("%s: aborted offsets still pending", when)
		}
	}
	check(h.c, "live")
	c2 := loadCoordinator(t, h.st, h.cfg)
	defer c2.Close()
	check(c2, "replayed")
	c2.CompleteTxn(0, 3, 0, true)
	c2.CompleteTxn(0, 4, 0, false)
	wantOffset(t, c2, "c", 0, 31)
	if n, err := c2.PendingTxnOffsets("only-txn"); n != 0 || err != nil {
		t.Fatalf("only-txn: %d pending (%v)", n, err)
	}
}

func TestTxnCommitChecks(t *testing.T) {
	h := newHarness(t, nil)
	// Not coordinator / loading.
	c := New(h.cfg)
	defer c.Close()
	wantTxnCodes(t, "partition not loaded", c.TxnCommit(txnCommitReq("g", 1, 1, 1)), kerr.NotCoordinator.Code)
	c.mu.Lock()
	c.parts[PartitionFor("g", h.cfg.Partitions)] = partLoading
	c.mu.Unlock()
	wantTxnCodes(t, "partition loading", c.TxnCommit(txnCommitReq("g", 1, 1, 1)), kerr.CoordinatorLoadInProgress.Code)

	wantTxnCodes(t, "empty group id", h.c.TxnCommit(txnCommitReq("", 1, 1, 1)), kerr.InvalidGroupID.Code)
	wantTxnCodes(t, "no producer id", h.c.TxnCommit(txnCommitReq("g", -1, 1, 1)), kerr.InvalidProducerIDMapping.Code)

	// Unknown group with a generation.
	req := txnCommitReq("nogroup", 1, 1, 1)
	req.Generation, req.MemberID = 3, "m"
	wantTxnCodes(t, "unknown group, generation 3", h.c.TxnCommit(req), kerr.IllegalGeneration.Code)

	ids, gen := h.stable("g", nil, nil)
	for _, tc := range []struct {
		name    string
		version int16
		member  string
		gen     int32
		inst    *string
		want    int16
	}{
		{"v3 current member", 3, ids[1], gen, nil, 0},
		{"v3 unknown member", 3, "who", gen, nil, kerr.UnknownMemberID.Code},
		{"v3 old generation", 3, ids[0], gen - 1, nil, kerr.IllegalGeneration.Code},
		{"v3 no member, no generation", 3, "", -1, nil, 0}, // transactional: not checked
		{"v3 unknown instance", 3, ids[0], gen, strp("i"), kerr.UnknownMemberID.Code},
		{"v2 fields ignored", 2, "who", 99, nil, 0},
	} {
		req := txnCommitReq("g", 9, 5, 1)
		req.Version, req.MemberID, req.Generation, req.InstanceID = tc.version, tc.member, tc.gen, tc.inst
		wantTxnCodes(t, tc.name, h.c.TxnCommit(req), tc.want)
	}

	// Per partition: unknown partitions and metadata too large.
	h2 := newHarness(t, func(c *Config) {
		c.PartitionExists = func(topic string, p int32) bool { return p == 0 }
		c.MaxMetadataSize = 5
	})
	req = txnCommitReq("g", 9, 5, 2)
	big := "too long metadata"
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Metadata = 0, &big
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	if got := txnCodes(h2.c.TxnCommit(req)); fmt.Sprint(got) != fmt.Sprint([]int16{0, kerr.UnknownTopicOrPartition.Code, kerr.OffsetMetadataTooLarge.Code}) {
		t.Fatalf("codes %v", got)
	}
	// An unknown partition is answered so even when the group is not
	// served here, as Kafka checks partitions first.
	c3 := New(h2.cfg)
	defer c3.Close()
	if got := txnCodes(c3.TxnCommit(req)); fmt.Sprint(got) != fmt.Sprint([]int16{kerr.NotCoordinator.Code, kerr.UnknownTopicOrPartition.Code, kerr.NotCoordinator.Code}) {
		t.Fatalf("codes without the partition loaded: %v", got)
	}
	if n, _ := h2.c.PendingTxnOffsets("g"); n != 1 {
		t.Fatalf("%d pending offsets, want 1", n)
	}

	// A failed write keeps nothing pending.
	h.st.failNext(1)
	wantTxnCodes(t, "failed write", h.c.TxnCommit(txnCommitReq("w", 9, 5, 1)), kerr.CoordinatorNotAvailable.Code)
	if n, _ := h.c.PendingTxnOffsets("w"); n != 0 {
		t.Fatalf("%d pending offsets after a failed write", n)
	}
}

// TestTxnOffsetsExpiryAndDeletion: expiration leaves a partition with a
// pending transactional offset and a group with an open transaction;
// DeleteGroups and OffsetDelete delete pending offsets too (a tombstone),
// as Kafka's OffsetMetadataManager does.
func TestTxnOffsetsExpiryAndDeletion(t *testing.T) {
	const retention = time.Hour
	h := newHarness(t, func(c *Config) { c.OffsetsRetention = retention })
	p := PartitionFor("g", h.cfg.Partitions)
	wantCode(t, "commit", h.commit("g", "", -1, nil, 7), 0) // t-0 at 10
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 8, 100, 2)), 0)
	h.clk.Advance(2 * retention)
	h.c.ExpireOffsets()
	wantOffset(t, h.c, "g", 0, 10)
	if h.state("g") == Dead {
		t.Fatal("a group with an open transaction expired")
	}
	h.marker(p, 8, true)
	wantOffset(t, h.c, "g", 1, 100)

	// OffsetDelete of a partition with only a pending offset.
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 8, 200, 3)), 0)
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "t"
	dt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 2}}
	del.Topics = append(del.Topics, dt)
	if resp := h.c.DeleteOffsets(del); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete: %+v", resp)
	}
	if _, code := fetched(t, h.c, "g", 2, true); code != 0 {
		t.Fatalf("OffsetDelete left t-2 pending")
	}
	if code := h.c.DeleteGroup("g"); code != 0 {
		t.Fatalf("DeleteGroup: %s", codeName(code))
	}
	h.marker(p, 8, true)
	wantOffset(t, h.c, "g", 0, -1)
	wantOffset(t, h.c, "g", 2, -1)
	c2 := loadCoordinator(t, h.st, h.cfg)
	defer c2.Close()
	for _, tp := range []int32{0, 1, 2} {
		wantOffset(t, c2, "g", tp, -1)
	}
}

// TestTxnOffsetsSurviveCompaction: compaction rewrites pending offsets in
// their producer's transaction, so that the marker written after it still
// applies them after a restart, and keeps an offset committed after a
// transactional one ahead of it.
func TestTxnOffsetsSurviveCompaction(t *testing.T) {
	dir := t.TempDir()
	st := &logStorage{t: t, dir: dir, logs: map[int32]*log.Log{}}
	defer st.close()
	cfg := Config{Partitions: 1, Storage: st, CompactAfterRecords: 1 << 30}
	c := newOwning(cfg)
	for i := range 5 {
		if code := c.Commit(commitReq("g", int64(i), 3)).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit: %s", codeName(code))
		}
	}
	wantTxnCodes(t, "TxnOffsetCommit", c.TxnCommit(txnCommitReq("g", 5, 100, 2)), 0)
	wantTxnCodes(t, "TxnOffsetCommit", c.TxnCommit(txnCommitReq("h", 6, 100, 1)), 0)
	if code := c.Commit(commitReq("g", 50, 1)).Topics[0].Partitions[0].ErrorCode; code != 0 { // t-0 after the txn
		t.Fatalf("commit: %s", codeName(code))
	}
	if err := c.compact(st, 0); err != nil {
		t.Fatal(err)
	}
	c.Close()
	l := st.log(0)
	if l.LogStartOffset() == 0 {
		t.Fatal("compaction deleted nothing")
	}
	mb := markerBatch(t, 5, 0, true)
	if _, err := l.Append(mb, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(markerBatch(t, 6, 0, false), 0); err != nil {
		t.Fatal(err)
	}
	c2 := New(cfg)
	defer c2.Close()
	if err := c2.Load(0, l); err != nil {
		t.Fatal(err)
	}
	wantOffset(t, c2, "g", 0, 50)
	wantOffset(t, c2, "g", 1, 100)
	wantOffset(t, c2, "g", 2, 4)
	wantOffset(t, c2, "h", 0, -1)
	if _, code := fetched(t, c2, "h", 0, true); code != 0 {
		t.Fatalf("h: aborted offsets pending after reload: %s", codeName(code))
	}
}

// TestTxnCommitConsumerGroup: a TxnOffsetCommit to a KIP-848 group is
// checked only when it names a member or an epoch, as Kafka's
// ConsumerGroup.validateOffsetCommit: an unknown member is
// UNKNOWN_MEMBER_ID, another epoch than the member's ILLEGAL_GENERATION.
func TestTxnCommitConsumerGroup(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Topics = storeTopics })
	resp := consumerHB(t, h.c, "cg", "m1", 0, nil)
	if resp.ErrorCode != 0 {
		t.Fatalf("heartbeat: %s", codeName(resp.ErrorCode))
	}
	epoch := resp.MemberEpoch
	for _, tc := range []struct {
		name   string
		member string
		epoch  int32
		want   int16
	}{
		{"member's epoch", "m1", epoch, 0},
		{"no member, no epoch", "", -1, 0},
		{"unknown member", "m2", epoch, kerr.UnknownMemberID.Code},
		{"stale epoch", "m1", epoch - 1, kerr.IllegalGeneration.Code},
		{"no member, an epoch", "", epoch, kerr.UnknownMemberID.Code},
	} {
		req := txnCommitReq("cg", 3, 9, 1)
		req.MemberID, req.Generation = tc.member, tc.epoch
		wantTxnCodes(t, tc.name, h.c.TxnCommit(req), tc.want)
	}
	h.marker(PartitionFor("cg", h.cfg.Partitions), 3, true)
	wantOffset(t, h.c, "cg", 0, 9)
}

// TestCompleteTxnWaitsForLoad: a marker written while its partition is
// being loaded is applied once the load ends (the replay may have read
// the log before it), and one for a partition not loaded here is left to
// the replay of a later Load.
func TestCompleteTxnWaitsForLoad(t *testing.T) {
	h := newHarness(t, nil)
	p := PartitionFor("g", h.cfg.Partitions)
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 4, 40, 1)), 0)
	// As Load does while it replays.
	h.c.partMu[p].Lock()
	h.c.mu.Lock()
	h.c.parts[p] = partLoading
	h.c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.c.CompleteTxn(p, 4, 0, true)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("CompleteTxn did not wait for the load")
	case <-time.After(50 * time.Millisecond):
	}
	h.c.mu.Lock()
	h.c.parts[p] = partLoaded
	h.c.mu.Unlock()
	h.c.partMu[p].Unlock()
	<-done
	wantOffset(t, h.c, "g", 0, 40)

	// Not loaded here: nothing to do; a later Load replays the marker.
	wantTxnCodes(t, "TxnOffsetCommit", h.c.TxnCommit(txnCommitReq("g", 5, 50, 1)), 0)
	h.c.Unload(p)
	h.st.mu.Lock()
	h.st.batches[p] = append(h.st.batches[p], markerBatch(t, 5, 0, true))
	h.st.mu.Unlock()
	h.c.CompleteTxn(p, 5, 0, true)
	c2 := loadCoordinator(t, h.st, h.cfg)
	defer c2.Close()
	wantOffset(t, c2, "g", 0, 50)
}

// TestTxnCompactionAfterMarker: a compaction between the marker's write
// and CompleteTxn rewrites the pending offsets after the marker; CompleteTxn
// then settles them in the log, so that a replay ends as the live
// coordinator did: nothing left pending, and an aborted offset never
// applied by the producer's next COMMIT.
func TestTxnCompactionAfterMarker(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	cfg := Config{Partitions: 1, Storage: st, CompactAfterRecords: 1 << 30}
	c := newOwning(cfg)
	defer c.Close()
	if code := c.Commit(commitReq("g", 5, 2)).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit: %s", codeName(code))
	}
	l := st.log(0)
	race := func(offset int64, commit bool) {
		t.Helper()
		wantTxnCodes(t, "TxnOffsetCommit", c.TxnCommit(txnCommitReq("g", 9, offset, 3)), 0)
		if _, err := l.Append(markerBatch(t, 9, 0, commit), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.compact(st, 0); err != nil {
			t.Fatal(err)
		}
		c.CompleteTxn(0, 9, 0, commit)
	}
	check := func(c *Coordinator, when string, want ...int64) {
		t.Helper()
		for p, w := range want {
			if got, code := fetched(t, c, "g", int32(p), true); got != w || code != 0 {
				t.Fatalf("%s: t-%d at %d (%s), want %d", when, p, got, codeName(code), w)
			}
		}
	}
	reload := func() *Coordinator {
		t.Helper()
		c2 := New(cfg)
		if err := c2.Load(0, l); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c2.Close)
		return c2
	}
	race(100, true)
	check(c, "live", 100, 100, 100)
	check(reload(), "replayed", 100, 100, 100)
	race(200, false)
	check(c, "live after ABORT", 100, 100, 100)
	check(reload(), "replayed after ABORT", 100, 100, 100)
	// The producer's next transaction, in another group.
	wantTxnCodes(t, "TxnOffsetCommit", c.TxnCommit(txnCommitReq("other", 9, 7, 1)), 0)
	if _, err := l.Append(markerBatch(t, 9, 0, true), 0); err != nil {
		t.Fatal(err)
	}
	c.CompleteTxn(0, 9, 0, true)
	check(c, "live after the next COMMIT", 100, 100, 100)
	check(reload(), "replayed after the next COMMIT", 100, 100, 100)
}

// TestTxnConcurrentReplayMatches runs transactional and plain commits,
// markers (written to the log, then CompleteTxn, as WriteTxnMarkers does)
// and background compactions at once, then checks that replaying the
// partitions gives every group the offsets, committed and pending, the
// live coordinator holds. Each producer commits for groups of its own, as
// consumers own their partitions (KIP-447): a compaction between a marker
// and its CompleteTxn is settled exactly only when no other producer has
// an offset of the same partition pending (see settle).
func TestTxnConcurrentReplayMatches(t *testing.T) {
	st := &logStorage{t: t, dir: t.TempDir(), logs: map[int32]*log.Log{}}
	defer st.close()
	cfg := Config{Partitions: 2, Storage: st, CompactAfterRecords: 40}
	c := newOwning(cfg)
	groups := []string{"g0a", "g0b", "g1a", "g1b", "g2a", "g2b", "g3a", "g3b"}
	var wg sync.WaitGroup
	for pid := int64(0); pid < 4; pid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(pid), 1))
			for i := range 40 {
				touched := map[int32]bool{}
				for range 1 + rng.IntN(2) {
					g := groups[2*int(pid)+rng.IntN(2)]
					req := txnCommitReq(g, pid, int64(1000*pid)+int64(i), 1+rng.IntN(3))
					if codes := txnCodes(c.TxnCommit(req)); codes[0] != 0 {
						t.Errorf("TxnOffsetCommit: %v", codes)
						return
					}
					touched[PartitionFor(g, cfg.Partitions)] = true
				}
				if i == 39 && pid == 3 {
					break // left open
				}
				commit := rng.IntN(3) > 0
				for p := range touched {
					if err := st.Append(p, markerBatch(t, pid, 0, commit)); err != nil {
						t.Error(err)
						return
					}
					c.CompleteTxn(p, pid, 0, commit)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(9, 9))
		for i := range 150 {
			g := groups[rng.IntN(len(groups))]
			if code := c.Commit(commitReq(g, int64(i), 1+rng.IntN(3))).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Errorf("commit: %s", codeName(code))
				return
			}
		}
	}()
	wg.Wait()
	// Quiesce the background compaction before reading the logs.
	c.Close()
	for p := range cfg.Partitions {
		c.partMu[p].Lock()
		c.partMu[p].Unlock()
	}
	type state struct {
		offsets map[topicPartition]int64
		pending map[int64]map[topicPartition]int64
	}
	snap := func(c *Coordinator) map[string]state {
		out := map[string]state{}
		for _, g := range c.groupsSnapshot() {
			g.mu.Lock()
			s := state{offsets: map[topicPartition]int64{}, pending: map[int64]map[topicPartition]int64{}}
			for tp, o := range g.offsets {
				s.offsets[tp] = o.offset
			}
			for pid, tx := range g.txn {
				s.pending[pid] = map[topicPartition]int64{}
				for tp, o := range tx.offsets {
					s.pending[pid][tp] = o.offset
				}
			}
			g.mu.Unlock()
			out[g.id] = s
		}
		return out
	}
	live := snap(c)
	cfg2 := cfg
	cfg2.CompactAfterRecords = 1 << 30 // no compaction while the test reads
	c2 := New(cfg2)
	defer c2.Close()
	for p := range cfg.Partitions {
		if err := c2.Load(p, st.log(p)); err != nil {
			t.Fatal(err)
		}
	}
	replayed := snap(c2)
	for _, id := range groups {
		if a, b := fmt.Sprint(live[id]), fmt.Sprint(replayed[id]); a != b {
			t.Errorf("group %s: live %s, replayed %s", id, a, b)
		}
	}
	if len(live["g0a"].offsets)+len(live["g0b"].offsets) == 0 {
		t.Fatal("nothing committed")
	}
}

func TestParseTxnMarker(t *testing.T) {
	for _, tc := range []struct {
		key        []byte
		commit, ok bool
		wantErr    bool
	}{
		{[]byte{0, 0, 0, 0}, false, true, false},
		{[]byte{0, 0, 0, 1}, true, true, false},
		{[]byte{0, 1, 0, 1, 9}, true, true, false}, // a later version
		{[]byte{0, 0, 0, 5}, false, false, false},  // another control type
		{[]byte{0xff, 0xff, 0, 1}, false, false, true},
		{[]byte{0, 0, 1}, false, false, true},
	} {
		commit, ok, err := parseTxnMarker(tc.key)
		if commit != tc.commit || ok != tc.ok || (err != nil) != tc.wantErr {
			t.Errorf("%x: commit %v ok %v err %v", tc.key, commit, ok, err)
		}
	}
}
