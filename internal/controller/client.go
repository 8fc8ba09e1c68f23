package controller

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataOffsetTag is the tagged field a controller adds to each answer
// on its controller listener: the metadata offset (image EndOffset) that
// holds the change the request made. The sender waits until its own image
// reaches it before it answers its client, so that a topic created through
// any node is in that node's next Metadata answer. Kafka's own tags are
// small numbers; this one is far from them.
const MetadataOffsetTag = 0x5354_0001

// SetMetadataOffset records off in resp's tagged fields. resp must be a
// flexible version for the tag to go on the wire.
func SetMetadataOffset(resp kmsg.Response, off int64) {
	if tags := unknownTags(resp); tags != nil {
		tags.Set(MetadataOffsetTag, binary.BigEndian.AppendUint64(nil, uint64(off)))
	}
}

// MetadataOffset returns the offset SetMetadataOffset recorded, -1 if none.
func MetadataOffset(resp kmsg.Response) int64 {
	off := int64(-1)
	if tags := unknownTags(resp); tags != nil {
		tags.Each(func(k uint32, v []byte) {
			if k == MetadataOffsetTag && len(v) == 8 {
				off = int64(binary.BigEndian.Uint64(v))
			}
		})
	}
	return off
}

func unknownTags(resp kmsg.Response) *kmsg.Tags {
	v := reflect.ValueOf(resp)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("UnknownTags")
	if !f.IsValid() {
		return nil
	}
	t, _ := f.Addr().Interface().(*kmsg.Tags)
	return t
}

// Dialer opens connections to other nodes; tests put a network that can be
// cut in between.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Client sends Kafka requests to the active controller's controller
// listener: broker registration and heartbeats, producer id blocks, and the
// admin requests a broker forwards (Kafka's BrokerToControllerChannel). It
// keeps one connection per controller and sends one request at a time on
// it; the traffic is a heartbeat every few seconds and rare admin changes.
type Client struct {
	self   int32
	voters map[int32]string
	leader func() int32
	dial   Dialer
	fmt    *kmsg.RequestFormatter

	mu    sync.Mutex
	conns map[int32]*ctrlConn
	corr  int32
	// hint is the voter that last answered without NOT_CONTROLLER while
	// no leader was known: the next such send tries it first.
	hint int32
}

// NewClient returns a client of the quorum's voters (node id -> controller
// listener address); leader names the active controller, -1 if unknown.
func NewClient(self int32, voters map[int32]string, leader func() int32, dial Dialer) *Client {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return &Client{
		self: self, voters: voters, leader: leader, dial: dial,
		fmt:   kmsg.NewRequestFormatter(kmsg.FormatterClientID(fmt.Sprintf("strata-broker-%d", self))),
		conns: map[int32]*ctrlConn{},
	}
}

// ErrNoController: no controller is elected, or its address is unknown.
var ErrNoController = errors.New("controller: no active controller")

type ctrlConn struct {
	mu sync.Mutex
	c  net.Conn
	r  *bufio.Reader
}

// Send sends req to the active controller and returns its answer. A
// connection that fails is closed and the error returned: callers retry
// (the next call dials again, perhaps another controller).
//
// While this node knows no active controller (a broker-only node before
// the quorum added it as a non-voter, or any node during an election), it
// tries the voters of controller.quorum.voters in turn, as Kafka's brokers
// bootstrap from controller.quorum.voters: a voter that is not the active
// controller answers NOT_CONTROLLER and the next one is tried. The answer
// of the first that does not is returned.
func (c *Client) Send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	id := c.leader()
	if _, ok := c.voters[id]; id >= 0 && ok {
		return c.sendTo(ctx, id, req)
	}
	c.mu.Lock()
	first := c.hint
	c.mu.Unlock()
	ids := make([]int32, 0, len(c.voters))
	for v := range c.voters {
		if v != c.self {
			ids = append(ids, v)
		}
	}
	slices.Sort(ids)
	if i := slices.Index(ids, first); i > 0 {
		ids = append(ids[i:], ids[:i]...)
	}
	err := ErrNoController
	for _, v := range ids {
		// A silent voter must not take the whole deadline.
		tctx, cancel := context.WithTimeout(ctx, voterTryTimeout)
		resp, serr := c.sendTo(tctx, v, req)
		cancel()
		if serr == nil && !notController(reflect.ValueOf(resp)) {
			c.mu.Lock()
			c.hint = v
			c.mu.Unlock()
			return resp, nil
		}
		if serr != nil {
			err = serr
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w (tried the voters of controller.quorum.voters): %w", ErrNoController, err)
}

// voterTryTimeout bounds one try of a voter while no controller is known.
const voterTryTimeout = 3 * time.Second

// notController reports whether a response carries NOT_CONTROLLER in any
// of its ErrorCode fields (top level or per topic).
func notController(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && notController(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if v.Type().Field(i).Name == "ErrorCode" && f.Kind() == reflect.Int16 && f.Int() == int64(kerr.NotController.Code) {
				return true
			}
			if (f.Kind() == reflect.Slice || f.Kind() == reflect.Struct) && notController(f) {
				return true
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return false
		}
		for i := range v.Len() {
			if notController(v.Index(i)) {
				return true
			}
		}
	}
	return false
}

// sendTo sends req to voter id.
func (c *Client) sendTo(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	addr := c.voters[id]
	c.mu.Lock()
	cc := c.conns[id]
	if cc == nil {
		cc = &ctrlConn{}
		c.conns[id] = cc
	}
	c.corr++
	corr := c.corr
	c.mu.Unlock()

	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.c == nil {
		conn, err := c.dial(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("controller %d at %s: %w", id, addr, err)
		}
		cc.c, cc.r = conn, bufio.NewReader(conn)
	}
	resp, err := cc.roundTrip(ctx, c.fmt, req, corr)
	if err != nil {
		cc.c.Close()
		cc.c, cc.r = nil, nil
		return nil, fmt.Errorf("controller %d at %s: %w", id, addr, err)
	}
	return resp, nil
}

func (cc *ctrlConn) roundTrip(ctx context.Context, f *kmsg.RequestFormatter, req kmsg.Request, corr int32) (kmsg.Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	cc.c.SetDeadline(deadline)
	defer cc.c.SetDeadline(time.Time{})
	frame := f.AppendRequest(nil, req, corr)
	if _, err := cc.c.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(cc.r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(cc.r, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if req.IsFlexible() && req.Key() != 18 { // response header v1: tagged fields
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[l:]
	for range n {
		if _, l = binary.Uvarint(b); l <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[l:]
		size, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < size {
			return nil, errors.New("bad tag size")
		}
		b = b[l+int(size):]
	}
	return b, nil
}

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.mu.Lock()
		if cc.c != nil {
			cc.c.Close()
			cc.c = nil
		}
		cc.mu.Unlock()
	}
}
