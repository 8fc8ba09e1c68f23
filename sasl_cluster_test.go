package strata_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
)

// SCRAM credentials are cluster metadata: created through one node (kadm,
// and a raw request to a node that is not the controller, which forwards
// it), they are described by every node, salts and keys never leaving the
// brokers; a delete through another node removes them everywhere.
func TestClusterSCRAMCredentials(t *testing.T) {
	c := startFastCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes()
	var other []int32 // nodes that are not the controller
	for _, n := range nodes {
		if n.ID() != ctrl {
			other = append(other, n.ID())
		}
	}
	cl := newClient(t, nodes[0].Addr())
	adm := kadm.NewClient(cl)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "a-pass"}})
	if err != nil || res["alice"].Err != nil {
		t.Fatalf("alter through kadm: %v %+v", err, res)
	}

	// Forwarded: sent to a node that is not the controller.
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "bob", 2, 8192, []byte("0123456789abcdef"), make([]byte, 64)
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = append(req.Upsertions, up)
	raw, err := cl.Broker(int(other[0])).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := raw.(*kmsg.AlterUserSCRAMCredentialsResponse).Results; len(r) != 1 || r[0].ErrorCode != 0 {
		t.Fatalf("forwarded alter: %+v", r)
	}

	// Every node describes both users, once its image has caught up.
	describe := func(id int32, users ...string) *kmsg.DescribeUserSCRAMCredentialsResponse {
		req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for _, u := range users {
			ru := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			ru.Name = u
			req.Users = append(req.Users, ru)
		}
		resp, err := cl.Broker(int(id)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.DescribeUserSCRAMCredentialsResponse)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for _, n := range nodes {
		waitFor("describe", func() bool {
			var got []string
			for _, r := range describe(n.ID()).Results {
				if r.ErrorCode == 0 && len(r.CredentialInfos) == 1 {
					got = append(got, r.User)
				}
			}
			return slices.Equal(got, []string{"alice", "bob"})
		})
	}
	d, err := kadm.NewClient(newClient(t, nodes[2].Addr())).DescribeUserSCRAMs(ctx, "alice")
	if err != nil || d["alice"].Err != nil || len(d["alice"].CredInfos) != 1 || d["alice"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha256, Iterations: 4096}) {
		t.Fatalf("kadm describe through node 3: %v %+v", err, d)
	}

	// Deleted through the last node; gone everywhere.
	del, err := kadm.NewClient(newClient(t, nodes[2].Addr())).AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || del["alice"].Err != nil {
		t.Fatalf("delete: %v %+v", err, del)
	}
	for _, n := range nodes {
		waitFor("delete", func() bool {
			r := describe(n.ID(), "alice").Results
			return len(r) == 1 && r[0].ErrorCode == kerr.ResourceNotFound.Code
		})
	}
	del, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || !errors.Is(del["alice"].Err, kerr.ResourceNotFound) {
		t.Fatalf("second delete: %v %+v", err, del)
	}
}

// A listener's PLAIN JAAS configuration that does not parse fails the
// start, without the passwords in the error.
func TestStartRefusesBadPlainJAAS(t *testing.T) {
	_, err := strata.Start(strata.Options{Dir: t.TempDir(), Properties: map[string]string{
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required user_a="s3cret"`,
	}})
	if err == nil || !strings.Contains(err.Error(), "plain.sasl.jaas.config") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("start: %v", err)
	}
}

// SCRAM credentials survive a restart: replayed from the metadata log, or
// loaded from the snapshot written at a clean shutdown.
func TestSCRAMCredentialsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := startBroker(t, dir, nil)
	res, err := kadm.NewClient(newClient(t, b.Addr())).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "a"},
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "b"},
	})
	if err != nil || res["alice"].Err != nil || res["bob"].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startBroker(t, dir, nil)
	d, err := kadm.NewClient(newClient(t, b.Addr())).DescribeUserSCRAMs(ctx)
	if err != nil || len(d) != 2 || d["alice"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha512, Iterations: 8192}) ||
		d["bob"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha256, Iterations: 4096}) {
		t.Fatalf("after restart: %v %+v", err, d)
	}
}
