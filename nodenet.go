package strata

import (
	"context"
	"net"
	"time"
)

// nodeNet is how a node reaches the other nodes of its cluster: raft's
// transport between controllers, and every other connection one node
// makes to another. The zero value dials over plain TCP; an embedded
// cluster (StartCluster) gives each node a dialer of its in-process
// network, so that a test can cut links between nodes.
type nodeNet struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// abort, when closed, abandons a start in progress: StartCluster
	// closes it when another node failed to start, so that the others
	// do not wait out quorumStartTimeout for a quorum that cannot form.
	abort <-chan struct{}
}

// startContext bounds one of a start's waits for the quorum by
// quorumStartTimeout and by abort.
func (nn nodeNet) startContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, quorumStartTimeout)
	if nn.abort != nil {
		go func() {
			select {
			case <-nn.abort:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// dialContext dials addr over TCP through the node's network.
func (nn nodeNet) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if nn.dial == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return nn.dial(ctx, network, addr)
}

// quorumDial is the dial of raft's transport (cluster.QuorumOptions.Dial).
func (nn nodeNet) quorumDial(addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return nn.dialContext(ctx, "tcp", addr)
}
