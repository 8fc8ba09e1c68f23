// Package records encodes and decodes strata's metadata records, which are
// Kafka's KRaft metadata records (apache/kafka metadata/src/main/resources/
// common/metadata/*.json): the same api keys, versions, field order and
// types, so that a metadata log or snapshot strata writes has Kafka's
// format. Only the fields strata uses carry meaning today; the others are
// kept at Kafka's defaults and survive a round trip.
//
// A record value in the metadata log (and in a snapshot) is framed as
// Kafka's MetadataRecordSerde (AbstractApiMessageSerde) frames it:
//
//	+---------------+---------+----------------+------------------------+
//	| frame version | api key | record version | body (flexible message) |
//	| uvarint (=1)  | uvarint | uvarint        |                         |
//	+---------------+---------+----------------+------------------------+
//
// Every body here is a flexible version (KIP-482), as every metadata record
// is in released Kafka ("flexibleVersions": "0+"): compact strings and
// arrays, and a tagged-field section after each struct.
//
//	key name                      versions  strata uses
//	 0  RegisterBrokerRecord      0-3       id, incarnation, epoch, endpoints, rack, fenced
//	 1  UnregisterBrokerRecord    0         id, epoch
//	 2  TopicRecord               0         name, topic id
//	 3  PartitionRecord           0-2       id, topic id, replicas, ISR, leader, epochs,
//	                                        adding and removing replicas (KIP-455)
//	 4  ConfigRecord              0         topic (resource type 2) configs; null value removes
//	 5  PartitionChangeRecord     0-2       ISR, leader, replicas, adding and removing replicas
//	                                        (tagged, absent = unchanged, empty = cleared)
//	 7  FenceBrokerRecord         0         id, epoch
//	 8  UnfenceBrokerRecord       0         id, epoch
//	 9  RemoveTopicRecord         0         topic id
//	11  UserScramCredentialRecord 0         name, mechanism, salt, stored and server
//	                                        keys, iterations (SASL/SCRAM users)
//	12  RemoveUserScramCredential 0         name, mechanism
//	15  ProducerIdsRecord         0         next producer id (end of the block reserved)
//	17  BrokerRegistrationChange  0-2       id, epoch, fenced
//	23  AccessControlEntryRecord  0         id, resource, pattern, principal, host,
//	                                        operation, permission (an ACL binding)
//	24  RemoveAccessControlEntry  0         id
//
// Decode accepts every version listed and refuses a newer one, an unknown
// api key, a frame version other than 1, a known tagged field at a version
// before its field existed, and bytes after the body, each with an error
// wrapping ErrCorrupt or ErrUnsupported: a metadata log must never be
// applied partly understood. Unknown tagged fields are skipped, as Kafka's
// generated readers keep them aside. Encode writes PartitionRecord and
// PartitionChangeRecord at the lowest version that holds their fields (0
// for strata's own), RegisterBrokerRecord at 3 and
// BrokerRegistrationChangeRecord at 2 (their newer fields are defaults or
// tagged, so old readers' versions cost nothing), and the rest at 0.
package records

import (
	"errors"
	"fmt"

	"github.com/strata-io/strata/internal/wire"
)

var (
	// ErrCorrupt marks a record that does not decode.
	ErrCorrupt = errors.New("records: corrupt metadata record")
	// ErrUnsupported marks a record of an api key, version or frame
	// version this strata does not know, e.g. written by a newer one.
	ErrUnsupported = errors.New("records: unsupported metadata record")
)

// frameVersion is AbstractApiMessageSerde's DEFAULT_FRAME_VERSION.
const frameVersion = 1

// UUID is a Kafka Uuid (topic ids, incarnation ids, directory ids).
type UUID [16]byte

// Record is one metadata record.
type Record interface {
	// APIKey is the record's api key in Kafka's MetadataRecordType.
	APIKey() int16
	// writeVersion is the version Encode writes.
	writeVersion() int16
	appendTo(w *wire.Writer, v int16)
	readFrom(r *wire.Reader, v int16)
}

type kind struct {
	name string
	max  int16
	new  func() Record
}

var kinds = map[int16]kind{
	0:  {"RegisterBrokerRecord", 3, func() Record { return new(RegisterBroker) }},
	1:  {"UnregisterBrokerRecord", 0, func() Record { return new(UnregisterBroker) }},
	2:  {"TopicRecord", 0, func() Record { return new(Topic) }},
	3:  {"PartitionRecord", 2, func() Record { return new(Partition) }},
	4:  {"ConfigRecord", 0, func() Record { return new(Config) }},
	5:  {"PartitionChangeRecord", 2, func() Record { return new(PartitionChange) }},
	7:  {"FenceBrokerRecord", 0, func() Record { return new(FenceBroker) }},
	8:  {"UnfenceBrokerRecord", 0, func() Record { return new(UnfenceBroker) }},
	9:  {"RemoveTopicRecord", 0, func() Record { return new(RemoveTopic) }},
	11: {"UserScramCredentialRecord", 0, func() Record { return new(UserScramCredential) }},
	12: {"RemoveUserScramCredentialRecord", 0, func() Record { return new(RemoveUserScramCredential) }},
	15: {"ProducerIdsRecord", 0, func() Record { return new(ProducerIDs) }},
	17: {"BrokerRegistrationChangeRecord", 2, func() Record { return new(BrokerRegistrationChange) }},
	23: {"AccessControlEntryRecord", 0, func() Record { return new(AccessControlEntry) }},
	24: {"RemoveAccessControlEntryRecord", 0, func() Record { return new(RemoveAccessControlEntry) }},
}

// MaxVersion is the newest version of the api key this package knows, -1
// for an unknown key.
func MaxVersion(key int16) int16 {
	if k, ok := kinds[key]; ok {
		return k.max
	}
	return -1
}

// Name is Kafka's name of the record type of key.
func Name(key int16) string {
	if k, ok := kinds[key]; ok {
		return k.name
	}
	return fmt.Sprintf("unknown(%d)", key)
}

// Append appends rec, framed, at the version strata writes.
func Append(b []byte, rec Record) []byte {
	b, err := AppendVersion(b, rec, rec.writeVersion())
	if err != nil {
		panic(err) // writeVersion is always a known version: a bug
	}
	return b
}

// Encode returns rec framed at the version strata writes.
func Encode(rec Record) []byte { return Append(nil, rec) }

// AppendVersion appends rec, framed, at version v. Fields newer than v are
// not written, as Kafka's generated write(..., version) leaves them out.
func AppendVersion(b []byte, rec Record, v int16) ([]byte, error) {
	if v < 0 || v > MaxVersion(rec.APIKey()) {
		return b, fmt.Errorf("%w: %s version %d", ErrUnsupported, Name(rec.APIKey()), v)
	}
	w := wire.Writer{B: b}
	w.Uvarint(frameVersion)
	w.Uvarint(int(rec.APIKey()))
	w.Uvarint(int(v))
	rec.appendTo(&w, v)
	return w.B, nil
}

// Decode decodes one framed record value and returns it with its version.
// It never panics; it allocates at most in proportion to len(b).
func Decode(b []byte) (Record, int16, error) {
	r := wire.NewReader(b)
	fv, key, v := r.Uvarint(), r.Uvarint(), r.Uvarint()
	if err := r.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: frame: %w", ErrCorrupt, err)
	}
	if fv != frameVersion {
		return nil, 0, fmt.Errorf("%w: frame version %d (only %d is known)", ErrUnsupported, fv, frameVersion)
	}
	k, ok := kinds[int16(key)]
	if !ok || key > 1<<15-1 {
		return nil, 0, fmt.Errorf("%w: api key %d", ErrUnsupported, key)
	}
	if v > int(k.max) {
		return nil, 0, fmt.Errorf("%w: %s version %d (this strata reads versions up to %d)", ErrUnsupported, k.name, v, k.max)
	}
	rec := k.new()
	rec.readFrom(r, int16(v))
	if err := r.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: %s v%d: %w", ErrCorrupt, k.name, v, err)
	}
	if r.Len() != 0 {
		// Kafka's MetadataRecordSerde refuses "garbage after" a record.
		return nil, 0, fmt.Errorf("%w: %s v%d: %d bytes after the record", ErrCorrupt, k.name, v, r.Len())
	}
	return rec, int16(v), nil
}

func uuids(ids []UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func fromUUIDs(ids [][16]byte) []UUID {
	if ids == nil {
		return nil
	}
	out := make([]UUID, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
