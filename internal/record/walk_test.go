package record_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// TestValidateRecordsAcceptsBuiltBatches: every batch kmsg builds, in every
// codec (xerial snappy too), with keys, values and headers of every kind,
// passes, and so does a LogAppendTime batch.
func TestValidateRecordsAcceptsBuiltBatches(t *testing.T) {
	for _, c := range record.Codecs {
		b := recordtest.Build(t, recordtest.Options{Codec: c, BaseOffset: 7}, fixture()...)
		if err := b.ValidateRecords(record.Checks{}); err != nil {
			t.Errorf("%v: %v", c, err)
		}
		b.SetLogAppendTime(1_800_000_000_000)
		if err := b.ValidateRecords(record.Checks{}); err != nil {
			t.Errorf("%v, LogAppendTime: %v", c, err)
		}
	}
	if err := xerialBatch(t).ValidateRecords(record.Checks{}); err != nil {
		t.Errorf("xerial: %v", err)
	}
}

// xerialBatch is the fixture as the Java client writes snappy: xerial
// framing in small chunks, so that a walk crosses chunk boundaries.
func xerialBatch(t *testing.T) record.Batch {
	t.Helper()
	plain := recordtest.Build(t, recordtest.Options{}, fixture()...)
	section := xerialFrame(t, plain[record.HeaderSize:], 1000)
	return rawBatch(t, int16(record.CodecSnappy), plain.RecordCount(), section)
}

// xerialFrame frames src as snappy-java does, in chunks of chunk bytes.
func xerialFrame(t *testing.T, src []byte, chunk int) []byte {
	t.Helper()
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	for len(src) > 0 {
		n := min(chunk, len(src))
		c, err := record.Compress(record.CodecSnappy, nil, src[:n])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, byte(len(c)>>24), byte(len(c)>>16), byte(len(c)>>8), byte(len(c)))
		out = append(out, c...)
		src = src[n:]
	}
	return out
}

// TestValidateRecordsRefusesLies: a batch with a valid CRC whose records
// contradict its header is refused as Kafka's LogValidator refuses it, in
// every codec: INVALID_RECORD (ErrInvalidRecord) for the records,
// CORRUPT_MESSAGE (ErrCorrupt) only for streams that do not decompress.
func TestValidateRecordsRefusesLies(t *testing.T) {
	good := goodRecord(0)
	long := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}
	two := append(goodRecord(0), goodRecord(1)...)
	for _, tc := range []struct {
		name  string
		count int32
		data  []byte
	}{
		{"no records", 1, nil},
		{"count above records", 3, two},
		{"count below records", 1, two},
		{"trailing byte", 1, append(bytes.Clone(good), 0)},
		{"trailing zeros", 2, append(bytes.Clone(two), make([]byte, 64)...)},
		{"truncated record", 1, good[:len(good)-1]},
		{"truncated length varint", 1, []byte{0x80}},
		{"overlong length varint", 1, long},
		{"negative length", 1, varint(nil, -2)},
		{"length past the batch", 1, append(varint(nil, 100), recordBody(0, 0)...)},
		{"length past the batch, second record", 2, append(bytes.Clone(good), append(varint(nil, 1000), recordBody(0, 1)...)...)},
		{"length beyond int32", 1, varint(nil, 1<<40)},
		{"empty body", 1, withLength(nil)},
		{"fields past length", 1, withLength(recordBody(0, 0))},
		{"length shorter than fields", 2, append(append(varint(nil, int64(len(good)-3)), good[1:]...), goodRecord(1)...)},
		{"length longer than fields", 1, append(withLength(append(recordBody(0, 0, field(nil), field(nil), varint(nil, 0)), 0, 0)), 0)},
		{"offset delta beyond int32", 1, withLength(recordBody(0, 1<<33, field(nil), field(nil), varint(nil, 0)))},
		{"bad timestamp varlong", 1, withLength(append([]byte{0}, long[:10]...))},
		{"key past record", 1, withLength(recordBody(0, 0, varint(nil, 50), field(nil), varint(nil, 0)))},
		{"key past record into the next", 2, append(withLength(recordBody(0, 0, varint(nil, 8), field(nil), varint(nil, 0))), goodRecord(1)...)},
		{"key length -2", 1, withLength(recordBody(0, 0, varint(nil, -2), field(nil), varint(nil, 0)))},
		{"value past record", 1, withLength(recordBody(0, 0, field(nil), varint(nil, 9), varint(nil, 0)))},
		{"value length -5", 1, withLength(recordBody(0, 0, field(nil), varint(nil, -5), varint(nil, 0)))},
		{"no header count", 1, withLength(recordBody(0, 0, field(nil), field(nil)))},
		{"negative header count", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, -1)))},
		{"huge header count", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1<<30)))},
		{"header count past record", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 2), field([]byte("k")), field(nil)))},
		{"null header key", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1), field(nil), field(nil)))},
		{"header key past record", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1), varint(nil, 40), field(nil)))},
		{"header value past record", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 1), field([]byte("k")), varint(nil, 3)))},
		{"bytes after headers", 1, withLength(recordBody(0, 0, field(nil), field(nil), varint(nil, 0), []byte{7}))},
		{"offset delta 1 for record 0", 1, goodRecord(1)},
		{"offset deltas 0, 0", 2, append(goodRecord(0), goodRecord(0)...)},
		{"offset deltas 0, 2", 2, append(goodRecord(0), goodRecord(2)...)},
	} {
		for _, c := range record.Codecs {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				section, err := record.Compress(c, nil, tc.data)
				if err != nil {
					t.Fatal(err)
				}
				b := rawBatch(t, int16(c), tc.count, section)
				if err := b.Validate(); err != nil {
					t.Fatalf("the header should be valid: %v", err)
				}
				orig := bytes.Clone(b)
				err = b.ValidateRecords(record.Checks{})
				if !errors.Is(err, record.ErrInvalidRecord) || errors.Is(err, record.ErrCorrupt) {
					t.Fatalf("%v, want ErrInvalidRecord alone", err)
				}
				if !bytes.Equal(b, orig) {
					t.Fatal("ValidateRecords modified the batch")
				}
			})
		}
	}
}

// TestValidateRecordsCorruptStreams: compressed bytes that do not decode,
// truncated streams, bad trailers and unknown codecs are CORRUPT_MESSAGE.
func TestValidateRecordsCorruptStreams(t *testing.T) {
	plain := recordtest.Build(t, recordtest.Options{}, fixture()...)
	section := plain[record.HeaderSize:]
	for _, c := range record.Codecs[1:] {
		comp, err := record.Compress(c, nil, section)
		if err != nil {
			t.Fatal(err)
		}
		flipped := bytes.Clone(comp)
		flipped[len(flipped)-2] ^= 0x55 // the trailer or the last block
		for name, data := range map[string][]byte{
			"empty":     {},
			"garbage":   bytes.Repeat([]byte{0x5a}, 100),
			"truncated": comp[:len(comp)/2],
			"flipped":   flipped,
			"plain":     section,
		} {
			b := rawBatch(t, int16(c), plain.RecordCount(), data)
			if err := b.ValidateRecords(record.Checks{}); !errors.Is(err, record.ErrCorrupt) {
				t.Errorf("%v %s: %v, want ErrCorrupt", c, name, err)
			}
		}
	}
	for c := int16(5); c <= 7; c++ {
		b := rawBatch(t, c, 1, goodRecord(0))
		if err := b.ValidateRecords(record.Checks{}); !errors.Is(err, record.ErrUnknownCodec) || !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("codec %d: %v", c, err)
		}
	}
}

// TestValidateRecordsDecompressionBomb: a batch that decompresses past the
// limit is refused once the limit is reached, in every codec, however many
// records it claims.
func TestValidateRecordsDecompressionBomb(t *testing.T) {
	const limit = 1 << 20
	// One record whose value is 4 MiB of zeros: ~4 KiB compressed.
	big := withLength(recordBody(0, 0, field(nil), field(make([]byte, 4<<20)), varint(nil, 0)))
	for _, c := range record.Codecs[1:] {
		comp, err := record.Compress(c, nil, big)
		if err != nil {
			t.Fatal(err)
		}
		b := rawBatch(t, int16(c), 1, comp)
		if err := b.ValidateRecords(record.Checks{}); err != nil {
			t.Errorf("%v: under the default limit: %v", c, err)
		}
		err = b.ValidateRecords(record.Checks{MaxDecompressed: limit})
		if !errors.Is(err, record.ErrDecompressLimit) {
			t.Errorf("%v (%d bytes compressed): %v, want ErrDecompressLimit", c, len(comp), err)
		}
	}
}

// TestValidateRecordsXerialChunks: xerial chunks are decoded one at a time,
// and a lie inside a later chunk is still found.
func TestValidateRecordsXerialChunks(t *testing.T) {
	b := xerialBatch(t)
	if err := b.ValidateRecords(record.Checks{}); err != nil {
		t.Fatal(err)
	}
	plain := recordtest.Build(t, recordtest.Options{}, fixture()...)
	section := append(bytes.Clone(plain[record.HeaderSize:]), 0) // a trailing byte
	lie := rawBatch(t, int16(record.CodecSnappy), plain.RecordCount(), xerialFrame(t, section, 1000))
	if err := lie.ValidateRecords(record.Checks{}); !errors.Is(err, record.ErrInvalidRecord) {
		t.Fatalf("trailing byte in the last chunk: %v", err)
	}
}

// TestValidateRecordsTimestamps: KIP-937's bounds apply to each record's
// timestamp (not the batch's), NoTimestamp is exempt, a LogAppendTime batch
// is judged by its max timestamp, and the bounds saturate.
func TestValidateRecordsTimestamps(t *testing.T) {
	const now = 1_800_000_000_000
	const hour = 3_600_000
	build := func(ts ...int64) record.Batch {
		recs := make([]recordtest.Record, len(ts))
		for i, t := range ts {
			recs[i] = recordtest.Record{Value: []byte("v"), Timestamp: t}
		}
		return recordtest.Build(t, recordtest.Options{Codec: record.CodecLZ4}, recs...)
	}
	kafka4 := record.Checks{Timestamps: true, Now: now, BeforeMaxMs: math.MaxInt64, AfterMaxMs: hour}
	for _, tc := range []struct {
		name   string
		b      record.Batch
		checks record.Checks
		ok     bool
	}{
		{"now", build(now), kafka4, true},
		{"exactly an hour ahead", build(now + hour), kafka4, true},
		{"an hour and 1 ms ahead", build(now + hour + 1), kafka4, false},
		{"second record ahead", build(now, now+2*hour, now), kafka4, false},
		{"epoch", build(0), kafka4, true},
		{"no timestamp", build(-1), kafka4, true},
		{"checks off", build(now + 100*hour), record.Checks{}, true},
		{"a day old, 1 h before", build(now - 24*hour), record.Checks{Timestamps: true, Now: now, BeforeMaxMs: hour, AfterMaxMs: hour}, false},
		{"59 min old, 1 h before", build(now - hour + 60_000), record.Checks{Timestamps: true, Now: now, BeforeMaxMs: hour, AfterMaxMs: hour}, true},
		{"far future, after max", build(math.MaxInt64 - 10), record.Checks{Timestamps: true, Now: now, BeforeMaxMs: 0, AfterMaxMs: math.MaxInt64}, true},
		{"LogAppendTime max ahead", func() record.Batch { b := build(now); b.SetLogAppendTime(now + 2*hour); return b }(), kafka4, false},
	} {
		err := tc.b.ValidateRecords(tc.checks)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, record.ErrInvalidTimestamp) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	// Framing is reported before timestamps, as Kafka throws on framing
	// but collects timestamp errors.
	bad := append(withLength(recordBody(10*hour, 0, field(nil), field(nil), varint(nil, 0))), 0)
	b := rawBatch(t, 0, 1, bad)
	if err := b.ValidateRecords(record.Checks{Timestamps: true, Now: 1_700_000_000_000, AfterMaxMs: 1}); !errors.Is(err, record.ErrInvalidRecord) {
		t.Errorf("bad framing and timestamp: %v, want ErrInvalidRecord", err)
	}
}

// TestFindTimestamp: the first record at or after a timestamp and an
// offset, without decoding keys and values, bounded by its limit.
func TestFindTimestamp(t *testing.T) {
	recs := []recordtest.Record{
		{Value: []byte("a"), Timestamp: 100}, {Value: []byte("b"), Timestamp: 300},
		{Value: []byte("c"), Timestamp: 200}, {Value: bytes.Repeat([]byte("d"), 1<<20), Timestamp: 400},
		{Value: []byte("e"), Timestamp: 500},
	}
	for _, c := range record.Codecs {
		b := recordtest.Build(t, recordtest.Options{Codec: c, BaseOffset: 50}, recs...)
		for _, tc := range []struct {
			ts, min       int64
			off, foundTS  int64
			found         bool
			wantInflation bool
		}{
			{0, 0, 50, 100, true, false},
			{150, 0, 51, 300, true, false},
			{250, 52, 53, 400, true, false},
			{450, 0, 54, 500, true, true},
			{501, 0, 0, 0, false, true},
		} {
			off, ts, found, inflated, err := b.FindTimestamp(tc.ts, tc.min, 64<<20)
			if err != nil || found != tc.found || off != tc.off || ts != tc.foundTS {
				t.Errorf("%v: FindTimestamp(%d, %d) = %d %d %v %v", c, tc.ts, tc.min, off, ts, found, err)
			}
			if c == record.CodecNone && inflated != 0 || c != record.CodecNone && tc.wantInflation && inflated < 1<<20 {
				t.Errorf("%v: FindTimestamp(%d): inflated %d", c, tc.ts, inflated)
			}
		}
		if c != record.CodecNone {
			if _, _, _, _, err := b.FindTimestamp(450, 0, 64<<10); !errors.Is(err, record.ErrDecompressLimit) {
				t.Errorf("%v: past the limit: %v", c, err)
			}
		}
		b.SetLogAppendTime(900)
		if off, ts, found, _, err := b.FindTimestamp(800, 52, 64<<20); err != nil || !found || off != 52 || ts != 900 {
			t.Errorf("%v: LogAppendTime: %d %d %v %v", c, off, ts, found, err)
		}
	}
}

// TestValidateRecordsKgoBatch: a batch as franz-go's producer encodes it
// (kmsg.RecordBatch with its own record encoding) passes.
func TestValidateRecordsKgoBatch(t *testing.T) {
	var raw []byte
	for i := range 10 {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Key: []byte("k"), Value: bytes.Repeat([]byte("v"), i*100),
			Headers: []kmsg.Header{{Key: "h", Value: nil}}}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		raw = r.AppendTo(raw)
	}
	for _, c := range record.Codecs {
		section, err := record.Compress(c, nil, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := rawBatch(t, int16(c), 10, section).ValidateRecords(record.Checks{}); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
}

// TestValidateRecordsLargeZstdWindow: a zstd frame whose window is larger
// than the streaming decoder keeps (zstd-jni at levels 20-22) is decoded
// whole instead, still judged the same, and still bounded by the limit.
func TestValidateRecordsLargeZstdWindow(t *testing.T) {
	plain := recordtest.Build(t, recordtest.Options{}, fixture()...)
	// A frame of raw blocks whose header declares a 16 MiB window and no
	// content size, as a streaming encoder at a high level writes it (the
	// Go encoder shrinks its window to the input, so it is built by hand).
	var comp bytes.Buffer
	comp.Write([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 14 << 3}) // magic, descriptor, window 2^(10+14)
	for rest := plain[record.HeaderSize:]; len(rest) > 0; {
		n := min(len(rest), 128<<10)
		last := 0
		if n == len(rest) {
			last = 1
		}
		hdr := uint32(n)<<3 | uint32(last) // raw block
		comp.Write([]byte{byte(hdr), byte(hdr >> 8), byte(hdr >> 16)})
		comp.Write(rest[:n])
		rest = rest[n:]
	}
	var h zstd.Header
	if err := h.Decode(comp.Bytes()); err != nil || h.WindowSize <= 8<<20 {
		t.Fatalf("window %d, %v: the test needs a window over 8 MiB", h.WindowSize, err)
	}
	b := rawBatch(t, int16(record.CodecZstd), plain.RecordCount(), comp.Bytes())
	if err := b.ValidateRecords(record.Checks{}); err != nil {
		t.Fatalf("large window: %v", err)
	}
	if _, _, _, _, err := b.FindTimestamp(1_700_000_002_000, 0, 64<<10); !errors.Is(err, record.ErrDecompressLimit) {
		t.Fatalf("large window past the limit: %v", err)
	}
	lie := rawBatch(t, int16(record.CodecZstd), plain.RecordCount()+1, comp.Bytes())
	if err := lie.ValidateRecords(record.Checks{}); !errors.Is(err, record.ErrInvalidRecord) {
		t.Fatalf("large window, count above records: %v", err)
	}
}

// TestWalkReadsEveryShape: FindTimestamp finds every record of a batch
// at its own offset and timestamp, for records the walk's fast path reads
// (no headers, a value of a few bytes, fields of one to three bytes) and
// for those it leaves to the general path (headers, null or tiny values,
// four-byte fields), side by side in one batch; offset deltas run past
// 8,191 (three bytes) and timestamp deltas past ±8,191 ms and ±1,048,575
// ms (three and four bytes).
func TestWalkReadsEveryShape(t *testing.T) {
	const n = 9000
	recs := make([]recordtest.Record, n)
	tsDeltas := []int64{0, 1, 63, 64, 8191, 8192, 1 << 19, 1 << 20, 5 << 20}
	for i := range recs {
		r := recordtest.Record{Timestamp: 1_000_000_000 + int64(i)*10_000 + tsDeltas[i%len(tsDeltas)]}
		switch i % 7 {
		case 0:
			r.Value = make([]byte, 100)
		case 1:
			r.Key, r.Value = []byte("key"), make([]byte, 8)
		case 2: // null value (tombstone)
			r.Key = []byte("k")
		case 3:
			r.Value = []byte("ab")
		case 4:
			r.Value, r.Headers = make([]byte, 50), []kmsg.Header{{Key: "h", Value: []byte("v")}}
		case 5:
			r.Value = make([]byte, 100)
			if i%70 == 5 {
				r.Value = make([]byte, 20_000) // three-byte lengths
			}
		case 6:
			r.Key, r.Value = make([]byte, 300), make([]byte, 7)
		}
		recs[i] = r
	}
	for _, c := range []record.Codec{record.CodecNone, record.CodecLZ4} {
		b := recordtest.Build(t, recordtest.Options{Codec: c, BaseOffset: 1000}, recs...)
		if err := b.ValidateRecords(record.Checks{}); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		for i, r := range recs {
			if i%13 != 0 && i < n-50 {
				continue // every shape and delta, in less time
			}
			off, ts, found, _, err := b.FindTimestamp(r.Timestamp, 1000+int64(i), 1<<30)
			if err != nil || !found || off != 1000+int64(i) || ts != r.Timestamp {
				t.Fatalf("%v: record %d (ts %d): FindTimestamp = %d %d %v %v", c, i, r.Timestamp, off, ts, found, err)
			}
		}
	}
}
