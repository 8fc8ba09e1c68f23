package server

import (
	"context"
	"io"
	"sync"
	"testing"
)

// smallEcho answers with a response that lives in the handler's own pooled
// object, as kafka handlers will: no allocation per request of its own.
type smallEcho struct{ pool sync.Pool }

type echoResp struct {
	resp  Response
	parts [1]Part
}

func (h *smallEcho) Handle(_ context.Context, req *Request) (*Response, error) {
	r, _ := h.pool.Get().(*echoResp)
	if r == nil {
		r = &echoResp{}
		r.resp.Release = func() { h.pool.Put(r) }
	}
	r.parts[0] = Part{Bytes: req.Body}
	r.resp.Parts = r.parts[:]
	return &r.resp, nil
}

// BenchmarkRoundTrip sends one request at a time on one TCP connection and
// reports the allocations per request of the whole process (the client
// here allocates nothing in its loop).
func BenchmarkRoundTrip(b *testing.B) {
	ts := startServer(b, &smallEcho{}, Config{})
	c := dial(b, ts.addr)
	frame := echoFrame(1, make([]byte, 100))
	resp := make([]byte, 4+4+100)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelined keeps many requests in flight on one connection, so
// responses are gathered into shared writevs.
func BenchmarkPipelined(b *testing.B) {
	ts := startServer(b, &smallEcho{}, Config{})
	c := dial(b, ts.addr)
	const batch = 16
	frame := echoFrame(1, make([]byte, 100))
	var frames []byte
	for range batch {
		frames = append(frames, frame...)
	}
	resp := make([]byte, batch*(4+4+100))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	n := 0
	for b.Loop() {
		if n%batch == 0 {
			if n > 0 {
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := c.Write(frames); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		b.Fatal(err)
	}
}

// TestAllocsPerRequest keeps the steady state cheap: the reader, the
// handler goroutine and the writer together allocate a few small objects
// per request at most.
func TestAllocsPerRequest(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts need the pools intact")
	}
	ts := startServer(t, &smallEcho{}, Config{})
	c := dial(t, ts.addr)
	frame := echoFrame(1, make([]byte, 100))
	resp := make([]byte, 4+4+100)
	rt := func() {
		c.Write(frame)
		io.ReadFull(c, resp)
	}
	for range 100 {
		rt() // warm the pools
	}
	if a := testing.AllocsPerRun(1000, rt); a > 3 {
		t.Errorf("%.1f allocations per request", a)
	} else {
		t.Logf("%.2f allocations per request", a)
	}
}
