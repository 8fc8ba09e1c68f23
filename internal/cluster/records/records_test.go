package records

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }

var (
	topicA = UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	dirA   = UUID{0xd, 1}
)

// samples returns, per api key and version, a record using every field
// that version has, so that a round trip checks each field's encoding.
func samples() []struct {
	v   int16
	rec Record
} {
	type s = struct {
		v   int16
		rec Record
	}
	var out []s
	for v := int16(0); v <= 3; v++ {
		rb := &RegisterBroker{
			BrokerID: 3, IncarnationID: topicA, BrokerEpoch: 77,
			EndPoints: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}, {Name: "SSL", Host: "h", Port: 65535, SecurityProtocol: 1}},
			Features:  []Feature{{Name: "metadata.version", MinSupportedVersion: 1, MaxSupportedVersion: 20}},
			Rack:      strp("rack-a"), Fenced: true,
		}
		if v >= 1 {
			rb.InControlledShutdown = true
		}
		if v >= 2 {
			rb.IsMigratingZkBroker = true
		}
		if v >= 3 {
			rb.LogDirs = []UUID{dirA, topicA}
		}
		out = append(out, s{v, rb})
	}
	for v := int16(0); v <= 2; v++ {
		p := &Partition{PartitionID: 7, TopicID: topicA, Replicas: []int32{1, 2, 3}, Isr: []int32{1, 2}, RemovingReplicas: []int32{3}, AddingReplicas: []int32{4},
			Leader: 1, LeaderRecoveryState: 1, LeaderEpoch: 5, PartitionEpoch: 9}
		pc := NewPartitionChange(topicA, 7)
		pc.Isr, pc.Leader, pc.Replicas, pc.RemovingReplicas, pc.AddingReplicas, pc.LeaderRecoveryState = []int32{}, NoLeader, []int32{1}, []int32{2}, []int32{3}, 0
		if v >= 1 {
			p.Directories = []UUID{dirA, dirA, topicA}
			pc.Directories = []UUID{dirA}
		}
		if v >= 2 {
			p.EligibleLeaderReplicas, p.LastKnownElr = []int32{3}, []int32{}
			pc.EligibleLeaderReplicas, pc.LastKnownElr = []int32{2}, []int32{1, 2}
		}
		brc := &BrokerRegistrationChange{BrokerID: 2, BrokerEpoch: 40, Fenced: -1}
		if v >= 1 {
			brc.InControlledShutdown = 1
		}
		if v >= 2 {
			brc.LogDirs = []UUID{dirA}
		}
		out = append(out, s{v, p}, s{v, pc}, s{v, brc})
	}
	out = append(out,
		s{0, &UnregisterBroker{BrokerID: 4, BrokerEpoch: 12}},
		s{0, &Topic{Name: "orders", TopicID: topicA}},
		s{0, &Config{ResourceType: ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: strp("1000")}},
		s{0, &Config{ResourceType: ResourceTopic, ResourceName: "orders", Name: "cleanup.policy"}},
		s{0, NewPartitionChange(topicA, 0)},
		s{0, &FenceBroker{ID: 1, Epoch: 2}},
		s{0, &UnfenceBroker{ID: 1, Epoch: 3}},
		s{0, &RemoveTopic{TopicID: topicA}},
		s{0, &ProducerIDs{BrokerID: 1, BrokerEpoch: -1, NextProducerID: 5000}},
		s{0, &UserScramCredential{Name: "alice", Mechanism: 2, Salt: []byte("salt"), StoredKey: []byte{1, 2}, ServerKey: []byte{3}, Iterations: 4096}},
		s{0, &RemoveUserScramCredential{Name: "alice", Mechanism: 1}},
		s{0, &AccessControlEntry{ID: topicA, ResourceType: 2, ResourceName: "orders", PatternType: 4, Principal: "User:alice", Host: "*", Operation: 3, PermissionType: 3}},
		s{0, &RemoveAccessControlEntry{ID: topicA}},
	)
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		b, err := AppendVersion(nil, s.rec, s.v)
		if err != nil {
			t.Fatal(err)
		}
		got, v, err := Decode(b)
		if err != nil {
			t.Fatalf("%s v%d: %v", Name(s.rec.APIKey()), s.v, err)
		}
		if v != s.v || !reflect.DeepEqual(got, s.rec) {
			t.Errorf("%s v%d: decoded v%d %+v, want %+v", Name(s.rec.APIKey()), s.v, v, got, s.rec)
		}
	}
}

// TestKafkaBytes pins the encoding against bytes worked out by hand from
// Kafka's schemas, so a field order or type mistake in both the encoder and
// the decoder cannot pass as a round trip.
func TestKafkaBytes(t *testing.T) {
	cases := []struct {
		rec  Record
		want []byte
	}{
		{&Topic{Name: "ab", TopicID: topicA}, append(append([]byte{1, 2, 0, 3, 'a', 'b'}, topicA[:]...), 0)},
		{&RemoveTopic{TopicID: topicA}, append(append([]byte{1, 9, 0}, topicA[:]...), 0)},
		{&UserScramCredential{Name: "u", Mechanism: 1, Salt: []byte{7}, StoredKey: []byte{8, 9}, ServerKey: []byte{}, Iterations: 4096},
			[]byte{1, 11, 0, 2, 'u', 1, 2, 7, 3, 8, 9, 1, 0, 0, 0x10, 0, 0}},
		{&RemoveUserScramCredential{Name: "u", Mechanism: 2}, []byte{1, 12, 0, 2, 'u', 2, 0}},
		{&ProducerIDs{BrokerID: 1, BrokerEpoch: -1, NextProducerID: 1000}, []byte{1, 15, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0}},
		{&Config{ResourceType: ResourceTopic, ResourceName: "t", Name: "k"}, []byte{1, 4, 0, 2, 2, 't', 2, 'k', 0, 0}},
		// Kafka's AccessControlEntryRecord.json: Id, ResourceType,
		// ResourceName, PatternType, Principal, Host, Operation,
		// PermissionType.
		{&AccessControlEntry{ID: topicA, ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "U:a", Host: "*", Operation: 3, PermissionType: 3},
			append(append([]byte{1, 23, 0}, topicA[:]...), 2, 2, 't', 3, 4, 'U', ':', 'a', 2, '*', 3, 3, 0)},
		{&RemoveAccessControlEntry{ID: topicA}, append(append([]byte{1, 24, 0}, topicA[:]...), 0)},
		{&Partition{PartitionID: 1, TopicID: topicA, Replicas: []int32{5}, Isr: []int32{5}, Leader: 5, LeaderEpoch: 0, PartitionEpoch: 0},
			append(append([]byte{1, 3, 0, 0, 0, 0, 1}, topicA[:]...), 2, 0, 0, 0, 5, 2, 0, 0, 0, 5, 1, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{func() Record { pc := NewPartitionChange(topicA, 1); pc.Leader = 2; return pc }(),
			append(append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...), 1, 1, 4, 0, 0, 0, 2)},
		// Version 2 writes its tags in tag order: ELR (6), LastKnownElr
		// (7), then Directories (8), declared first.
		{func() Record {
			pc := NewPartitionChange(topicA, 1)
			pc.Directories, pc.EligibleLeaderReplicas, pc.LastKnownElr = []UUID{}, []int32{}, []int32{3}
			return pc
		}(), append(append([]byte{1, 5, 2, 0, 0, 0, 1}, topicA[:]...), 3, 6, 1, 1, 7, 5, 2, 0, 0, 0, 3, 8, 1, 1)},
	}
	for _, c := range cases {
		got := Encode(c.rec)
		if pc, ok := c.rec.(*PartitionChange); ok && pc.Directories != nil {
			got, _ = AppendVersion(nil, c.rec, 2)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s:\n got % x\nwant % x", Name(c.rec.APIKey()), got, c.want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	topic := Encode(&Topic{Name: "t", TopicID: topicA})
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"newer version", append([]byte{1, 2, 1}, topic[3:]...), ErrUnsupported},
		{"newer partition version", []byte{1, 3, 3}, ErrUnsupported},
		{"unknown key", []byte{1, 99, 0}, ErrUnsupported},
		{"frame version 0", append([]byte{0}, topic[1:]...), ErrUnsupported},
		{"frame version 2", append([]byte{2}, topic[1:]...), ErrUnsupported},
		{"truncated", topic[:len(topic)-1], ErrCorrupt},
		{"trailing", append(topic, 0), ErrCorrupt},
		{"empty", nil, ErrCorrupt},
		{"json", []byte(`{"type":"topic"}`), ErrUnsupported},
		{"null replicas", append(append([]byte{1, 3, 0, 0, 0, 0, 1}, topicA[:]...), 0), ErrCorrupt},
		// Kafka's generated reader: "Tag 8 is not valid for version 0".
		{"directories tag at v0", append(append([]byte{1, 5, 0, 0, 0, 0, 1}, topicA[:]...), 1, 8, 1, 1), ErrCorrupt},
		{"ELR tag at v1", append(append([]byte{1, 3, 1, 0, 0, 0, 1}, topicA[:]...), 1, 1, 1, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1), ErrCorrupt},
		{"huge array", append(append([]byte{1, 3, 0, 0, 0, 0, 1}, topicA[:]...), 0xff, 0xff, 0xff, 0x7f), ErrCorrupt},
	}
	for _, c := range cases {
		_, _, err := Decode(c.b)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if strings.Contains(c.name, " tag at ") && !strings.Contains(fmt.Sprint(err), "is not valid for version") {
			t.Errorf("%s: refused for another reason: %v", c.name, err)
		}
	}
	// The same ELR tag at version 2 is read.
	elr := append(append([]byte{1, 3, 2, 0, 0, 0, 1}, topicA[:]...), 1, 1, 1, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1)
	if rec, _, err := Decode(elr); err != nil || rec.(*Partition).EligibleLeaderReplicas == nil {
		t.Fatalf("%+v %v", rec, err)
	}
	if _, err := AppendVersion(nil, &Topic{}, 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("encoding an unknown version: %v", err)
	}
}

// TestUnknownTagsSkipped: a tagged field a later Kafka adds is read past.
func TestUnknownTagsSkipped(t *testing.T) {
	b := Encode(&Topic{Name: "t", TopicID: topicA})
	b = append(b[:len(b)-1], 1, 9, 2, 0xab, 0xcd) // one tag 9 of 2 bytes
	rec, _, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*Topic); got.Name != "t" || got.TopicID != topicA {
		t.Fatal(got)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes at the
// decoded version and decodes again to the same record.
func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b, _ := AppendVersion(nil, s.rec, s.v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, v, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unmarked error %v", err)
			}
			return
		}
		again, err := AppendVersion(nil, rec, v)
		if err != nil {
			t.Fatal(err)
		}
		rec2, v2, err := Decode(again)
		if err != nil || v2 != v || !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("round trip: %+v v%d -> %+v v%d (%v)", rec, v, rec2, v2, err)
		}
	})
}
