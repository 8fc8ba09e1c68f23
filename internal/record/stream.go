package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// This file streams a compressed records section for the walk in walk.go,
// which reads it a varint at a time and skips keys and values, so checking
// a batch never needs its decompressed records in memory. (An uncompressed
// section is walked in place by walkMem.) The section is decompressed
// through a pooled stream decoder into a small buffer that is refilled as
// the walk advances, as
// Kafka's DefaultRecordBatch.skipKeyValueIterator reads through a
// DataInputStream with a reused skip buffer. Two exceptions materialise,
// bounded by the same limit: a raw snappy block (its copies may reach back
// to any earlier byte, so there is no window to stream with) and a zstd
// frame whose window is larger than streamZstdWindow.

// streamBufSize is the read buffer of a compressed stream: one refill per
// 32 KiB of records, and cheap to keep in a pool.
const streamBufSize = 32 << 10

// streamZstdWindow bounds the window of the streaming zstd decoder, which
// allocates window plus two blocks up front. 8 MiB is what zstd uses at
// every level up to 19 when the content size is unknown (zstd-jni streams
// without it); clients that know the size (franz-go, librdkafka) declare
// smaller windows. Larger windows (levels 20-22) fall back to the
// materialising decoder, bounded by the decompression limit.
const streamZstdWindow = 8 << 20

// errStreamEOF is a clean end of the records section: the walkers turn it
// into "premature end" or accept it, depending on where it falls.
var errStreamEOF = errors.New("end of records")

// recordStream reads a records section. Not safe for concurrent use; one
// walk owns it from newRecordStream to close.
type recordStream struct {
	// buf holds the bytes not yet consumed: the whole decompressed
	// section when src is nil (see openWhole), else the unread part of
	// own.
	buf []byte
	src io.Reader
	own []byte
	// total counts the bytes src has yielded, which limit bounds.
	total int64
	limit int64
	err   error // sticky: errStreamEOF, ErrDecompressLimit or a decoder error
	ferr  error // the first failed field read (see fail)

	// The pooled decoder or buffer behind src, returned by close. Fields
	// rather than a closure, so that opening a stream allocates nothing.
	gz    *gzipStream
	lz    *lz4Stream
	zs    *zstdStream
	xs    *xerialStream
	whole *[]byte
}

// streamPool recycles recordStreams and their read buffers.
var streamPool = sync.Pool{New: func() any { return &recordStream{own: make([]byte, streamBufSize)} }}

// newRecordStream opens the compressed records section of b (which must
// have passed CheckHeader and hold Size() bytes). limit bounds how many
// decompressed bytes the stream may yield; beyond it reads fail with
// ErrDecompressLimit. The caller must close the stream.
func newRecordStream(b Batch, limit int) (*recordStream, error) {
	raw := []byte(b[HeaderSize:])
	s := streamPool.Get().(*recordStream)
	s.limit, s.total, s.err, s.ferr = int64(limit), 0, nil, nil
	s.buf = s.own[:0]
	c := b.Codec()
	var err error
	switch {
	case c == CodecNone:
		panic("record: newRecordStream on an uncompressed batch") // walk uses walkMem: a bug
	case c < CodecNone || c > CodecZstd:
		err = fmt.Errorf("%w: %w", ErrCorrupt, unknownCodec(c))
	case len(raw) == 0:
		err = fmt.Errorf("%w: %s: empty compressed records", ErrCorrupt, c)
	case c == CodecGzip:
		r := gzipStreams.Get().(*gzipStream)
		r.src.Reset(raw)
		if err = r.r.Reset(&r.src); err != nil {
			gzipStreams.Put(r)
			err = fmt.Errorf("%w: decompress gzip: %w", ErrCorrupt, err)
			break
		}
		s.src, s.gz = &r.r, r
	case c == CodecLZ4:
		r := lz4Streams.Get().(*lz4Stream)
		r.src.Reset(raw)
		r.r.Reset(&r.src)
		s.src, s.lz = r.r, r
	case c == CodecZstd:
		err = s.openZstd(raw, limit)
	case c == CodecSnappy:
		err = s.openSnappy(raw, limit)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close returns the stream and its decoder to their pools.
func (s *recordStream) close() {
	if r := s.gz; r != nil {
		r.src.Reset(nil)
		gzipStreams.Put(r)
	}
	if r := s.lz; r != nil {
		r.src.Reset(nil)
		lz4Streams.Put(r)
	}
	if z := s.zs; z != nil {
		z.src.Reset(nil)
		z.dec.Reset(nil) //nolint:errcheck // a nil reader only detaches
		zstdStreams.Put(z)
	}
	if x := s.xs; x != nil {
		x.rest = nil
		if cap(x.out) > wholeKeep {
			x.out = nil
		}
		xerialStreams.Put(x)
	}
	if bp := s.whole; bp != nil {
		if cap(*bp) > wholeKeep {
			*bp = nil
		}
		wholeBufs.Put(bp)
	}
	s.gz, s.lz, s.zs, s.xs, s.whole = nil, nil, nil, nil, nil
	s.src, s.buf = nil, nil
	streamPool.Put(s)
}

// offset is how many bytes of the section have been consumed.
func (s *recordStream) offset() int64 { return s.total - int64(len(s.buf)) }

// fill reads more from src, keeping the unread bytes. It returns false
// when nothing more can be read; s.err says why.
func (s *recordStream) fill() bool {
	if s.err != nil {
		return false
	}
	if s.src == nil {
		s.err = errStreamEOF
		return false
	}
	n := copy(s.own, s.buf)
	for zeros := 0; ; {
		m, err := s.src.Read(s.own[n:])
		s.total += int64(m)
		if s.total > s.limit {
			s.err = ErrDecompressLimit
			return false
		}
		if m > 0 {
			s.buf = s.own[:n+m]
			return true
		}
		switch {
		case err == io.EOF:
			s.err = errStreamEOF
			return false
		case err != nil:
			s.err = fmt.Errorf("%w: decompress: %w", ErrCorrupt, err)
			return false
		}
		if zeros++; zeros > 100 {
			s.err = fmt.Errorf("%w: decompress: %w", ErrCorrupt, io.ErrNoProgress)
			return false
		}
	}
}

// The field readers below keep the first failure in s.ferr (the end of
// the section, a bad varint, a decoder error) and return zero values after
// it, so the walker checks once per group of fields; their fast paths are
// small enough to inline, which is most of the uncompressed walk's speed.

// fail records the first field error and empties buf, so that no fast path
// reads on after it.
func (s *recordStream) fail(err error) {
	if s.ferr == nil {
		s.ferr = err
	}
	s.buf = nil
}

// varlong reads a zigzag varint of up to 10 bytes (Kafka's readVarlong).
func (s *recordStream) varlong() int64 {
	if b := s.buf; len(b) > 0 && b[0] < 0x80 { // one byte: most deltas and lengths
		s.buf = b[1:]
		return int64(b[0]>>1) ^ -int64(b[0]&1)
	}
	return s.varlongSlow()
}

func (s *recordStream) varlongSlow() int64 {
	if b := s.buf; len(b) >= 2 && b[1] < 0x80 { // two bytes: record and value lengths
		s.buf = b[2:]
		u := uint64(b[0]&0x7f) | uint64(b[1])<<7
		return int64(u>>1) ^ -int64(u&1)
	}
	if s.ferr != nil {
		return 0
	}
	for len(s.buf) < binary.MaxVarintLen64 && s.fill() {
	}
	v, n := binary.Varint(s.buf)
	switch {
	case n > 0:
		s.buf = s.buf[n:]
		return v
	case n == 0 && len(s.buf) == 0:
		s.fail(s.err) // the end of the section, or the decoder failed
	case n == 0 && s.err != errStreamEOF:
		s.fail(s.err) // the decoder failed mid-varint
	default:
		s.fail(errVarint)
	}
	return 0
}

// varint reads a zigzag varint that must fit an int32 (Kafka's readVarint).
func (s *recordStream) varint() int32 {
	if b := s.buf; len(b) > 0 && b[0] < 0x80 {
		s.buf = b[1:]
		return int32(b[0]>>1) ^ -int32(b[0]&1)
	}
	return s.varintSlow()
}

func (s *recordStream) varintSlow() int32 {
	v := s.varlongSlow()
	if v != int64(int32(v)) {
		s.fail(errVarint)
		return 0
	}
	return int32(v)
}

// skip discards n >= 0 bytes.
func (s *recordStream) skip(n int64) {
	if n <= int64(len(s.buf)) {
		s.buf = s.buf[n:]
		return
	}
	s.skipSlow(n)
}

func (s *recordStream) skipSlow(n int64) {
	for n > int64(len(s.buf)) {
		n -= int64(len(s.buf))
		s.buf = s.buf[:0]
		if s.ferr != nil || !s.fill() {
			s.fail(s.err)
			return
		}
	}
	s.buf = s.buf[n:]
}

// atEOF reports whether the section is fully consumed, reading to the end
// of a compressed stream so that its decoder checks its trailer (gzip CRC
// and size, lz4 and zstd checksums), as Kafka's ensureNoneRemaining reads
// one more byte.
func (s *recordStream) atEOF() (bool, error) {
	if len(s.buf) > 0 {
		return false, nil
	}
	if s.fill() {
		return false, nil
	}
	if s.err == errStreamEOF {
		return true, nil
	}
	return false, s.err
}

// Decoders for streams, pooled so that a walk allocates nothing in the
// steady state.

type gzipStream struct {
	r   gzip.Reader
	src bytes.Reader
}

type lz4Stream struct {
	r   *lz4.Reader
	src bytes.Reader
}

type zstdStream struct {
	dec *zstd.Decoder
	src bytes.Reader
}

var (
	gzipStreams = sync.Pool{New: func() any { return new(gzipStream) }}
	lz4Streams  = sync.Pool{New: func() any {
		r := new(lz4Stream)
		r.r = lz4.NewReader(&r.src)
		return r
	}}
	zstdStreams = sync.Pool{New: func() any {
		z := new(zstdStream)
		dec, err := zstd.NewReader(nil,
			// One goroutine-free decoder per stream: concurrency 1
			// makes klauspost's stream decoding synchronous.
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(streamZstdWindow),
			zstd.WithDecodeBuffersBelow(0),
		)
		if err != nil {
			panic(err) // constant options: a bug, not input
		}
		z.dec = dec
		return z
	}}
)

// openZstd streams a zstd section, or decodes it whole when its first frame
// needs a window larger than the streaming decoder keeps.
func (s *recordStream) openZstd(raw []byte, limit int) error {
	if err := checkZstdSize(raw); err != nil {
		return fmt.Errorf("%w: decompress zstd: %w", ErrCorrupt, err)
	}
	var h zstd.Header
	if err := h.Decode(raw); err == nil && h.WindowSize > streamZstdWindow {
		// Clients write one frame per batch, so the first frame's
		// window is the one that matters; a later, larger one fails
		// as corruption.
		return s.openWhole(CodecZstd, raw)
	}
	z := zstdStreams.Get().(*zstdStream)
	z.src.Reset(raw)
	if err := z.dec.Reset(&z.src); err != nil {
		zstdStreams.Put(z)
		return fmt.Errorf("%w: decompress zstd: %w", ErrCorrupt, err)
	}
	s.src, s.zs = z.dec, z
	return nil
}

// wholeBufs recycles the buffers of materialised sections (raw snappy,
// large-window zstd). Buffers over wholeKeep are dropped rather than pinned
// in the pool.
var wholeBufs = sync.Pool{New: func() any { return new([]byte) }}

const wholeKeep = 4 << 20

// openWhole decompresses raw whole, bounded by the stream's limit (and
// MaxDecompressedSize), and serves the result.
func (s *recordStream) openWhole(c Codec, raw []byte) error {
	bp := wholeBufs.Get().(*[]byte)
	out, err := decompress(c, (*bp)[:0], raw, int(min(s.limit, int64(MaxDecompressedSize))))
	if err != nil {
		wholeBufs.Put(bp)
		return err
	}
	*bp = out[:0]
	s.buf, s.src, s.total, s.whole = out, nil, int64(len(out)), bp
	return nil
}

// openSnappy serves a snappy section: xerial chunks are decoded one at a
// time into a reused buffer; a raw block is decoded whole.
func (s *recordStream) openSnappy(raw []byte, limit int) error {
	if len(raw) >= xerialHeaderSize && bytes.HasPrefix(raw, xerialMagic) {
		x := xerialStreams.Get().(*xerialStream)
		x.rest, x.out, x.pos, x.left = raw[xerialHeaderSize:], x.out[:0], 0, limit
		s.src, s.xs = x, x
		return nil
	}
	if _, err := snappyLen(raw, limit); err != nil {
		return snappyErr(err)
	}
	return s.openWhole(CodecSnappy, raw)
}

func snappyErr(err error) error {
	if errors.Is(err, ErrDecompressLimit) {
		return err
	}
	return fmt.Errorf("%w: decompress snappy: %w", ErrCorrupt, err)
}

// xerialStream is an io.Reader over xerial-framed snappy that decodes one
// chunk at a time (snappy-java writes 32 KiB chunks).
type xerialStream struct {
	rest []byte // chunks not yet decoded
	out  []byte // the current chunk, decoded; out[pos:] unread
	pos  int
	left int // bytes the remaining chunks may still decode to
}

var xerialStreams = sync.Pool{New: func() any { return new(xerialStream) }}

func (x *xerialStream) Read(p []byte) (int, error) {
	for x.pos == len(x.out) {
		if len(x.rest) == 0 {
			return 0, io.EOF
		}
		chunk, next, err := xerialChunk(x.rest)
		if err != nil {
			return 0, err
		}
		n, err := snappyLen(chunk, x.left)
		if err != nil {
			return 0, err
		}
		if cap(x.out) < n {
			x.out = make([]byte, n)
		}
		if _, err := snappy.DecodeStrict(x.out[:n:n], chunk); err != nil {
			return 0, err
		}
		x.out, x.pos, x.left, x.rest = x.out[:n], 0, x.left-n, next
	}
	n := copy(p, x.out[x.pos:])
	x.pos += n
	return n, nil
}
