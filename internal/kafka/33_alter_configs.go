package kafka

// AlterConfigs: v0-2 and IncrementalAlterConfigs: v0-1
//
// Behavior:
//   - Topic resources only. AlterConfigs replaces every override of the
//     topic with the given set (as Kafka does); IncrementalAlterConfigs
//     sets (SET), removes (DELETE), or for list configs appends/subtracts.
//   - Names and values are validated like CreateTopics (INVALID_CONFIG,
//     with a message); ValidateOnly checks without changing anything.
//   - A change is a metadata record; the topic's partition logs take the
//     new configuration at once.
//   - Broker resources are not alterable yet: INVALID_REQUEST.

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() {
	register(33, 0, 2, (*Handler).handleAlterConfigs)
	register(44, 0, 1, (*Handler).handleIncrementalAlterConfigs)
}

func (h *Handler) handleAlterConfigs(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = h.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
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
	return h.answer(ctx, resp), nil
}

func (h *Handler) handleIncrementalAlterConfigs(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = h.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			next := maps.Clone(cur)
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
					// strata knows; treat values as comma lists.
					items := splitNonEmpty(next[c.Name])
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
	return h.answer(ctx, resp), nil
}

// alterTopicConfigs computes a topic's new overrides with change, validates
// them, and unless validateOnly records them and applies them to the
// partitions. It returns the resource's error code and message.
func (h *Handler) alterTopicConfigs(rtype kmsg.ConfigResourceType, name string, validateOnly bool, change func(map[string]string) (map[string]string, error)) (int16, *string) {
	if rtype != kmsg.ConfigResourceTypeTopic {
		msg := "only topic configs can be altered"
		return kerr.InvalidRequest.Code, &msg
	}
	t := h.meta.Image().Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, nil
	}
	next, err := change(t.Configs)
	if err == nil {
		_, err = broker.ParseTopicConfig(h.cfg.TopicDefaults, next)
	}
	if err != nil || validateOnly {
		return errorCode(err), errorMessage(err)
	}
	diff := map[string]*string{}
	for k, v := range next {
		if old, ok := t.Configs[k]; !ok || old != v {
			diff[k] = &v
		}
	}
	for k := range t.Configs {
		if _, ok := next[k]; !ok {
			diff[k] = nil
		}
	}
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
