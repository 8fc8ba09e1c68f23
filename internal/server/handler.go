package server

import (
	"context"
	"net"

	"github.com/strata-io/strata/internal/log"
)

// Request is one request read from a connection, its header parsed.
type Request struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      *string // nullable, as on the wire
	// Body is the request after its header (and after the header's tagged
	// fields for flexible versions). It aliases the frame buffer, which
	// the server reuses once the response is written: handlers must not
	// keep references to it past their Response's Release. (A frame over
	// 1 MiB is a mapping that is unmapped then: a reference kept past
	// Release faults instead of reading another request's bytes.)
	Body []byte
	// Remote is the peer's address.
	Remote net.Addr
	// ConnID identifies the connection for logs.
	ConnID uint64
	// Session is the connection's security state (listener, principal).
	Session *Session
}

// Part is one piece of a response body: bytes from memory, or a region of
// a segment file sent with sendfile(2). Exactly one of the two is set.
type Part struct {
	Bytes  []byte
	Region log.Region
}

// Len is the number of bytes the part puts on the wire.
func (p Part) Len() int64 {
	if p.Region.File != nil {
		return p.Region.Len
	}
	return int64(len(p.Bytes))
}

// Response is a handler's answer. The server writes the size prefix and the
// response header (correlation id, plus an empty tagged-field section when
// HeaderFlexible), then the parts in order: byte parts gathered with writev,
// regions with sendfile at their explicit offsets.
type Response struct {
	// HeaderFlexible selects response header v1. Always false for
	// ApiVersions, whose response header is v0 at every version.
	HeaderFlexible bool
	Parts          []Part
	// None means no response goes back (Produce with acks=0); the server
	// still waits for the handler, so later responses keep their order.
	None bool
	// Release, if set, is called once the response was written (or the
	// connection failed), to return pooled buffers.
	Release func()
	// Close closes the connection once this response is written, and no
	// later response is: Kafka's answer to a failed SASL authentication,
	// which it sends and then closes the channel.
	Close bool
	// Wait, if set, is called on the connection's writer before the
	// response is written: a produce waiting for its fsync (flush.messages)
	// holds back only its own response, in order, while the handler takes
	// the connection's next request. An error closes the connection with a
	// log line, and nothing is written for the request.
	Wait func() error
}

// Handler answers requests. Handle is called concurrently for requests of
// different connections; the requests of one connection are handled one at a
// time, in the order they arrived, and answered in that order.
// A returned error means the request was malformed: the server logs one
// line (address, api key, version) and closes the connection.
type Handler interface {
	Handle(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}
