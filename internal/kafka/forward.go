package kafka

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/controller"
	"github.com/strata-io/strata/internal/server"
)

// Admin requests that change metadata (CreateTopics, DeleteTopics,
// CreatePartitions, AlterConfigs, IncrementalAlterConfigs, ElectLeaders,
// AlterPartitionReassignments, and ListPartitionReassignments, which reads
// the controller's image as Kafka's does) are accepted on every node. A
// node that is not the active controller forwards the request, as
// decoded, to the active controller's controller listener (KIP-590's
// forwarding, without the envelope, so the principal does not travel:
// the forwarding node checks the client's ACLs first, authz.go), where
// the same handler runs it against the quorum; the answer comes back with the metadata offset of the change,
// and the node waits until its own image holds it before it answers, so a
// client that created a topic through a node finds it there next.

// forwardedKey marks a request that came through the controller listener:
// it is handled here or answered NOT_CONTROLLER, never forwarded again.
type forwardedKey struct{}

func forwarded(ctx context.Context) bool { return ctx.Value(forwardedKey{}) != nil }

// forwardTimeout bounds how long a forwarded request (and the wait for the
// local image) may take, as Kafka's request.timeout.ms bounds the broker
// to controller channel.
const forwardTimeout = 30 * time.Second

// forward sends req to the active controller when there is one and it is
// not this node, and returns its answer at the client's version once this
// node's image holds the change. ok is false when the request is to be
// handled here: local mode, this node is the controller, the request came
// forwarded, or no controller answered in time (the local code then
// answers NOT_CONTROLLER, which clients retry).
func (h *Handler) forward(ctx context.Context, req kmsg.Request) (kmsg.Response, bool) {
	if h.ctrl == nil || h.ctrl.Client() == nil || forwarded(ctx) {
		return nil, false
	}
	// The client's version, or the first flexible one above it: the
	// answer's metadata offset is a tagged field. Never a higher version
	// than needed, whose fields may differ (DeleteTopics v6 names topics
	// in another field than v5).
	clientVersion := req.GetVersion()
	for v := clientVersion; v <= apis[req.Key()].max; v++ {
		if req.SetVersion(v); req.IsFlexible() {
			break
		}
	}
	defer req.SetVersion(clientVersion)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout(req))
	defer cancel()
	for {
		if h.meta.ControllerID() == h.cfg.NodeID {
			return nil, false
		}
		resp, err := h.ctrl.Client().Send(ctx, req)
		if err == nil && !hasCode(resp, kerr.NotController.Code) {
			if off := controller.MetadataOffset(resp); off >= 0 {
				h.waitImage(ctx, off)
			}
			resp.SetVersion(clientVersion)
			return resp, true
		}
		if err != nil {
			h.logger.Debug("forwarding to the controller", "api", kmsg.NameForKey(req.Key()), "err", err)
		}
		select {
		case <-ctx.Done():
			h.logger.Warn("could not forward to the controller", "api", kmsg.NameForKey(req.Key()), "controller", h.meta.ControllerID(), "err", err)
			return nil, false
		case <-h.stopping:
			// The node is stopping and waits for the requests it
			// has read: answer NOT_CONTROLLER now rather than hold
			// the shutdown up to forwardTimeout.
			return nil, false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitImage waits until the image holds metadata offset off, or ctx ends.
func (h *Handler) waitImage(ctx context.Context, off int64) {
	for h.meta.Image().EndOffset < off {
		select {
		case <-ctx.Done():
			return
		case <-h.stopping:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// answer encodes an admin response; on the controller listener it carries
// the metadata offset that holds the change, for the forwarding node.
func (h *Handler) answer(ctx context.Context, resp kmsg.Response) *server.Response {
	if forwarded(ctx) {
		controller.SetMetadataOffset(resp, h.meta.Image().EndOffset)
	}
	return h.encode(resp)
}

func hasCode(resp kmsg.Response, code int16) bool {
	found := false
	walkErrorCodes(reflect.ValueOf(resp), func(c int16) { found = found || c == code })
	return found
}

// kerrCode returns the Kafka error code an error wraps (a *kerr.Error),
// or ok false.
func kerrCode(err error) (int16, bool) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code, true
	}
	return 0, false
}

// controllerAPI serves the controller listener's Kafka connections: the
// controller-only APIs (broker registration and heartbeats, producer id
// blocks) and forwarded admin requests, handled against the quorum.
type controllerAPI struct{ h *Handler }

// ControllerAPI returns the handler of the controller listener.
func (h *Handler) ControllerAPI() server.Handler { return controllerAPI{h} }

func (c controllerAPI) Handle(ctx context.Context, r *server.Request) (*server.Response, error) {
	return c.h.handle(context.WithValue(ctx, forwardedKey{}, true), r, true)
}

// requestTimeout is how long a forwarded request may take: its own
// TimeoutMillis where it has one (as Kafka bounds the controller's work by
// it), else forwardTimeout.
func requestTimeout(req kmsg.Request) time.Duration {
	var ms int32
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		ms = r.TimeoutMillis
	case *kmsg.DeleteTopicsRequest:
		ms = r.TimeoutMillis
	case *kmsg.CreatePartitionsRequest:
		ms = r.TimeoutMillis
	case *kmsg.ElectLeadersRequest:
		ms = r.TimeoutMillis
	case *kmsg.AlterPartitionAssignmentsRequest:
		ms = r.TimeoutMillis
	case *kmsg.ListPartitionReassignmentsRequest:
		ms = r.TimeoutMillis
	}
	if d := time.Duration(ms) * time.Millisecond; d > 0 && d < forwardTimeout {
		return d
	}
	return forwardTimeout
}
