package kafka

// DescribeConfigs: v0-4
//
// Behavior:
//   - Topic resources: every topic config strata knows, with its effective
//     value; Source DYNAMIC_TOPIC_CONFIG for overrides, else that of the
//     broker property it inherits (DYNAMIC_BROKER_CONFIG,
//     DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG or
//     DEFAULT_CONFIG), with synonyms as Kafka lists them; documentation
//     (v3+) from the same definitions.
//   - ConfigNames filters; unknown topics are UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resources: this node's id lists every broker property with
//     the value in effect and its source, in Kafka's precedence:
//     DYNAMIC_BROKER_CONFIG (set for this node), DYNAMIC_DEFAULT_BROKER_CONFIG
//     (set cluster-wide), STATIC_BROKER_CONFIG (properties file or --set),
//     DEFAULT_CONFIG. Dynamic properties (config.Dynamic) are not
//     read-only. Synonyms (v1+, when asked) list every source of the
//     property and of its synonyms (log.retention.hours for
//     log.retention.ms), in precedence order. "" lists the cluster-wide
//     dynamic configs only, as Kafka does. Another node id is
//     INVALID_REQUEST.
//   - Group resources (KIP-848): consumer.session.timeout.ms and
//     consumer.heartbeat.interval.ms, GROUP_CONFIG when the group sets
//     them, DEFAULT_CONFIG (the broker's values) otherwise.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(32, 0, 4, (*Handler).handleDescribeConfigs) }

func (h *Handler) handleDescribeConfigs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	ac := h.auth(ctx, r)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := ac.configCode(acl.OpDescribeConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, code := h.topic(rr.ResourceName, false)
			if code != 0 {
				sr.ErrorCode = code
				break
			}
			tc, err := h.topicConfig(t)
			if err != nil {
				sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			props := h.brokerProperties(h.meta.Image())
			for _, d := range broker.TopicConfigDefs {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, d.Name) {
					continue
				}
				sr.Configs = append(sr.Configs, describeTopicConfig(req, d, &tc, t.Configs, props))
			}
		case kmsg.ConfigResourceTypeBroker:
			im := h.meta.Image()
			if rr.ResourceName == "" {
				for _, k := range slices.Sorted(maps.Keys(im.ResourceConfigs(clusterDefaultResource))) {
					if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, k) {
						continue
					}
					sr.Configs = append(sr.Configs, h.describeClusterDefault(req, im, k))
				}
				break
			}
			if rr.ResourceName != strconv.Itoa(int(h.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("Unexpected broker id, expected %d or empty string, but received %s", h.cfg.NodeID, rr.ResourceName)
				sr.ErrorMessage = &msg
				break
			}
			props := h.brokerProperties(im)
			for _, p := range h.cfg.BrokerConfigs {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, p.Name) {
					continue
				}
				sr.Configs = append(sr.Configs, describeBrokerConfig(req, p, props))
			}
			// Kafka configs strata only stores, where set.
			for _, name := range slices.Sorted(maps.Keys(inertBrokerConfigs)) {
				_, node := props.node[name]
				_, def := props.clusterDefault[name]
				if !node && !def || rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, name) {
					continue
				}
				sr.Configs = append(sr.Configs, describeBrokerConfig(req, config.Property{Name: name, Dynamic: true, Doc: inertDoc}, props))
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			if rr.ResourceName == "" {
				sr.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			configs := h.meta.Image().ResourceConfigs(groupResource(rr.ResourceName))
			session, heartbeat := h.groupConfigValues(configs)
			for _, k := range groupConfigNames {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, k) {
					continue
				}
				v := heartbeat
				if k == groupSessionTimeoutConfig {
					v = session
				}
				sr.Configs = append(sr.Configs, describeGroupConfig(req, k, v, configs))
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return h.encode(resp), nil
}

// brokerProperties are the sources of this node's broker properties in an
// image, by name: what describeBrokerConfig needs.
type brokerProperties struct {
	node, clusterDefault map[string]string
	static               map[string]config.Property
}

func (h *Handler) brokerProperties(im *cluster.Image) brokerProperties {
	bp := brokerProperties{
		node:           im.ResourceConfigs(h.nodeResource()),
		clusterDefault: im.ResourceConfigs(clusterDefaultResource),
		static:         map[string]config.Property{},
	}
	for _, p := range h.cfg.BrokerConfigs {
		bp.static[p.Name] = p
	}
	return bp
}

// synonyms lists the sources of name and its synonyms, highest precedence
// first (Kafka's DynamicBrokerConfig: by synonym, then by source).
func (bp brokerProperties) synonyms(name string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	names := brokerSynonyms[name]
	if names == nil {
		names = []string{name}
	}
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(n string, v *string, src kmsg.ConfigSource) {
		out = append(out, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: n, Value: v, Source: src})
	}
	for _, n := range names {
		if v, ok := bp.node[n]; ok {
			add(n, &v, kmsg.ConfigSourceDynamicBrokerConfig)
		}
		if v, ok := bp.clusterDefault[n]; ok {
			add(n, &v, kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		}
		p, ok := bp.static[n]
		if ok && p.Explicit {
			add(n, p.Value, kmsg.ConfigSourceStaticBrokerConfig)
		}
		if d := configDefault(n); d != nil {
			add(n, d, kmsg.ConfigSourceDefaultConfig)
		}
	}
	return out
}

// configDefault is a property's default, nil if it has none.
func configDefault(name string) *string {
	for _, d := range config.Defs {
		if d.Name == name && d.Default != "" {
			v := d.Default
			return &v
		}
	}
	return nil
}

func describeBrokerConfig(req *kmsg.DescribeConfigsRequest, p config.Property, bp brokerProperties) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.ReadOnly = p.Name, !p.Dynamic
	syns := bp.synonyms(p.Name)
	// The value is the property's own from its highest source; the source
	// is that of the highest synonym, as Kafka reports them.
	c.Source = kmsg.ConfigSourceDefaultConfig
	if len(syns) > 0 {
		c.Source = syns[0].Source
	}
	for _, s := range syns {
		if s.Name == p.Name {
			c.Value = s.Value
			break
		}
	}
	c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
	// A key or password is never shown (Properties leaves its value
	// nil), as Kafka reports PASSWORD configs.
	c.IsSensitive = p.Sensitive
	if req.IncludeSynonyms {
		c.ConfigSynonyms = syns
	}
	c.ConfigType = configType(p.Name, c.Value)
	if req.IncludeDocumentation && req.Version >= 3 {
		d := p.Doc
		c.Documentation = &d
	}
	return c
}

// describeClusterDefault describes one cluster-wide dynamic config, as
// Kafka lists them for the broker resource "".
func (h *Handler) describeClusterDefault(req *kmsg.DescribeConfigsRequest, im *cluster.Image, name string) kmsg.DescribeConfigsResponseResourceConfig {
	v := im.ResourceConfigs(clusterDefaultResource)[name]
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = name, &v
	c.ReadOnly = !dynamicBrokerConfig(name)
	c.Source = kmsg.ConfigSourceDynamicDefaultBrokerConfig
	if req.IncludeSynonyms {
		c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: name, Value: &v, Source: c.Source})
	}
	c.ConfigType = configType(name, &v)
	if req.IncludeDocumentation && req.Version >= 3 {
		d := inertDoc
		for _, p := range h.cfg.BrokerConfigs {
			if p.Name == name {
				d = p.Doc
			}
		}
		c.Documentation = &d
	}
	return c
}

func describeGroupConfig(req *kmsg.DescribeConfigsRequest, name string, v int64, configs map[string]string) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	s := strconv.FormatInt(v, 10)
	c.Name, c.Value = name, &s
	_, set := configs[name]
	c.IsDefault = !set
	c.Source = kmsg.ConfigSourceDefaultConfig
	if set {
		c.Source = kmsg.ConfigSourceGroupConfig
	}
	if req.IncludeSynonyms {
		c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: name, Value: &s, Source: c.Source})
	}
	c.ConfigType = kmsg.ConfigTypeInt
	if req.IncludeDocumentation && req.Version >= 3 {
		d := "the group's KIP-848 consumer session timeout; the broker's group.consumer.session.timeout.ms when unset"
		if name == groupHeartbeatIntervalConfig {
			d = "the group's KIP-848 consumer heartbeat interval; the broker's group.consumer.heartbeat.interval.ms when unset"
		}
		c.Documentation = &d
	}
	return c
}

// configTypes are Kafka's types of the configs whose type the value does
// not tell (an integer is LONG, true/false BOOLEAN, else STRING).
var configTypes = map[string]kmsg.ConfigType{
	"node.id": kmsg.ConfigTypeInt, "num.partitions": kmsg.ConfigTypeInt, "message.max.bytes": kmsg.ConfigTypeInt,
	"socket.request.max.bytes": kmsg.ConfigTypeInt, "max.connections": kmsg.ConfigTypeInt, "max.connections.per.ip": kmsg.ConfigTypeInt,
	"max.connections.per.ip.overrides": kmsg.ConfigTypeString, "log.segment.bytes": kmsg.ConfigTypeInt,
	"log.roll.ms": kmsg.ConfigTypeLong, "log.retention.ms": kmsg.ConfigTypeLong, "log.roll.hours": kmsg.ConfigTypeInt, "log.retention.minutes": kmsg.ConfigTypeInt, "log.retention.hours": kmsg.ConfigTypeInt,
	"log.index.interval.bytes": kmsg.ConfigTypeInt, "log.index.size.max.bytes": kmsg.ConfigTypeInt,
	"log.cleanup.policy": kmsg.ConfigTypeList, "min.insync.replicas": kmsg.ConfigTypeInt, "max.broker.partitions": kmsg.ConfigTypeInt,
	"producer.id.expiration.ms": kmsg.ConfigTypeInt, "producer.id.expiration.check.interval.ms": kmsg.ConfigTypeInt,
	"offsets.topic.num.partitions": kmsg.ConfigTypeInt, "offsets.topic.replication.factor": kmsg.ConfigTypeShort,
	"offsets.retention.minutes": kmsg.ConfigTypeInt, "offset.metadata.max.bytes": kmsg.ConfigTypeInt,
	"group.min.session.timeout.ms": kmsg.ConfigTypeInt, "group.max.session.timeout.ms": kmsg.ConfigTypeInt,
	"group.initial.rebalance.delay.ms": kmsg.ConfigTypeInt, "group.max.size": kmsg.ConfigTypeInt,
	"group.consumer.heartbeat.interval.ms": kmsg.ConfigTypeInt, "group.consumer.session.timeout.ms": kmsg.ConfigTypeInt,
	"group.consumer.min.session.timeout.ms": kmsg.ConfigTypeInt, "group.consumer.max.session.timeout.ms": kmsg.ConfigTypeInt,
	"group.consumer.min.heartbeat.interval.ms": kmsg.ConfigTypeInt, "group.consumer.max.heartbeat.interval.ms": kmsg.ConfigTypeInt,
	"process.roles": kmsg.ConfigTypeList, "controller.quorum.voters": kmsg.ConfigTypeList,
	"leader.imbalance.per.broker.percentage": kmsg.ConfigTypeInt, "default.replication.factor": kmsg.ConfigTypeInt,
	"background.threads": kmsg.ConfigTypeInt, "num.io.threads": kmsg.ConfigTypeInt, "num.network.threads": kmsg.ConfigTypeInt,
	"num.replica.fetchers": kmsg.ConfigTypeInt, "num.recovery.threads.per.data.dir": kmsg.ConfigTypeInt,
	"log.cleaner.threads": kmsg.ConfigTypeInt, "log.cleaner.io.max.bytes.per.second": kmsg.ConfigTypeDouble,
	"sasl.kerberos.ticket.renew.jitter": kmsg.ConfigTypeDouble, "sasl.kerberos.ticket.renew.window.factor": kmsg.ConfigTypeDouble,
	// Topic configs.
	"segment.bytes": kmsg.ConfigTypeInt, "index.interval.bytes": kmsg.ConfigTypeInt, "segment.index.bytes": kmsg.ConfigTypeInt,
	"max.message.bytes": kmsg.ConfigTypeInt, "cleanup.policy": kmsg.ConfigTypeList,
}

// configType is a config's type (DescribeConfigs v3+).
func configType(name string, v *string) kmsg.ConfigType {
	if t, ok := configTypes[name]; ok {
		return t
	}
	if v == nil {
		return kmsg.ConfigTypeString
	}
	if _, err := strconv.ParseInt(*v, 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	if *v == "true" || *v == "false" {
		return kmsg.ConfigTypeBoolean
	}
	return kmsg.ConfigTypeString
}

// topicBrokerConfigs maps a topic config to the broker property that is
// its default.
var topicBrokerConfigs = func() map[string]string {
	m := map[string]string{}
	for bk, tk := range brokerTopicConfigs {
		m[tk] = bk
	}
	return m
}()

// describeTopicConfig describes one topic config: DYNAMIC_TOPIC_CONFIG when
// the topic overrides it, else the source of the broker property it
// inherits (Kafka's synonyms: the topic's override, then the broker
// property's sources).
func describeTopicConfig(req *kmsg.DescribeConfigsRequest, d broker.TopicConfigDef, tc *broker.TopicConfig, overrides map[string]string, bp brokerProperties) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := d.Get(tc)
	c.Name, c.Value = d.Name, &v
	var syns []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	if ov, set := overrides[d.Name]; set {
		syns = append(syns, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: d.Name, Value: &ov, Source: kmsg.ConfigSourceDynamicTopicConfig})
	}
	if bk, ok := topicBrokerConfigs[d.Name]; ok {
		syns = append(syns, bp.synonyms(bk)...)
	}
	c.Source = kmsg.ConfigSourceDefaultConfig
	if len(syns) > 0 {
		c.Source = syns[0].Source
	}
	c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
	if req.IncludeSynonyms {
		c.ConfigSynonyms = syns
	}
	c.ConfigType = configType(d.Name, &v)
	if req.IncludeDocumentation && req.Version >= 3 {
		c.Documentation = &d.Doc
	}
	return c
}
