package kafka

// ListTransactions: v0-2
//
// Behavior:
//   - The transactional ids this node coordinates that the client may
//     DESCRIBE, filtered as Kafka's listTransactionStates: by state names
//     (unknown names are returned in UnknownStateFilters and match
//     nothing), by producer ids, by duration (v1+, KIP-994: running longer
//     than DurationFilterMillis) and by a regular expression on the id
//     (v2+, KIP-1152; an invalid one is INVALID_REGULAR_EXPRESSION).
//   - COORDINATOR_LOAD_IN_PROGRESS while a partition of
//     __transaction_state loads here.

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
	"github.com/strata-io/strata/internal/txn"
)

func init() { register(66, 0, 2, (*Handler).handleListTransactions) }

func (h *Handler) handleListTransactions(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	ac := h.auth(ctx, sr)
	var states []txn.State
	for _, name := range req.StateFilters {
		if s, ok := txn.ParseState(name); ok {
			states = append(states, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	var re *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return h.encode(resp), nil
		}
	}
	list, err := h.txns.coord.List()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return h.encode(resp), nil
	}
	now := time.Now().UnixMilli()
	for _, d := range list {
		switch {
		case d.State == txn.Dead,
			len(req.StateFilters) > 0 && !slices.Contains(states, d.State),
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, d.ProducerID),
			req.DurationFilterMillis >= 0 && now-d.StartMs <= req.DurationFilterMillis,
			re != nil && !re.MatchString(d.TransactionalID),
			!ac.txn(acl.OpDescribe, d.TransactionalID):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = d.TransactionalID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return h.encode(resp), nil
}
