// Package cluster holds the broker's metadata: topics, their IDs, partition
// counts and configs. Every change is a record appended to a metadata log
// and applied, in order, to an immutable in-memory Image that handlers read
// without locks (DESIGN.md principle 6). On a single node the metadata log is
// a local partition log, `__cluster_metadata-0` in the first log dir, as in
// Kafka's KRaft mode; replaying it at start rebuilds the image.
//
// Records are JSON values, one per Kafka record:
//
//	{"type":"topic","name":"orders","id":"<uuid hex>","partitions":3,"configs":{...}}
//	{"type":"partitions","name":"orders","partitions":6}
//	{"type":"config","name":"orders","configs":{"retention.ms":"1000","x":null}}
//	{"type":"delete_topic","name":"orders"}
package cluster

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

// MetadataTopic is the partition that holds the metadata log.
var MetadataTopic = log.TopicPartition{Topic: "__cluster_metadata", Partition: 0}

var (
	ErrTopicExists  = errors.New("cluster: topic already exists")
	ErrUnknownTopic = errors.New("cluster: unknown topic")
)

// TopicID is a topic's UUID, stable for the topic's life (Metadata v10+,
// Fetch v13+).
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// Topic is one topic in the image. Values in an Image are never modified.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	// Configs holds only the overrides set for the topic.
	Configs map[string]string
}

// Image is the metadata at one point of the log. It is immutable.
type Image struct {
	Topics map[string]*Topic
	ByID   map[TopicID]*Topic
	// ProducerIDsEnd is the end of the last producer id block reserved.
	ProducerIDsEnd int64
}

// Topic returns the named topic or nil.
func (im *Image) Topic(name string) *Topic { return im.Topics[name] }

type metaRecord struct {
	Type       string             `json:"type"`
	Name       string             `json:"name"`
	ID         string             `json:"id,omitempty"`
	Partitions int32              `json:"partitions,omitempty"`
	Configs    map[string]*string `json:"configs,omitempty"`
	// BlockEnd is the end of a reserved producer id block.
	BlockEnd int64 `json:"block_end,omitempty"`
}

// Store appends metadata records and publishes the image they build.
type Store struct {
	mu    sync.Mutex // serializes writers
	log   *log.Log
	image atomic.Pointer[Image]
	// nextProducerID is the next id to hand out from the reserved block;
	// guarded by mu.
	nextProducerID int64
}

// Open replays the metadata log l (fsynced per append by the caller's
// config) into an image.
func Open(l *log.Log) (*Store, error) {
	s := &Store{log: l}
	im := &Image{Topics: map[string]*Topic{}, ByID: map[TopicID]*Topic{}}
	err := l.Scan(0, func(b record.Batch) error {
		var rerr error
		err := b.ForEachRecord(func(rec *record.Record) bool {
			var mr metaRecord
			if err := json.Unmarshal(rec.Value, &mr); err != nil {
				rerr = fmt.Errorf("metadata record at %d: %w", rec.Offset, err)
				return false
			}
			im = apply(im, mr)
			return true
		})
		return cmp.Or(err, rerr)
	})
	if err != nil {
		return nil, fmt.Errorf("replay metadata: %w", err)
	}
	s.image.Store(im)
	// Ids of the last block may have been handed out before a restart:
	// start after it.
	s.nextProducerID = im.ProducerIDsEnd
	return s, nil
}

// producerIDBlock is how many producer ids one metadata record reserves,
// as Kafka's controller hands out blocks of 1000.
const producerIDBlock = 1000

// AllocateProducerID returns a producer id never returned before, also
// across restarts.
func (s *Store) AllocateProducerID() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextProducerID >= s.Image().ProducerIDsEnd {
		end := s.nextProducerID + producerIDBlock
		if _, err := s.commit(metaRecord{Type: "producer_ids", BlockEnd: end}); err != nil {
			return 0, err
		}
	}
	id := s.nextProducerID
	s.nextProducerID++
	return id, nil
}

// Image returns the current image.
func (s *Store) Image() *Image { return s.image.Load() }

// apply returns the image after mr; im is not modified.
func apply(im *Image, mr metaRecord) *Image {
	next := &Image{Topics: maps.Clone(im.Topics), ByID: maps.Clone(im.ByID), ProducerIDsEnd: im.ProducerIDsEnd}
	old := next.Topics[mr.Name]
	switch mr.Type {
	case "topic":
		var id TopicID
		hex.Decode(id[:], []byte(mr.ID))
		t := &Topic{Name: mr.Name, ID: id, Partitions: mr.Partitions, Configs: map[string]string{}}
		applyConfigs(t.Configs, mr.Configs)
		next.Topics[t.Name], next.ByID[id] = t, t
	case "partitions":
		if old != nil {
			t := *old
			t.Partitions = mr.Partitions
			next.Topics[t.Name], next.ByID[t.ID] = &t, &t
		}
	case "config":
		if old != nil {
			t := *old
			t.Configs = maps.Clone(old.Configs)
			applyConfigs(t.Configs, mr.Configs)
			next.Topics[t.Name], next.ByID[t.ID] = &t, &t
		}
	case "producer_ids":
		next.ProducerIDsEnd = max(next.ProducerIDsEnd, mr.BlockEnd)
	case "delete_topic":
		if old != nil {
			delete(next.Topics, old.Name)
			delete(next.ByID, old.ID)
		}
	}
	return next
}

func applyConfigs(dst map[string]string, changes map[string]*string) {
	for k, v := range changes {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = *v
		}
	}
}

// commit appends mr durably, then publishes the new image.
func (s *Store) commit(mr metaRecord) (*Image, error) {
	value, err := json.Marshal(mr)
	if err != nil {
		return nil, err
	}
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: value, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	if _, err := s.log.Append(b, 0); err != nil {
		return nil, fmt.Errorf("append metadata: %w", err)
	}
	s.log.SetHighWatermark(s.log.LogEndOffset())
	im := apply(s.image.Load(), mr)
	s.image.Store(im)
	return im, nil
}

// CreateTopic adds a topic with a new random ID.
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
	cs := make(map[string]*string, len(configs))
	for k, v := range configs {
		cs[k] = &v
	}
	im, err := s.commit(metaRecord{Type: "topic", Name: name, ID: id.String(), Partitions: partitions, Configs: cs})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// DeleteTopic removes a topic from the image.
func (s *Store) DeleteTopic(name string) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.Image().Topic(name)
	if t == nil {
		return nil, ErrUnknownTopic
	}
	_, err := s.commit(metaRecord{Type: "delete_topic", Name: name})
	return t, err
}

// SetPartitions changes a topic's partition count (callers check it grows).
func (s *Store) SetPartitions(name string, partitions int32) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Image().Topic(name) == nil {
		return nil, ErrUnknownTopic
	}
	im, err := s.commit(metaRecord{Type: "partitions", Name: name, Partitions: partitions})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}

// AlterConfigs sets (non-nil) or removes (nil) topic config overrides.
func (s *Store) AlterConfigs(name string, changes map[string]*string) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Image().Topic(name) == nil {
		return nil, ErrUnknownTopic
	}
	im, err := s.commit(metaRecord{Type: "config", Name: name, Configs: changes})
	if err != nil {
		return nil, err
	}
	return im.Topic(name), nil
}
