// Package netsim is an in-process network between the nodes of an
// embedded cluster, for tests: every node dials its peers through its own
// Dialer, and a test can cut the network between two nodes and heal it.
//
// A cut is a connection-level partition, not a packet-level one: Cut
// closes every open connection between the two nodes (dialed by either
// side), and their dials fail at once until Heal. A real partition drops
// packets silently and a peer notices only through its timeouts; here a
// node notices at once, through a closed connection or a refused dial,
// which is what it would see of a crashed peer's host or a firewall that
// rejects. Traffic inside the process is not delayed, reordered or
// dropped in part. Connections to an address no node registered pass
// untouched (a cut cannot reach them).
//
// A Network is safe for concurrent use.
package netsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrCut is what a dial across a cut wraps.
var ErrCut = errors.New("netsim: network cut")

// Network is the links between nodes, each named by an int32 id.
type Network struct {
	mu struct {
		sync.Mutex
		owner map[string]int32   // listen address -> node id
		cut   map[link]bool      // cut links
		conns map[*conn]struct{} // open connections between two nodes
	}
}

// link is an unordered pair of node ids: a cut goes both ways.
type link struct{ a, b int32 }

func newLink(a, b int32) link {
	if a > b {
		a, b = b, a
	}
	return link{a, b}
}

// New returns a network with no nodes and nothing cut.
func New() *Network {
	n := &Network{}
	n.mu.owner = map[string]int32{}
	n.mu.cut = map[link]bool{}
	n.mu.conns = map[*conn]struct{}{}
	return n
}

// Register names id as the node listening on addr (host:port, as peers
// dial it), so that a dial to addr is a link to id. A node registers each
// of its listeners.
func (n *Network) Register(addr string, id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.owner[addr] = id
}

// Dialer returns node id's dial function: a dial to a registered address
// fails with ErrCut while the link is cut, and the connection is closed
// by a later Cut of the link.
func (n *Network) Dialer(id int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.mu.Lock()
		to, known := n.mu.owner[addr]
		cut := known && n.mu.cut[newLink(id, to)]
		n.mu.Unlock()
		if cut {
			return nil, fmt.Errorf("dial %s from node %d to node %d: %w", addr, id, to, ErrCut)
		}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil || !known || to == id {
			return nc, err
		}
		c := &conn{Conn: nc, net: n, link: newLink(id, to)}
		n.mu.Lock()
		defer n.mu.Unlock()
		// The link may have been cut while the dial ran.
		if n.mu.cut[c.link] {
			nc.Close()
			return nil, fmt.Errorf("dial %s from node %d to node %d: %w", addr, id, to, ErrCut)
		}
		n.mu.conns[c] = struct{}{}
		return c, nil
	}
}

// Cut cuts the link between nodes a and b: their open connections close
// and new dials between them fail, until Heal.
func (n *Network) Cut(a, b int32) {
	l := newLink(a, b)
	n.mu.Lock()
	n.mu.cut[l] = true
	var doomed []*conn
	for c := range n.mu.conns {
		if c.link == l {
			doomed = append(doomed, c)
		}
	}
	n.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Heal restores the link between a and b.
func (n *Network) Heal(a, b int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.mu.cut, newLink(a, b))
}

// HealAll restores every link.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.mu.cut)
}

// IsCut reports whether the link between a and b is cut.
func (n *Network) IsCut(a, b int32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.cut[newLink(a, b)]
}

// conn is a connection between two nodes; it leaves the network's set
// when closed.
type conn struct {
	net.Conn
	net  *Network
	link link
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.mu.conns, c)
		c.net.mu.Unlock()
	})
	return err
}
