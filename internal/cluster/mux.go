package cluster

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The controller listener carries two protocols, as Kafka's controller
// listener carries both KRaft's RPCs and the controller APIs: raft's
// NetworkTransport between the voters, and Kafka requests (broker
// registration and heartbeats, and the admin requests brokers forward to
// the active controller). A raft connection announces itself with one
// byte, RaftConnByte, written by streamLayer.Dial; a Kafka connection
// starts with its first frame's 4-byte size, whose first byte is 0 for
// every frame up to 16 MiB, and never RaftConnByte (0x52 would announce a
// frame over 1.3 GiB).
const RaftConnByte = 'R'

// muxPeekTimeout bounds how long an accepted connection may stay silent
// before the mux gives up on it, so that an idle scanner cannot hold a
// goroutine forever.
const muxPeekTimeout = 10 * time.Second

// SplitListener splits a controller listener into the connections raft
// dialed (its announcement byte consumed) and all others (Kafka clients
// of the controller APIs, with their bytes untouched). Each returned
// listener closes on its own: a node stops serving the controller APIs
// before it shuts raft down, and raft's transport must not see its
// listener fail meanwhile (hashicorp/raft logs that as an error). ln is
// closed once both are.
func SplitListener(ln net.Listener) (raftLn, kafkaLn net.Listener) {
	m := &mux{ln: ln, closed: make(chan struct{})}
	m.raft = &subListener{m: m, ch: make(chan net.Conn), closed: make(chan struct{})}
	m.kafka = &subListener{m: m, ch: make(chan net.Conn), closed: make(chan struct{})}
	go m.accept()
	return m.raft, m.kafka
}

type mux struct {
	ln          net.Listener
	raft, kafka *subListener
	closeOnce   sync.Once
	closed      chan struct{}
	err         error
	closedSubs  atomic.Int32 // sub-listeners closed so far
}

func (m *mux) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.err = err
			m.close()
			return
		}
		go m.route(c)
	}
}

// route reads the first byte and hands the connection to its protocol.
func (m *mux) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(muxPeekTimeout))
	br := bufio.NewReaderSize(c, 16)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	to := m.kafka
	if first[0] == RaftConnByte {
		br.Discard(1)
		to = m.raft
	}
	select {
	case to.ch <- &peekedConn{Conn: c, r: br}:
	case <-to.closed:
		c.Close()
	case <-m.closed:
		c.Close()
	}
}

func (m *mux) close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

type subListener struct {
	m         *mux
	ch        chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

// Close stops this half; the second half closed closes the listener.
func (l *subListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		if l.m.closedSubs.Add(1) == 2 {
			err = l.m.close()
		}
	})
	return err
}

func (l *subListener) Addr() net.Addr { return l.m.ln.Addr() }

// peekedConn reads first what the mux buffered while peeking.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
