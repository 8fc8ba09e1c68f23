package strata_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterFindCoordinatorCreatingOffsetsTopic: the FindCoordinator
// that creates __consumer_offsets answers COORDINATOR_NOT_AVAILABLE for
// the groups another broker will coordinate, as Kafka answers the
// creating request (KafkaApis.getCoordinator): that broker may not have
// applied the new topic yet, and its NOT_COORDINATOR made librdkafka's
// committed() fail (interop/run.sh --cluster). Groups this node leads are
// answered at once, and every group once the topic exists.
func TestClusterFindCoordinatorCreatingOffsetsTopic(t *testing.T) {
	c := startCluster(t)
	n := c.Nodes()[0]
	cl := newClient(t, n.Addr())
	ctx := ctxT(t)
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("group-%d", i))
	}
	find := func() []kmsg.FindCoordinatorResponseCoordinator {
		t.Helper()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = 4
		req.CoordinatorKeys = keys
		resp, err := req.RequestWith(ctx, cl.Broker(int(n.ID())))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Coordinators
	}

	unavailable := 0
	for _, co := range find() {
		switch err := kerr.ErrorForCode(co.ErrorCode); {
		case err == nil:
			if co.NodeID != n.ID() {
				t.Errorf("%s: named broker %d in the creating request; only this node (%d) may be", co.Key, co.NodeID, n.ID())
			}
		case err == kerr.CoordinatorNotAvailable:
			unavailable++
		default:
			t.Errorf("%s: %v", co.Key, err)
		}
	}
	if unavailable == 0 {
		t.Errorf("no group of %d was placed on another broker", len(keys))
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		answered, others := 0, 0
		for _, co := range find() {
			if co.ErrorCode == 0 {
				answered++
				if co.NodeID != n.ID() {
					others++
				}
			}
		}
		if answered == len(keys) && others > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after creation: %d of %d groups answered, %d on other brokers", answered, len(keys), others)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
