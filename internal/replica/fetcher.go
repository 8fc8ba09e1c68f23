package replica

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// followed is one partition a fetcher replicates.
type followed struct {
	p           *broker.Partition
	topicID     [16]byte
	leaderEpoch int32
	// retryAt holds the partition back after an error (its leader
	// moved, or the fetch failed), until then or until Follow changes
	// it.
	retryAt time.Time
}

// fetcher replicates the partitions this node follows from one leader
// over one connection (Kafka's ReplicaFetcherThread): one Fetch request
// for all of them, long-polling at the leader, appending what comes back
// as a follower.
type fetcher struct {
	m      *Manager
	leader int32
	addr   string
	cl     *kgo.Client
	logger *slog.Logger

	mu    sync.Mutex
	parts map[log.TopicPartition]*followed
	wake  chan struct{} // a partition was added while idle

	cancel context.CancelFunc
	done   chan struct{}
}

func newFetcher(m *Manager, leader int32, addr string) (*fetcher, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.Dialer(m.cfg.Dial),
		kgo.ClientID("strata-replica-fetcher"),
		kgo.RequestTimeoutOverhead(m.cfg.SocketTimeout),
		kgo.WithLogger(nil),
	}
	if m.cfg.SASL != nil {
		opts = append(opts, kgo.SASL(m.cfg.SASL))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fetcher{
		m: m, leader: leader, addr: addr, cl: cl,
		logger: m.cfg.Logger.With("leader", leader, "leader_addr", addr),
		parts:  map[log.TopicPartition]*followed{},
		wake:   make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{}),
	}
	go f.run(ctx)
	return f, nil
}

// stop ends the fetcher and waits for it: no append happens after.
func (f *fetcher) stop() {
	f.cancel()
	<-f.done
	f.cl.Close()
}

func (f *fetcher) set(tp log.TopicPartition, st *followed) {
	f.mu.Lock()
	f.parts[tp] = st
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// remove stops fetching tp; it reports whether the fetcher has nothing
// left. A fetch in flight may still append to tp once: the partition's
// role guards against that (broker.ErrNotFollower).
func (f *fetcher) remove(tp log.TopicPartition) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.parts, tp)
	return len(f.parts) == 0
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	var failing bool
	for ctx.Err() == nil {
		req, sent := f.request()
		if req == nil {
			f.idle(ctx)
			continue
		}
		resp, err := f.cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				f.logger.Warn("replica fetch failed; retrying", "err", err)
			}
			failing = true
			sleep(ctx, f.m.cfg.Backoff)
			continue
		}
		if failing {
			f.logger.Info("replica fetch works again")
			failing = false
		}
		f.handle(ctx, resp.(*kmsg.FetchResponse), sent)
	}
}

// idle waits for a partition to fetch: one added, or the earliest retry
// time among those held back.
func (f *fetcher) idle(ctx context.Context) {
	wait := f.m.cfg.Backoff
	f.mu.Lock()
	now := time.Now()
	for _, st := range f.parts {
		if d := st.retryAt.Sub(now); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	f.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-f.wake:
	case <-t.C:
	}
}

// request builds the Fetch for every partition not held back, with what
// each one sends: its log end as fetch offset, its last epoch (KIP-595)
// and the leader epoch it follows. nil when there is none to fetch.
func (f *fetcher) request() (*kmsg.FetchRequest, map[log.TopicPartition]*followed) {
	cfg := &f.m.cfg
	f.mu.Lock()
	defer f.mu.Unlock()
	sent := map[log.TopicPartition]*followed{}
	now := time.Now()
	byTopic := map[string]int{}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = cfg.NodeID
	req.ReplicaState.ID = cfg.NodeID
	req.ReplicaState.Epoch = cfg.BrokerEpoch()
	req.MaxWaitMillis = int32(cfg.FetchWaitMax / time.Millisecond)
	req.MinBytes = cfg.FetchMinBytes
	req.MaxBytes = cfg.FetchResponseMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // sessionless (KIP-227)
	for tp, st := range f.parts {
		if now.Before(st.retryAt) {
			continue
		}
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(req.Topics)
			byTopic[tp.Topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = tp.Topic, st.topicID
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.CurrentLeaderEpoch = st.leaderEpoch
		rp.FetchOffset = st.p.Log.LogEndOffset()
		rp.LastFetchedEpoch = st.p.LatestEpoch()
		rp.LogStartOffset = st.p.Log.LogStartOffset()
		rp.PartitionMaxBytes = cfg.FetchMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent[tp] = st
	}
	if len(sent) == 0 {
		return nil, sent
	}
	return req, sent
}

// handle applies a fetch response, partition by partition. A partition
// whose follow state changed since the request (a new leader epoch, or
// no longer followed from here) is skipped.
func (f *fetcher) handle(ctx context.Context, resp *kmsg.FetchResponse, sent map[log.TopicPartition]*followed) {
	if resp.ErrorCode != 0 {
		f.logger.Warn("replica fetch refused", "err", kerr.ErrorForCode(resp.ErrorCode))
		sleep(ctx, f.m.cfg.Backoff)
		return
	}
	names := map[[16]byte]string{}
	for tp, st := range sent {
		names[st.topicID] = tp.Topic
	}
	for _, rt := range resp.Topics {
		name := rt.Topic
		if name == "" {
			name = names[rt.TopicID]
		}
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			tp := log.TopicPartition{Topic: name, Partition: rp.Partition}
			st := sent[tp]
			if st == nil || !f.current(tp, st) {
				continue
			}
			if err := f.apply(ctx, st, rp); err != nil {
				f.holdBack(tp, st, err)
			}
		}
	}
}

// current reports whether st is still how tp is followed from here.
func (f *fetcher) current(tp log.TopicPartition, st *followed) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[tp] == st
}

func (f *fetcher) holdBack(tp log.TopicPartition, st *followed, err error) {
	f.mu.Lock()
	st.retryAt = time.Now().Add(f.m.cfg.Backoff)
	f.mu.Unlock()
	level := slog.LevelWarn
	if errors.Is(err, errLeaderMoved) || errors.Is(err, broker.ErrNotFollower) {
		level = slog.LevelDebug // the metadata is on its way
	}
	f.logger.Log(context.Background(), level, "replica fetch of a partition held back", "partition", tp, "err", err)
}

var errLeaderMoved = errors.New("replica: the leader or its epoch changed")

// apply is one partition's answer (Kafka's processPartitionData and
// truncateOnFetchResponse).
func (f *fetcher) apply(ctx context.Context, st *followed, rp *kmsg.FetchResponseTopicPartition) error {
	p := st.p
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		return f.outOfRange(p, rp)
	case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.LeaderNotAvailable.Code:
		return errLeaderMoved
	default:
		return kerr.ErrorForCode(rp.ErrorCode)
	}
	if de := rp.DivergingEpoch; de.Epoch >= 0 || de.EndOffset >= 0 {
		return p.TruncateTo(truncationOffset(p, de.Epoch, de.EndOffset))
	}
	if data := completeBatches(rp.RecordBatches); len(data) > 0 {
		res, err := p.AppendAsFollower(data)
		if err != nil {
			return err
		}
		if res.SyncTo > 0 {
			// flush.messages: the next fetch offset says the leader
			// may count these; only once they are durable here.
			if err := p.WaitDurable(res.SyncTo, res.SyncGen); err != nil {
				return err
			}
		}
	}
	p.UpdateFollowerHighWatermark(rp.HighWatermark)
	if rp.LogStartOffset > p.Log.LogStartOffset() && rp.LogStartOffset <= p.Log.HighWatermark() {
		// The leader's records below it were deleted (retention,
		// DeleteRecords): so are this replica's.
		if _, err := p.Log.DeleteRecordsBefore(rp.LogStartOffset); err != nil {
			return err
		}
	}
	return nil
}

// outOfRange handles OFFSET_OUT_OF_RANGE: this log ends below the
// leader's log start (start over there, Kafka's truncateFullyAndStartAt),
// or above the leader's end, which only a log that diverged without an
// epoch to tell can do (truncate to the leader's high watermark, below
// which the logs agree).
func (f *fetcher) outOfRange(p *broker.Partition, rp *kmsg.FetchResponseTopicPartition) error {
	leo := p.Log.LogEndOffset()
	switch {
	case rp.LogStartOffset > leo:
		f.logger.Info("follower log ends below the leader's log start: starting over there", "partition", p.TP, "log_end_offset", leo, "leader_log_start_offset", rp.LogStartOffset)
		return p.TruncateFullyAndStartAt(rp.LogStartOffset)
	case rp.HighWatermark >= 0 && rp.HighWatermark < leo:
		f.logger.Info("follower log is ahead of its leader: truncating to the leader's high watermark", "partition", p.TP, "log_end_offset", leo, "leader_high_watermark", rp.HighWatermark)
		return p.TruncateTo(rp.HighWatermark)
	}
	return kerr.OffsetOutOfRange
}

// truncationOffset is where a follower truncates when its leader answers
// with a diverging epoch (Kafka's AbstractFetcherThread
// getOffsetTruncationState): at the end the leader gives for the epoch,
// or below it where this log's own entry for that epoch ends sooner.
func truncationOffset(p *broker.Partition, epoch int32, end int64) int64 {
	leo := p.Log.LogEndOffset()
	switch {
	case end < 0:
		return p.Log.HighWatermark()
	case epoch < 0:
		return min(end, leo)
	}
	fe, fo := p.EndOffsetForEpoch(epoch)
	if fe < 0 {
		return min(end, leo)
	}
	return min(end, fo, leo)
}

// completeBatches is data up to its last whole batch: a response cut at
// the byte limit may end inside one.
func completeBatches(data []byte) []byte {
	n := 0
	for rest := data; len(rest) >= record.LogOverhead; {
		size := int(record.Batch(rest).Length()) + record.LogOverhead
		if size < record.HeaderSize || size > len(rest) {
			break
		}
		n += size
		rest = rest[size:]
	}
	return data[:n]
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
