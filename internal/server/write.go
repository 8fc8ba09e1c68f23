package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/log"
)

var errRegionTruncated = errors.New("server: file region ends past end of file")

const (
	// maxPending bounds the responses gathered into one writev.
	maxPending = 32
	// maxSendfileChunk bounds one sendfile call, as net's own sendfile
	// does, so a huge region does not hold the socket in one syscall.
	maxSendfileChunk = 4 << 20
	// copyBufSize is the pread/write chunk of the fallback path.
	copyBufSize = 128 << 10
)

// writeLoop takes slots in arrival order, waits for each handler, and
// writes the responses. Responses that are ready back to back are gathered
// into one writev; the gathered bytes are flushed before the writer would
// block, so a ready response is never held back by a later one. After
// the connection fails it keeps draining slots (waiting for their handlers)
// so that every handler goroutine is waited for and every buffer released.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	for {
		var s *slot
		var ok bool
		select {
		case s, ok = <-c.slots:
		default:
			c.flush()
			s, ok = <-c.slots
		}
		if !ok {
			break
		}
		select {
		case <-s.done:
		default:
			c.flush()
			<-s.done
		}
		c.writeResponse(s)
		c.pending = append(c.pending, s) // after: writeResponse may flush the earlier ones
		if len(c.pending) >= maxPending {
			c.flush()
		}
	}
	c.flush()
}

// waitResponse runs the response's Wait, letting the responses before it
// out first; false means the connection failed.
func (c *conn) waitResponse(s *slot) bool {
	c.flush()
	if err := s.resp.Wait(); err != nil {
		c.logRequest(s, "closing connection: response not acknowledged", err)
		c.fail()
		return false
	}
	return !c.failed()
}

// writeResponse puts s's response in the iov, sending its file regions on
// the way (after the bytes before them), or fails the connection.
func (c *conn) writeResponse(s *slot) {
	if c.failed() {
		return
	}
	if s.err != nil || s.resp == nil {
		// Earlier responses are complete: let them out before closing.
		c.flush()
		switch {
		case s.err == errPanicked: // logged with its stack by handle
		case s.err == nil:
			c.logRequest(s, "closing connection: handler error", errNoResp)
		default:
			c.logRequest(s, "closing connection: handler error", s.err)
		}
		c.fail()
		return
	}
	r := s.resp
	if r.Wait != nil {
		if !c.waitResponse(s) {
			return
		}
	}
	if r.None {
		return
	}
	size, err := responseSize(r)
	if err != nil {
		c.flush()
		c.logRequest(s, "closing connection: bad response", err)
		c.fail()
		return
	}
	hdr := s.hdr[:8]
	binary.BigEndian.PutUint32(hdr, uint32(size))
	binary.BigEndian.PutUint32(hdr[4:], uint32(s.req.CorrelationID))
	if r.HeaderFlexible {
		hdr = append(hdr, 0) // response header v1: empty tagged fields
	}
	c.iov = append(c.iov, hdr)
	for _, p := range r.Parts {
		if p.Region.File == nil {
			if len(p.Bytes) > 0 {
				c.iov = append(c.iov, p.Bytes)
			}
			continue
		}
		if p.Region.Len == 0 {
			continue
		}
		if !c.writeIOV() {
			return
		}
		if err := c.sendRegion(p.Region); err != nil {
			if !c.failed() {
				c.logRequest(s, "closing connection: sending file region failed", err,
					"file", p.Region.File.Name(), "pos", p.Region.Pos, "len", p.Region.Len)
			}
			c.fail()
			return
		}
	}
	if r.Close {
		// Out with it and the ones before, then closed: a FIN after the
		// bytes, so the client reads the answer before the close.
		c.writeIOV()
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && !c.failed() {
			cw.CloseWrite()
		}
		c.log.Debug("closing connection after the response, as it asks", "api_key", s.req.APIKey, "correlation_id", s.req.CorrelationID)
		c.fail()
	}
}

// responseSize is the frame's size prefix: correlation id, the optional
// tag byte, and the parts.
func responseSize(r *Response) (int64, error) {
	size := int64(4)
	if r.HeaderFlexible {
		size++
	}
	for _, p := range r.Parts {
		if p.Region.File != nil && (p.Region.Pos < 0 || p.Region.Len < 0) {
			return 0, fmt.Errorf("server: bad file region pos %d len %d", p.Region.Pos, p.Region.Len)
		}
		size += p.Len()
	}
	if size > math.MaxInt32 {
		return 0, fmt.Errorf("server: response of %d bytes does not fit a frame", size)
	}
	return size, nil
}

func (c *conn) logRequest(s *slot, msg string, err error, attrs ...any) {
	level := slog.LevelWarn
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		// The client went away mid-response (a consumer closing while
		// its fetch was answered): routine, as Kafka logs it at debug.
		level = slog.LevelDebug
	}
	c.log.Log(context.Background(), level, msg, append([]any{"api_key", s.req.APIKey, "api_version", s.req.APIVersion,
		"correlation_id", s.req.CorrelationID, "err", err}, attrs...)...)
}

// flush writes the gathered bytes and releases the slots written so far.
func (c *conn) flush() {
	c.writeIOV()
	for _, s := range c.pending {
		c.release(s)
	}
	clear(c.pending)
	c.pending = c.pending[:0]
}

// writeIOV writes the gathered byte parts with one writev (net.Buffers on
// a TCP or Unix socket) and reports whether the connection is still good.
func (c *conn) writeIOV() bool {
	if len(c.iov) > 0 && !c.failed() {
		c.armWrite()
		var err error
		if c.raw == nil && len(c.iov) > 1 {
			// No writev under TLS: each Write would become its own
			// TLS record and syscall, so the small parts (size,
			// header, partition headers) go out gathered in one.
			err = c.writeGathered()
		} else {
			// WriteTo consumes c.bufs; c.iov keeps the backing array.
			c.bufs = c.iov
			_, err = c.bufs.WriteTo(c.nc)
		}
		if err != nil {
			c.log.Debug("write failed", "err", err)
			c.fail()
		}
	}
	clear(c.iov)
	c.iov = c.iov[:0]
	return !c.failed()
}

// writeGathered writes c.iov through a pooled buffer of copyBufSize, in
// as few Writes as that takes.
func (c *conn) writeGathered() error {
	bp := getBuf(copyBufSize)
	defer putBuf(bp)
	buf := (*bp)[:0]
	for _, b := range c.iov {
		for len(b) > 0 {
			if len(buf) == cap(buf) {
				if _, err := c.nc.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			n := copy(buf[len(buf):cap(buf)], b)
			buf, b = buf[:len(buf)+n], b[n:]
		}
	}
	if len(buf) > 0 {
		if _, err := c.nc.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) armWrite() {
	if d := c.s.cfg.IdleTimeout; d > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(d))
	}
}

func (c *conn) sendRegion(r log.Region) error {
	c.armWrite()
	if c.raw != nil {
		err := sendfile(c.raw, r)
		if !errors.Is(err, errSendfileUnsupported) {
			return err
		}
		// A file system without splice support: nothing was sent yet.
		c.log.Debug("sendfile unsupported; copying", "file", r.File.Name(), "err", err)
	}
	return copyRegion(c.nc, r)
}

var errSendfileUnsupported = errors.New("server: sendfile not supported for this file")

// sendfile sends r to the socket with sendfile(2) at r's explicit offset,
// never the file's shared position, so concurrent fetches of one segment
// do not interfere (Go's TCPConn.ReadFrom would use the position). The
// file's descriptor is used inside its own RawConn.Control, which holds a
// reference: a concurrent Close of the file is deferred until we return,
// so the number cannot be closed and reused under us. Inside the socket's
// RawConn.Write, returning false on EAGAIN parks the goroutine until the
// socket is writable again (or its write deadline passes).
func sendfile(dst syscall.RawConn, r log.Region) error {
	src, err := r.File.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := src.Control(func(sfd uintptr) {
		off, remain := r.Pos, r.Len
		werr := dst.Write(func(dfd uintptr) bool {
			for remain > 0 {
				n, err := unix.Sendfile(int(dfd), int(sfd), &off, int(min(remain, maxSendfileChunk)))
				if n > 0 {
					remain -= int64(n)
				}
				switch {
				case err == unix.EINTR:
				case err == unix.EAGAIN:
					return false
				case (err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP) && remain == r.Len:
					serr = fmt.Errorf("%w: %v", errSendfileUnsupported, err)
					return true
				case err != nil:
					serr = os.NewSyscallError("sendfile", err)
					return true
				case n == 0:
					// The file is shorter than the region (truncated
					// under us); the frame cannot be completed.
					serr = errRegionTruncated
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// copyRegion is the fallback for connections without a socket descriptor
// (TLS, pipes): pread into a pooled buffer and write, never touching the
// file's shared position.
func copyRegion(w io.Writer, r log.Region) error {
	bp := getBuf(copyBufSize)
	defer putBuf(bp)
	buf := *bp
	off, remain := r.Pos, r.Len
	for remain > 0 {
		n, err := r.File.ReadAt(buf[:min(int64(len(buf)), remain)], off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			remain -= int64(n)
		}
		if err == io.EOF && remain > 0 {
			return errRegionTruncated
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}
