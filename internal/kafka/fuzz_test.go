package kafka

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/server"
)

// newTestHandler wires a real broker, metadata store and handler with cfg
// over dir, and stops them when the test ends.
func newTestHandler(tb testing.TB, dir string, cfg Config) *Handler {
	tb.Helper()
	return newTestHandlerWith(tb, dir, cfg, nil)
}

// newTestHandlerWith is newTestHandler with the node's controller made by
// ctrl over the metadata store (nil: the handler's local-mode one).
func newTestHandlerWith(tb testing.TB, dir string, cfg Config, ctrl func(*cluster.Store) *controller.Controller) *Handler {
	tb.Helper()
	metaCfg := log.DefaultConfig()
	b, err := broker.Open(broker.Config{LogDirs: []string{dir}, Internal: map[log.TopicPartition]log.Config{cluster.MetadataTopic: metaCfg}})
	if err != nil {
		tb.Fatal(err)
	}
	ml, err := b.Internal(cluster.MetadataTopic, metaCfg)
	if err != nil {
		b.Close()
		tb.Fatal(err)
	}
	meta, err := cluster.Open(ml, cluster.Options{NodeID: cfg.NodeID})
	if err != nil {
		b.Close()
		tb.Fatal(err)
	}
	if ctrl != nil {
		cfg.Controller = ctrl(meta)
	}
	h, err := New(cfg, b, meta)
	if err != nil {
		b.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		h.Stop()
		b.Close()
	})
	return h
}

// seedRequests are valid requests of several keys, encoded by kmsg.
func seedRequests() []kmsg.Request {
	batch, _ := record.Build(record.BuildOptions{ProducerID: 3, BaseSequence: 0}, record.NewRecord{Key: []byte("k"), Value: []byte("v"), Timestamp: 1})
	topic := "fuzz"
	meta := kmsg.NewPtrMetadataRequest()
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	meta.AllowAutoTopicCreation = true
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks = -1
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 10, 1, 1<<20
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -3}}}}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "other", NumPartitions: 1, ReplicationFactor: 1}}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic}}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 6000, 10
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", "m", 1
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte{0, 1}}}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g", "m"
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "g", "m"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group, cgh.MemberID, cgh.RebalanceTimeoutMillis, cgh.SubscribedTopicNames = "c", "m", 1000, []string{topic}
	el := kmsg.NewPtrElectLeadersRequest()
	el.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	ra := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	ra.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: topic, Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{1}}, {Partition: 1}}}}
	lr := kmsg.NewPtrListPartitionReassignmentsRequest()
	lr.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{{Topic: topic, Partitions: []int32{0, 1}}}
	scram := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	scram.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "u", Mechanism: 1, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 32)}}
	scram.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "v", Mechanism: 2}}
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group, toc.ProducerID, toc.Generation = "tx", "g", 7, -1
	toc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}, {Partition: 9}}}}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00u\x00p")
	wtm := kmsg.NewPtrWriteTxnMarkersRequest()
	wtm.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 3, Committed: true, Topics: []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{0, 1}}}}}
	// Transactions: a transactional id's coordinator, its producer id,
	// a transaction's partitions and offsets, its end, and the admin
	// views.
	tfc := kmsg.NewPtrFindCoordinatorRequest()
	tfc.CoordinatorType, tfc.CoordinatorKey, tfc.CoordinatorKeys = 1, "tx", []string{"tx"}
	tinit := kmsg.NewPtrInitProducerIDRequest()
	tinit.TransactionalID, tinit.TransactionTimeoutMillis = kmsg.StringPtr("tx"), 10000
	tadd := kmsg.NewPtrAddPartitionsToTxnRequest()
	tadd.TransactionalID, tadd.ProducerID = "tx", 0
	tadd.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	tadd.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: "tx", VerifyOnly: true,
		Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: topic, Partitions: []int32{0}}}}}
	toff := kmsg.NewPtrAddOffsetsToTxnRequest()
	toff.TransactionalID, toff.Group = "tx", "g"
	tend := kmsg.NewPtrEndTxnRequest()
	tend.TransactionalID, tend.Commit = "tx", true
	tdesc := kmsg.NewPtrDescribeTransactionsRequest()
	tdesc.TransactionalIDs = []string{"tx", "none"}
	tlist := kmsg.NewPtrListTransactionsRequest()
	tlist.StateFilters, tlist.TransactionalIDPattern = []string{"Ongoing", "x"}, kmsg.StringPtr("t.*")
	return []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), meta, prod, fetch, lo, ct, dc, kmsg.NewPtrInitProducerIDRequest(), wtm,
		fc, join, sync, hb, leave, commit, of, cgh, kmsg.NewPtrListGroupsRequest(), el, kmsg.NewPtrElectLeadersRequest(),
		ra, lr, kmsg.NewPtrListPartitionReassignmentsRequest(), scram, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), hs, auth, toc,
		tfc, tinit, tadd, toff, tend, tdesc, tlist}
}

// Known, not fixed here: kmsg reads a flexible version's tagged fields
// with a loop bounded only by the tag count the body claims, so a 50-byte
// Fetch v17 body claiming ~600M tags spends seconds in kmsg's ReadFrom
// before failing (the fuzzer reports it as a hang). The fix belongs in
// kmsg (stop the loop once the reader is exhausted).
//
// FuzzHandler feeds arbitrary bodies, for every registered key at every
// served version, to a real handler over a real log dir. Invariants: no
// panic (a decode failure is an error, which closes the connection), every
// response encodes, and the handler still answers a valid request after.
func FuzzHandler(f *testing.F) {
	for _, req := range seedRequests() {
		a := apis[req.Key()]
		for _, v := range []int16{a.min, a.max} {
			req.SetVersion(v)
			f.Add(req.Key(), v, req.AppendTo(nil))
		}
	}
	// One broker for the whole run: building one per input would drown
	// the fuzzer in setup.
	h := newTestHandler(f, f.TempDir(), Config{NodeID: 1, ClusterID: "fuzz", AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092,
		NumPartitions: 2, AutoCreateTopics: true, MaxPartitionsPerTopic: 16, TopicDefaults: broker.DefaultTopicConfig(), Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		keys := make([]int16, 0, len(apis))
		for k := range apis {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		// Map the fuzzed key onto a registered one most of the time, so
		// the fuzzer spends its effort inside handlers.
		if _, ok := apis[key]; !ok && key >= 0 {
			key = keys[int(key)%len(keys)]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		resp, err := h.Handle(ctx, &server.Request{APIKey: key, APIVersion: version, CorrelationID: 1, Body: body})
		if err == nil && resp == nil {
			t.Fatal("nil response without error")
		}
		// The handler keeps working.
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		if _, err := h.Handle(context.Background(), &server.Request{APIKey: 18, APIVersion: 3, Body: req.AppendTo(nil)}); err != nil {
			t.Fatalf("ApiVersions after fuzzed request: %v", err)
		}
	})
}
