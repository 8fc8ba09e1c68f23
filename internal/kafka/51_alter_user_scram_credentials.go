package kafka

// AlterUserScramCredentials: v0
//
// Behavior:
//   - Accepted on any node and forwarded to the active controller
//     (forward.go), which writes UserScramCredentialRecords and
//     RemoveUserScramCredentialRecords; the node answers once its own
//     image holds them, so a client can authenticate there next.
//   - An upsertion carries a salt and the salted password (never the
//     password); the controller derives StoredKey and ServerKey
//     (RFC 5802) and stores those, as Kafka's ScramControlManager.
//   - Per user, as Kafka's controller: a user in more than one deletion
//     or upsertion is DUPLICATE_RESOURCE; a mechanism other than
//     SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2) is UNSUPPORTED_SASL_MECHANISM;
//     iterations outside 4096-16384, an empty name, salt or salted
//     password is UNACCEPTABLE_CREDENTIAL; deleting a credential that does
//     not exist is RESOURCE_NOT_FOUND. A user with an error changes
//     nothing; the users without one are written together, in one batch.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/sasl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(51, 0, 0, (*Handler).handleAlterUserSCRAMCredentials) }

// scramError is a per-user refusal of AlterUserScramCredentials.
type scramError struct {
	code int16
	msg  string
}

func (h *Handler) handleAlterUserSCRAMCredentials(ctx context.Context, _ *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return h.encode(resp), nil
	}
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)

	// Users in order of first appearance, each with how often it appears.
	var users []string
	seen := map[string]int{}
	note := func(name string) {
		if seen[name]++; seen[name] == 1 {
			users = append(users, name)
		}
	}
	for _, d := range req.Deletions {
		note(d.Name)
	}
	for _, u := range req.Upsertions {
		note(u.Name)
	}

	errs := map[string]scramError{}
	_, err := h.meta.Propose(func(im *cluster.Image) ([]records.Record, error) {
		clear(errs)
		var out []records.Record
		for _, user := range users {
			if seen[user] > 1 {
				errs[user] = scramError{kerr.DuplicateResource.Code, "A user credential cannot be altered twice in the same request"}
				continue
			}
			if rec, e := scramDeletion(im, user, req.Deletions); e != nil {
				errs[user] = *e
			} else if rec != nil {
				out = append(out, rec)
				continue
			}
			if _, failed := errs[user]; failed {
				continue
			}
			if rec, e := scramUpsertion(user, req.Upsertions); e != nil {
				errs[user] = *e
			} else if rec != nil {
				out = append(out, rec)
			}
		}
		return out, nil
	})
	for _, user := range users {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		if e, ok := errs[user]; ok {
			res.ErrorCode, res.ErrorMessage = e.code, kmsg.StringPtr(e.msg)
		} else if err != nil {
			res.ErrorCode, res.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Results = append(resp.Results, res)
	}
	return h.answer(ctx, resp), nil
}

// scramDeletion returns the record removing user's credential if the
// request deletes one (nil, nil if it does not).
func scramDeletion(im *cluster.Image, user string, dels []kmsg.AlterUserSCRAMCredentialsRequestDeletion) (records.Record, *scramError) {
	for _, d := range dels {
		if d.Name != user {
			continue
		}
		if e := checkScramMechanism(d.Mechanism); e != nil {
			return nil, e
		}
		if user == "" {
			return nil, &scramError{kerr.UnacceptableCredential.Code, "Username must not be empty"}
		}
		if im.Scram[user][d.Mechanism] == nil {
			return nil, &scramError{kerr.ResourceNotFound.Code, "Attempt to delete a user credential that does not exist"}
		}
		return &records.RemoveUserScramCredential{Name: user, Mechanism: d.Mechanism}, nil
	}
	return nil, nil
}

func scramUpsertion(user string, ups []kmsg.AlterUserSCRAMCredentialsRequestUpsertion) (records.Record, *scramError) {
	for _, u := range ups {
		if u.Name != user {
			continue
		}
		if e := checkScramMechanism(u.Mechanism); e != nil {
			return nil, e
		}
		switch {
		case user == "":
			return nil, &scramError{kerr.UnacceptableCredential.Code, "Username must not be empty"}
		case u.Iterations < sasl.MinIterations:
			return nil, &scramError{kerr.UnacceptableCredential.Code, fmt.Sprintf("Too few iterations: %d, the minimum is %d", u.Iterations, sasl.MinIterations)}
		case u.Iterations > sasl.MaxIterations:
			return nil, &scramError{kerr.UnacceptableCredential.Code, fmt.Sprintf("Too many iterations: %d, the maximum is %d", u.Iterations, sasl.MaxIterations)}
		case len(u.Salt) == 0:
			return nil, &scramError{kerr.UnacceptableCredential.Code, "Salt must not be empty"}
		case len(u.SaltedPassword) == 0:
			return nil, &scramError{kerr.UnacceptableCredential.Code, "Salted password must not be empty"}
		}
		c := sasl.NewCredential(sasl.Scram(u.Mechanism), u.Salt, u.SaltedPassword, u.Iterations)
		return &records.UserScramCredential{Name: user, Mechanism: u.Mechanism, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: u.Iterations}, nil
	}
	return nil, nil
}

func checkScramMechanism(m int8) *scramError {
	if !sasl.Scram(m).Valid() {
		return &scramError{kerr.UnsupportedSaslMechanism.Code, "Unknown SCRAM mechanism"}
	}
	return nil
}
