package kafka

// DescribeUserScramCredentials: v0
//
// Behavior:
//   - Lists, per user, the SCRAM mechanisms it has a credential for and
//     their iteration counts, from this node's metadata image (as a Kafka
//     broker answers from its metadata cache); never salts or keys.
//   - No users (null or empty) describes every user with a credential.
//   - A user named that has none is RESOURCE_NOT_FOUND; a user named
//     twice is DUPLICATE_RESOURCE (Kafka's messages).

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

func init() { register(50, 0, 0, (*Handler).handleDescribeUserSCRAMCredentials) }

func (h *Handler) handleDescribeUserSCRAMCredentials(_ context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	scram := h.meta.Image().Scram
	var users []string
	if len(req.Users) == 0 {
		users = slices.Sorted(maps.Keys(scram))
	}
	count := map[string]int{}
	for _, u := range req.Users {
		if count[u.Name]++; count[u.Name] == 1 {
			users = append(users, u.Name)
		}
	}
	for _, user := range users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = user
		creds := scram[user]
		switch {
		case count[user] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + user)
		case len(creds) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + user)
		}
		if res.ErrorCode == 0 {
			for _, m := range slices.Sorted(maps.Keys(creds)) {
				info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				info.Mechanism, info.Iterations = m, creds[m].Iterations
				res.CredentialInfos = append(res.CredentialInfos, info)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return h.encode(resp), nil
}
