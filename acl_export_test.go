package strata

import (
	"context"
	"strings"

	"github.com/strata-io/strata/internal/server"
)

// TestPrincipalPrefix starts the client id of a test client that acts as
// a principal: "principal=User:alice" connects as User:alice. Test-only:
// until SASL (or TLS client certificates) authenticate principals, this
// is how ACL tests get more than User:ANONYMOUS. A connection keeps the
// principal its first such request named.
const TestPrincipalPrefix = "principal="

func init() {
	wrapClientHandler = func(h server.Handler) server.Handler {
		return server.HandlerFunc(func(ctx context.Context, r *server.Request) (*server.Response, error) {
			if r.ClientID != nil && r.Session != nil {
				if p, ok := strings.CutPrefix(*r.ClientID, TestPrincipalPrefix); ok {
					r.Session.SetPrincipal(p)
				}
			}
			return h.Handle(ctx, r)
		})
	}
}
