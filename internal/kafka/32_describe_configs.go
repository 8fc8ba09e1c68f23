package kafka

// DescribeConfigs: v0-4
//
// Behavior:
//   - Topic resources: every topic config strata knows, with its effective
//     value; Source DYNAMIC_TOPIC_CONFIG for overrides, DEFAULT_CONFIG
//     otherwise; documentation (v3+) from the same definitions.
//   - ConfigNames filters; unknown topics are UNKNOWN_TOPIC_OR_PARTITION.
//   - Broker resources (this node's id, or "" for the cluster default) list
//     every broker property: STATIC_BROKER_CONFIG for those set in the
//     properties file or with --set, DEFAULT_CONFIG otherwise; all are
//     read-only (broker configs are not alterable at run time). Another
//     node id is INVALID_REQUEST.

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(32, 0, 4, (*Handler).handleDescribeConfigs) }

func (h *Handler) handleDescribeConfigs(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
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
			for _, d := range broker.TopicConfigDefs {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, d.Name) {
					continue
				}
				sr.Configs = append(sr.Configs, describeTopicConfig(req.Version, d, &tc, t.Configs, req.IncludeDocumentation))
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(h.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			for _, p := range h.cfg.BrokerConfigs {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, p.Name) {
					continue
				}
				sr.Configs = append(sr.Configs, describeBrokerConfig(req.Version, p, req.IncludeDocumentation))
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return h.encode(resp), nil
}

func describeBrokerConfig(version int16, p config.Property, doc bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = p.Name, p.Value
	c.ReadOnly, c.IsDefault = true, !p.Explicit
	c.Source = kmsg.ConfigSourceDefaultConfig
	if p.Explicit {
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{
			Name: p.Name, Value: p.Value, Source: kmsg.ConfigSourceStaticBrokerConfig,
		})
	}
	c.ConfigType = kmsg.ConfigTypeString
	if p.Value != nil {
		if _, err := strconv.ParseInt(*p.Value, 10, 64); err == nil {
			c.ConfigType = kmsg.ConfigTypeLong
		}
	}
	if doc && version >= 3 {
		d := p.Doc
		c.Documentation = &d
	}
	return c
}

func describeTopicConfig(version int16, d broker.TopicConfigDef, tc *broker.TopicConfig, overrides map[string]string, doc bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := d.Get(tc)
	c.Name, c.Value = d.Name, &v
	_, set := overrides[d.Name]
	c.IsDefault = !set
	c.Source = kmsg.ConfigSourceDefaultConfig
	if set {
		c.Source = kmsg.ConfigSourceDynamicTopicConfig
	}
	c.ConfigType = kmsg.ConfigTypeString
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		c.ConfigType = kmsg.ConfigTypeLong
	}
	if doc && version >= 3 {
		c.Documentation = &d.Doc
	}
	return c
}
