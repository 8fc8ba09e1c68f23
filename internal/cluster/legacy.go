package cluster

import (
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/strata-io/strata/internal/cluster/records"
)

// legacyRecord is a metadata record as strata wrote it before the KRaft
// records: a JSON object per record value (the first byte is '{', never a
// frame version). Upgrading a data dir replays them through
// translateLegacy; strata no longer writes them.
//
//	{"type":"topic","name":"orders","id":"<uuid hex>","partitions":3,"configs":{...}}
//	{"type":"partitions","name":"orders","partitions":6}
//	{"type":"config","name":"orders","configs":{"retention.ms":"1000","x":null}}
//	{"type":"producer_ids","name":"","block_end":2000}
//	{"type":"delete_topic","name":"orders"}
type legacyRecord struct {
	Type       string             `json:"type"`
	Name       string             `json:"name"`
	ID         string             `json:"id,omitempty"`
	Partitions int32              `json:"partitions,omitempty"`
	Configs    map[string]*string `json:"configs,omitempty"`
	BlockEnd   int64              `json:"block_end,omitempty"`
}

func isLegacy(value []byte) bool { return len(value) > 0 && value[0] == '{' }

// translateLegacy returns the KRaft records that make the change the JSON
// record value made, given the image it applies to. What the old replay
// ignored (a change of an unknown topic, an unknown type) translates to
// nothing, so the upgraded image is the one the old code built. Partitions
// get this node as their only replica, leader and ISR, epochs 0, as
// single-node strata ran them.
func translateLegacy(im *Image, value []byte, nodeID int32) ([]records.Record, error) {
	var lr legacyRecord
	if err := json.Unmarshal(value, &lr); err != nil {
		return nil, err
	}
	var out []records.Record
	t := im.Topic(lr.Name)
	switch lr.Type {
	case "topic":
		var id TopicID
		hex.Decode(id[:], []byte(lr.ID)) // as the old replay did
		out = append(out, &records.Topic{Name: lr.Name, TopicID: records.UUID(id)})
		out = append(out, localPartitions(id, 0, lr.Partitions, nodeID)...)
		out = append(out, configRecords(lr.Name, lr.Configs)...)
	case "partitions":
		if t != nil {
			out = localPartitions(t.ID, t.Partitions, lr.Partitions, nodeID)
		}
	case "config":
		if t != nil {
			out = configRecords(lr.Name, lr.Configs)
		}
	case "producer_ids":
		out = append(out, &records.ProducerIDs{BrokerID: nodeID, BrokerEpoch: -1, NextProducerID: lr.BlockEnd})
	case "delete_topic":
		if t != nil {
			out = append(out, &records.RemoveTopic{TopicID: records.UUID(t.ID)})
		}
	}
	return out, nil
}

func configRecords(topic string, configs map[string]*string) []records.Record {
	var out []records.Record
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		out = append(out, &records.Config{ResourceType: records.ResourceTopic, ResourceName: topic, Name: k, Value: configs[k]})
	}
	return out
}

// localPartitions returns PartitionRecords for partitions from..to-1 of a
// topic hosted on this node alone: replicas, ISR and leader this node,
// leader and partition epoch 0 (Kafka's first epochs).
func localPartitions(id TopicID, from, to int32, nodeID int32) []records.Record {
	var out []records.Record
	for p := from; p < to; p++ {
		out = append(out, &records.Partition{
			PartitionID: p, TopicID: records.UUID(id),
			Replicas: []int32{nodeID}, Isr: []int32{nodeID}, Leader: nodeID,
		})
	}
	return out
}
