package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/metrics"
	"github.com/strata-io/strata/internal/record"
)

func oneRecord(t *testing.T, v string) []byte {
	t.Helper()
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: []byte(v), Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func raceHandler(t *testing.T, m *metrics.Metrics) *Handler {
	return newTestHandler(t, t.TempDir(), Config{NodeID: 1, TopicDefaults: broker.DefaultTopicConfig(), Metrics: m})
}

// TestDeleteWithStaleTopicDeletesWhatIsCurrent: DeleteTopics reads the
// image before it takes the topic lock. Partitions added since are deleted
// too, and a name deleted and re-created since is left alone: a delete
// acts on the topic id it was asked for, as it stands now.
func TestDeleteWithStaleTopicDeletesWhatIsCurrent(t *testing.T) {
	h := raceHandler(t, nil)
	stale, err := h.createTopic(context.Background(), "a", 1, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.addPartitions(stale, 2, nil); err != nil {
		t.Fatal(err)
	}
	p1, _, code := h.partition(h.meta.Image().Topic("a"), 1)
	if code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if _, err := p1.Append(oneRecord(t, "old"), 1<<20, false); err != nil {
		t.Fatal(err)
	}
	if err := h.deleteTopic(stale); err != nil {
		t.Fatal(err)
	}
	if h.broker.Partition(log.TopicPartition{Topic: "a", Partition: 1}) != nil {
		t.Fatal("the partition added after the delete read the image survived it")
	}
	nt, err := h.createTopic(context.Background(), "a", 2, -1, nil, nil)
	if err != nil {
		t.Fatalf("re-create: %v", err)
	}
	np1, _, code := h.partition(nt, 1)
	if code != 0 || np1.Log.LogEndOffset() != 0 {
		t.Fatalf("re-created topic's partition 1: code %v, log end %v", kerr.ErrorForCode(code), np1)
	}

	// A delete naming the first topic b, after b was deleted and
	// re-created, must not delete the new b.
	old, err := h.createTopic(context.Background(), "b", 1, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.deleteTopic(old); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createTopic(context.Background(), "b", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.deleteTopic(old); errorCode(err) != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete of a topic id that is gone: %v", err)
	}
	if h.meta.Image().Topic("b") == nil {
		t.Fatal("a delete of the old topic id deleted the new topic")
	}
}

// TestPartitionOfStaleTopic: a request that resolved a topic before it was
// deleted and re-created under its name gets UNKNOWN_TOPIC_OR_PARTITION,
// not the new topic's partition (or its config).
func TestPartitionOfStaleTopic(t *testing.T) {
	h := raceHandler(t, nil)
	old, err := h.createTopic(context.Background(), "c", 1, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.deleteTopic(old); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createTopic(context.Background(), "c", 1, -1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, code := h.partition(old, 0); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("the old topic id resolved to %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
}

// TestLongPollEndsWhenTopicDeleted: a fetch parked on a partition that is
// deleted answers at once, as Kafka completes the delayed fetch, instead
// of waiting out MaxWait.
func TestLongPollEndsWhenTopicDeleted(t *testing.T) {
	m := metrics.New()
	h := raceHandler(t, m)
	tp, err := h.createTopic(context.Background(), "d", 1, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 60000, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "d"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	done := make(chan error, 1)
	go func() {
		_, err := h.handleFetch(context.Background(), nil, req)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for fetchesWaiting(t, m) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the fetch never parked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.deleteTopic(tp); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second): // MaxWait is 60 s
		t.Fatal("the long poll was not ended by the delete")
	}
}

func fetchesWaiting(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "strata_fetch_waiting" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
