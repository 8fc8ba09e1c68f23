package kafka

import (
	"log/slog"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/group"
	"github.com/strata-io/strata/internal/txn"
)

// TestCoordinatorsFollowOnlyACurrentImage: the group and transaction
// coordinators take up the partitions of __consumer_offsets and
// __transaction_state this node leads only once its image is current. In
// quorum mode that is AdoptPartitions (the broker unfenced): before it, a
// restarting node's image replays the metadata log's history, and
// following it loaded a coordinator at every past leader epoch the node
// had held (seen in chaos runs: epochs 1, 7, 11 ... 40 of one partition
// within 90 ms of a restart). In local mode the image is current at once.
func TestCoordinatorsFollowOnlyACurrentImage(t *testing.T) {
	for _, quorum := range []bool{false, true} {
		h := newTestHandler(t, t.TempDir(), Config{NodeID: 1, KeepStrayPartitions: quorum, TopicDefaults: broker.DefaultTopicConfig(), Logger: slog.New(slog.DiscardHandler)})
		// The image changes after New, as a restarting node's does
		// while it replays the metadata log.
		if _, err := h.meta.RegisterBroker([]records.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 1}}, nil); err != nil {
			t.Fatal(err)
		}
		onHere := func(_ *cluster.Image, from, to int32) ([][]int32, error) {
			r := make([][]int32, to-from)
			for i := range r {
				r[i] = []int32{1}
			}
			return r, nil
		}
		for _, topic := range []string{group.Topic, txn.Topic} {
			if _, err := h.meta.CreateTopic(topic, 2, nil, onHere); err != nil {
				t.Fatal(err)
			}
		}
		loaded := func() (groups, txns bool) {
			_, txns = h.txns.coord.Loaded(1)
			return h.groups.Loaded(1), txns
		}
		// watchImage applies the image on a goroutine of its own: give
		// it time, then look.
		deadline := time.Now().Add(2 * time.Second)
		for g, x := loaded(); !(g && x) && time.Now().Before(deadline); g, x = loaded() {
			time.Sleep(10 * time.Millisecond)
		}
		g, x := loaded()
		if quorum && (g || x) {
			t.Errorf("quorum mode, before AdoptPartitions: groups loaded %v, transactions loaded %v; want neither", g, x)
		}
		if !quorum && !(g && x) {
			t.Errorf("local mode: groups loaded %v, transactions loaded %v; want both", g, x)
		}
		if quorum {
			if err := h.AdoptPartitions(); err != nil {
				t.Fatal(err)
			}
			if g, x := loaded(); !g || !x {
				t.Errorf("quorum mode, after AdoptPartitions: groups loaded %v, transactions loaded %v; want both", g, x)
			}
		}
	}
}
