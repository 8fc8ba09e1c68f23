package strata_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// TestClusterFollowerFetch: in a two-node cluster, node 1 leads a
// partition whose replicas are [1 2], node 2 added through the controller
// as a reassignment would (so that its ISR is [1]). With its high watermark held below
// its log end (as a lagging follower would hold it), a Fetch v17 from node
// 2 with its current broker epoch (KIP-903's ReplicaState) reads to the log
// end; with the broker epoch of its incarnation before a restart, or from a broker id outside the replica
// set, it is refused; a consumer stops at the high watermark.
func TestClusterFollowerFetch(t *testing.T) {
	// Node 2 is a broker only, so that it can restart while node 1, the
	// one controller, keeps the quorum.
	c, err := newTestCluster(t, strata.ClusterOptions{Nodes: 2, Roles: map[int32]string{2: "broker"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	node1 := c.Node(1).Addr()

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "follow", -1, -1
	ct.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	create.Topics = append(create.Topics, ct)
	create.Version, create.TimeoutMillis = 7, 30000
	var created kmsg.CreateTopicsResponse
	rawRoundTrip(t, node1, create, &created)
	if len(created.Topics) != 1 || created.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", created)
	}
	topicID := created.Topics[0].TopicID
	// Add node 2 to the replica set as a reassignment would (it is
	// not in the ISR), and wait for node 1 to apply it.
	at, err := c.SetReplicas("follow", 0, []int32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, ok := c.Node(1).MetadataStatus(); ok && st.Offset >= at {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 1 did not apply the new replica set")
		}
	}

	// Five batches of one record, offsets 0-4, once node 1's image has
	// the topic.
	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 11, 1, 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "follow", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: recordtest.Values(t, 1, "x")}}}}
	for i := 0; i < 5; {
		var pr kmsg.ProduceResponse
		rawRoundTrip(t, node1, produce, &pr)
		switch code := pr.Topics[0].Partitions[0].ErrorCode; {
		case code == 0:
			i++
		case i == 0 && code == kerr.UnknownTopicOrPartition.Code:
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("produce %d: %v", i, kerr.ErrorForCode(code))
		}
	}
	// Node 2 restarts: it registers again with a new broker epoch, and
	// its old one is a stale incarnation's.
	staleEpoch, _, ok := c.Node(1).BrokerInImage(2)
	if !ok {
		t.Fatal("node 1's image has no broker 2")
	}
	if err := c.Node(2).Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Node(2).Restart(); err != nil {
		t.Fatal(err)
	}
	var epoch2 int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		epoch, fenced, ok := c.Node(1).BrokerInImage(2)
		if ok && !fenced && epoch != staleEpoch {
			epoch2 = epoch
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker 2 not registered again and unfenced in node 1's image (epoch %d, fenced %v)", epoch, fenced)
		}
	}
	t.Logf("broker 2: epoch %d, was %d", epoch2, staleEpoch)
	// Node 2 replicates for real: killed, it stays live in the image
	// until its session times out, and this test's fetches in its name
	// are the only ones node 1 sees, so the high watermark held below
	// stays there.
	c.Node(2).Kill()
	if hw, ok := c.Node(1).HoldHighWatermark("follow", 0, 2); !ok || hw != 2 {
		t.Fatalf("hold high watermark: %d %v", hw, ok)
	}

	fetch := func(id int32, epoch int64) (code int16, hw, end int64) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes = 17, 1<<20
		req.ReplicaState.ID, req.ReplicaState.Epoch = id, epoch
		req.Topics = []kmsg.FetchRequestTopic{{TopicID: topicID, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}
		var resp kmsg.FetchResponse
		rawRoundTrip(t, node1, req, &resp)
		sp := resp.Topics[0].Partitions[0]
		for b := sp.RecordBatches; len(b) >= 27; b = b[12+int(binary.BigEndian.Uint32(b[8:12])):] {
			end = int64(binary.BigEndian.Uint64(b[:8])) + int64(binary.BigEndian.Uint32(b[23:27])) + 1
		}
		return sp.ErrorCode, sp.HighWatermark, end
	}
	check := func(what string, id int32, epoch int64, wantCode int16, wantEnd int64) {
		t.Helper()
		code, hw, end := fetch(id, epoch)
		if code != wantCode || end != wantEnd || (code == 0 && hw != 2) {
			t.Fatalf("%s: %v, high watermark %d, records to %d; want %v, records to %d",
				what, kerr.ErrorForCode(code), hw, end, kerr.ErrorForCode(wantCode), wantEnd)
		}
	}
	check("consumer", -1, -1, 0, 2)
	check("follower 2, current broker epoch", 2, epoch2, 0, 5)
	check("follower 2, its old incarnation's broker epoch", 2, staleEpoch, kerr.NotLeaderForPartition.Code, 0)
	check("broker 3, outside the replica set", 3, 1, kerr.NotLeaderForPartition.Code, 0)
	check("node 1, the leader itself", 1, 1, kerr.NotLeaderForPartition.Code, 0)
}
