package records

import (
	"errors"
	"fmt"

	"github.com/strata-io/strata/internal/wire"
)

// errNull is a null where Kafka's schema has a non-nullable array; Kafka's
// generated readers refuse it ("non-nullable field ... was serialized as
// null").
var errNull = errors.New("null in a non-nullable array")

// int32s reads a non-nullable compact int32 array; empty comes back nil so
// that a decoded record compares equal to the one encoded.
func int32s(r *wire.Reader) []int32 {
	vs := r.CompactInt32s()
	if vs == nil && r.Err() == nil {
		r.Fail(errNull)
	}
	if len(vs) == 0 {
		return nil
	}
	return vs
}

// nullableInt32s reads a nullable compact int32 array: nil is null, an
// empty slice is an empty array.
func nullableInt32s(r *wire.Reader) []int32 { return r.CompactInt32s() }

func readUUIDs(r *wire.Reader) []UUID {
	ids := r.CompactUUIDs()
	if ids == nil && r.Err() == nil {
		r.Fail(errNull)
	}
	if len(ids) == 0 {
		return nil
	}
	return fromUUIDs(ids)
}

// Config resource types (ConfigResource.Type): ConfigRecord.ResourceType.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
	// ResourceGroup is a consumer group's configs (KIP-848's GroupConfig,
	// ConfigResource.Type.GROUP).
	ResourceGroup int8 = 32
)

// Endpoint is RegisterBrokerRecord.BrokerEndpoint. SecurityProtocol is
// Kafka's SecurityProtocol id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3
// SASL_SSL.
type Endpoint struct {
	Name             string
	Host             string
	Port             uint16
	SecurityProtocol int16
}

// Feature is RegisterBrokerRecord.BrokerFeature.
type Feature struct {
	Name                string
	MinSupportedVersion int16
	MaxSupportedVersion int16
}

// RegisterBroker is RegisterBrokerRecord (api key 0): a broker joined, or
// rejoined with a new incarnation. Its BrokerEpoch is, in Kafka, the offset
// of this record in the metadata log.
type RegisterBroker struct {
	BrokerID             int32
	IsMigratingZkBroker  bool // v2+
	IncarnationID        UUID
	BrokerEpoch          int64
	EndPoints            []Endpoint
	Features             []Feature
	Rack                 *string
	Fenced               bool
	InControlledShutdown bool   // v1+
	LogDirs              []UUID // v3+, tag 0
}

func (*RegisterBroker) APIKey() int16       { return 0 }
func (*RegisterBroker) writeVersion() int16 { return 3 }

func (rec *RegisterBroker) appendTo(w *wire.Writer, v int16) {
	w.Int32(rec.BrokerID)
	if v >= 2 {
		w.Bool(rec.IsMigratingZkBroker)
	}
	w.UUID(rec.IncarnationID)
	w.Int64(rec.BrokerEpoch)
	w.CompactArrayLen(len(rec.EndPoints))
	for _, e := range rec.EndPoints {
		w.CompactString(e.Name)
		w.CompactString(e.Host)
		w.Uint16(e.Port)
		w.Int16(e.SecurityProtocol)
		w.NoTags()
	}
	w.CompactArrayLen(len(rec.Features))
	for _, f := range rec.Features {
		w.CompactString(f.Name)
		w.Int16(f.MinSupportedVersion)
		w.Int16(f.MaxSupportedVersion)
		w.NoTags()
	}
	w.CompactNullableString(rec.Rack)
	w.Bool(rec.Fenced)
	if v >= 1 {
		w.Bool(rec.InControlledShutdown)
	}
	if v >= 3 && len(rec.LogDirs) > 0 {
		w.Uvarint(1)
		w.Tag(0, func(w *wire.Writer) { w.CompactUUIDs(uuids(rec.LogDirs)) })
	} else {
		w.NoTags()
	}
}

func (rec *RegisterBroker) readFrom(r *wire.Reader, v int16) {
	rec.BrokerID = r.Int32()
	if v >= 2 {
		rec.IsMigratingZkBroker = r.Bool()
	}
	rec.IncarnationID = r.UUID()
	rec.BrokerEpoch = r.Int64()
	n := r.CompactArrayLen()
	if n < 0 {
		r.Fail(errNull)
	}
	for range n {
		rec.EndPoints = append(rec.EndPoints, Endpoint{Name: r.CompactString(), Host: r.CompactString(), Port: r.Uint16(), SecurityProtocol: r.Int16()})
		r.SkipTags()
	}
	n = r.CompactArrayLen()
	if n < 0 {
		r.Fail(errNull)
	}
	for range n {
		rec.Features = append(rec.Features, Feature{Name: r.CompactString(), MinSupportedVersion: r.Int16(), MaxSupportedVersion: r.Int16()})
		r.SkipTags()
	}
	rec.Rack = r.CompactNullableString()
	rec.Fenced = r.Bool()
	if v >= 1 {
		rec.InControlledShutdown = r.Bool()
	}
	r.Tags(func(tag int, fr *wire.Reader) bool {
		if tag == 0 && tagSince(fr, tag, v, 3) {
			rec.LogDirs = readUUIDs(fr)
			return true
		}
		return false
	})
}

// UnregisterBroker is UnregisterBrokerRecord (api key 1).
type UnregisterBroker struct {
	BrokerID    int32
	BrokerEpoch int64
}

func (*UnregisterBroker) APIKey() int16       { return 1 }
func (*UnregisterBroker) writeVersion() int16 { return 0 }
func (rec *UnregisterBroker) appendTo(w *wire.Writer, _ int16) {
	w.Int32(rec.BrokerID)
	w.Int64(rec.BrokerEpoch)
	w.NoTags()
}
func (rec *UnregisterBroker) readFrom(r *wire.Reader, _ int16) {
	rec.BrokerID, rec.BrokerEpoch = r.Int32(), r.Int64()
	r.SkipTags()
}

// Topic is TopicRecord (api key 2): a topic was created. Its partitions
// and configs follow as PartitionRecords and ConfigRecords.
type Topic struct {
	Name    string
	TopicID UUID
}

func (*Topic) APIKey() int16       { return 2 }
func (*Topic) writeVersion() int16 { return 0 }
func (rec *Topic) appendTo(w *wire.Writer, _ int16) {
	w.CompactString(rec.Name)
	w.UUID(rec.TopicID)
	w.NoTags()
}
func (rec *Topic) readFrom(r *wire.Reader, _ int16) {
	rec.Name, rec.TopicID = r.CompactString(), r.UUID()
	r.SkipTags()
}

// Partition is PartitionRecord (api key 3): a partition's whole state.
// strata's own are version 0, as Kafka writes before metadata.version
// 3.7-IV2 (Directories, KIP-858) and without ELR (KIP-966).
type Partition struct {
	PartitionID            int32
	TopicID                UUID
	Replicas               []int32
	Isr                    []int32
	RemovingReplicas       []int32
	AddingReplicas         []int32
	Leader                 int32
	LeaderRecoveryState    int8 // tag 0, default 0
	LeaderEpoch            int32
	PartitionEpoch         int32
	Directories            []UUID  // v1+
	EligibleLeaderReplicas []int32 // v2+, tag 1, nullable, default null
	LastKnownElr           []int32 // v2+, tag 2, nullable, default null
}

func (*Partition) APIKey() int16 { return 3 }

// writeVersion is the lowest version that holds every field set, so that
// strata's own records stay version 0 and a partition read from a newer
// record keeps its directories and ELR in a snapshot.
func (rec *Partition) writeVersion() int16 {
	switch {
	case rec.EligibleLeaderReplicas != nil || rec.LastKnownElr != nil:
		return 2
	case len(rec.Directories) > 0:
		return 1
	}
	return 0
}

func (rec *Partition) appendTo(w *wire.Writer, v int16) {
	w.Int32(rec.PartitionID)
	w.UUID(rec.TopicID)
	w.CompactInt32s(rec.Replicas)
	w.CompactInt32s(rec.Isr)
	w.CompactInt32s(rec.RemovingReplicas)
	w.CompactInt32s(rec.AddingReplicas)
	w.Int32(rec.Leader)
	w.Int32(rec.LeaderEpoch)
	w.Int32(rec.PartitionEpoch)
	if v >= 1 {
		w.CompactUUIDs(uuids(rec.Directories))
	}
	var tags []func()
	if rec.LeaderRecoveryState != 0 {
		tags = append(tags, func() { w.Tag(0, func(w *wire.Writer) { w.Int8(rec.LeaderRecoveryState) }) })
	}
	if v >= 2 && rec.EligibleLeaderReplicas != nil {
		tags = append(tags, func() { w.Tag(1, func(w *wire.Writer) { w.CompactNullableInt32s(rec.EligibleLeaderReplicas) }) })
	}
	if v >= 2 && rec.LastKnownElr != nil {
		tags = append(tags, func() { w.Tag(2, func(w *wire.Writer) { w.CompactNullableInt32s(rec.LastKnownElr) }) })
	}
	writeTags(w, tags)
}

func (rec *Partition) readFrom(r *wire.Reader, v int16) {
	rec.PartitionID = r.Int32()
	rec.TopicID = r.UUID()
	rec.Replicas = int32s(r)
	rec.Isr = int32s(r)
	rec.RemovingReplicas = int32s(r)
	rec.AddingReplicas = int32s(r)
	rec.Leader = r.Int32()
	rec.LeaderEpoch = r.Int32()
	rec.PartitionEpoch = r.Int32()
	if v >= 1 {
		rec.Directories = readUUIDs(r)
	}
	r.Tags(func(tag int, fr *wire.Reader) bool {
		switch {
		case tag == 0:
			rec.LeaderRecoveryState = fr.Int8()
		case tag == 1 && tagSince(fr, tag, v, 2):
			rec.EligibleLeaderReplicas = nullableInt32s(fr)
		case tag == 2 && tagSince(fr, tag, v, 2):
			rec.LastKnownElr = nullableInt32s(fr)
		default:
			return false
		}
		return true
	})
}

// tagSince reports whether a known tag of a field added in version since
// may appear at version v. If not, the record is refused, as Kafka's
// generated readers throw "Tag N is not valid for version V". Always true,
// so that the caller's case takes the tag (and its error) as known.
func tagSince(fr *wire.Reader, tag int, v, since int16) bool {
	if v < since {
		fr.Fail(fmt.Errorf("tag %d is not valid for version %d", tag, v))
	}
	return true
}

// writeTags writes a tagged-field section of the fields tags write, in
// increasing tag order.
func writeTags(w *wire.Writer, tags []func()) {
	w.Uvarint(len(tags))
	for _, t := range tags {
		t()
	}
}

// Config is ConfigRecord (api key 4): one config key of a resource was
// set, or removed when Value is nil.
type Config struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        *string
}

func (*Config) APIKey() int16       { return 4 }
func (*Config) writeVersion() int16 { return 0 }
func (rec *Config) appendTo(w *wire.Writer, _ int16) {
	w.Int8(rec.ResourceType)
	w.CompactString(rec.ResourceName)
	w.CompactString(rec.Name)
	w.CompactNullableString(rec.Value)
	w.NoTags()
}
func (rec *Config) readFrom(r *wire.Reader, _ int16) {
	rec.ResourceType = r.Int8()
	rec.ResourceName = r.CompactString()
	rec.Name = r.CompactString()
	rec.Value = r.CompactNullableString()
	r.SkipTags()
}

// Leader values of PartitionChangeRecord besides a broker id.
const (
	NoLeader        int32 = -1
	LeaderUnchanged int32 = -2
)

// PartitionChange is PartitionChangeRecord (api key 5): the fields that
// changed; nil arrays, Leader LeaderUnchanged and LeaderRecoveryState -1
// mean unchanged. Build one with NewPartitionChange, which sets those
// defaults (a zero Leader would name broker 0).
type PartitionChange struct {
	PartitionID            int32
	TopicID                UUID
	Isr                    []int32 // tag 0
	Leader                 int32   // tag 1, default -2
	Replicas               []int32 // tag 2
	RemovingReplicas       []int32 // tag 3
	AddingReplicas         []int32 // tag 4
	LeaderRecoveryState    int8    // tag 5, default -1
	EligibleLeaderReplicas []int32 // v2+, tag 6
	LastKnownElr           []int32 // v2+, tag 7
	Directories            []UUID  // v1+, tag 8 (declared before ELR in Kafka's schema, tagged after it)
}

// NewPartitionChange returns a change of nothing yet to a partition.
func NewPartitionChange(topicID UUID, partition int32) *PartitionChange {
	return &PartitionChange{PartitionID: partition, TopicID: topicID, Leader: LeaderUnchanged, LeaderRecoveryState: -1}
}

func (*PartitionChange) APIKey() int16 { return 5 }

// writeVersion is the lowest version that holds every field set.
func (rec *PartitionChange) writeVersion() int16 {
	switch {
	case rec.EligibleLeaderReplicas != nil || rec.LastKnownElr != nil:
		return 2
	case rec.Directories != nil:
		return 1
	}
	return 0
}

func (rec *PartitionChange) appendTo(w *wire.Writer, v int16) {
	w.Int32(rec.PartitionID)
	w.UUID(rec.TopicID)
	var tags []func()
	arr := func(tag int, vs []int32) {
		if vs != nil {
			tags = append(tags, func() { w.Tag(tag, func(w *wire.Writer) { w.CompactNullableInt32s(vs) }) })
		}
	}
	arr(0, rec.Isr)
	if rec.Leader != LeaderUnchanged {
		tags = append(tags, func() { w.Tag(1, func(w *wire.Writer) { w.Int32(rec.Leader) }) })
	}
	arr(2, rec.Replicas)
	arr(3, rec.RemovingReplicas)
	arr(4, rec.AddingReplicas)
	if rec.LeaderRecoveryState != -1 {
		tags = append(tags, func() { w.Tag(5, func(w *wire.Writer) { w.Int8(rec.LeaderRecoveryState) }) })
	}
	if v >= 2 {
		arr(6, rec.EligibleLeaderReplicas)
		arr(7, rec.LastKnownElr)
	}
	if v >= 1 && rec.Directories != nil {
		tags = append(tags, func() { w.Tag(8, func(w *wire.Writer) { w.CompactUUIDs(uuids(rec.Directories)) }) })
	}
	writeTags(w, tags)
}

func (rec *PartitionChange) readFrom(r *wire.Reader, v int16) {
	rec.PartitionID = r.Int32()
	rec.TopicID = r.UUID()
	rec.Leader, rec.LeaderRecoveryState = LeaderUnchanged, -1
	r.Tags(func(tag int, fr *wire.Reader) bool {
		switch {
		case tag == 0:
			rec.Isr = nullableInt32s(fr)
		case tag == 1:
			rec.Leader = fr.Int32()
		case tag == 2:
			rec.Replicas = nullableInt32s(fr)
		case tag == 3:
			rec.RemovingReplicas = nullableInt32s(fr)
		case tag == 4:
			rec.AddingReplicas = nullableInt32s(fr)
		case tag == 5:
			rec.LeaderRecoveryState = fr.Int8()
		case tag == 6 && tagSince(fr, tag, v, 2):
			rec.EligibleLeaderReplicas = nullableInt32s(fr)
		case tag == 7 && tagSince(fr, tag, v, 2):
			rec.LastKnownElr = nullableInt32s(fr)
		case tag == 8 && tagSince(fr, tag, v, 1):
			rec.Directories = fromUUIDs(fr.CompactUUIDs())
		default:
			return false
		}
		return true
	})
}

// FenceBroker is FenceBrokerRecord (api key 7); Kafka 3.3+ writes
// BrokerRegistrationChangeRecord instead but still reads it.
type FenceBroker struct {
	ID    int32
	Epoch int64
}

func (*FenceBroker) APIKey() int16       { return 7 }
func (*FenceBroker) writeVersion() int16 { return 0 }
func (rec *FenceBroker) appendTo(w *wire.Writer, _ int16) {
	w.Int32(rec.ID)
	w.Int64(rec.Epoch)
	w.NoTags()
}
func (rec *FenceBroker) readFrom(r *wire.Reader, _ int16) {
	rec.ID, rec.Epoch = r.Int32(), r.Int64()
	r.SkipTags()
}

// UnfenceBroker is UnfenceBrokerRecord (api key 8).
type UnfenceBroker struct {
	ID    int32
	Epoch int64
}

func (*UnfenceBroker) APIKey() int16       { return 8 }
func (*UnfenceBroker) writeVersion() int16 { return 0 }
func (rec *UnfenceBroker) appendTo(w *wire.Writer, _ int16) {
	w.Int32(rec.ID)
	w.Int64(rec.Epoch)
	w.NoTags()
}
func (rec *UnfenceBroker) readFrom(r *wire.Reader, _ int16) {
	rec.ID, rec.Epoch = r.Int32(), r.Int64()
	r.SkipTags()
}

// RemoveTopic is RemoveTopicRecord (api key 9): the topic and all its
// partitions and configs are gone.
type RemoveTopic struct {
	TopicID UUID
}

func (*RemoveTopic) APIKey() int16       { return 9 }
func (*RemoveTopic) writeVersion() int16 { return 0 }
func (rec *RemoveTopic) appendTo(w *wire.Writer, _ int16) {
	w.UUID(rec.TopicID)
	w.NoTags()
}
func (rec *RemoveTopic) readFrom(r *wire.Reader, _ int16) {
	rec.TopicID = r.UUID()
	r.SkipTags()
}

// ProducerIDs is ProducerIdsRecord (api key 15): a block of producer ids
// was handed out; NextProducerID is the first id of the next block.
type ProducerIDs struct {
	BrokerID       int32
	BrokerEpoch    int64
	NextProducerID int64
}

func (*ProducerIDs) APIKey() int16       { return 15 }
func (*ProducerIDs) writeVersion() int16 { return 0 }
func (rec *ProducerIDs) appendTo(w *wire.Writer, _ int16) {
	w.Int32(rec.BrokerID)
	w.Int64(rec.BrokerEpoch)
	w.Int64(rec.NextProducerID)
	w.NoTags()
}
func (rec *ProducerIDs) readFrom(r *wire.Reader, _ int16) {
	rec.BrokerID, rec.BrokerEpoch, rec.NextProducerID = r.Int32(), r.Int64(), r.Int64()
	r.SkipTags()
}

// BrokerRegistrationChange is BrokerRegistrationChangeRecord (api key 17).
// Fenced: -1 unfenced, 0 no change, 1 fenced. InControlledShutdown: 0 no
// change, 1 in controlled shutdown.
type BrokerRegistrationChange struct {
	BrokerID             int32
	BrokerEpoch          int64
	Fenced               int8   // tag 0
	InControlledShutdown int8   // v1+, tag 1
	LogDirs              []UUID // v2+, tag 2
}

func (*BrokerRegistrationChange) APIKey() int16       { return 17 }
func (*BrokerRegistrationChange) writeVersion() int16 { return 2 }

func (rec *BrokerRegistrationChange) appendTo(w *wire.Writer, v int16) {
	w.Int32(rec.BrokerID)
	w.Int64(rec.BrokerEpoch)
	var tags []func()
	if rec.Fenced != 0 {
		tags = append(tags, func() { w.Tag(0, func(w *wire.Writer) { w.Int8(rec.Fenced) }) })
	}
	if v >= 1 && rec.InControlledShutdown != 0 {
		tags = append(tags, func() { w.Tag(1, func(w *wire.Writer) { w.Int8(rec.InControlledShutdown) }) })
	}
	if v >= 2 && len(rec.LogDirs) > 0 {
		tags = append(tags, func() { w.Tag(2, func(w *wire.Writer) { w.CompactUUIDs(uuids(rec.LogDirs)) }) })
	}
	writeTags(w, tags)
}

func (rec *BrokerRegistrationChange) readFrom(r *wire.Reader, v int16) {
	rec.BrokerID, rec.BrokerEpoch = r.Int32(), r.Int64()
	r.Tags(func(tag int, fr *wire.Reader) bool {
		switch {
		case tag == 0:
			rec.Fenced = fr.Int8()
		case tag == 1 && tagSince(fr, tag, v, 1):
			rec.InControlledShutdown = fr.Int8()
		case tag == 2 && tagSince(fr, tag, v, 2):
			rec.LogDirs = readUUIDs(fr)
		default:
			return false
		}
		return true
	})
}

// UserScramCredential is UserScramCredentialRecord (api key 11): a user's
// SCRAM credential for one mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512),
// set or replaced. The password is never stored: StoredKey and ServerKey
// are RFC 5802's, derived from the salted password.
type UserScramCredential struct {
	Name       string
	Mechanism  int8
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

func (*UserScramCredential) APIKey() int16       { return 11 }
func (*UserScramCredential) writeVersion() int16 { return 0 }
func (rec *UserScramCredential) appendTo(w *wire.Writer, _ int16) {
	w.CompactString(rec.Name)
	w.Int8(rec.Mechanism)
	w.CompactBytes(rec.Salt)
	w.CompactBytes(rec.StoredKey)
	w.CompactBytes(rec.ServerKey)
	w.Int32(rec.Iterations)
	w.NoTags()
}
func (rec *UserScramCredential) readFrom(r *wire.Reader, _ int16) {
	rec.Name, rec.Mechanism = r.CompactString(), r.Int8()
	rec.Salt, rec.StoredKey, rec.ServerKey = nonNullBytes(r), nonNullBytes(r), nonNullBytes(r)
	rec.Iterations = r.Int32()
	r.SkipTags()
}

// RemoveUserScramCredential is RemoveUserScramCredentialRecord (api key
// 12): the user's credential for the mechanism is gone.
type RemoveUserScramCredential struct {
	Name      string
	Mechanism int8
}

func (*RemoveUserScramCredential) APIKey() int16       { return 12 }
func (*RemoveUserScramCredential) writeVersion() int16 { return 0 }
func (rec *RemoveUserScramCredential) appendTo(w *wire.Writer, _ int16) {
	w.CompactString(rec.Name)
	w.Int8(rec.Mechanism)
	w.NoTags()
}
func (rec *RemoveUserScramCredential) readFrom(r *wire.Reader, _ int16) {
	rec.Name, rec.Mechanism = r.CompactString(), r.Int8()
	r.SkipTags()
}

// AccessControlEntry is AccessControlEntryRecord (api key 23): an ACL
// binding was created. The enums carry Kafka's codes (ResourceType,
// PatternType, AclOperation, AclPermissionType).
type AccessControlEntry struct {
	ID             UUID
	ResourceType   int8
	ResourceName   string
	PatternType    int8
	Principal      string
	Host           string
	Operation      int8
	PermissionType int8
}

func (*AccessControlEntry) APIKey() int16       { return 23 }
func (*AccessControlEntry) writeVersion() int16 { return 0 }
func (rec *AccessControlEntry) appendTo(w *wire.Writer, _ int16) {
	w.UUID(rec.ID)
	w.Int8(rec.ResourceType)
	w.CompactString(rec.ResourceName)
	w.Int8(rec.PatternType)
	w.CompactString(rec.Principal)
	w.CompactString(rec.Host)
	w.Int8(rec.Operation)
	w.Int8(rec.PermissionType)
	w.NoTags()
}
func (rec *AccessControlEntry) readFrom(r *wire.Reader, _ int16) {
	rec.ID = r.UUID()
	rec.ResourceType = r.Int8()
	rec.ResourceName = r.CompactString()
	rec.PatternType = r.Int8()
	rec.Principal = r.CompactString()
	rec.Host = r.CompactString()
	rec.Operation = r.Int8()
	rec.PermissionType = r.Int8()
	r.SkipTags()
}

// RemoveAccessControlEntry is RemoveAccessControlEntryRecord (api key
// 24): the ACL binding with ID was deleted.
type RemoveAccessControlEntry struct {
	ID UUID
}

func (*RemoveAccessControlEntry) APIKey() int16       { return 24 }
func (*RemoveAccessControlEntry) writeVersion() int16 { return 0 }
func (rec *RemoveAccessControlEntry) appendTo(w *wire.Writer, _ int16) {
	w.UUID(rec.ID)
	w.NoTags()
}
func (rec *RemoveAccessControlEntry) readFrom(r *wire.Reader, _ int16) {
	rec.ID = r.UUID()
	r.SkipTags()
}

// errNullBytes: a null where the schema has non-nullable bytes.
var errNullBytes = errors.New("null for a non-nullable bytes field")

// nonNullBytes reads compact bytes that Kafka's schema does not allow to
// be null (UserScramCredentialRecord's salt and keys): a null is corrupt,
// as Kafka's reader refuses it, rather than read back as empty.
func nonNullBytes(r *wire.Reader) []byte {
	b := r.CompactBytes()
	if b == nil {
		r.Fail(errNullBytes)
	}
	return b
}
