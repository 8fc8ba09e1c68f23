package cluster

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// QuorumOptions.Dial carries raft's connections to the other voters, so
// that a test can route them through a network it controls.
func TestQuorumDialHook(t *testing.T) {
	var dials atomic.Int64
	c := startQuorum(t, 3, func(q *QuorumOptions) {
		q.Dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			dials.Add(1)
			return net.DialTimeout("tcp", addr, timeout)
		}
	})
	l := c.leader()
	if dials.Load() == 0 {
		t.Fatal("raft dialed no voter through QuorumOptions.Dial")
	}
	if _, err := l.s.CreateTopic("d", 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	c.converged(l.s.Image())
}
