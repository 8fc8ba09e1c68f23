package cluster

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestSplitListenerHalvesCloseApart: closing the Kafka half (the
// controller-API server stops first) leaves raft's half accepting, and
// the listener itself closes with the second half.
func TestSplitListenerHalvesCloseApart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raftLn, kafkaLn := SplitListener(ln)
	if err := kafkaLn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kafkaLn.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed Kafka half: Accept = %v, want net.ErrClosed", err)
	}

	// A Kafka connection now is dropped; a raft one still gets through.
	k, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	k.Write([]byte{0, 0, 0, 1})
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := k.Read(make([]byte, 1)); err == nil {
		t.Fatal("a Kafka connection to a closed Kafka half was answered")
	}
	r, err := (&streamLayer{}).Dial(raft.ServerAddress(ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan error, 1)
	go func() {
		c, err := raftLn.Accept()
		if err == nil {
			c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("raft half after the Kafka half closed: Accept = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raft half did not accept a raft connection")
	}

	if err := raftLn.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is still open after both halves closed")
	}
	if err := kafkaLn.Close(); err != nil { // again: a no-op
		t.Fatal(err)
	}
}
