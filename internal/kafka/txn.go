package kafka

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	kgosasl "github.com/twmb/franz-go/pkg/sasl"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/txn"
)

// The transaction coordinator's wiring (internal/txn): __transaction_state
// is created through the controller as __consumer_offsets is, its
// partitions are loaded where they are led (followTxnLeadership), the
// coordinator's records are appended to them as acks=all produces, and
// its markers go out as WriteTxnMarkers requests to each partition's
// leader: through this node's own API 27 handler for the partitions it
// leads, over an inter-broker client connection for the others.

// TxnConfig configures the transaction coordinator.
type TxnConfig struct {
	// Coordinator is transaction.state.log.num.partitions and the
	// timeouts; Storage, Markers, ProducerIDs and Logger are set by New.
	Coordinator txn.Config
	// ReplicationFactor is transaction.state.log.replication.factor (3),
	// capped at the usable brokers; MinISR transaction.state.log.min.isr
	// (2), capped at the replication factor.
	ReplicationFactor int16
	MinISR            int
	// Dial and SASL connect to other brokers' inter-broker listeners to
	// send them markers, as the replica fetchers do; nil Dial is a plain
	// net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	SASL kgosasl.Mechanism
	// NoPartitionVerification turns off KIP-890 part 1's check with the
	// coordinator before a producer's first transactional batch on a
	// partition is appended (transaction.partition.verification.enable
	// false).
	NoPartitionVerification bool
}

// fencedCode is code as a request of a version before KIP-588 (Kafka 2.7)
// knows it: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH there, as Kafka
// answers InitProducerId v0-3, AddPartitionsToTxn, AddOffsetsToTxn and
// EndTxn v0-1.
func fencedCode(code int16, old bool) int16 {
	if old && code == kerr.ProducerFenced.Code {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// txnTopicSegmentBytes is transaction.state.log.segment.bytes' default.
const txnTopicSegmentBytes = "104857600"

// txnState holds the handler's transaction coordinator parts.
type txnState struct {
	coord *txn.Coordinator
	// createMu serializes the creation of __transaction_state.
	createMu sync.Mutex
	// writeLocalMarkers writes markers to partitions this node leads:
	// by default straight into API 27's code (Handler.WriteTxnMarkers),
	// without encoding the request; see SetLocalTxnMarkerWriter.
	writeLocalMarkers func(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error)

	clientsMu sync.Mutex
	clients   map[int32]*markerClient
	// retrying is set while a retry of failed loads is scheduled.
	retrying atomic.Bool
}

type markerClient struct {
	addr string
	cl   *kgo.Client
}

// SetLocalTxnMarkerWriter replaces how markers are written to partitions
// this node leads (by default: the request dispatched to this handler's
// API 27). For tests and for a direct call into the partition code.
func (h *Handler) SetLocalTxnMarkerWriter(f func(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error)) {
	h.txns.writeLocalMarkers = f
}

// startTxn creates the transaction coordinator; its partitions are loaded
// by followTxnLeadership as the image makes this node their leader.
func (h *Handler) startTxn(cfg TxnConfig) {
	h.txns = &txnState{clients: map[int32]*markerClient{}}
	h.txns.writeLocalMarkers = func(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
		return h.WriteTxnMarkers(ctx, req), nil
	}
	c := cfg.Coordinator
	c.Storage = txnStorage{h}
	c.Markers = markerWriter{h}
	c.ProducerIDs = h.meta.AllocateProducerID
	c.Logger = h.logger.With("component", "txn")
	if t := h.meta.Image().Topic(txn.Topic); t != nil {
		c.Partitions = t.Partitions
	}
	h.txns.coord = txn.New(c)
}

// stopTxn stops the coordinator and closes the marker connections.
func (h *Handler) stopTxn() {
	h.txns.coord.Close()
	h.txns.clientsMu.Lock()
	defer h.txns.clientsMu.Unlock()
	for id, c := range h.txns.clients {
		c.cl.Close()
		delete(h.txns.clients, id)
	}
}

// txnTopic returns __transaction_state, creating it (Kafka creates it on
// the first FindCoordinator for a transactional id) and loading the
// partitions this node leads.
func (h *Handler) txnTopic() (*cluster.Topic, error) {
	if t := h.meta.Image().Topic(txn.Topic); t != nil {
		return t, nil
	}
	h.txns.createMu.Lock()
	defer h.txns.createMu.Unlock()
	if t := h.meta.Image().Topic(txn.Topic); t != nil {
		return t, nil
	}
	rf := cmp.Or(h.cfg.Txn.ReplicationFactor, 3)
	usable := int16(1)
	if h.ctrl.Client() != nil {
		usable = int16(max(1, len(controller.UsableBrokers(h.meta.Image()))))
	}
	minISR := min(max(h.cfg.Txn.MinISR, 1), int(min(rf, usable)))
	configs := map[string]string{
		"segment.bytes":       txnTopicSegmentBytes,
		"retention.ms":        "-1",
		"min.insync.replicas": strconv.Itoa(minISR),
	}
	n := h.txns.coord.Partitions()
	t, ok, err := h.forwardCreateTopic(context.Background(), txn.Topic, n, rf, configs)
	if !ok {
		h.topicMu.Lock()
		if t = h.meta.Image().Topic(txn.Topic); t == nil {
			if _, err = broker.ParseTopicConfig(h.topicDefaults(), configs); err == nil {
				t, err = h.meta.CreateTopic(txn.Topic, n, configs, h.ctrl.PlaceUpTo(rf))
			}
		}
		h.topicMu.Unlock()
	}
	if errors.Is(err, cluster.ErrTopicExists) {
		t, err = h.meta.Image().Topic(txn.Topic), nil
	}
	if err != nil || t == nil {
		return nil, fmt.Errorf("create %s: %w", txn.Topic, cmp.Or(err, cluster.ErrUnknownTopic))
	}
	h.logger.Info("created internal topic", "topic", txn.Topic, "partitions", t.Partitions, "replication_factor", replicationFactor(t))
	h.followTxnLeadership(h.meta.Image())
	return t, nil
}

// createInternalTopic creates __consumer_offsets or __transaction_state
// (name) as the broker does on first use.
func (h *Handler) createInternalTopic(name string) (*cluster.Topic, error) {
	if name == txn.Topic {
		return h.txnTopic()
	}
	return h.offsetsTopic()
}

// followTxnLeadership loads the partitions of __transaction_state this
// node has come to lead (again when their leader epoch, the coordinator
// epoch, changed) and unloads those it no longer leads (Kafka's
// TransactionCoordinator onElection/onResignation).
func (h *Handler) followTxnLeadership(im *cluster.Image) {
	t := im.Topic(txn.Topic)
	if t == nil {
		return
	}
	for i, st := range t.PartitionStates {
		p := int32(i)
		if st == nil || p >= h.txns.coord.Partitions() {
			continue
		}
		epoch, loaded := h.txns.coord.Loaded(p)
		lead := st.Leader == h.cfg.NodeID
		switch {
		case !lead && loaded:
			h.txns.coord.Unload(p)
		case lead && (!loaded || epoch != st.LeaderEpoch):
			if err := h.txns.coord.Load(p, st.LeaderEpoch); err != nil {
				h.logger.Error("load transaction coordinator partition", "partition", p, "err", err)
				h.retryTxnLoads()
			}
		}
	}
}

// retryTxnLoads follows the leadership of __transaction_state again in a
// second, after a load failed (a read error, the partition not yet
// there): the image may not change again for a long time.
func (h *Handler) retryTxnLoads() {
	if !h.txns.retrying.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(time.Second, func() {
		h.txns.retrying.Store(false)
		select {
		case <-h.stopping:
		default:
			h.followTxnLeadership(h.meta.Image())
		}
	})
}

// txnStorage appends the coordinator's records to __transaction_state.
type txnStorage struct{ h *Handler }

func (s txnStorage) Append(p int32, key, value []byte) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	return s.append(part, record.NewRecord{Key: key, Value: value, Timestamp: time.Now().UnixMilli()})
}

// Rewrite is txn.Compactor: the live records after a roll, then the
// records before them deleted, as offsetsStorage compacts
// __consumer_offsets.
func (s txnStorage) Rewrite(p int32, keys, values [][]byte) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	if err := part.Log.Roll(); err != nil {
		return err
	}
	start := part.Log.LogEndOffset()
	if len(keys) > 0 {
		now := time.Now().UnixMilli()
		recs := make([]record.NewRecord, len(keys))
		for i := range keys {
			recs[i] = record.NewRecord{Key: keys[i], Value: values[i], Timestamp: now}
		}
		if err := s.append(part, recs...); err != nil {
			return err
		}
	}
	_, err = part.Log.DeleteRecordsBefore(start)
	return err
}

// partition is partition p of __transaction_state, led here.
func (s txnStorage) partition(p int32) (*broker.Partition, error) {
	h := s.h
	t := h.meta.Image().Topic(txn.Topic)
	if t == nil {
		return nil, kerr.NotCoordinator
	}
	part, tc, code := h.partition(t, p)
	if code != 0 {
		if code == kerr.NotLeaderForPartition.Code {
			return nil, kerr.NotCoordinator
		}
		return nil, fmt.Errorf("%s-%d: %w", txn.Topic, p, kerr.ErrorForCode(code))
	}
	if part.InSyncReplicas() < tc.MinInsyncReplicas {
		return nil, fmt.Errorf("%s-%d: %w: %d in sync, min.insync.replicas is %d", txn.Topic, p, kerr.NotEnoughReplicas, part.InSyncReplicas(), tc.MinInsyncReplicas)
	}
	return part, nil
}

// append writes recs as one batch, acknowledged as an acks=all produce.
func (s txnStorage) append(part *broker.Partition, recs ...record.NewRecord) error {
	b, err := record.Build(record.BuildOptions{}, recs...)
	if err != nil {
		return err
	}
	res, err := part.Append(b, 1<<30, false)
	if err != nil {
		if errors.Is(err, broker.ErrNotLeader) {
			return kerr.NotCoordinator
		}
		return err
	}
	// acks=all, within the request timeout Kafka's coordinator uses.
	if w, ok := part.WaitFor(res.NextOffset); ok {
		return part.WaitReplicated(w, time.Now().Add(offsetsCommitTimeout))
	}
	return nil
}

func (s txnStorage) Read(p int32, fn func(key, value []byte) error) error {
	part := s.h.broker.Partition(log.TopicPartition{Topic: txn.Topic, Partition: p})
	if part == nil {
		return nil // never written
	}
	return part.Log.Scan(0, func(b record.Batch) error {
		if b.IsControl() {
			return nil
		}
		var ferr error
		err := b.ForEachRecord(func(r *record.Record) bool {
			var v []byte
			if r.Value != nil {
				v = bytes.Clone(r.Value)
			}
			ferr = fn(bytes.Clone(r.Key), v)
			return ferr == nil
		})
		return cmp.Or(err, ferr)
	})
}

// markerWriter sends a transaction's markers to its partitions' leaders.
type markerWriter struct{ h *Handler }

// markerTimeout bounds one WriteTxnMarkers round trip (Kafka's
// request.timeout.ms for its marker channel).
const markerTimeout = 30 * time.Second

func (w markerWriter) WriteMarkers(ctx context.Context, m txn.Marker) map[txn.TopicPartition]error {
	h := w.h
	im := h.meta.Image()
	out := map[txn.TopicPartition]error{}
	byLeader := map[int32][]txn.TopicPartition{}
	for _, tp := range m.Partitions {
		t := im.Topic(tp.Topic)
		if t == nil || tp.Partition < 0 || tp.Partition >= t.Partitions {
			// Deleted: no marker is needed (Kafka drops the
			// partitions its metadata no longer has).
			continue
		}
		st := t.PartitionStates[tp.Partition]
		if st == nil || st.Leader < 0 {
			out[tp] = kerr.LeaderNotAvailable
			continue
		}
		byLeader[st.Leader] = append(byLeader[st.Leader], tp)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for leader, tps := range byLeader {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := w.send(ctx, im, leader, m, tps)
			mu.Lock()
			defer mu.Unlock()
			for tp, err := range res {
				out[tp] = err
			}
		}()
	}
	wg.Wait()
	return out
}

// send writes m to partitions tps, all led by leader, and returns the
// partitions that did not take it.
func (w markerWriter) send(ctx context.Context, im *cluster.Image, leader int32, m txn.Marker, tps []txn.TopicPartition) map[txn.TopicPartition]error {
	h := w.h
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = m.ProducerID, m.ProducerEpoch, m.Commit
	mk.CoordinatorEpoch, mk.TransactionVersion = m.CoordinatorEpoch, m.TransactionVersion
	byTopic(tps, func(topic string, parts []int32) {
		t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		t.Topic, t.Partitions = topic, parts
		mk.Topics = append(mk.Topics, t)
	})
	req.Markers = append(req.Markers, mk)
	ctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	var resp *kmsg.WriteTxnMarkersResponse
	var err error
	if leader == h.cfg.NodeID {
		resp, err = h.txns.writeLocalMarkers(ctx, req)
	} else {
		resp, err = h.sendRemoteMarkers(ctx, im, leader, req)
	}
	out := map[txn.TopicPartition]error{}
	for _, tp := range tps {
		out[tp] = cmp.Or(err, error(kerr.UnknownServerError))
	}
	if err != nil {
		h.logger.Debug("sending transaction markers", "leader", leader, "err", err)
		return out
	}
	for _, rm := range resp.Markers {
		if rm.ProducerID != m.ProducerID {
			continue
		}
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				tp := txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				if _, ok := out[tp]; !ok {
					continue
				}
				if rp.ErrorCode == 0 {
					delete(out, tp)
					continue
				}
				if rp.ErrorCode == kerr.UnknownTopicOrPartition.Code {
					if t := h.meta.Image().Topic(tp.Topic); t == nil || tp.Partition >= t.Partitions {
						delete(out, tp) // deleted meanwhile
						continue
					}
				}
				out[tp] = kerr.ErrorForCode(rp.ErrorCode)
			}
		}
	}
	return out
}

// sendRemoteMarkers sends req to broker id's inter-broker listener, over a
// client kept per broker (re-made when its address changes).
func (h *Handler) sendRemoteMarkers(ctx context.Context, im *cluster.Image, id int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	resp, err := h.sendInterBroker(ctx, im, id, req)
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*kmsg.WriteTxnMarkersResponse)
	if !ok {
		return nil, fmt.Errorf("broker %d answered WriteTxnMarkers with %T", id, resp)
	}
	return r, nil
}

func (h *Handler) markerClient(id int32, addr string) (*kgo.Client, error) {
	st := h.txns
	st.clientsMu.Lock()
	defer st.clientsMu.Unlock()
	if c := st.clients[id]; c != nil {
		if c.addr == addr {
			return c.cl, nil
		}
		c.cl.Close()
		delete(st.clients, id)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("strata-txn-markers"),
		kgo.WithLogger(nil),
	}
	if h.cfg.Txn.Dial != nil {
		opts = append(opts, kgo.Dialer(h.cfg.Txn.Dial))
	}
	if h.cfg.Txn.SASL != nil {
		opts = append(opts, kgo.SASL(h.cfg.Txn.SASL))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	st.clients[id] = &markerClient{addr: addr, cl: cl}
	return cl, nil
}

// byTopic calls fn once per topic of tps, in order of first appearance,
// with that topic's partitions (the shape of every per-topic request).
func byTopic(tps []txn.TopicPartition, fn func(topic string, parts []int32)) {
	var topics []string
	parts := map[string][]int32{}
	for _, tp := range tps {
		if _, ok := parts[tp.Topic]; !ok {
			topics = append(topics, tp.Topic)
		}
		parts[tp.Topic] = append(parts[tp.Topic], tp.Partition)
	}
	for _, t := range topics {
		fn(t, parts[t])
	}
}
