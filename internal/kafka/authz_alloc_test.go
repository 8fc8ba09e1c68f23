//go:build !race

package kafka

import (
	"context"
	"net"
	"testing"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

// TestAuthzDisabledAllocs: with no authorizer configured the checks on
// the produce and fetch paths allocate nothing.
func TestAuthzDisabledAllocs(t *testing.T) {
	h := &Handler{}
	r := &server.Request{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		ac := h.auth(ctx, r)
		if !ac.topic(acl.OpWrite, "t") || !ac.cluster(acl.OpClusterAction) || ac.enabled() {
			t.Fatal("denied without an authorizer")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check without an authorizer", n)
	}
}
