package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnListDescribe: a transactional id initialised by a producer shows
// in `txn list` and `txn describe`; an unknown one is an error naming it.
func TestTxnListDescribe(t *testing.T) {
	addr := cliBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("cli-txn"), 30000
	resp, err := cl.Request(ctx, init)
	if err != nil || resp.(*kmsg.InitProducerIDResponse).ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %+v", err, resp)
	}
	out := mustCLI(t, addr, "", "txn", "list")
	if !strings.Contains(out, "cli-txn") || !strings.Contains(out, "Empty") {
		t.Fatalf("txn list:\n%s", out)
	}
	out = mustCLI(t, addr, "", "txn", "describe", "cli-txn")
	if !strings.Contains(out, "STATE             Empty") || !strings.Contains(out, "TIMEOUT           30s") {
		t.Fatalf("txn describe:\n%s", out)
	}
	if _, _, err := runCLI(t, addr, "", "txn", "describe", "nope"); err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) {
		t.Fatalf("describe of an unknown id: %v", err)
	}
}
