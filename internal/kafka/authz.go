package kafka

// Authorization: every handler asks one of the helpers below before it
// acts, as Kafka's KafkaApis asks its AuthHelper. With no authorizer
// configured (authorizer.class.name empty, Kafka's default) every check
// answers true from a nil authorizer without allocating, so produce and
// fetch pay nothing for it.
//
// Who is trusted:
//   - Requests on the controller listener (forwarded admin requests,
//     broker registrations and heartbeats, AlterPartition, producer id
//     blocks) come from the nodes of the cluster: strata's controller
//     listener serves only them (Kafka's brokers are super users on it).
//     A forwarded admin request was authorized by the node that took it
//     from the client, with the client's principal, before it was
//     forwarded (strata forwards without KIP-590's envelope, so the
//     principal does not travel).
//   - A follower's replica fetch on a client listener needs CLUSTER_ACTION
//     on the cluster, as Kafka's; a replica fetcher connects as the
//     listener's principal (User:ANONYMOUS on PLAINTEXT), so an operator
//     who turns ACLs on grants it CLUSTER_ACTION or names it in
//     super.users (docs/OPERATIONS.md, ACLs).

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/server"
)

// authzState is the authorizer built from one image's ACLs, reused until
// the image's ACLs change (a new *cluster.ACLs).
type authzState struct {
	acls *cluster.ACLs
	a    *acl.Authorizer
}

// authorizer returns the authorizer over the current image's ACLs, nil
// when none is configured.
func (h *Handler) authorizer() *acl.Authorizer {
	if h.cfg.Authorizer == nil {
		return nil
	}
	acls := h.meta.Image().ACLs
	if st := h.authz.Load(); st != nil && st.acls == acls {
		return st.a
	}
	var bs []acl.Binding
	if acls != nil {
		bs = make([]acl.Binding, 0, len(acls.ByID))
		for _, b := range acls.ByID {
			bs = append(bs, b)
		}
	}
	st := &authzState{acls: acls, a: acl.New(*h.cfg.Authorizer, bs)}
	h.authz.Store(st)
	return st.a
}

// authCtx is one request's authorization: the authorizer (nil: allow
// everything), who asks and from which host.
type authCtx struct {
	a         *acl.Authorizer
	principal string
	host      string
}

// auth returns the request's authorization context. Requests on the
// controller listener are trusted (see above).
func (h *Handler) auth(ctx context.Context, r *server.Request) authCtx {
	if h.cfg.Authorizer == nil || forwarded(ctx) {
		return authCtx{}
	}
	c := authCtx{a: h.authorizer(), principal: server.Anonymous}
	if r != nil {
		c.principal = r.Session.Principal()
		c.host = remoteHost(r.Remote)
	}
	return c
}

// remoteHost is the IP address ACL hosts are compared with.
func remoteHost(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// enabled reports whether an authorizer decides (else everything is allowed).
func (c authCtx) enabled() bool { return c.a != nil }

func (c authCtx) allowed(op acl.Operation, rt acl.ResourceType, name string) bool {
	return c.a == nil || c.a.Authorize(c.principal, c.host, op, rt, name)
}

// cluster checks op on the cluster resource.
func (c authCtx) cluster(op acl.Operation) bool {
	return c.allowed(op, acl.ResourceCluster, acl.ClusterName)
}

// topic checks op on a topic.
func (c authCtx) topic(op acl.Operation, name string) bool {
	return c.allowed(op, acl.ResourceTopic, name)
}

// group checks op on a group.
func (c authCtx) group(op acl.Operation, name string) bool {
	return c.allowed(op, acl.ResourceGroup, name)
}

// txn checks op on a transactional id.
func (c authCtx) txn(op acl.Operation, id string) bool {
	return c.allowed(op, acl.ResourceTransactionalID, id)
}

// anyOf checks op on at least one resource of type rt (Kafka's
// authorizeByResourceType).
func (c authCtx) anyOf(op acl.Operation, rt acl.ResourceType) bool {
	return c.a == nil || c.a.AuthorizeAny(c.principal, c.host, op, rt)
}

// idempotentWrite is what an idempotent producer needs (KIP-679, Kafka
// 3.0+): IDEMPOTENT_WRITE on the cluster, or WRITE on any topic.
func (c authCtx) idempotentWrite() bool {
	return c.cluster(acl.OpIdempotentWrite) || c.anyOf(acl.OpWrite, acl.ResourceTopic)
}

// configCode checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config
// resource as Kafka does: a topic's on the topic, a broker's (or broker
// logger's) on the cluster, a group's on the group. It returns the
// authorization failure's code, or 0 (also for other resource types,
// which the handler refuses itself).
func (c authCtx) configCode(op acl.Operation, rtype kmsg.ConfigResourceType, name string) int16 {
	switch rtype {
	case kmsg.ConfigResourceTypeTopic:
		if !c.topic(op, name) {
			return codeTopicAuth
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !c.cluster(op) {
			return codeClusterAuth
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !c.group(op, name) {
			return codeGroupAuth
		}
	}
	return 0
}

// clusterOperations is the cluster's authorized-operations bitfield for
// the principal (KIP-430): the cluster's operations it is allowed.
func (c authCtx) clusterOperations() int32 {
	var ops int32
	for _, op := range []acl.Operation{acl.OpCreate, acl.OpAlter, acl.OpDescribe, acl.OpClusterAction,
		acl.OpDescribeConfigs, acl.OpAlterConfigs, acl.OpIdempotentWrite} {
		if c.cluster(op) {
			ops |= 1 << op
		}
	}
	return ops
}

var (
	codeTopicAuth   = kerr.TopicAuthorizationFailed.Code
	codeGroupAuth   = kerr.GroupAuthorizationFailed.Code
	codeClusterAuth = kerr.ClusterAuthorizationFailed.Code
	codeTxnAuth     = kerr.TransactionalIDAuthorizationFailed.Code
)
