package broker

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const partitionMetadataFile = "partition.metadata"

var errBadPartitionMetadata = errors.New("broker: malformed partition.metadata")

// encodePartitionMetadata is Kafka's PartitionMetadataFile, version 0.
func encodePartitionMetadata(topicID [16]byte) []byte {
	return []byte("version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(topicID[:]) + "\n")
}

// decodePartitionMetadata parses partition.metadata the way Kafka's
// PartitionMetadataReadBuffer does: "key: value" lines, version 0 first.
func decodePartitionMetadata(data []byte) ([16]byte, error) {
	var id [16]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	field := func(key string) (string, error) {
		if !sc.Scan() {
			return "", fmt.Errorf("%w: missing %s", errBadPartitionMetadata, key)
		}
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			return "", fmt.Errorf("%w: expected %s, got %q", errBadPartitionMetadata, key, sc.Text())
		}
		return strings.TrimSpace(v), nil
	}
	v, err := field("version")
	if err != nil {
		return id, err
	}
	if v != "0" {
		return id, fmt.Errorf("%w: unsupported version %q", errBadPartitionMetadata, v)
	}
	s, err := field("topic_id")
	if err != nil {
		return id, err
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: topic id %q", errBadPartitionMetadata, s)
	}
	copy(id[:], b)
	return id, nil
}

// loadMetadata reads partition.metadata, if there is one, into the cache.
func (p *Partition) loadMetadata() {
	data, err := os.ReadFile(filepath.Join(p.Log.Dir(), partitionMetadataFile))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var id [16]byte
	if err == nil {
		id, err = decodePartitionMetadata(data)
	}
	if err != nil {
		p.logger.Warn("ignoring unreadable partition.metadata; it is rewritten when the topic id is next set", "err", err)
		return
	}
	p.metaMu.Lock()
	p.metaMu.topicID, p.metaMu.hasTopicID = id, true
	p.metaMu.Unlock()
}

// TopicID returns the topic id recorded in partition.metadata, if any.
func (p *Partition) TopicID() (id [16]byte, ok bool) {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	return p.metaMu.topicID, p.metaMu.hasTopicID
}

// ErrInconsistentTopicID: INCONSISTENT_TOPIC_ID. A partition directory
// holds another topic's data.
var ErrInconsistentTopicID = errors.New("broker: partition.metadata names another topic id")

// WriteMetadata records the partition's topic id in partition.metadata
// (Kafka's PartitionMetadataFile), writing the file atomically when it is
// missing; when it already holds topicID it does nothing, so calling it on
// every partition creation or load is cheap. A different id on disk means
// the directory outlived an earlier topic of the same name: its records are
// not the new topic's, so the partition is refused with
// ErrInconsistentTopicID, as Kafka's UnifiedLog.assignTopicId does.
func (p *Partition) WriteMetadata(topicID [16]byte) error {
	if topicID == ([16]byte{}) {
		return errors.New("broker: partition.metadata needs a non-zero topic id")
	}
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if p.metaMu.hasTopicID && p.metaMu.topicID == topicID {
		return nil
	}
	if p.metaMu.hasTopicID {
		return fmt.Errorf("%w: %s holds topic id %s, the topic's is %s", ErrInconsistentTopicID, p.TP,
			base64.RawURLEncoding.EncodeToString(p.metaMu.topicID[:]),
			base64.RawURLEncoding.EncodeToString(topicID[:]))
	}
	if err := writeFileAtomic(p.Log.FS(), p.Log.Dir(), partitionMetadataFile, encodePartitionMetadata(topicID)); err != nil {
		return err
	}
	p.metaMu.topicID, p.metaMu.hasTopicID = topicID, true
	return nil
}
