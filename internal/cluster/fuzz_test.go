package cluster

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/strata-io/strata/internal/cluster/records"
)

// FuzzApply feeds a sequence of records (each an unsigned varint length
// then a framed record) to an image. Invariants: applying never panics
// and fails only with ErrInconsistent, and the records of whatever image
// results (a snapshot's content) build that same image again.
func FuzzApply(f *testing.F) {
	var seed []byte
	for _, r := range []records.Record{
		&records.RegisterBroker{BrokerID: 1, BrokerEpoch: 0, EndPoints: []records.Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}},
		&records.Topic{Name: "t", TopicID: records.UUID{1}},
		&records.Partition{PartitionID: 0, TopicID: records.UUID{1}, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1},
		&records.Partition{PartitionID: 1, TopicID: records.UUID{1}, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1},
		func() records.Record { pc := records.NewPartitionChange(records.UUID{1}, 1); pc.Leader = 2; return pc }(),
		&records.Config{ResourceType: records.ResourceTopic, ResourceName: "t", Name: "k", Value: strp("v")},
		&records.Config{ResourceType: records.ResourceBroker, ResourceName: "1", Name: "k", Value: strp("v")},
		&records.FenceBroker{ID: 1, Epoch: 0},
		&records.ProducerIDs{BrokerID: 1, NextProducerID: 1000},
		&records.RemoveTopic{TopicID: records.UUID{1}},
	} {
		b := records.Encode(r)
		seed = binary.AppendUvarint(seed, uint64(len(b)))
		seed = append(seed, b...)
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDelta(emptyImage())
		for len(data) > 0 {
			n, k := binary.Uvarint(data)
			if k <= 0 || n > uint64(len(data)-k) {
				break
			}
			rec, _, err := records.Decode(data[k : k+int(n)])
			data = data[k+int(n):]
			if err != nil {
				continue
			}
			if err := d.apply(rec); err != nil && !errors.Is(err, ErrInconsistent) {
				t.Fatalf("unmarked error %v", err)
			}
		}
		im := d.finish(1)
		again := newDelta(emptyImage())
		for _, r := range im.Records() {
			// Through the codec, as a snapshot stores them.
			rec, _, err := records.Decode(records.Encode(r))
			if err != nil {
				t.Fatal(err)
			}
			if err := again.apply(rec); err != nil {
				t.Fatalf("%s of an image does not apply: %v", records.Name(r.APIKey()), err)
			}
		}
		if back := again.finish(1); dump(back) != dump(im) {
			t.Fatalf("\n%s\n%s", dump(im), dump(back))
		}
	})
}
