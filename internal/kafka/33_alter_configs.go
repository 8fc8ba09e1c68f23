package kafka

// AlterConfigs: v0-2 and IncrementalAlterConfigs: v0-1
//
// Behavior:
//   - Topic resources: AlterConfigs replaces every override of the topic
//     with the given set (as Kafka does); IncrementalAlterConfigs sets
//     (SET), removes (DELETE), or for list configs appends/subtracts.
//     Names and values are validated like CreateTopics (INVALID_CONFIG,
//     with a message); ValidateOnly checks without changing anything.
//   - Broker resources ("" for the cluster-wide defaults, or a node id):
//     dynamic broker configs (config.Dynamic); another name is
//     INVALID_CONFIG, as Kafka's "Cannot update these configs
//     dynamically". APPEND and SUBTRACT only for list properties
//     (log.cleanup.policy). A non-numeric name is INVALID_REQUEST; another
//     node's id is accepted and applies on that node.
//   - Group resources (KIP-848's GroupConfig): consumer.session.timeout.ms
//     and consumer.heartbeat.interval.ms, within the broker's bounds.
//   - A change is a metadata record; the partition logs take the new
//     configuration at once (applyImageConfigs for broker changes).
//   - Other resource types are INVALID_REQUEST.

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() {
	register(33, 0, 2, (*Handler).handleAlterConfigs)
	register(44, 0, 1, (*Handler).handleIncrementalAlterConfigs)
}

func (h *Handler) handleAlterConfigs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	// As Kafka: ALTER_CONFIGS on each resource (configCode), checked
	// before forwarding with the client's principal.
	ac := h.auth(ctx, r)
	var denied []kmsg.AlterConfigsResponseResource
	if ac.enabled() {
		var kept []kmsg.AlterConfigsRequestResource
		for _, rr := range req.Resources {
			if code := ac.configCode(acl.OpAlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
				sr := kmsg.NewAlterConfigsResponseResource()
				sr.ResourceType, sr.ResourceName, sr.ErrorCode = rr.ResourceType, rr.ResourceName, code
				denied = append(denied, sr)
				continue
			}
			kept = append(kept, rr)
		}
		req.Resources = kept
	}
	if resp, ok := h.forward(ctx, req); ok {
		aresp := resp.(*kmsg.AlterConfigsResponse)
		aresp.Resources = append(aresp.Resources, denied...)
		return h.encode(aresp), nil
	}
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = h.alterConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					next[c.Name] = *c.Value
				}
			}
			return next, nil
		})
		resp.Resources = append(resp.Resources, sr)
	}
	resp.Resources = append(resp.Resources, denied...)
	return h.answer(ctx, resp), nil
}

func (h *Handler) handleIncrementalAlterConfigs(ctx context.Context, r *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	ac := h.auth(ctx, r)
	var denied []kmsg.IncrementalAlterConfigsResponseResource
	if ac.enabled() {
		var kept []kmsg.IncrementalAlterConfigsRequestResource
		for _, rr := range req.Resources {
			if code := ac.configCode(acl.OpAlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
				sr := kmsg.NewIncrementalAlterConfigsResponseResource()
				sr.ResourceType, sr.ResourceName, sr.ErrorCode = rr.ResourceType, rr.ResourceName, code
				denied = append(denied, sr)
				continue
			}
			kept = append(kept, rr)
		}
		req.Resources = kept
	}
	if resp, ok := h.forward(ctx, req); ok {
		iresp := resp.(*kmsg.IncrementalAlterConfigsResponse)
		iresp.Resources = append(iresp.Resources, denied...)
		return h.encode(iresp), nil
	}
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = h.alterConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			next := maps.Clone(cur)
			if next == nil {
				next = map[string]string{}
			}
			for _, c := range rr.Configs {
				value := ""
				if c.Value != nil {
					value = *c.Value
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					next[c.Name] = value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(next, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					// Only cleanup.policy is a list among the configs
					// strata knows; treat values as comma lists. Broker
					// and group configs take them for list properties
					// only, from the value in effect, as Kafka's
					// ConfigAdminManager.
					base, ok := next[c.Name]
					if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
						if rr.ResourceType != kmsg.ConfigResourceTypeBroker || !brokerListConfigs[c.Name] {
							verb := "append"
							if c.Op == kmsg.IncrementalAlterConfigOpSubtract {
								verb = "subtract"
							}
							return nil, fmt.Errorf("%w: Config value %s is not allowed for config key: %s", broker.ErrInvalidConfig, verb, c.Name)
						}
						if !ok {
							base = h.topicDefaults().CleanupPolicy
						}
					}
					items := splitNonEmpty(base)
					for _, v := range splitNonEmpty(value) {
						i := indexOf(items, v)
						if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
							items = append(items, v)
						} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
							items = append(items[:i], items[i+1:]...)
						}
					}
					next[c.Name] = strings.Join(items, ",")
				default:
					return nil, fmt.Errorf("%w: unknown operation %d for %s", broker.ErrInvalidConfig, c.Op, c.Name)
				}
			}
			return next, nil
		})
		resp.Resources = append(resp.Resources, sr)
	}
	resp.Resources = append(resp.Resources, denied...)
	return h.answer(ctx, resp), nil
}

// alterConfigs computes a resource's new configs with change, validates
// them, and unless validateOnly records them and applies them. It returns
// the resource's error code and message.
func (h *Handler) alterConfigs(rtype kmsg.ConfigResourceType, name string, validateOnly bool, change func(map[string]string) (map[string]string, error)) (int16, *string) {
	switch rtype {
	case kmsg.ConfigResourceTypeTopic:
		return h.alterTopicConfigs(name, validateOnly, change)
	case kmsg.ConfigResourceTypeBroker:
		if err := validBrokerName(name); err != nil {
			return kerr.InvalidRequest.Code, errorMessage(err)
		}
		return h.alterResourceConfigs(cluster.ConfigResource{Type: records.ResourceBroker, Name: name}, validateOnly, change)
	case kmsg.ConfigResourceTypeGroupConfig:
		if name == "" {
			msg := "group name must not be empty"
			return kerr.InvalidRequest.Code, &msg
		}
		return h.alterResourceConfigs(groupResource(name), validateOnly, change)
	}
	msg := fmt.Sprintf("configs of resource type %d cannot be altered", rtype)
	return kerr.InvalidRequest.Code, &msg
}

// alterResourceConfigs changes a broker's or group's configs: validated
// (broker configs: the names and values that change; group configs: the
// whole set, whose values depend on each other), recorded, and for broker
// configs applied to this node's partitions.
func (h *Handler) alterResourceConfigs(res cluster.ConfigResource, validateOnly bool, change func(map[string]string) (map[string]string, error)) (int16, *string) {
	old := h.meta.Image()
	cur := old.ResourceConfigs(res)
	next, err := change(cur)
	if err != nil {
		return errorCode(err), errorMessage(err)
	}
	diff := configDiff(cur, next)
	if res.Type == records.ResourceBroker {
		changed := map[string]string{}
		for k, v := range diff {
			if v != nil {
				changed[k] = *v
			}
		}
		err = h.validateBrokerConfigs(changed)
	} else {
		err = h.validateGroupConfigs(next)
	}
	if err != nil || validateOnly {
		return errorCode(err), errorMessage(err)
	}
	im, err := h.meta.AlterResourceConfigs(res, diff)
	if err != nil {
		return errorCode(err), errorMessage(err)
	}
	if res.Type == records.ResourceBroker {
		h.logger.Info("altered dynamic broker configs", "resource", res.Name, "changes", len(diff))
		h.applyImageConfigs(old, im)
	}
	return 0, nil
}

// configDiff returns the changes from cur to next: new values, and nil for
// removed keys.
func configDiff(cur, next map[string]string) map[string]*string {
	diff := map[string]*string{}
	for k, v := range next {
		if old, ok := cur[k]; !ok || old != v {
			diff[k] = &v
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			diff[k] = nil
		}
	}
	return diff
}

// alterTopicConfigs computes a topic's new overrides with change, validates
// them, and unless validateOnly records them and applies them to the
// partitions.
func (h *Handler) alterTopicConfigs(name string, validateOnly bool, change func(map[string]string) (map[string]string, error)) (int16, *string) {
	t := h.meta.Image().Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, nil
	}
	next, err := change(t.Configs)
	if err == nil {
		_, err = broker.ParseTopicConfig(h.topicDefaults(), next)
	}
	if err != nil || validateOnly {
		return errorCode(err), errorMessage(err)
	}
	diff := configDiff(t.Configs, next)
	// Under the topic lock, so that a partition being created meanwhile
	// either sees the new config or is created before it is applied.
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	nt, err := h.meta.AlterConfigs(name, diff)
	if err != nil {
		return errorCode(err), errorMessage(err)
	}
	h.applyTopicConfig(nt)
	return 0, nil
}

// applyTopicConfig gives every partition of t its current configuration.
func (h *Handler) applyTopicConfig(t *cluster.Topic) {
	tc, err := h.topicConfig(t)
	if err != nil {
		h.logger.Error("topic config", "topic", t.Name, "err", err)
		return
	}
	for p := int32(0); p < t.Partitions; p++ {
		if part := h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p}); part != nil {
			if err := part.Log.SetConfig(tc.Log); err != nil {
				h.logger.Error("apply topic config", "partition", part.TP, "err", err)
			}
		}
	}
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func indexOf(items []string, v string) int {
	for i, it := range items {
		if it == v {
			return i
		}
	}
	return -1
}
