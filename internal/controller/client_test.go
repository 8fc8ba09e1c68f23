package controller

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeVoter answers every BrokerHeartbeat with code and counts them.
func fakeVoter(t *testing.T, code int16, n *atomic.Int32) string {
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
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var size [4]byte
					if _, err := io.ReadFull(r, size[:]); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(size[:]))
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					n.Add(1)
					resp := kmsg.NewPtrBrokerHeartbeatResponse()
					resp.SetVersion(1)
					resp.ErrorCode = code
					out := append([]byte{0, 0, 0, 0}, body[4:8]...) // size, correlation id
					out = append(out, 0)                            // response header v1: no tags
					out = resp.AppendTo(out)
					binary.BigEndian.PutUint32(out, uint32(len(out)-4))
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// With no known leader the client tries the voters in turn, skipping
// those that answer NOT_CONTROLLER and itself, and tries the one that
// answered first next time.
func TestClientTriesVotersWithoutLeader(t *testing.T) {
	var n1, n3, nSelf atomic.Int32
	voters := map[int32]string{
		1: fakeVoter(t, kerr.NotController.Code, &n1),
		2: "127.0.0.1:1", // down: refused
		3: fakeVoter(t, 0, &n3),
		4: fakeVoter(t, 0, &nSelf), // this node: never tried
	}
	c := NewClient(4, voters, func() int32 { return -1 }, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.SetVersion(1)
	for range 2 {
		r, err := c.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if code := r.(*kmsg.BrokerHeartbeatResponse).ErrorCode; code != 0 {
			t.Fatalf("error code %d", code)
		}
	}
	if n1.Load() != 1 || n3.Load() != 2 || nSelf.Load() != 0 {
		t.Fatalf("tries: voter 1 %d, voter 3 %d, self %d; want 1, 2, 0", n1.Load(), n3.Load(), nSelf.Load())
	}

	// Every voter NOT_CONTROLLER: ErrNoController.
	var m atomic.Int32
	c2 := NewClient(4, map[int32]string{1: fakeVoter(t, kerr.NotController.Code, &m)}, func() int32 { return -1 }, nil)
	defer c2.Close()
	if _, err := c2.Send(ctx, req); !errors.Is(err, ErrNoController) {
		t.Fatalf("Send = %v, want ErrNoController", err)
	}
}
