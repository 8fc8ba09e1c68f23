package cluster

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster/records"
)

// ErrInconsistent marks a metadata record that does not fit the image it
// is applied to (a partition of an unknown topic, a fence of a broker of
// another epoch): Kafka's MetadataDelta refuses the same records.
var ErrInconsistent = errors.New("cluster: metadata record inconsistent with the image")

// TopicID is a topic's UUID, stable for the topic's life (Metadata v10+,
// Fetch v13+).
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// Topic is one topic in the image. Values in an Image are never modified.
type Topic struct {
	Name string
	ID   TopicID
	// Partitions is the partition count, len(PartitionStates).
	Partitions int32
	// PartitionStates holds each partition's replicas, ISR, leader and
	// epochs, by partition id.
	PartitionStates []*Partition
	// Configs holds only the overrides set for the topic.
	Configs map[string]string
}

// Partition is one partition's state, as PartitionRecord and
// PartitionChangeRecord describe it (Kafka's PartitionRegistration).
// Values in an Image are never modified.
type Partition struct {
	Replicas         []int32
	ISR              []int32
	RemovingReplicas []int32
	AddingReplicas   []int32
	// Leader is a broker id, -1 for none.
	Leader int32
	// LeaderRecoveryState is 1 after an unclean election until the new
	// leader recovered (KIP-704), else 0.
	LeaderRecoveryState int8
	// LeaderEpoch grows with every leader change; PartitionEpoch with
	// every change of the partition (KIP-500's compare-and-swap of ISR
	// changes).
	LeaderEpoch    int32
	PartitionEpoch int32
	// Directories (KIP-858), EligibleLeaderReplicas and LastKnownElr
	// (KIP-966) are kept as read from PartitionRecord v1-2 and
	// PartitionChangeRecord, so that a snapshot does not drop them;
	// strata does not act on them yet.
	Directories            []records.UUID
	EligibleLeaderReplicas []int32
	LastKnownElr           []int32
}

// Broker is one registered broker (Kafka's BrokerRegistration).
type Broker struct {
	ID            int32
	IncarnationID [16]byte
	// Epoch is the offset of the broker's RegisterBrokerRecord, as
	// Kafka's controller assigns it.
	Epoch                int64
	Endpoints            []records.Endpoint
	Rack                 *string
	Fenced               bool
	InControlledShutdown bool
	// Features and LogDirs are kept from the registration for snapshots.
	Features []records.Feature
	LogDirs  []records.UUID
}

// ConfigResource names a non-topic config resource (a broker, or the
// cluster's default broker config when Name is "").
type ConfigResource struct {
	Type int8
	Name string
}

// Image is the metadata at one point of the log. It is immutable: every
// change makes a new Image that shares what did not change (Kafka's
// MetadataImage and MetadataDelta).
type Image struct {
	Topics  map[string]*Topic
	ByID    map[TopicID]*Topic
	Brokers map[int32]*Broker
	// OtherConfigs are configs of resources other than topics (broker
	// dynamic configs), kept so that snapshots carry them.
	OtherConfigs map[ConfigResource]map[string]string
	// Scram holds the SCRAM credentials by user, then by mechanism
	// (UserScramCredentialRecord; 1 SCRAM-SHA-256, 2 SCRAM-SHA-512).
	// Maps in an Image are never modified.
	Scram map[string]map[int8]*ScramCredential
	// ProducerIDsEnd is the end of the last producer id block reserved
	// (ProducerIdsRecord.NextProducerId).
	ProducerIDsEnd int64
	// ACLs are the ACL bindings (AccessControlEntryRecord), nil for
	// none. A change of the bindings makes a new *ACLs, so that an
	// authorizer built from one stays valid while the pointer is the
	// same.
	ACLs *ACLs
	// EndOffset is the offset of the first metadata record not in the
	// image: every record below it is applied. Snapshots are named by it,
	// as Kafka's snapshot id is the end offset it holds.
	EndOffset int64
}

// ScramCredential is one user's SCRAM credential for one mechanism, as
// UserScramCredentialRecord holds it. Values in an Image are never
// modified.
type ScramCredential struct {
	Salt, StoredKey, ServerKey []byte
	Iterations                 int32
}

// ACLs are the ACL bindings of an image, by id. Never modified.
type ACLs struct {
	ByID map[acl.ID]acl.Binding
}

// ACLBindings returns the image's ACL bindings in id order.
func (im *Image) ACLBindings() []acl.Binding {
	if im.ACLs == nil {
		return nil
	}
	out := make([]acl.Binding, 0, len(im.ACLs.ByID))
	for _, id := range slices.SortedFunc(maps.Keys(im.ACLs.ByID), func(a, b acl.ID) int { return slices.Compare(a[:], b[:]) }) {
		out = append(out, im.ACLs.ByID[id])
	}
	return out
}

func emptyImage() *Image {
	return &Image{Topics: map[string]*Topic{}, ByID: map[TopicID]*Topic{}, Brokers: map[int32]*Broker{}, OtherConfigs: map[ConfigResource]map[string]string{},
		Scram: map[string]map[int8]*ScramCredential{}}
}

// Topic returns the named topic or nil.
func (im *Image) Topic(name string) *Topic { return im.Topics[name] }

// Broker returns the broker with id or nil.
func (im *Image) Broker(id int32) *Broker { return im.Brokers[id] }

// LeaderCounts returns how many partitions have no leader and how many
// brokerID leads, for metrics (Kafka's OfflinePartitionsCount and
// LeaderCount). It walks every partition.
func (im *Image) LeaderCounts(brokerID int32) (leaderless, led int) {
	leaderless, led, _ = im.PartitionCounts(brokerID)
	return leaderless, led
}

// PartitionCounts is LeaderCounts with the number of partitions being
// reassigned (Kafka's ReassigningPartitions): those with adding or
// removing replicas.
func (im *Image) PartitionCounts(brokerID int32) (leaderless, led, reassigning int) {
	for _, t := range im.Topics {
		for _, p := range t.PartitionStates {
			if p == nil {
				continue
			}
			switch p.Leader {
			case records.NoLeader:
				leaderless++
			case brokerID:
				led++
			}
			if len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0 {
				reassigning++
			}
		}
	}
	return leaderless, led, reassigning
}

// delta builds the next image from base by applying records, copying
// each map, topic and broker once, on its first change, so that replaying a
// whole log or a snapshot costs no more than building the image once.
// Not safe for concurrent use.
type delta struct {
	im           *Image
	ownMaps      bool
	ownTopics    map[*Topic]bool
	ownedConfigs map[ConfigResource]bool
	ownACLs      bool
}

func newDelta(base *Image) *delta {
	im := *base
	return &delta{im: &im, ownTopics: map[*Topic]bool{}, ownedConfigs: map[ConfigResource]bool{}}
}

// finish returns the image, built up to endOffset. The delta must not be
// used after.
func (d *delta) finish(endOffset int64) *Image {
	d.im.EndOffset = endOffset
	return d.im
}

func (d *delta) copyMaps() {
	if d.ownMaps {
		return
	}
	d.ownMaps = true
	d.im.Topics = maps.Clone(d.im.Topics)
	d.im.ByID = maps.Clone(d.im.ByID)
	d.im.Brokers = maps.Clone(d.im.Brokers)
	d.im.OtherConfigs = maps.Clone(d.im.OtherConfigs)
	d.im.Scram = maps.Clone(d.im.Scram)
	if d.im.Scram == nil {
		d.im.Scram = map[string]map[int8]*ScramCredential{}
	}
}

// topic returns a copy of the topic with id that this delta owns, nil if
// the image has no such topic.
func (d *delta) topic(id TopicID) *Topic {
	old := d.im.ByID[id]
	if old == nil || d.ownTopics[old] {
		return old
	}
	d.copyMaps()
	t := *old
	t.PartitionStates = slices.Clone(old.PartitionStates)
	t.Configs = maps.Clone(old.Configs)
	d.ownTopics[&t] = true
	d.im.Topics[t.Name], d.im.ByID[t.ID] = &t, &t
	return &t
}

// apply applies one record.
func (d *delta) apply(rec records.Record) error {
	switch r := rec.(type) {
	case *records.Topic:
		if old := d.im.ByID[TopicID(r.TopicID)]; old != nil && old.Name != r.Name {
			return fmt.Errorf("%w: TopicRecord %s has the id of topic %s", ErrInconsistent, r.Name, old.Name)
		}
		d.copyMaps()
		if old := d.im.Topics[r.Name]; old != nil {
			delete(d.im.ByID, old.ID)
		}
		t := &Topic{Name: r.Name, ID: TopicID(r.TopicID), Configs: map[string]string{}}
		d.ownTopics[t] = true
		d.im.Topics[t.Name], d.im.ByID[t.ID] = t, t
	case *records.Partition:
		t := d.topic(TopicID(r.TopicID))
		if t == nil {
			return fmt.Errorf("%w: PartitionRecord %d of unknown topic %s", ErrInconsistent, r.PartitionID, TopicID(r.TopicID))
		}
		// Kafka's controller numbers a topic's partitions from 0 without
		// gaps (CreateTopics, CreatePartitions); a record that replaces
		// a partition or adds the next is all a log can hold, and a far
		// partition id must not size the slice.
		if r.PartitionID < 0 || r.PartitionID > t.Partitions {
			return fmt.Errorf("%w: PartitionRecord %d of topic %s, which has %d partitions", ErrInconsistent, r.PartitionID, t.Name, t.Partitions)
		}
		if r.PartitionID == t.Partitions {
			t.PartitionStates = append(t.PartitionStates, nil)
		}
		t.PartitionStates[r.PartitionID] = &Partition{
			Replicas: r.Replicas, ISR: r.Isr, RemovingReplicas: r.RemovingReplicas, AddingReplicas: r.AddingReplicas,
			Leader: r.Leader, LeaderRecoveryState: r.LeaderRecoveryState, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
			Directories: r.Directories, EligibleLeaderReplicas: r.EligibleLeaderReplicas, LastKnownElr: r.LastKnownElr,
		}
		t.Partitions = int32(len(t.PartitionStates))
	case *records.PartitionChange:
		t := d.topic(TopicID(r.TopicID))
		if t == nil || r.PartitionID < 0 || r.PartitionID >= t.Partitions {
			return fmt.Errorf("%w: PartitionChangeRecord of unknown partition %s/%d", ErrInconsistent, TopicID(r.TopicID), r.PartitionID)
		}
		p := *t.PartitionStates[r.PartitionID]
		// Kafka's PartitionRegistration.merge: a leader in the record
		// (even the same one) starts a new leader epoch; every change
		// is a new partition epoch.
		if r.Leader != records.LeaderUnchanged {
			p.Leader = r.Leader
			p.LeaderEpoch++
		}
		if r.Isr != nil {
			p.ISR = r.Isr
		}
		if r.Replicas != nil {
			p.Replicas = r.Replicas
		}
		// An empty array clears them (a reassignment completed or
		// cancelled); kept nil, as a PartitionRecord reads them, so that
		// an image replayed from the log and one loaded from a snapshot
		// compare equal.
		if r.RemovingReplicas != nil {
			p.RemovingReplicas = nilIfEmpty(r.RemovingReplicas)
		}
		if r.AddingReplicas != nil {
			p.AddingReplicas = nilIfEmpty(r.AddingReplicas)
		}
		if r.LeaderRecoveryState != -1 {
			p.LeaderRecoveryState = r.LeaderRecoveryState
		}
		if r.Directories != nil {
			p.Directories = r.Directories
		}
		if r.EligibleLeaderReplicas != nil {
			p.EligibleLeaderReplicas = r.EligibleLeaderReplicas
		}
		if r.LastKnownElr != nil {
			p.LastKnownElr = r.LastKnownElr
		}
		p.PartitionEpoch++
		t.PartitionStates[r.PartitionID] = &p
	case *records.Config:
		d.applyConfig(r)
	case *records.RemoveTopic:
		t := d.im.ByID[TopicID(r.TopicID)]
		if t == nil {
			return fmt.Errorf("%w: RemoveTopicRecord of unknown topic %s", ErrInconsistent, TopicID(r.TopicID))
		}
		d.copyMaps()
		delete(d.im.Topics, t.Name)
		delete(d.im.ByID, t.ID)
	case *records.RegisterBroker:
		d.copyMaps()
		d.im.Brokers[r.BrokerID] = &Broker{
			ID: r.BrokerID, IncarnationID: r.IncarnationID, Epoch: r.BrokerEpoch, Endpoints: r.EndPoints,
			Rack: r.Rack, Fenced: r.Fenced, InControlledShutdown: r.InControlledShutdown, Features: r.Features, LogDirs: r.LogDirs,
		}
	case *records.UnregisterBroker:
		d.copyMaps()
		delete(d.im.Brokers, r.BrokerID)
	case *records.FenceBroker:
		return d.changeBroker(r.ID, r.Epoch, "FenceBrokerRecord", func(b *Broker) { b.Fenced = true })
	case *records.UnfenceBroker:
		return d.changeBroker(r.ID, r.Epoch, "UnfenceBrokerRecord", func(b *Broker) { b.Fenced = false })
	case *records.BrokerRegistrationChange:
		return d.changeBroker(r.BrokerID, r.BrokerEpoch, "BrokerRegistrationChangeRecord", func(b *Broker) {
			switch r.Fenced {
			case -1:
				b.Fenced = false
			case 1:
				b.Fenced = true
			}
			if r.InControlledShutdown == 1 {
				b.InControlledShutdown = true
			}
			if len(r.LogDirs) > 0 {
				b.LogDirs = r.LogDirs
			}
		})
	case *records.ProducerIDs:
		d.im.ProducerIDsEnd = max(d.im.ProducerIDsEnd, r.NextProducerID)
	case *records.UserScramCredential:
		d.copyMaps()
		m := maps.Clone(d.im.Scram[r.Name])
		if m == nil {
			m = map[int8]*ScramCredential{}
		}
		m[r.Mechanism] = &ScramCredential{Salt: r.Salt, StoredKey: r.StoredKey, ServerKey: r.ServerKey, Iterations: r.Iterations}
		d.im.Scram[r.Name] = m
	case *records.RemoveUserScramCredential:
		// Kafka's ScramControlManager.replay refuses to remove what is
		// not there.
		if d.im.Scram[r.Name][r.Mechanism] == nil {
			return fmt.Errorf("%w: RemoveUserScramCredentialRecord of %s mechanism %d, which has none", ErrInconsistent, r.Name, r.Mechanism)
		}
		d.copyMaps()
		m := maps.Clone(d.im.Scram[r.Name])
		delete(m, r.Mechanism)
		if len(m) == 0 {
			delete(d.im.Scram, r.Name)
		} else {
			d.im.Scram[r.Name] = m
		}
	case *records.AccessControlEntry:
		d.acls()[acl.ID(r.ID)] = acl.Binding{
			ID: acl.ID(r.ID), ResourceType: acl.ResourceType(r.ResourceType), ResourceName: r.ResourceName,
			PatternType: acl.PatternType(r.PatternType), Principal: r.Principal, Host: r.Host,
			Operation: acl.Operation(r.Operation), Permission: acl.Permission(r.PermissionType),
		}
	case *records.RemoveAccessControlEntry:
		if d.im.ACLs == nil || d.im.ACLs.ByID[acl.ID(r.ID)] == (acl.Binding{}) {
			// Kafka's AclControlManager refuses to replay it too.
			return fmt.Errorf("%w: RemoveAccessControlEntryRecord of unknown ACL %x", ErrInconsistent, r.ID)
		}
		delete(d.acls(), acl.ID(r.ID))
	default:
		return fmt.Errorf("%w: %s has no meaning in the image", ErrInconsistent, records.Name(rec.APIKey()))
	}
	return nil
}

// acls returns the ACL bindings this delta owns, copied on first use.
func (d *delta) acls() map[acl.ID]acl.Binding {
	if !d.ownACLs {
		d.ownACLs = true
		next := &ACLs{ByID: map[acl.ID]acl.Binding{}}
		if d.im.ACLs != nil {
			next.ByID = maps.Clone(d.im.ACLs.ByID)
		}
		d.im.ACLs = next
	}
	return d.im.ACLs.ByID
}

// changeBroker applies a change to a registered broker of the given epoch;
// Kafka's ClusterControlManager refuses one for another epoch.
func (d *delta) changeBroker(id int32, epoch int64, what string, fn func(*Broker)) error {
	old := d.im.Brokers[id]
	if old == nil || old.Epoch != epoch {
		return fmt.Errorf("%w: %s for broker %d epoch %d, not registered with that epoch", ErrInconsistent, what, id, epoch)
	}
	d.copyMaps()
	b := *old
	fn(&b)
	d.im.Brokers[id] = &b
	return nil
}

func (d *delta) applyConfig(r *records.Config) {
	set := func(m map[string]string) {
		if r.Value == nil {
			delete(m, r.Name)
		} else {
			m[r.Name] = *r.Value
		}
	}
	if r.ResourceType == records.ResourceTopic {
		// A config of a topic the image lacks is dropped: Kafka removes
		// a topic's configs with the topic.
		if old := d.im.Topics[r.ResourceName]; old != nil {
			set(d.topic(old.ID).Configs)
		}
		return
	}
	d.copyMaps()
	res := ConfigResource{Type: r.ResourceType, Name: r.ResourceName}
	if !d.ownedConfigs[res] {
		d.ownedConfigs[res] = true
		d.im.OtherConfigs[res] = maps.Clone(d.im.OtherConfigs[res])
		if d.im.OtherConfigs[res] == nil {
			d.im.OtherConfigs[res] = map[string]string{}
		}
	}
	set(d.im.OtherConfigs[res])
	if len(d.im.OtherConfigs[res]) == 0 {
		delete(d.im.OtherConfigs, res)
		delete(d.ownedConfigs, res)
	}
}

// Records returns the records that build im from an empty image, in a
// fixed order: brokers, then each topic with its partitions and configs,
// then other configs, SCRAM credentials and the producer id block. It is what a snapshot
// holds (Kafka's MetadataImage.write).
func (im *Image) Records() []records.Record {
	var out []records.Record
	for _, id := range slices.Sorted(maps.Keys(im.Brokers)) {
		b := im.Brokers[id]
		out = append(out, &records.RegisterBroker{
			BrokerID: b.ID, IncarnationID: b.IncarnationID, BrokerEpoch: b.Epoch, EndPoints: b.Endpoints,
			Rack: b.Rack, Fenced: b.Fenced, InControlledShutdown: b.InControlledShutdown, Features: b.Features, LogDirs: b.LogDirs,
		})
	}
	for _, name := range slices.Sorted(maps.Keys(im.Topics)) {
		t := im.Topics[name]
		out = append(out, &records.Topic{Name: t.Name, TopicID: records.UUID(t.ID)})
		for i, p := range t.PartitionStates {
			out = append(out, &records.Partition{
				PartitionID: int32(i), TopicID: records.UUID(t.ID),
				Replicas: p.Replicas, Isr: p.ISR, RemovingReplicas: p.RemovingReplicas, AddingReplicas: p.AddingReplicas,
				Leader: p.Leader, LeaderRecoveryState: p.LeaderRecoveryState, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
				Directories: p.Directories, EligibleLeaderReplicas: p.EligibleLeaderReplicas, LastKnownElr: p.LastKnownElr,
			})
		}
		out = appendConfigs(out, records.ResourceTopic, t.Name, t.Configs)
	}
	res := slices.SortedFunc(maps.Keys(im.OtherConfigs), func(a, b ConfigResource) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range res {
		out = appendConfigs(out, r.Type, r.Name, im.OtherConfigs[r])
	}
	for _, user := range slices.Sorted(maps.Keys(im.Scram)) {
		for _, mech := range slices.Sorted(maps.Keys(im.Scram[user])) {
			c := im.Scram[user][mech]
			out = append(out, &records.UserScramCredential{Name: user, Mechanism: mech, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations})
		}
	}
	if im.ProducerIDsEnd > 0 {
		out = append(out, &records.ProducerIDs{BrokerID: -1, BrokerEpoch: -1, NextProducerID: im.ProducerIDsEnd})
	}
	for _, b := range im.ACLBindings() {
		out = append(out, ACLRecord(b))
	}
	return out
}

// ACLRecord is the AccessControlEntryRecord that creates b.
func ACLRecord(b acl.Binding) *records.AccessControlEntry {
	return &records.AccessControlEntry{
		ID: records.UUID(b.ID), ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName,
		PatternType: int8(b.PatternType), Principal: b.Principal, Host: b.Host,
		Operation: int8(b.Operation), PermissionType: int8(b.Permission),
	}
}

func appendConfigs(out []records.Record, typ int8, name string, configs map[string]string) []records.Record {
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		out = append(out, &records.Config{ResourceType: typ, ResourceName: name, Name: k, Value: &v})
	}
	return out
}

func nilIfEmpty(vs []int32) []int32 {
	if len(vs) == 0 {
		return nil
	}
	return vs
}
