package strata_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// aclProps turns the authorizer on with User:admin as the super user.
var aclProps = map[string]string{
	"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
	"super.users":           "User:admin",
}

// principalClient is a client that acts as principal (the test-only
// principal hook, acl_export_test.go).
func principalClient(t *testing.T, addrs []string, principal string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ClientID(strata.TestPrincipalPrefix + principal)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// brokerRequest sends req to the first seed broker as is (no coordinator
// lookups, no retries), so that an authorization failure comes back as
// the broker's answer.
func brokerRequest(t *testing.T, cl *kgo.Client, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

func mustCreateACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

// TestACLMatrix: for each API that checks ACLs, a principal with the ACL
// it needs succeeds (or fails for another reason) and one without gets
// Kafka's *_AUTHORIZATION_FAILED.
func TestACLMatrix(t *testing.T) {
	b := startBroker(t, t.TempDir(), aclProps)
	addrs := []string{b.Addr()}
	ctx := context.Background()
	admin := kadm.NewClient(principalClient(t, addrs, "User:admin"))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	// alice: prefixed topic "t" and group "g" ACLs, and cluster ALTER;
	// DESCRIBE and DESCRIBE_CONFIGS only by implication.
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("t").Groups("g").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpRead, kadm.OpWrite, kadm.OpCreate, kadm.OpDelete, kadm.OpAlter, kadm.OpAlterConfigs))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpAlter, kadm.OpAlterConfigs))
	// carol may use group g but no topic.
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:carol").Groups("g").Operations(kadm.OpRead, kadm.OpDelete))

	md, err := admin.Metadata(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	topicID := md.Topics["t"].ID
	// Something committed, so that the group exists for the group APIs.
	commit := func() kmsg.Request {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "g", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	adminCl := principalClient(t, addrs, "User:admin")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
		brokerRequest(t, adminCl, fc) // creates __consumer_offsets
		code := brokerRequest(t, adminCl, commit()).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin commit: %v", kerr.ErrorForCode(code))
		}
	}

	s := func(s string) *string { return &s }
	type tcase struct {
		name string
		req  func() kmsg.Request
		code func(kmsg.Response) int16
		want int16 // for bob, who has no ACL
	}
	topicAuth, groupAuth, clusterAuth := kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code
	cases := []tcase{
		{"Produce", func() kmsg.Request {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = 1, 5000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = recordtest.Values(t, time.Now().UnixMilli(), "v")
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode }, topicAuth},
		{"Fetch", func() kmsg.Request {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.MaxBytes = -1, 1<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "t", topicID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 {
			fr := r.(*kmsg.FetchResponse)
			if fr.ErrorCode != 0 {
				return fr.ErrorCode
			}
			return fr.Topics[0].Partitions[0].ErrorCode
		}, topicAuth},
		{"ListOffsets", func() kmsg.Request {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode }, topicAuth},
		{"Metadata", func() kmsg.Request {
			req := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = s("t")
			req.Topics = append(req.Topics, mt)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode }, topicAuth},
		{"Metadata auto-create", func() kmsg.Request {
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = true
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = s("t-auto")
			req.Topics = append(req.Topics, mt)
			return req
		}, func(r kmsg.Response) int16 {
			if c := r.(*kmsg.MetadataResponse).Topics[0].ErrorCode; c != kerr.LeaderNotAvailable.Code {
				return c
			}
			return 0 // created
		}, topicAuth},
		{"OffsetCommit", commit, func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode }, groupAuth},
		{"OffsetFetch", func() kmsg.Request {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group = "g"
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = "g"
			req.Groups = append(req.Groups, rg)
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = "t", []int32{0}
			req.Topics = append(req.Topics, rt)
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = "t", []int32{0}
			req.Groups[0].Topics = append(req.Groups[0].Topics, gt)
			return req
		}, func(r kmsg.Response) int16 {
			fr := r.(*kmsg.OffsetFetchResponse)
			if len(fr.Groups) > 0 {
				if fr.Groups[0].ErrorCode != 0 {
					return fr.Groups[0].ErrorCode
				}
				return fr.Groups[0].Topics[0].Partitions[0].ErrorCode
			}
			return fr.ErrorCode
		}, groupAuth},
		{"FindCoordinator", func() kmsg.Request {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g"}
			return req
		}, func(r kmsg.Response) int16 {
			fr := r.(*kmsg.FindCoordinatorResponse)
			if len(fr.Coordinators) > 0 {
				return fr.Coordinators[0].ErrorCode
			}
			return fr.ErrorCode
		}, groupAuth},
		{"JoinGroup", func() kmsg.Request {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "g-join", "consumer", 10000, 10000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = "range"
			req.Protocols = append(req.Protocols, p)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode }, groupAuth},
		{"Heartbeat", func() kmsg.Request {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID = "g", "m"
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode }, groupAuth},
		{"SyncGroup", func() kmsg.Request {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.MemberID, req.ProtocolType, req.Protocol = "g", "m", s("consumer"), s("range")
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode }, groupAuth},
		{"LeaveGroup", func() kmsg.Request {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.MemberID = "g", "m"
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = "m"
			req.Members = append(req.Members, m)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode }, groupAuth},
		{"DescribeGroups", func() kmsg.Request {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g"}
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode }, groupAuth},
		{"ConsumerGroupHeartbeat", func() kmsg.Request {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "g848", "m848-0123456789abcdef", 0, 10000
			req.SubscribedTopicNames, req.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }, groupAuth},
		{"ConsumerGroupDescribe", func() kmsg.Request {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{"g848"}
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupDescribeResponse).Groups[0].ErrorCode }, groupAuth},
		{"CreateTopics", func() kmsg.Request {
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t-new", 1, 1
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode }, topicAuth},
		{"CreatePartitions", func() kmsg.Request {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "t-new", 2
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode }, topicAuth},
		{"DescribeConfigs topic", func() kmsg.Request {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
			req.Resources = append(req.Resources, rr)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }, topicAuth},
		{"DescribeConfigs broker", func() kmsg.Request {
			req := kmsg.NewPtrDescribeConfigsRequest()
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
			req.Resources = append(req.Resources, rr)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }, clusterAuth},
		{"AlterConfigs", func() kmsg.Request {
			req := kmsg.NewPtrAlterConfigsRequest()
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
			req.Resources = append(req.Resources, rr)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode }, topicAuth},
		{"IncrementalAlterConfigs", func() kmsg.Request {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = "retention.ms", s("100000")
			rr.Configs = append(rr.Configs, c)
			req.Resources = append(req.Resources, rr)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode }, topicAuth},
		{"ElectLeaders", func() kmsg.Request {
			req := kmsg.NewPtrElectLeadersRequest()
			req.TimeoutMillis = 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ElectLeadersResponse).ErrorCode }, clusterAuth},
		{"AlterPartitionReassignments", func() kmsg.Request {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.TimeoutMillis = 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.AlterPartitionAssignmentsResponse).ErrorCode }, clusterAuth},
		{"ListPartitionReassignments", func() kmsg.Request {
			req := kmsg.NewPtrListPartitionReassignmentsRequest()
			req.TimeoutMillis = 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.ListPartitionReassignmentsResponse).ErrorCode }, clusterAuth},
		{"DescribeLogDirs", func() kmsg.Request { return kmsg.NewPtrDescribeLogDirsRequest() },
			func(r kmsg.Response) int16 { return r.(*kmsg.DescribeLogDirsResponse).ErrorCode }, clusterAuth},
		{"DescribeProducers", func() kmsg.Request {
			req := kmsg.NewPtrDescribeProducersRequest()
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = "t", []int32{0}
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 {
			return r.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode
		}, topicAuth},
		{"InitProducerId idempotent", func() kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() },
			func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }, clusterAuth},
		{"OffsetForLeaderEpoch", func() kmsg.Request {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.CurrentLeaderEpoch, rp.LeaderEpoch = -1, 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 {
			return r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
		}, topicAuth},
		{"DescribeAcls", func() kmsg.Request {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DescribeACLsResponse).ErrorCode }, clusterAuth},
		{"CreateAcls", func() kmsg.Request {
			req := kmsg.NewPtrCreateACLsRequest()
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeLiteral
			c.Principal, c.Host, c.Operation, c.PermissionType = "User:dave", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, c)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode }, clusterAuth},
		{"DeleteAcls", func() kmsg.Request {
			req := kmsg.NewPtrDeleteACLsRequest()
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, s("x"), kmsg.ACLResourcePatternTypeLiteral
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode }, clusterAuth},
		// Destructive ones last.
		{"DeleteRecords", func() kmsg.Request {
			req := kmsg.NewPtrDeleteRecordsRequest()
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode }, topicAuth},
		{"OffsetDelete", func() kmsg.Request {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = "g"
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewOffsetDeleteRequestTopicPartition()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.OffsetDeleteResponse).ErrorCode }, groupAuth},
		{"DeleteGroups", func() kmsg.Request {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"g"}
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode }, groupAuth},
		{"DeleteTopics", func() kmsg.Request {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{"t-new"}
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = s("t-new")
			req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode }, topicAuth},
	}
	alice := principalClient(t, addrs, "User:alice")
	bob := principalClient(t, addrs, "User:bob")
	authCodes := map[int16]bool{topicAuth: true, groupAuth: true, clusterAuth: true, kerr.TransactionalIDAuthorizationFailed.Code: true}
	for _, tc := range cases {
		if got := tc.code(brokerRequest(t, bob, tc.req())); got != tc.want {
			t.Errorf("%s without ACL: %v, want %v", tc.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
		if got := tc.code(brokerRequest(t, alice, tc.req())); authCodes[got] {
			t.Errorf("%s with ACL: %v", tc.name, kerr.ErrorForCode(got))
		}
	}

	// Listing: what bob may not describe is hidden.
	all := brokerRequest(t, bob, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
	if len(all.Topics) != 0 {
		t.Errorf("bob sees %d topics listing all", len(all.Topics))
	}
	if got := brokerRequest(t, alice, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(got.Topics) == 0 {
		t.Error("alice sees no topic listing all")
	}
	// carol may commit to g, but not for a topic she may not read.
	if got := brokerRequest(t, principalClient(t, addrs, "User:carol"), commit()).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; got != topicAuth {
		t.Errorf("carol commit: %v, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(got))
	}
	// A follower's fetch needs CLUSTER_ACTION, which only the super
	// user has here: alice's READ on the topic is not enough.
	follower := func() kmsg.Request {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes = 2, 1<<20
		req.ReplicaState.ID, req.ReplicaState.Epoch = 2, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t", topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	if got := brokerRequest(t, alice, follower()).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; got != topicAuth {
		t.Errorf("follower fetch without CLUSTER_ACTION: %v", kerr.ErrorForCode(got))
	}
	if got := brokerRequest(t, adminCl, follower()).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; authCodes[got] {
		t.Errorf("follower fetch as a super user: %v", kerr.ErrorForCode(got))
	}
	// WriteTxnMarkers, from transaction coordinators, needs CLUSTER_ACTION.
	markers := func() kmsg.Request {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch = 77, 0
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "t", []int32{0}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		return req
	}
	if got := brokerRequest(t, alice, markers()).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode; got != clusterAuth {
		t.Errorf("WriteTxnMarkers without CLUSTER_ACTION: %v", kerr.ErrorForCode(got))
	}
	if got := brokerRequest(t, adminCl, markers()).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode; got != 0 {
		t.Errorf("WriteTxnMarkers as a super user: %v", kerr.ErrorForCode(got))
	}
	// Transactional ids need WRITE on the id.
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.TransactionalID, txn.TransactionTimeoutMillis = s("tx"), 10000
	if got := brokerRequest(t, alice, txn).(*kmsg.InitProducerIDResponse).ErrorCode; got != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("transactional InitProducerId: %v", kerr.ErrorForCode(got))
	}
	// A real client: alice produces and consumes, bob cannot produce.
	p := principalClient(t, addrs, "User:alice")
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("alice produce: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = principalClient(t, addrs, "User:bob").ProduceSync(pctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("bob produce: %v", err)
	}
}

// waitCode polls fn until it returns want, failing after 30 s.
func waitCode(t *testing.T, what string, want int16, fn func() int16) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := fn()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describeTopicCode is the Metadata error a principal gets for topic.
func describeTopicCode(t *testing.T, cl *kgo.Client, topic string) int16 {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = &topic
	req.Topics = append(req.Topics, mt)
	return brokerRequest(t, cl, req).(*kmsg.MetadataResponse).Topics[0].ErrorCode
}

// TestACLAPIs: CreateAcls, DescribeAcls and DeleteAcls as Kafka answers
// them: filters, invalid bindings, and SECURITY_DISABLED without an
// authorizer.
func TestACLAPIs(t *testing.T) {
	ctx := context.Background()
	off := startBroker(t, t.TempDir(), nil)
	anyFilter := kmsg.NewPtrDescribeACLsRequest()
	anyFilter.ResourceType, anyFilter.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	anyFilter.Operation, anyFilter.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if got := brokerRequest(t, newClient(t, off.Addr()), anyFilter).(*kmsg.DescribeACLsResponse).ErrorCode; got != kerr.SecurityDisabled.Code {
		t.Fatalf("describe without an authorizer: %v", kerr.ErrorForCode(got))
	}

	b := startBroker(t, t.TempDir(), aclProps)
	admin := kadm.NewClient(principalClient(t, []string{b.Addr()}, "User:admin"))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:*").Topics("*").Operations(kadm.OpDescribe))
	mustCreateACLs(t, admin, kadm.NewACLs().Deny("User:bob").AllowHosts().DenyHosts("10.0.0.1").Topics("orders-eu").Operations(kadm.OpAll))
	// The same binding again is not a second one.
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpRead))

	// Invalid: the cluster resource has one name; a principal has a type.
	req := kmsg.NewPtrCreateACLsRequest()
	for _, c := range []struct {
		rt              kmsg.ACLResourceType
		name, principal string
	}{
		{kmsg.ACLResourceTypeCluster, "other", "User:a"},
		{kmsg.ACLResourceTypeTopic, "t", "alice"},
	} {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = c.rt, c.name, kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = c.principal, "*", kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, cr)
	}
	adminCl := principalClient(t, []string{b.Addr()}, "User:admin")
	for i, r := range brokerRequest(t, adminCl, req).(*kmsg.CreateACLsResponse).Results {
		if r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("invalid creation %d: %v", i, kerr.ErrorForCode(r.ErrorCode))
		}
	}

	// describe counts the bindings a DescribeAcls filter selects.
	describe := func(rt kmsg.ACLResourceType, name *string, pt kmsg.ACLResourcePatternType, principal *string) int {
		t.Helper()
		req := kmsg.NewPtrDescribeACLsRequest()
		req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal = rt, name, pt, principal
		req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp := brokerRequest(t, adminCl, req).(*kmsg.DescribeACLsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("describe: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		n := 0
		for _, r := range resp.Resources {
			n += len(r.ACLs)
		}
		return n
	}
	s := func(s string) *string { return &s }
	if n := describe(kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny, nil); n != 3 {
		t.Errorf("all ACLs: %d, want 3", n)
	}
	// MATCH: the bindings that apply to topic orders-eu: the prefix, the
	// wildcard and the literal deny.
	if n := describe(kmsg.ACLResourceTypeTopic, s("orders-eu"), kmsg.ACLResourcePatternTypeMatch, nil); n != 3 {
		t.Errorf("MATCH orders-eu: %d, want 3", n)
	}
	if n := describe(kmsg.ACLResourceTypeTopic, s("orders"), kmsg.ACLResourcePatternTypeLiteral, nil); n != 0 {
		t.Errorf("LITERAL orders: %d, want 0", n)
	}
	if n := describe(kmsg.ACLResourceTypeAny, nil, kmsg.ACLResourcePatternTypeAny, s("User:alice")); n != 1 {
		t.Errorf("alice's: %d, want 1", n)
	}
	bad := kmsg.NewPtrDescribeACLsRequest() // resource type UNKNOWN
	if got := brokerRequest(t, adminCl, bad).(*kmsg.DescribeACLsResponse).ErrorCode; got != kerr.InvalidRequest.Code {
		t.Errorf("invalid filter: %v", kerr.ErrorForCode(got))
	}

	// Delete returns what it matched, and the ACL no longer applies.
	alice := principalClient(t, []string{b.Addr()}, "User:alice")
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "orders-us"); err != nil {
		t.Fatal(err)
	}
	fetchCode := func() int16 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "orders-us"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return brokerRequest(t, alice, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
	}
	if got := fetchCode(); got != 0 {
		t.Fatalf("alice lists offsets: %v", kerr.ErrorForCode(got))
	}
	res, err := admin.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternPrefixed).Allow("User:alice").AllowHosts().Operations(kadm.OpAny))
	if err != nil || len(res) != 1 || res[0].Err != nil || len(res[0].Deleted) != 1 || res[0].Deleted[0].Operation != kadm.OpRead {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	// Only the wildcard DESCRIBE is left for alice: ListOffsets (DESCRIBE)
	// still works, a commit for the topic would not; DESCRIBE via "*"
	// is what is left.
	if got := fetchCode(); got != 0 {
		t.Fatalf("alice lists offsets with the wildcard DESCRIBE: %v", kerr.ErrorForCode(got))
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	if r := brokerRequest(t, adminCl, del).(*kmsg.DeleteACLsResponse).Results[0]; r.ErrorCode != 0 || len(r.MatchingACLs) != 2 {
		t.Fatalf("delete all: %v, %d matched, want 2", kerr.ErrorForCode(r.ErrorCode), len(r.MatchingACLs))
	}
	if got := fetchCode(); got != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice lists offsets with no ACL left: %v", kerr.ErrorForCode(got))
	}
}

// TestACLsSurviveRestart: ACLs are metadata: a broker restarted on its
// data (its snapshot) enforces them as before.
func TestACLsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := startOn(t, dir, aclProps)
	if err != nil {
		t.Fatal(err)
	}
	admin := kadm.NewClient(principalClient(t, []string{b.Addr()}, "User:admin"))
	if _, err := admin.CreateTopic(context.Background(), 1, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("kept").Operations(kadm.OpRead))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:bob").Topics("kept").Operations(kadm.OpRead))
	if _, err := admin.DeleteACLs(context.Background(), kadm.NewACLs().Topics("kept").Allow("User:bob").AllowHosts().Operations(kadm.OpAny)); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, dir, aclProps)
	addrs := []string{b.Addr()}
	if got := describeTopicCode(t, principalClient(t, addrs, "User:alice"), "kept"); got != 0 {
		t.Errorf("alice after restart: %v", kerr.ErrorForCode(got))
	}
	if got := describeTopicCode(t, principalClient(t, addrs, "User:bob"), "kept"); got != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("bob after restart (his ACL deleted): %v", kerr.ErrorForCode(got))
	}
}

// TestACLsCluster: ACLs created through one node of a 3-node cluster
// apply on the others, replication keeps working with ACLs on (the
// replica fetchers' principal, User:ANONYMOUS on PLAINTEXT, granted
// CLUSTER_ACTION), and a node killed and restarted replays them.
func TestACLsCluster(t *testing.T) {
	props := maps.Clone(aclProps)
	props["broker.heartbeat.interval.ms"] = "250"
	props["broker.session.timeout.ms"] = "3000"
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	// Through a node that is not the active controller, so that the
	// ACL writes are forwarded; checked on a third node.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	ctrl, err := c.WaitController(wctx)
	if err != nil {
		t.Fatal(err)
	}
	via, check := int32(1), int32(2)
	switch ctrl {
	case 1:
		via, check = 2, 3
	case 2:
		via, check = 1, 3
	}
	admin := kadm.NewClient(principalClient(t, []string{c.Node(via).Addr()}, "User:admin"))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:ANONYMOUS").Clusters().Operations(kadm.OpClusterAction))
	mustCreateACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("ct").Operations(kadm.OpWrite, kadm.OpRead))
	if _, err := admin.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "ct"); err != nil {
		t.Fatal(err)
	}
	other := []string{c.Node(check).Addr()}
	alice2 := principalClient(t, other, "User:alice")
	waitCode(t, "alice describes ct on another node", 0, func() int16 { return describeTopicCode(t, alice2, "ct") })
	if got := describeTopicCode(t, principalClient(t, other, "User:bob"), "ct"); got != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob on another node: %v", kerr.ErrorForCode(got))
	}
	// acks=all with min.insync.replicas=3: only acknowledged once both
	// followers fetched it, through the ACL check.
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	p := principalClient(t, c.Bootstrap(), "User:alice", kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := p.ProduceSync(pctx, &kgo.Record{Topic: "ct", Value: []byte("replicated")}).FirstErr(); err != nil {
		t.Fatalf("acks=all produce with ACLs on: %v", err)
	}

	// Per-topic admin checks happen before forwarding: bob's create
	// and alice's delete (she has no DELETE) are refused, and nothing
	// changes.
	bobAdmin := kadm.NewClient(principalClient(t, []string{c.Node(via).Addr()}, "User:bob"))
	if res, err := bobAdmin.CreateTopic(ctx, 1, 3, nil, "bt"); !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(res.Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob creates a topic through a forwarding node: %+v, %v", res, err)
	}
	aliceAdmin := kadm.NewClient(principalClient(t, []string{c.Node(via).Addr()}, "User:alice"))
	if res, err := aliceAdmin.DeleteTopics(ctx, "ct"); err != nil || !errors.Is(res["ct"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice deletes a topic without DELETE: %+v, %v", res, err)
	}
	if md, err := admin.Metadata(ctx); err != nil || md.Topics.Has("bt") || !md.Topics.Has("ct") {
		t.Fatalf("topics after refused admin requests: %v, %v", md.Topics.Names(), err)
	}

	// A node other than the controller, killed and restarted, replays
	// the ACLs from its log.
	c.Node(check).Kill()
	if err := c.Node(check).Restart(); err != nil {
		t.Fatal(err)
	}
	node3 := []string{c.Node(check).Addr()}
	waitCode(t, "alice describes ct on restarted node 3", 0, func() int16 { return describeTopicCode(t, principalClient(t, node3, "User:alice"), "ct") })
	if got := describeTopicCode(t, principalClient(t, node3, "User:bob"), "ct"); got != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob on restarted node 3: %v", kerr.ErrorForCode(got))
	}
}
