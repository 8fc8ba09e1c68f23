package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
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

// Store appends metadata records and publishes the image they build. It is
// safe for concurrent use: writers are serialized, readers load the
// current image without locks.
type Store struct {
	opts  Options
	log   *log.Log
	image atomic.Pointer[Image]

	mu struct {
		sync.Mutex
		// nextProducerID is the next id to hand out from the reserved
		// block.
		nextProducerID int64
		// bytesSinceSnapshot counts batch bytes appended since the
		// last snapshot; snapshotOffset is that snapshot's end offset
		// (-1 for none).
		bytesSinceSnapshot int64
		snapshotOffset     int64
		closed             bool
	}
}

// Open loads the newest valid snapshot in the metadata log's directory
// and replays the log after it into an image. A snapshot that fails to
// load is skipped for an older one, or for a replay of the whole log. A
// log written by an older strata (JSON records) is translated as it is
// replayed and a snapshot of the result is written at once, so that it is
// not replayed again.
func Open(l *log.Log, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = DefaultSnapshotBytes
	}
	s := &Store{opts: opts, log: l}
	s.mu.snapshotOffset = -1
	base, err := s.loadSnapshot()
	if err != nil {
		return nil, err
	}
	im, legacy, err := s.replay(base)
	if err != nil {
		return nil, fmt.Errorf("replay metadata: %w", err)
	}
	s.image.Store(im)
	// Ids of the last block may have been handed out before a restart:
	// start after it.
	s.mu.nextProducerID = im.ProducerIDsEnd
	if legacy > 0 {
		opts.Logger.Info("upgraded metadata log from JSON records", "records", legacy, "end_offset", im.EndOffset)
		s.mu.Lock()
		err := s.snapshotLocked()
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// loadSnapshot returns the image of the newest snapshot that loads, or an
// empty image.
func (s *Store) loadSnapshot() (*Image, error) {
	offs, err := listSnapshots(s.log.Dir())
	if err != nil {
		return nil, fmt.Errorf("list metadata snapshots: %w", err)
	}
	for _, off := range offs {
		if off > s.log.LogEndOffset() || off < s.log.LogStartOffset() {
			// The log is the source of truth: a snapshot past its
			// end would hide records appended at offsets below it.
			s.opts.Logger.Warn("ignoring metadata snapshot outside the log", "end_offset", off, "log_start_offset", s.log.LogStartOffset(), "log_end_offset", s.log.LogEndOffset())
			continue
		}
		im, err := readSnapshot(s.log.Dir(), off)
		if err != nil {
			s.opts.Logger.Warn("skipping metadata snapshot", "end_offset", off, "err", err)
			continue
		}
		s.mu.snapshotOffset = off
		return im, nil
	}
	return emptyImage(), nil
}

// replay applies the log's records from base.EndOffset on. It returns the
// image and how many legacy JSON records it translated.
func (s *Store) replay(base *Image) (*Image, int, error) {
	d := newDelta(base)
	legacy := 0
	end := base.EndOffset
	err := s.log.Scan(base.EndOffset, func(b record.Batch) error {
		var aerr error
		err := b.ForEachRecord(func(rec *record.Record) bool {
			if rec.Offset < end {
				return true // a batch that straddles the snapshot
			}
			var recs []records.Record
			if isLegacy(rec.Value) {
				legacy++
				recs, aerr = translateLegacy(d.im, rec.Value, s.opts.NodeID)
			} else {
				var r records.Record
				if r, _, aerr = records.Decode(rec.Value); aerr == nil {
					recs = []records.Record{r}
				}
			}
			for _, r := range recs {
				if aerr == nil {
					aerr = d.apply(r)
				}
			}
			if aerr != nil {
				aerr = fmt.Errorf("metadata record at offset %d: %w", rec.Offset, aerr)
				return false
			}
			end = rec.Offset + 1
			return true
		})
		if err == nil {
			err = aerr
		}
		if err == nil {
			end = max(end, b.NextOffset())
			s.mu.bytesSinceSnapshot += int64(b.Size())
		}
		return err
	})
	return d.finish(end), legacy, err
}

// Image returns the current image.
func (s *Store) Image() *Image { return s.image.Load() }

// commitLocked appends recs durably as one batch (so that they apply all
// or none, as Kafka's controller appends a topic creation atomically),
// then publishes the image they build. Requires mu.
func (s *Store) commitLocked(recs ...records.Record) (*Image, error) {
	if s.mu.closed {
		return nil, log.ErrClosed
	}
	d := newDelta(s.image.Load())
	for _, r := range recs {
		if err := d.apply(r); err != nil {
			return nil, err // a bug in the caller: nothing was written
		}
	}
	now := time.Now().UnixMilli()
	nr := make([]record.NewRecord, len(recs))
	for i, r := range recs {
		nr[i] = record.NewRecord{Value: records.Encode(r), Timestamp: now}
	}
	b, err := record.Build(record.BuildOptions{}, nr...)
	if err != nil {
		return nil, err
	}
	if _, err := s.log.Append(b, 0); err != nil {
		return nil, fmt.Errorf("append metadata: %w", err)
	}
	s.log.SetHighWatermark(s.log.LogEndOffset())
	im := d.finish(s.log.LogEndOffset())
	s.image.Store(im)
	s.mu.bytesSinceSnapshot += int64(len(b))
	if s.opts.SnapshotBytes > 0 && s.mu.bytesSinceSnapshot >= s.opts.SnapshotBytes {
		// Written here, by the writer that crossed the threshold:
		// metadata changes are rare and one snapshot is small (tens of
		// bytes a partition), so it costs less than a goroutine to own.
		// The records are durable already: a failed snapshot only
		// means a longer replay at the next start.
		if err := s.snapshotLocked(); err != nil {
			s.opts.Logger.Error("write metadata snapshot", "err", err)
		}
	}
	return im, nil
}

// snapshotLocked writes a snapshot of the current image, unless the
// newest snapshot already holds it, and removes older ones. Requires mu.
func (s *Store) snapshotLocked() error {
	im := s.image.Load()
	if im.EndOffset == s.mu.snapshotOffset {
		return nil
	}
	wrote, err := writeSnapshot(s.log.Dir(), im)
	if err != nil {
		return err
	}
	s.mu.bytesSinceSnapshot = 0
	if wrote {
		s.mu.snapshotOffset = im.EndOffset
		s.opts.Logger.Info("wrote metadata snapshot", "end_offset", im.EndOffset)
	}
	return removeSnapshotsBefore(s.log.Dir(), snapshotsRetained)
}

// Close writes a snapshot of the image at a clean shutdown, so that the
// next start replays nothing, then refuses further changes. It does not
// close the log, which its owner (the broker) closes.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	return s.snapshotLocked()
}

// producerIDBlock is how many producer ids one metadata record reserves,
// as Kafka's controller hands out blocks of 1000.
const producerIDBlock = 1000

// AllocateProducerID returns a producer id never returned before, also
// across restarts.
func (s *Store) AllocateProducerID() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.nextProducerID >= s.Image().ProducerIDsEnd {
		end := s.mu.nextProducerID + producerIDBlock
		epoch := int64(-1)
		if b := s.Image().Broker(s.opts.NodeID); b != nil {
			epoch = b.Epoch
		}
		if _, err := s.commitLocked(&records.ProducerIDs{BrokerID: s.opts.NodeID, BrokerEpoch: epoch, NextProducerID: end}); err != nil {
			return 0, err
		}
	}
	id := s.mu.nextProducerID
	s.mu.nextProducerID++
	return id, nil
}

// RegisterBroker records this node's registration (RegisterBrokerRecord)
// unless the image already has it with the same endpoints and rack. The
// broker epoch is the record's offset and the incarnation id is new, as
// Kafka's controller assigns them. A single node is its own controller, so
// it registers unfenced: there is no other node whose log it must catch up
// with first.
func (s *Store) RegisterBroker(endpoints []records.Endpoint, rack *string) (*Broker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.Image().Broker(s.opts.NodeID); b != nil && slices.Equal(b.Endpoints, endpoints) && equalPtr(b.Rack, rack) && !b.Fenced {
		return b, nil
	}
	var inc records.UUID
	for inc == (records.UUID{}) {
		rand.Read(inc[:])
	}
	im, err := s.commitLocked(&records.RegisterBroker{
		BrokerID: s.opts.NodeID, IncarnationID: inc, BrokerEpoch: s.log.LogEndOffset(),
		EndPoints: endpoints, Rack: rack, Fenced: false,
	})
	if err != nil {
		return nil, err
	}
	return im.Broker(s.opts.NodeID), nil
}

func equalPtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// CreateTopic adds a topic with a new random ID: a TopicRecord, a
// PartitionRecord per partition hosted on this node alone (replicas, ISR
// and leader this node, epochs 0), and a ConfigRecord per config.
func (s *Store) CreateTopic(name string, partitions int32, configs map[string]string) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Image().Topic(name) != nil {
		return nil, ErrTopicExists
	}
	var id TopicID
	for id == (TopicID{}) {
		rand.Read(id[:])
	}
	recs := []records.Record{&records.Topic{Name: name, TopicID: records.UUID(id)}}
	recs = append(recs, localPartitions(id, 0, partitions, s.opts.NodeID)...)
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		recs = append(recs, &records.Config{ResourceType: records.ResourceTopic, ResourceName: name, Name: k, Value: &v})
	}
	im, err := s.commitLocked(recs...)
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// DeleteTopic removes a topic from the image (RemoveTopicRecord).
func (s *Store) DeleteTopic(name string) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.Image().Topic(name)
	if t == nil {
		return nil, ErrUnknownTopic
	}
	_, err := s.commitLocked(&records.RemoveTopic{TopicID: records.UUID(t.ID)})
	return t, err
}

// SetPartitions grows a topic to partitions partitions, each hosted on
// this node alone (callers check it grows; a smaller count changes
// nothing, as Kafka cannot remove partitions).
func (s *Store) SetPartitions(name string, partitions int32) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.Image().Topic(name)
	if t == nil {
		return nil, ErrUnknownTopic
	}
	if partitions <= t.Partitions {
		return t, nil
	}
	im, err := s.commitLocked(localPartitions(t.ID, t.Partitions, partitions, s.opts.NodeID)...)
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// AlterConfigs sets (non-nil) or removes (nil) topic config overrides,
// one ConfigRecord per key.
func (s *Store) AlterConfigs(name string, changes map[string]*string) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Image().Topic(name) == nil {
		return nil, ErrUnknownTopic
	}
	recs := configRecords(name, changes)
	if len(recs) == 0 {
		return s.Image().Topic(name), nil
	}
	im, err := s.commitLocked(recs...)
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}
