package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize bounds what the records of one batch may decompress
// to. A few bytes of gzip or zstd can claim gigabytes; without a bound a
// single produce request could exhaust the broker's memory. Kafka's own
// batches are far smaller (message.max.bytes defaults to 1 MiB compressed),
// so 256 MiB leaves room for very compressible data.
//
// Change it only at start-up: it is read without synchronization.
var MaxDecompressedSize = 256 << 20

var (
	// ErrUnknownCodec is returned for codec values 5-7, which no Kafka
	// version defines.
	ErrUnknownCodec = errors.New("record: unknown compression codec")
	// ErrDecompressLimit is returned when decompressed records would exceed
	// MaxDecompressedSize. It is corruption as far as the broker cares: no
	// honest producer sends such a batch.
	ErrDecompressLimit = fmt.Errorf("%w: decompressed size exceeds limit", ErrCorrupt)
)

// Compress appends the compressed form of src to dst. Snappy output is a raw
// snappy block, not xerial-framed, as franz-go writes it: the Java client
// (snappy-java) and librdkafka read both. Compress and Decompress are safe
// for concurrent use; their encoders and decoders are pooled or shared.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		w := gzipWriters.Get().(*streamWriter)
		defer gzipWriters.Put(w)
		return w.compress(dst, src)
	case CodecSnappy:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			// EncodeSnappy would panic: snappy blocks hold at most 4 GiB.
			return dst, fmt.Errorf("record: compress snappy: %d bytes is too large", len(src))
		}
		dst = slices.Grow(dst, n)
		enc := s2.EncodeSnappy(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(enc)], nil
	case CodecLZ4:
		w := lz4Writers.Get().(*streamWriter)
		defer lz4Writers.Put(w)
		return w.compress(dst, src)
	case CodecZstd:
		return zstdEncoder().EncodeAll(src, dst), nil
	}
	return dst, unknownCodec(c)
}

// Decompress appends the decompressed form of src to dst. Snappy input may be
// a raw block or xerial-framed (Java client, librdkafka). Input that does not
// decode, or that decodes to more than MaxDecompressedSize, gives an error
// wrapping ErrCorrupt; on error dst is returned as it was passed.
func Decompress(c Codec, dst, src []byte) ([]byte, error) {
	return decompress(c, dst, src, MaxDecompressedSize)
}

// decompress is Decompress bounded at limit (<= MaxDecompressedSize).
func decompress(c Codec, dst, src []byte, limit int) ([]byte, error) {
	if c == CodecNone {
		return append(dst, src...), nil
	}
	if c > CodecZstd || c < CodecNone {
		return dst, unknownCodec(c)
	}
	if len(src) == 0 {
		// Every codec's stream has a header; some decoders take empty
		// input for an empty stream, but no encoder writes one.
		return dst, fmt.Errorf("%w: %s: empty compressed records", ErrCorrupt, c)
	}
	var (
		out []byte
		err error
	)
	switch c {
	case CodecGzip:
		r := gzipReaders.Get().(*gzipReader)
		out, err = r.decompress(dst, src, limit)
		gzipReaders.Put(r)
	case CodecSnappy:
		out, err = decompressSnappy(dst, src, limit)
	case CodecLZ4:
		r := lz4Readers.Get().(*lz4Reader)
		out, err = r.decompress(dst, src, limit)
		lz4Readers.Put(r)
	case CodecZstd:
		if err = checkZstdSize(src); err != nil {
			break
		}
		if limit == MaxDecompressedSize {
			out, err = zstdDecoder(limit).DecodeAll(src, dst)
		} else {
			out, err = decodeZstdOnce(dst, src, limit)
		}
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			err = ErrDecompressLimit
		}
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ErrDecompressLimit):
		return dst, fmt.Errorf("%w (%s, limit %d bytes)", err, c, limit)
	default:
		return dst, fmt.Errorf("%w: decompress %s: %w", ErrCorrupt, c, err)
	}
}

func unknownCodec(c Codec) error { return fmt.Errorf("%w %d", ErrUnknownCodec, int8(c)) }

// appendBuf is an io.Writer that appends to b, so stream encoders write
// straight into the caller's dst.
type appendBuf struct{ b []byte }

func (a *appendBuf) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// readAppend appends everything r yields to dst, reading into dst's spare
// capacity so that a good size hint means one allocation. It fails with
// ErrDecompressLimit as soon as more than limit bytes arrive, so a bomb costs
// at most limit bytes of memory.
func readAppend(dst []byte, r io.Reader, hint, limit int) ([]byte, error) {
	start := len(dst)
	// The +1 leaves room for the read that sees EOF without growing.
	dst = slices.Grow(dst, max(min(hint, limit), 0)+1)
	for zeros := 0; ; {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, 1) // append's amortized doubling
		}
		room := dst[len(dst):cap(dst)]
		if left := start + limit + 1 - len(dst); len(room) > left {
			room = room[:left]
		}
		n, err := r.Read(room)
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return nil, ErrDecompressLimit
		}
		switch {
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return nil, err
		case n == 0:
			if zeros++; zeros > 100 {
				return nil, io.ErrNoProgress
			}
		default:
			zeros = 0
		}
	}
}

// gzip: Kafka's gzip is plain RFC 1952 (java.util.zip.GZIPOutputStream).

var (
	gzipWriters = sync.Pool{New: func() any {
		w := &streamWriter{codec: CodecGzip}
		w.w = gzip.NewWriter(&w.buf)
		return w
	}}
	gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}
)

// streamWriter compresses with a pooled stream encoder (gzip, lz4) into
// the caller's buffer.
type streamWriter struct {
	w interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	buf   appendBuf
	codec Codec
}

func (w *streamWriter) compress(dst, src []byte) ([]byte, error) {
	w.buf.b = dst
	w.w.Reset(&w.buf)
	_, err := w.w.Write(src)
	if cerr := w.w.Close(); err == nil {
		err = cerr
	}
	out := w.buf.b
	w.buf.b = nil // do not pin the caller's buffer in the pool
	if err != nil {
		return dst, fmt.Errorf("record: compress %s: %w", w.codec, err)
	}
	return out, nil
}

type gzipReader struct {
	r   gzip.Reader
	src bytes.Reader
}

func (r *gzipReader) decompress(dst, src []byte, limit int) ([]byte, error) {
	defer r.src.Reset(nil)
	r.src.Reset(src)
	if err := r.r.Reset(&r.src); err != nil {
		return nil, err
	}
	// The trailer's ISIZE is the input size mod 2^32: exact for a
	// single-member stream. It is untrusted, so it only sizes the first
	// allocation, never beyond what deflate can expand to (1032:1).
	hint := 0
	if len(src) >= 18 {
		isize := int64(binary.LittleEndian.Uint32(src[len(src)-4:]))
		hint = int(min(isize, 1032*int64(len(src)), int64(limit)))
	}
	return readAppend(dst, &r.r, hint, limit)
}

// lz4: Kafka uses the LZ4 frame format (KafkaLZ4BlockOutputStream) with
// independent blocks, which the Java reader requires; lz4/v4 always writes
// them. Blocks of 64 KiB, as Kafka writes, keep readers' buffers small.

var (
	lz4Writers = sync.Pool{New: func() any {
		w := &streamWriter{codec: CodecLZ4}
		lw := lz4.NewWriter(&w.buf)
		if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err) // constant options: a bug, not input
		}
		w.w = lw
		return w
	}}
	lz4Readers = sync.Pool{New: func() any {
		r := new(lz4Reader)
		r.r = lz4.NewReader(&r.src)
		return r
	}}
)

type lz4Reader struct {
	r   *lz4.Reader
	src bytes.Reader
}

func (r *lz4Reader) decompress(dst, src []byte, limit int) ([]byte, error) {
	defer r.src.Reset(nil)
	r.src.Reset(src)
	r.r.Reset(&r.src)
	return readAppend(dst, r.r, lz4Hint(src), limit)
}

// lz4Hint guesses the decompressed size of an lz4 frame for the first
// allocation. Writers that know it (librdkafka) put the content size in the
// frame descriptor; it is untrusted, so it is capped at lz4's best ratio
// (255:1). Without it, 4x is typical of Kafka data and readAppend grows
// from there.
func lz4Hint(src []byte) int {
	const magic, contentSizeFlag = 0x184D2204, 0x08
	hint := 4 * int64(len(src))
	if len(src) >= 14 && binary.LittleEndian.Uint32(src) == magic && src[4]&contentSizeFlag != 0 {
		size := binary.LittleEndian.Uint64(src[6:])
		hint = int64(min(size, 255*uint64(len(src))))
	}
	return int(min(hint, math.MaxInt32))
}

// zstd: one shared encoder and decoder. EncodeAll and DecodeAll are safe for
// concurrent use and keep per-goroutine state internally, so there is
// nothing to pool.

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(0), // GOMAXPROCS concurrent EncodeAll calls
		// A 1 MiB window covers a whole batch at Kafka's default
		// sizes and bounds each encoder's history buffer.
		zstd.WithWindowSize(1<<20),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		panic(err) // constant options: a bug, not input
	}
	return enc
})

// zstdLimited is a decoder built for one value of MaxDecompressedSize.
type zstdLimited struct {
	limit int
	dec   *zstd.Decoder
}

var zstdDec atomic.Pointer[zstdLimited]

// zstdDecoder returns the shared decoder bounded at limit. The bound is an
// option of the decoder, so a new limit means a new decoder; a decoder made
// with a nil reader runs no goroutines, so the old one is simply dropped.
func zstdDecoder(limit int) *zstd.Decoder {
	if z := zstdDec.Load(); z != nil && z.limit == limit {
		return z.dec
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(uint64(max(limit, 1))),
	)
	if err != nil {
		panic(err) // options only fail on a zero limit, excluded above
	}
	zstdDec.Store(&zstdLimited{limit: limit, dec: dec})
	return dec
}

// decodeZstdOnce decodes with a decoder made for one call, for a limit
// other than MaxDecompressedSize (a timestamp lookup's budget): replacing
// the shared decoder for it would make the produce path's churn.
func decodeZstdOnce(dst, src []byte, limit int) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(limit, 1))))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(src, dst)
}

// zstdMaxRatio bounds how far zstd can expand: a 4-byte RLE block yields at
// most 128 KiB. A frame declaring more content than that is a lie.
const zstdMaxRatio = 128 << 10 / 4

// checkZstdSize refuses a first frame whose declared content size its input
// cannot hold. DecodeAll allocates the declared size up front, so without
// this a 20-byte frame could make the broker allocate MaxDecompressedSize.
// Clients write one frame per batch; later frames are bounded only by the
// decoder's limit.
func checkZstdSize(src []byte) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return err
	}
	if h.HasFCS && h.FrameContentSize/zstdMaxRatio > uint64(len(src)) {
		return fmt.Errorf("zstd: %d-byte frame declares %d bytes", len(src), h.FrameContentSize)
	}
	return nil
}

// snappy.

// xerialMagic opens the framing that snappy-java's SnappyOutputStream writes
// (Java client, librdkafka): the magic, a 4-byte version and a 4-byte
// compatible version, then chunks of [4-byte big-endian length][raw block].
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// snappyMaxRatio bounds how far a standard snappy block can expand: the best
// case is a 3-byte copy tag yielding 64 bytes. A header claiming more is a
// lie, refused before DecodeStrict allocates the claimed length.
const snappyMaxRatio = 22

func decompressSnappy(dst, src []byte, limit int) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.HasPrefix(src, xerialMagic) {
		return decompressXerial(dst, src[xerialHeaderSize:], limit)
	}
	n, err := snappyLen(src, limit)
	if err != nil {
		return nil, err
	}
	dst = slices.Grow(dst, n)
	return appendSnappy(dst, src, n)
}

// decompressXerial decodes the chunks after the xerial header. It sums the
// chunks' declared lengths first, so dst grows once and a bomb is refused
// before anything is decoded.
func decompressXerial(dst, src []byte, limit int) ([]byte, error) {
	total := 0
	for rest := src; len(rest) > 0; {
		chunk, next, err := xerialChunk(rest)
		if err != nil {
			return nil, err
		}
		n, err := snappyLen(chunk, limit-total)
		if err != nil {
			return nil, err
		}
		total += n
		rest = next
	}
	dst = slices.Grow(dst, total)
	for len(src) > 0 {
		chunk, next, _ := xerialChunk(src) // checked above
		n, _ := snappy.DecodedLen(chunk)
		var err error
		if dst, err = appendSnappy(dst, chunk, n); err != nil {
			return nil, err
		}
		src = next
	}
	return dst, nil
}

func xerialChunk(src []byte) (chunk, rest []byte, err error) {
	if len(src) < 4 {
		return nil, nil, errors.New("xerial: truncated chunk length")
	}
	n := binary.BigEndian.Uint32(src)
	src = src[4:]
	if uint64(n) > uint64(len(src)) {
		return nil, nil, fmt.Errorf("xerial: chunk of %d bytes, %d left", n, len(src))
	}
	return src[:n], src[n:], nil
}

// snappyLen returns the decoded length a raw block declares, checked against
// limit and against what the block's size can possibly expand to.
func snappyLen(block []byte, limit int) (int, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, ErrDecompressLimit
	}
	if n > snappyMaxRatio*len(block) {
		return 0, fmt.Errorf("snappy: block of %d bytes claims %d", len(block), n)
	}
	return n, nil
}

// appendSnappy decodes a raw block of decoded length n into dst's spare
// capacity, which the caller has grown. DecodeStrict rejects s2's extensions
// that s2.Decode would accept: a batch the broker accepts must decode in
// the Java client, whose snappy-java is strict.
func appendSnappy(dst, block []byte, n int) ([]byte, error) {
	at := len(dst)
	out, err := snappy.DecodeStrict(dst[at:at+n:at+n], block)
	if err != nil {
		return nil, err
	}
	if len(out) != n { // cannot happen: n was read from the same header
		return nil, errors.New("snappy: decoded length mismatch")
	}
	return dst[:at+n], nil
}
