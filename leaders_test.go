package strata_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// TestElectLeadersSingleNode: kadm's ElectLeaders against one node, where
// every partition is on its preferred replica already.
func TestElectLeadersSingleNode(t *testing.T) {
	t.Parallel()
	b := startBroker(t, t.TempDir(), nil)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	if _, err := adm.CreateTopic(ctxT(t), 2, 1, nil, "el"); err != nil {
		t.Fatal(err)
	}
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		rs, err := adm.ElectLeaders(ctxT(t), how, kadm.TopicsSet{"el": {0: {}, 1: {}}, "missing": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if r := rs["el"][p]; r.Err != kerr.ElectionNotNeeded || r.How != how {
				t.Fatalf("%v el/%d: %+v", how, p, r)
			}
		}
		if r := rs["missing"][0]; r.Err != kerr.UnknownTopicOrPartition {
			t.Fatalf("%v missing/0: %+v", how, r)
		}
		// All partitions: none needs an election, so every topic is
		// answered without partitions, as Kafka does.
		all, err := adm.ElectLeaders(ctxT(t), how, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ps, ok := all["el"]; !ok || len(ps) != 0 {
			t.Fatalf("%v all partitions: %+v", how, all)
		}
		for topic, ps := range all {
			if len(ps) != 0 {
				t.Fatalf("%v all partitions: %s answered %+v", how, topic, ps)
			}
		}
	}
}

// TestClusterLeaderHints: in a two-node cluster, node 1 answers Produce
// v10+ and Fetch v16+ for a partition node 2 leads with KIP-951's current
// leader and node 2's endpoint; ElectLeaders sent to either node is
// answered (forwarded to the active controller).
func TestClusterLeaderHints(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Nodes: 2, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	node1, node2 := c.Node(1).Addr(), c.Node(2).Addr()

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "hint", -1, -1
	ct.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{2}}}
	create.Topics = append(create.Topics, ct)
	create.Version, create.TimeoutMillis = 7, 30000
	var created kmsg.CreateTopicsResponse
	rawRoundTrip(t, node1, create, &created) // node 1 forwards it and answers once its image has the topic
	if len(created.Topics) != 1 || created.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v", created)
	}
	topicID := created.Topics[0].TopicID

	host, portS, _ := net.SplitHostPort(node2)
	port, _ := strconv.Atoi(portS)
	checkBroker := func(what string, id int32, h string, p int32) {
		t.Helper()
		if id != 2 || h != host || p != int32(port) {
			t.Fatalf("%s: node endpoint %d %s:%d, want 2 %s:%d", what, id, h, p, host, port)
		}
	}

	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks, produce.TimeoutMillis = 11, -1, 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "hint", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: recordtest.Values(t, 1, "x")}}}}
	var pr kmsg.ProduceResponse
	rawRoundTrip(t, node1, produce, &pr)
	sp := pr.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to node 1: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	if sp.CurrentLeader.LeaderID != 2 || sp.CurrentLeader.LeaderEpoch < 0 {
		t.Fatalf("produce to node 1: current leader %+v", sp.CurrentLeader)
	}
	if len(pr.Brokers) != 1 {
		t.Fatalf("produce to node 1: node endpoints %+v", pr.Brokers)
	}
	checkBroker("produce", pr.Brokers[0].NodeID, pr.Brokers[0].Host, pr.Brokers[0].Port)
	// The leader it names takes the records, once its own metadata has
	// the topic (node 1 may be the controller, which does not wait for
	// node 2 to apply the change).
	deadline := time.Now().Add(20 * time.Second)
	for {
		rawRoundTrip(t, node2, produce, &pr)
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce to node 2: %v", kerr.ErrorForCode(code))
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxBytes = 16, -1, 1<<20
	fetch.Topics = []kmsg.FetchRequestTopic{{TopicID: topicID, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, PartitionMaxBytes: 1 << 20}}}}
	var fr kmsg.FetchResponse
	rawRoundTrip(t, node1, fetch, &fr)
	fp := fr.Topics[0].Partitions[0]
	if fp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch from node 1: %v", kerr.ErrorForCode(fp.ErrorCode))
	}
	if fp.CurrentLeader.LeaderID != 2 || fp.CurrentLeader.LeaderEpoch != sp.CurrentLeader.LeaderEpoch {
		t.Fatalf("fetch from node 1: current leader %+v, produce said %+v", fp.CurrentLeader, sp.CurrentLeader)
	}
	if len(fr.Brokers) != 1 {
		t.Fatalf("fetch from node 1: node endpoints %+v", fr.Brokers)
	}
	checkBroker("fetch", fr.Brokers[0].NodeID, fr.Brokers[0].Host, fr.Brokers[0].Port)

	// ElectLeaders through each node: the partition is on its preferred
	// replica.
	for _, addr := range []string{node1, node2} {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version = 2
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "hint", Partitions: []int32{0, 5}}}
		var resp kmsg.ElectLeadersResponse
		deadline := time.Now().Add(20 * time.Second)
		for {
			rawRoundTrip(t, addr, req, &resp)
			if resp.ErrorCode != kerr.NotController.Code || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("elect through %s: %+v", addr, resp)
		}
		mustCodeRoot(t, "hint/0", resp.Topics[0].Partitions[0].ErrorCode, kerr.ElectionNotNeeded.Code)
		mustCodeRoot(t, "hint/5", resp.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	}
}

func mustCodeRoot(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}
