package netsim

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// listen starts an echo server and registers it as node id's.
func listen(t *testing.T, n *Network, id int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	n.Register(ln.Addr().String(), id)
	return ln.Addr().String()
}

func dial(t *testing.T, n *Network, from int32, addr string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.Dialer(from)(ctx, "tcp", addr)
}

func echo(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	return err
}

func TestCutClosesAndRefusesUntilHeal(t *testing.T) {
	n := New()
	addr1, addr2 := listen(t, n, 1), listen(t, n, 2)
	addr3 := listen(t, n, 3)

	c12, err := dial(t, n, 1, addr2)
	if err != nil {
		t.Fatal(err)
	}
	c21, err := dial(t, n, 2, addr1) // the other direction
	if err != nil {
		t.Fatal(err)
	}
	c13, err := dial(t, n, 1, addr3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{c12, c21, c13} {
		if err := echo(c); err != nil {
			t.Fatal(err)
		}
	}

	n.Cut(2, 1)
	if !n.IsCut(1, 2) || n.IsCut(1, 3) {
		t.Fatal("IsCut disagrees with the cut")
	}
	for _, c := range []net.Conn{c12, c21} {
		if err := echo(c); err == nil {
			t.Fatal("a connection across the cut still works")
		}
	}
	if err := echo(c13); err != nil {
		t.Fatalf("a connection outside the cut broke: %v", err)
	}
	for _, d := range []struct {
		from int32
		addr string
	}{{1, addr2}, {2, addr1}} {
		if _, err := dial(t, n, d.from, d.addr); !errors.Is(err, ErrCut) {
			t.Fatalf("dial across the cut from %d: %v", d.from, err)
		}
	}
	if c, err := dial(t, n, 2, addr3); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}

	n.Heal(1, 2)
	c, err := dial(t, n, 2, addr1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Fatal(err)
	}
}

func TestHealAll(t *testing.T) {
	n := New()
	addr2, addr3 := listen(t, n, 2), listen(t, n, 3)
	n.Cut(1, 2)
	n.Cut(1, 3)
	n.HealAll()
	for _, addr := range []string{addr2, addr3} {
		c, err := dial(t, n, 1, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// A closed connection leaves the set, so that the set does not grow with
// every connection a long test makes.
func TestClosedConnForgotten(t *testing.T) {
	n := New()
	addr := listen(t, n, 2)
	for range 5 {
		c, err := dial(t, n, 1, addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	n.mu.Lock()
	left := len(n.mu.conns)
	n.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d closed connections still tracked", left)
	}
}

// An address no node registered is not part of the network: a cut
// cannot reach it.
func TestUnregisteredAddressPasses(t *testing.T) {
	n := New()
	other := New()
	addr := listen(t, other, 2) // registered elsewhere only
	n.Cut(1, 2)
	c, err := dial(t, n, 1, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Fatal(err)
	}
}
