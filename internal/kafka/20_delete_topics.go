package kafka

// DeleteTopics: v0-6
//
// Behavior:
//   - Appends to the topic's partitions are stopped first (a produce in
//     flight gets NOT_LEADER_OR_FOLLOWER, retries, and then finds the topic
//     unknown), then the topic leaves the metadata (a record in the metadata log),
//     then its partition directories are renamed for deletion and removed
//     in the background. A crash in between is finished at the next start.
//   - v6+ may name topics by ID; unknown ones are UNKNOWN_TOPIC_ID.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(20, 0, 6, (*Handler).handleDeleteTopics) }

func (h *Handler) handleDeleteTopics(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	// As Kafka: DELETE on each topic (else TOPIC_AUTHORIZATION_FAILED),
	// checked before forwarding; a topic named by an unknown id stays
	// UNKNOWN_TOPIC_ID.
	ac := h.auth(ctx, sr)
	var denied []kmsg.DeleteTopicsResponseTopic
	if ac.enabled() {
		im := h.meta.Image()
		deny := func(name *string, id [16]byte) {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID, st.ErrorCode = name, id, codeTopicAuth
			denied = append(denied, st)
		}
		var keptNames []string
		for _, n := range req.TopicNames {
			if ac.topic(acl.OpDelete, n) {
				keptNames = append(keptNames, n)
			} else {
				deny(&n, [16]byte{})
			}
		}
		var kept []kmsg.DeleteTopicsRequestTopic
		for _, t := range req.Topics {
			name := t.Topic
			if name == nil {
				if tt := im.ByID[cluster.TopicID(t.TopicID)]; tt != nil {
					name = &tt.Name
				}
			}
			if name == nil || ac.topic(acl.OpDelete, *name) {
				kept = append(kept, t)
			} else {
				deny(name, t.TopicID)
			}
		}
		req.TopicNames, req.Topics = keptNames, kept
	}
	if resp, ok := h.forward(ctx, req); ok {
		dresp := resp.(*kmsg.DeleteTopicsResponse)
		dresp.Topics = append(dresp.Topics, denied...)
		return h.encode(dresp), nil
	}
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	im := h.meta.Image()
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t *cluster.Topic
		if tg.name != nil {
			t = im.Topic(*tg.name)
		} else {
			t = im.ByID[cluster.TopicID(tg.id)]
		}
		if t == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if tg.name == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.Topic, st.TopicID = &t.Name, t.ID
		if internalTopic(t.Name) {
			msg := "internal topics cannot be deleted"
			st.ErrorCode, st.ErrorMessage = kerr.InvalidTopicException.Code, &msg
		} else if err := h.deleteTopic(t); err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
			if tg.name == nil && errors.Is(err, cluster.ErrUnknownTopic) {
				st.ErrorCode = kerr.UnknownTopicID.Code // deleted meanwhile
			}
		} else {
			h.logger.Info("deleted topic", "topic", t.Name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	resp.Topics = append(resp.Topics, denied...)
	return h.answer(ctx, resp), nil
}

// deleteTopic fences t's partitions against appends, records the delete,
// then removes the files. Fencing first means no produce is acknowledged
// after the delete is decided; topicMu keeps a concurrent request from
// re-creating a partition's files from an image read before the delete.
func (h *Handler) deleteTopic(t *cluster.Topic) error {
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	// t was read from an image before the lock: the topic may have gained
	// partitions since, or been deleted and re-created under its name.
	// Delete what the current image holds under t's id, and only that.
	cur := h.meta.Image().ByID[t.ID]
	if cur == nil || h.meta.Image().Topic(cur.Name) != cur {
		return fmt.Errorf("%w: %s", cluster.ErrUnknownTopic, t.Name)
	}
	t = cur
	var fenced []*broker.Partition
	for p := int32(0); p < t.Partitions; p++ {
		if part := h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p}); part != nil {
			part.Fence()
			fenced = append(fenced, part)
		}
	}
	if _, err := h.meta.DeleteTopic(t.Name); err != nil {
		for _, part := range fenced {
			part.Unfence()
		}
		return err
	}
	for p := int32(0); p < t.Partitions; p++ {
		if err := h.broker.DeletePartition(log.TopicPartition{Topic: t.Name, Partition: p}); err != nil {
			h.logger.Error("delete partition files", "topic", t.Name, "partition", p, "err", err)
		}
	}
	return nil
}
