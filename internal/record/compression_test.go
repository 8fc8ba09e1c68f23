package record_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/internal/record"
)

// payloads are inputs of different shapes: tiny, repetitive, random (which
// codecs store rather than compress), and larger than one block of every
// codec (lz4 64 KiB, zstd 128 KiB, xerial 32 KiB).
func payloads() map[string][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 100<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	var text []byte
	for i := 0; len(text) < 1<<20; i++ {
		text = binary.AppendVarint(text, int64(i%1000))
		text = append(text, "some log line with a counter "...)
	}
	return map[string][]byte{
		"empty":  {},
		"byte":   {'x'},
		"zeros":  make([]byte, 300<<10),
		"random": random,
		"text":   text,
	}
}

func TestCompressRoundTrip(t *testing.T) {
	for name, src := range payloads() {
		for _, c := range record.Codecs {
			t.Run(name+"/"+c.String(), func(t *testing.T) {
				prefix := []byte("prefix")
				comp, err := record.Compress(c, bytes.Clone(prefix), src)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(comp, prefix) {
					t.Fatal("Compress did not append to dst")
				}
				comp = comp[len(prefix):]
				if c == record.CodecNone && !bytes.Equal(comp, src) {
					t.Fatal("none changed the data")
				}
				if len(src) == 0 && c != record.CodecNone {
					return // Decompress refuses an empty stream; Compress writes a header anyway
				}
				out, err := record.Decompress(c, bytes.Clone(prefix), comp)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(out, prefix) || !bytes.Equal(out[len(prefix):], src) {
					t.Fatalf("round trip: got %d bytes, want %d", len(out)-len(prefix), len(src))
				}
			})
		}
	}
}

// TestCompressIsStandard decodes our output with each codec library's own
// reader, with the standard library's gzip (an independent implementation),
// and with franz-go's consumer decompressor: what we write, any client reads.
// The other way round, what those libraries write, we read.
func TestCompressIsStandard(t *testing.T) {
	kdec := kgo.DefaultDecompressor()
	zdec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zdec.Close()
	readers := map[record.Codec]func([]byte) ([]byte, error){
		record.CodecGzip: func(b []byte) ([]byte, error) {
			r, err := stdgzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		},
		record.CodecSnappy: func(b []byte) ([]byte, error) { return snappy.DecodeStrict(nil, b) },
		record.CodecLZ4:    func(b []byte) ([]byte, error) { return io.ReadAll(lz4.NewReader(bytes.NewReader(b))) },
		record.CodecZstd:   func(b []byte) ([]byte, error) { return zdec.DecodeAll(b, nil) },
	}
	writers := map[record.Codec]func([]byte) []byte{
		record.CodecGzip: func(b []byte) []byte {
			var buf bytes.Buffer
			w := stdgzip.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		record.CodecSnappy: func(b []byte) []byte { return snappy.Encode(nil, b) },
		record.CodecLZ4: func(b []byte) []byte { // lz4/v4 defaults: 4 MiB blocks, content checksum
			var buf bytes.Buffer
			w := lz4.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		record.CodecZstd: func(b []byte) []byte {
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
			defer enc.Close()
			return enc.EncodeAll(b, nil)
		},
	}
	for name, src := range payloads() {
		if len(src) == 0 {
			continue
		}
		for c, read := range readers {
			t.Run(name+"/"+c.String(), func(t *testing.T) {
				comp, err := record.Compress(c, nil, src)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := read(comp); err != nil || !bytes.Equal(got, src) {
					t.Errorf("library decoder: %d bytes, %v", len(got), err)
				}
				if got, err := kdec.Decompress(comp, kgo.CompressionCodecType(c)); err != nil || !bytes.Equal(got, src) {
					t.Errorf("kgo decompressor: %d bytes, %v", len(got), err)
				}

				foreign := [][]byte{writers[c](src)}
				kc, err := kgo.DefaultCompressor(kgoCodec(c))
				if err != nil {
					t.Fatal(err)
				}
				kout, used := kc.Compress(new(bytes.Buffer), src)
				if used != kgo.CompressionCodecType(c) {
					t.Fatalf("kgo compressed with %d", used)
				}
				foreign = append(foreign, kout)
				for i, f := range foreign {
					if got, err := record.Decompress(c, nil, f); err != nil || !bytes.Equal(got, src) {
						t.Errorf("foreign encoding %d: %d bytes, %v", i, len(got), err)
					}
				}
			})
		}
	}
}

func kgoCodec(c record.Codec) kgo.CompressionCodec {
	switch c {
	case record.CodecGzip:
		return kgo.GzipCompression()
	case record.CodecSnappy:
		return kgo.SnappyCompression()
	case record.CodecLZ4:
		return kgo.Lz4Compression()
	case record.CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// TestLZ4ContentSize reads frames that declare their content size, as
// librdkafka writes them; the size only sizes the output buffer.
func TestLZ4ContentSize(t *testing.T) {
	src := payloads()["text"]
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(lz4.SizeOption(uint64(len(src))), lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
		t.Fatal(err)
	}
	w.Write(src)
	w.Close()
	got, err := record.Decompress(record.CodecLZ4, nil, buf.Bytes())
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if cap(got) > len(src)+len(src)/64 { // allocation rounds up to a size class
		t.Errorf("declared size not used: cap %d for %d bytes", cap(got), len(src))
	}
}

// xerial frames data the way snappy-java's SnappyOutputStream does: the
// magic, version 1, compatible version 1, then [big-endian length][raw
// snappy block] per chunk of at most chunk bytes.
func xerial(tb testing.TB, data []byte, chunk int) []byte {
	tb.Helper()
	out := []byte("\x82SNAPPY\x00")
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(chunk, len(data))
		block := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

func TestXerialSnappy(t *testing.T) {
	src := payloads()["text"]
	for _, chunk := range []int{1, 100, 32 << 10, 1 << 20} {
		framed := xerial(t, src[:min(len(src), 200*chunk)], chunk)
		got, err := record.Decompress(record.CodecSnappy, []byte("p"), framed)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !bytes.Equal(got[1:], src[:min(len(src), 200*chunk)]) || got[0] != 'p' {
			t.Fatalf("chunk %d: wrong output", chunk)
		}
	}
	// The header alone is an empty stream.
	if got, err := record.Decompress(record.CodecSnappy, nil, xerial(t, nil, 1)); err != nil || len(got) != 0 {
		t.Errorf("empty xerial stream: %q, %v", got, err)
	}

	good := xerial(t, []byte("hello, xerial"), 5)
	for name, bad := range map[string][]byte{
		"truncated chunk length": good[:len(good)-len(s2.EncodeSnappy(nil, []byte("ial")))-2],
		"chunk past end":         good[:len(good)-1],
		"zero-length chunk":      append(bytes.Clone(good), 0, 0, 0, 0),
		"garbage chunk":          append(bytes.Clone(good), 0, 0, 0, 2, 0xff, 0xff),
		"negative chunk length":  append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff),
	} {
		if _, err := record.Decompress(record.CodecSnappy, nil, bad); !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestDecompressGarbage(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	src := payloads()["text"][:50<<10]
	for _, c := range record.Codecs[1:] {
		comp, err := record.Compress(c, nil, src)
		if err != nil {
			t.Fatal(err)
		}
		inputs := map[string][]byte{
			"empty":     {},
			"one byte":  {0xff},
			"truncated": comp[:len(comp)/2],
			"ascii":     []byte("this is not compressed at all, not even a little"),
		}
		for i := range 20 {
			b := bytes.Clone(comp)
			b[rnd.IntN(len(b))] ^= byte(1 + rnd.IntN(255))
			inputs[fmt.Sprintf("flipped %d", i)] = b
		}
		for name, in := range inputs {
			out, err := record.Decompress(c, []byte("dst"), in)
			if strings.HasPrefix(name, "flipped") && err == nil {
				// A flip in a literal can decode "successfully" for
				// codecs without a checksum; it must not be the input.
				if bytes.Equal(out[3:], src) && c != record.CodecSnappy {
					t.Errorf("%v %s: flip went unnoticed", c, name)
				}
				continue
			}
			if !errors.Is(err, record.ErrCorrupt) {
				t.Errorf("%v %s: %v, want ErrCorrupt", c, name, err)
			}
			if string(out) != "dst" {
				t.Errorf("%v %s: dst changed to %q on error", c, name, out)
			}
		}
	}
}

func TestUnknownCodec(t *testing.T) {
	for _, c := range []record.Codec{5, 6, 7, -1} {
		_, err := record.Compress(c, nil, []byte("x"))
		if !errors.Is(err, record.ErrUnknownCodec) || errors.Is(err, record.ErrCorrupt) {
			t.Errorf("Compress(%v): %v", c, err)
		}
		_, err = record.Decompress(c, nil, []byte("x"))
		if !errors.Is(err, record.ErrUnknownCodec) || errors.Is(err, record.ErrCorrupt) {
			t.Errorf("Decompress(%v): %v", c, err)
		}
	}
	if s := record.Codec(6).String(); s != "codec(6)" {
		t.Errorf("Codec(6).String() = %q", s)
	}
}

// setLimit lowers MaxDecompressedSize for one test. Tests that call it must
// not run in parallel.
func setLimit(t *testing.T, n int) {
	old := record.MaxDecompressedSize
	record.MaxDecompressedSize = n
	t.Cleanup(func() { record.MaxDecompressedSize = old })
}

func TestDecompressLimit(t *testing.T) {
	const limit = 1 << 20
	setLimit(t, limit)
	atLimit := make([]byte, limit)
	over := make([]byte, limit+1)
	for _, c := range record.Codecs[1:] {
		for name, src := range map[string][]byte{"at limit": atLimit, "over": over} {
			comp, err := record.Compress(c, nil, src)
			if err != nil {
				t.Fatal(err)
			}
			if c == record.CodecSnappy && name == "over" {
				comp = xerial(t, src, 32<<10) // the chunk sum is checked too
			}
			out, err := record.Decompress(c, nil, comp)
			switch {
			case len(src) <= limit && (err != nil || len(out) != len(src)):
				t.Errorf("%v %s: %d bytes, %v", c, name, len(out), err)
			case len(src) > limit && (!errors.Is(err, record.ErrDecompressLimit) || !errors.Is(err, record.ErrCorrupt)):
				t.Errorf("%v %s (%d bytes compressed): %v, want ErrDecompressLimit", c, name, len(comp), err)
			}
		}
	}
	comp, _ := record.Compress(record.CodecSnappy, nil, over)
	if _, err := record.Decompress(record.CodecSnappy, nil, comp); !errors.Is(err, record.ErrDecompressLimit) {
		t.Errorf("raw snappy over the limit: %v", err)
	}
}

// TestDecompressLyingHeaders feeds tiny inputs whose headers claim a huge
// decompressed size. They must fail without allocating what they claim.
func TestDecompressLyingHeaders(t *testing.T) {
	// zstd: a frame header declaring 200 MiB, then one 1-byte raw block.
	hdr := zstd.Header{HasFCS: true, FrameContentSize: 200 << 20, WindowSize: 1 << 20}
	frame, err := hdr.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame = append(frame, 0x09, 0, 0, 'x') // last raw block of size 1
	// snappy: a block declaring 200 MiB holding one literal byte.
	block := append(binary.AppendUvarint(nil, 200<<20), 0, 'x')

	for _, tc := range []struct {
		c   record.Codec
		src []byte
	}{{record.CodecZstd, frame}, {record.CodecSnappy, block}} {
		// Warm up: the first zstd call builds the shared decoder.
		warm, _ := record.Compress(tc.c, nil, []byte("warm up"))
		if _, err := record.Decompress(tc.c, nil, warm); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := record.Decompress(tc.c, nil, tc.src)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("%v: %v, want ErrCorrupt", tc.c, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
			t.Errorf("%v: a %d-byte input allocated %d bytes", tc.c, len(tc.src), n)
		}
	}
}
