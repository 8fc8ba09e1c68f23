package kafka

// ApiVersions: v0-4
//
// Behavior:
//   - Lists every registered key with its version range (the apis table).
//   - The response header is v0 at every version, even for flexible v3+
//     requests (KIP-511), so a client can always parse it.
//   - A version above the highest served gets a v0 body with
//     UNSUPPORTED_VERSION that still lists the keys, so the client can
//     retry at a version both support.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, (*Handler).handleAPIVersions) }

func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		if a.controllerOnly {
			continue
		}
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max})
	}
	slices.SortFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return keys
}

func (h *Handler) handleAPIVersions(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys()
	return h.encode(resp), nil
}

func (h *Handler) unsupportedAPIVersions() *server.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys()
	return h.encode(resp)
}
