package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
)

// MetadataTopic is the partition that holds the metadata log.
var MetadataTopic = log.TopicPartition{Topic: "__cluster_metadata", Partition: 0}

var (
	ErrTopicExists  = errors.New("cluster: topic already exists")
	ErrUnknownTopic = errors.New("cluster: unknown topic")
)

// DefaultSnapshotBytes is Kafka's default of
// metadata.log.max.record.bytes.between.snapshots: 20 MiB.
const DefaultSnapshotBytes = 20 << 20

// snapshotsRetained is how many snapshots are kept: the newest, and one
// older to fall back on if the newest turns out corrupt.
const snapshotsRetained = 2

// Options configure a Store.
type Options struct {
	// NodeID is this node's broker id: the replica, ISR and leader of
	// the partitions it creates, and the broker it registers.
	NodeID int32
	// SnapshotBytes is metadata.log.max.record.bytes.between.snapshots:
	// a snapshot is written once this many bytes of records were
	// appended since the last one. 0 means DefaultSnapshotBytes; < 0
	// writes snapshots only at Close and after an upgrade.
	SnapshotBytes int64
	Logger        *slog.Logger
}

// Store checks metadata changes against the image, turns them into
// records and publishes the image they build. Where the records go is its
// committer's business: the local metadata log (local mode, local.go) or
// the raft quorum (quorum mode, quorum.go); the Store's API and checks are
// the same in both. It is safe for concurrent use: writers are serialized,
// readers load the current image without locks.
type Store struct {
	opts  Options
	c     committer
	image *imageCell

	// allocMu serializes AllocateProducerID; taken before mu.
	allocMu sync.Mutex
	// remoteReserve reserves a producer id block through the active
	// controller (SetRemoteProducerIDs); guarded by allocMu.
	remoteReserve func() (int64, error)
	mu            struct {
		sync.Mutex
		// nextProducerID is the next id to hand out from this node's
		// block, which ends at producerIDsEnd.
		nextProducerID int64
		producerIDsEnd int64
		closed         bool
	}
}

// committer makes a change durable, in the order of every node's metadata
// log, and publishes the image that includes it.
type committer interface {
	// latest returns the image a change is checked against, or why
	// this node cannot make changes (NotControllerError).
	latest() (*Image, error)
	// commit writes recs as one change, applied all or none, and returns
	// the image that holds it once it is applied locally. Callers hold
	// Store.mu, so one node's changes never interleave.
	commit(recs []records.Record) (*Image, error)
	// controller is the id of the node that commits changes, -1 if
	// none is known.
	controller() int32
	// status reports the raft term and indexes (local mode: 0 and the
	// image's end offset).
	status() (term, commit, applied uint64)
	// caughtUp reports whether the image holds the metadata log as far
	// as this node can know it.
	caughtUp() (bool, error)
	// close stops the committer at a clean shutdown.
	close() error
}

// Open loads the newest valid snapshot in the metadata log's directory
// and replays the log after it into an image: local mode. A snapshot that
// fails to load is skipped for an older one, or for a replay of the whole
// log. A log written by an older strata (JSON records) is translated as it
// is replayed and a snapshot of the result is written at once, so that it
// is not replayed again.
func Open(l *log.Log, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = DefaultSnapshotBytes
	}
	image := newImageCell()
	c, err := openLocal(l, opts, image)
	if err != nil {
		return nil, err
	}
	return newStore(opts, c, image), nil
}

func newStore(opts Options, c committer, image *imageCell) *Store {
	return &Store{opts: opts, c: c, image: image}
}

// ControllerAPIListener is the controller listener's Kafka half in
// quorum mode: connections of brokers registering, heartbeating and
// forwarding admin requests to this node (SplitListener). nil in local
// mode. The Store closes it at Close.
func (s *Store) ControllerAPIListener() net.Listener {
	if q, ok := s.c.(*quorum); ok {
		return q.apiLn
	}
	return nil
}

// Quorum reports whether the metadata log is a raft quorum's.
func (s *Store) Quorum() bool {
	_, ok := s.c.(*quorum)
	return ok
}

// Propose runs one metadata change on the active controller: build checks
// it against the latest image and returns its records (none: nothing to
// change), committed as one batch. It returns the image that holds the
// change, or NotControllerError on another node. The controller package
// builds its decisions (registration, fencing, elections) with it.
func (s *Store) Propose(build func(im *Image) ([]records.Record, error)) (*Image, error) {
	return s.change(build)
}

// Image returns the current image.
func (s *Store) Image() *Image { return s.image.Load() }

// ControllerID is the node whose proposals the metadata log takes: this
// node in local mode, the raft leader in quorum mode (-1 while there is
// none), as Kafka's Metadata and DescribeCluster name the active
// controller.
func (s *Store) ControllerID() int32 { return s.c.controller() }

// Status is the metadata log's state, for metrics and operators.
type Status struct {
	// Offset is the image's EndOffset.
	Offset       int64
	ControllerID int32
	// Term, CommitIndex and AppliedIndex are raft's in quorum mode; in
	// local mode the term is 0 and both indexes are Offset.
	Term, CommitIndex, AppliedIndex uint64
}

// Status returns the metadata log's state. It takes no Store lock.
func (s *Store) Status() Status {
	st := Status{Offset: s.Image().EndOffset, ControllerID: s.c.controller()}
	st.Term, st.CommitIndex, st.AppliedIndex = s.c.status()
	return st
}

// WaitCaughtUp waits until the image holds the metadata log as far as
// this node can know it, as a Kafka broker catches up with the metadata
// log before it serves. In local mode the image always does. In quorum
// mode the leader has applied every entry of earlier terms (a raft
// barrier); a follower has heard from the leader since it started and
// applied every entry the leader reported committed (raft caps that at
// the follower's own log, so a follower far behind may still be catching
// up: nothing must be deleted on its image's word).
func (s *Store) WaitCaughtUp(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok, err := s.c.caughtUp()
		s.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for the metadata log (controller %d): %w", s.ControllerID(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// change runs one metadata change: build checks it against the latest
// image and returns its records (none: nothing to change), which are
// committed as one batch, so that they apply all or none, as Kafka's
// controller appends a topic creation atomically. It returns the image
// that holds the change. Writers are serialized, so build sees every
// change this node made before.
func (s *Store) change(build func(im *Image) ([]records.Record, error)) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, log.ErrClosed
	}
	im, err := s.c.latest()
	if err != nil {
		return nil, err
	}
	recs, err := build(im)
	if err != nil || len(recs) == 0 {
		return im, err
	}
	return s.c.commit(recs)
}

// Close stops the committer: in local mode it writes a snapshot of the
// image, so that the next start replays nothing; in quorum mode it leaves
// the quorum's state on disk for the next start. Then changes are refused.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	return s.c.close()
}

// ProducerIDBlock is how many producer ids one metadata record reserves,
// as Kafka's controller hands out blocks of 1000.
const ProducerIDBlock = 1000

// SetRemoteProducerIDs gives the Store the way to reserve a block of
// producer ids when this node is not the active controller (Kafka's
// AllocateProducerIds request to the controller). It returns the first id
// of a block of ProducerIDBlock ids.
func (s *Store) SetRemoteProducerIDs(reserve func() (int64, error)) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	s.remoteReserve = reserve
}

// AllocateProducerID returns a producer id never returned before, also
// across restarts and, in quorum mode, across the nodes.
func (s *Store) AllocateProducerID() (int64, error) {
	// One allocation at a time, so that callers that find the block
	// used up reserve one new block, not one each.
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	s.mu.Lock()
	next, end := s.mu.nextProducerID, s.mu.producerIDsEnd
	if next < end {
		s.mu.nextProducerID++
		s.mu.Unlock()
		return next, nil
	}
	s.mu.Unlock()
	epoch := int64(-1)
	if b := s.Image().Broker(s.opts.NodeID); b != nil {
		epoch = b.Epoch
	}
	start, err := s.ReserveProducerIDs(s.opts.NodeID, epoch)
	if errors.Is(err, ErrNotController) && s.remoteReserve != nil {
		start, err = s.remoteReserve()
	}
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.nextProducerID, s.mu.producerIDsEnd = start+1, start+ProducerIDBlock
	return start, nil
}

// ReserveProducerIDs reserves the next block of ProducerIDBlock producer
// ids for a broker and returns its first id: on the active controller, a
// ProducerIdsRecord through the metadata log.
func (s *Store) ReserveProducerIDs(brokerID int32, brokerEpoch int64) (int64, error) {
	var start int64
	_, err := s.change(func(im *Image) ([]records.Record, error) {
		// A new block starts at the end of the last one reserved by any
		// node (ProducerIdsRecord.NextProducerId, as Kafka's
		// ProducerIdControlManager), not at this node's counter: in a
		// quorum another controller may have reserved blocks since, and
		// after a restart ids of the last block may have been handed
		// out.
		start = im.ProducerIDsEnd
		return []records.Record{&records.ProducerIDs{BrokerID: brokerID, BrokerEpoch: brokerEpoch, NextProducerID: start + ProducerIDBlock}}, nil
	})
	return start, err
}

// RegisterBroker records this node's registration (RegisterBrokerRecord)
// unless the image already has it with the same endpoints and rack. The
// broker epoch is the record's metadata offset (the image's end offset
// before it, which the record takes in local mode and which only grows in
// quorum mode) and the incarnation id is new, as Kafka's controller assigns
// them. The node registers unfenced: in local mode it is its own
// controller and there is no other node whose log it must catch up with
// first; in quorum mode registration goes through the active controller
// like every change (fencing and heartbeats are not built yet).
func (s *Store) RegisterBroker(endpoints []records.Endpoint, rack *string) (*Broker, error) {
	im, err := s.change(func(im *Image) ([]records.Record, error) {
		if b := im.Broker(s.opts.NodeID); b != nil && slices.Equal(b.Endpoints, endpoints) && equalPtr(b.Rack, rack) && !b.Fenced {
			return nil, nil
		}
		var inc records.UUID
		for inc == (records.UUID{}) {
			rand.Read(inc[:])
		}
		return []records.Record{&records.RegisterBroker{
			BrokerID: s.opts.NodeID, IncarnationID: inc, BrokerEpoch: im.EndOffset,
			EndPoints: endpoints, Rack: rack, Fenced: false,
		}}, nil
	})
	if err != nil {
		return nil, err
	}
	return im.Broker(s.opts.NodeID), nil
}

func equalPtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// PlaceFunc chooses the replicas of a topic's partitions from..to-1
// against the latest image, as the active controller does when it
// creates or grows a topic (the first replica leads); nil places every
// partition on this node alone.
type PlaceFunc func(im *Image, from, to int32) ([][]int32, error)

// partitionRecords returns the PartitionRecords of partitions from..to-1
// of a new or growing topic: replicas as placed, the ISR those of them
// that are usable (registered, unfenced, not shutting down), in replica
// order, and its first leading, epochs 0 (Kafka's controller does the
// same: a manual assignment may name a fenced broker, which must neither
// lead nor count as in sync). When no replica is usable (the placement
// should have refused it) every replica is in the ISR and the first leads.
func (s *Store) partitionRecords(im *Image, id TopicID, from, to int32, place PlaceFunc) ([]records.Record, error) {
	if place == nil {
		return localPartitions(id, from, to, s.opts.NodeID), nil
	}
	assign, err := place(im, from, to)
	if err != nil {
		return nil, err
	}
	if len(assign) != int(to-from) {
		return nil, fmt.Errorf("cluster: placement returned %d partitions, want %d", len(assign), to-from)
	}
	out := make([]records.Record, 0, len(assign))
	for i, replicas := range assign {
		if len(replicas) == 0 {
			return nil, fmt.Errorf("cluster: placement left partition %d without replicas", from+int32(i))
		}
		isr := slices.DeleteFunc(slices.Clone(replicas), func(r int32) bool {
			b := im.Brokers[r]
			return b == nil || b.Fenced || b.InControlledShutdown
		})
		if len(isr) == 0 {
			isr = slices.Clone(replicas)
		}
		out = append(out, &records.Partition{
			PartitionID: from + int32(i), TopicID: records.UUID(id),
			Replicas: replicas, Isr: isr, Leader: isr[0],
		})
	}
	return out, nil
}

// CreateTopic adds a topic with a new random ID: a TopicRecord, a
// PartitionRecord per partition placed by place, and a ConfigRecord per
// config.
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string, place PlaceFunc) (*Topic, error) {
	im, err := s.change(func(im *Image) ([]records.Record, error) {
		if im.Topic(name) != nil {
			return nil, ErrTopicExists
		}
		var id TopicID
		for id == (TopicID{}) {
			rand.Read(id[:])
		}
		recs := []records.Record{&records.Topic{Name: name, TopicID: records.UUID(id)}}
		parts, err := s.partitionRecords(im, id, 0, partitions, place)
		if err != nil {
			return nil, err
		}
		recs = append(recs, parts...)
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			v := configs[k]
			recs = append(recs, &records.Config{ResourceType: records.ResourceTopic, ResourceName: name, Name: k, Value: &v})
		}
		return recs, nil
	})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// DeleteTopic removes a topic from the image (RemoveTopicRecord).
func (s *Store) DeleteTopic(name string) (*Topic, error) {
	var t *Topic
	_, err := s.change(func(im *Image) ([]records.Record, error) {
		if t = im.Topic(name); t == nil {
			return nil, ErrUnknownTopic
		}
		return []records.Record{&records.RemoveTopic{TopicID: records.UUID(t.ID)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// SetPartitions grows a topic to partitions partitions, placed by place
// (callers check it grows; a smaller count changes nothing, as Kafka
// cannot remove partitions).
func (s *Store) SetPartitions(name string, partitions int32, place PlaceFunc) (*Topic, error) {
	im, err := s.change(func(im *Image) ([]records.Record, error) {
		t := im.Topic(name)
		if t == nil {
			return nil, ErrUnknownTopic
		}
		if partitions <= t.Partitions {
			return nil, nil
		}
		return s.partitionRecords(im, t.ID, t.Partitions, partitions, place)
	})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// AlterConfigs sets (non-nil) or removes (nil) topic config overrides,
// one ConfigRecord per key.
func (s *Store) AlterConfigs(name string, changes map[string]*string) (*Topic, error) {
	im, err := s.change(func(im *Image) ([]records.Record, error) {
		if im.Topic(name) == nil {
			return nil, ErrUnknownTopic
		}
		return configRecords(name, changes), nil
	})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// Changed returns a channel that is closed when the next image is
// published. Load the image after taking the channel, so that no change
// falls between the two.
func (s *Store) Changed() <-chan struct{} { return s.image.Changed() }

// AddNonvoter makes broker id, whose controller listener is at addr, a
// non-voting member of the raft quorum, so that the leader sends it the
// metadata log: the active controller calls it when a broker that is not
// a voter registers. It does nothing for a voter or a member already
// added at addr, and returns NotControllerError on a node that is not the
// raft leader. A member known at another address (a
// broker restarted with another controller listener) is moved to addr. In
// local mode it does nothing.
//
// A member stays one until removed from the raft configuration: a broker
// that stops, or is unregistered, remains a non-voter, which costs the
// leader only failed attempts to send it the log (raft backs off) and
// lets it catch up at once when it comes back. Removing brokers for good
// (raft's RemoveServer) is not built.
func (s *Store) AddNonvoter(id int32, addr string) error {
	q, ok := s.c.(*quorum)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return log.ErrClosed
	}
	return q.addNonvoter(id, addr)
}

// Voters returns the node ids of the controller quorum's voters, nil in
// local mode.
func (s *Store) Voters() []int32 {
	q, ok := s.c.(*quorum)
	if !ok {
		return nil
	}
	return q.voters
}
