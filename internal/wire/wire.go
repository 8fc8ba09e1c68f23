// Package wire is a small codec for Kafka's message schemas, for the record
// types kmsg has no encoders for: the KIP-848 records of __consumer_offsets
// (package group) and the KRaft metadata records (package cluster/records).
//
// It writes and reads the primitive types of Kafka's generated message
// classes (clients/src/main/java/org/apache/kafka/common/protocol/
// Writable.java and Readable.java): big-endian fixed-width integers,
// unsigned varints, UUIDs, int16-length strings of non-flexible versions,
// and the flexible versions' compact strings and arrays (unsigned varint
// length+1, 0 for null) and tagged-field sections (KIP-482).
//
// Reader never panics on input: the first problem (bytes missing, a bad
// varint, a length larger than what is left) is kept in Err and every later
// read returns a zero value, so a decoder reads a whole struct and checks
// once. A Reader and a Writer are not safe for concurrent use.
package wire

import (
	"encoding/binary"
	"errors"
)

// ErrShort is a message that ends before its fields do.
var ErrShort = errors.New("wire: message too short")

// ErrTagSize is a known tagged field whose size does not match its value.
var ErrTagSize = errors.New("wire: tagged field size does not match its value")

// ErrBadVarint is an unsigned varint that is malformed or above 2^31,
// larger than any length or count Kafka writes.
var ErrBadVarint = errors.New("wire: bad unsigned varint")

// Writer appends fields to B.
type Writer struct{ B []byte }

func (w *Writer) Int8(v int8)     { w.B = append(w.B, byte(v)) }
func (w *Writer) Int16(v int16)   { w.B = binary.BigEndian.AppendUint16(w.B, uint16(v)) }
func (w *Writer) Uint16(v uint16) { w.B = binary.BigEndian.AppendUint16(w.B, v) }
func (w *Writer) Int32(v int32)   { w.B = binary.BigEndian.AppendUint32(w.B, uint32(v)) }
func (w *Writer) Int64(v int64)   { w.B = binary.BigEndian.AppendUint64(w.B, uint64(v)) }
func (w *Writer) Uvarint(v int)   { w.B = binary.AppendUvarint(w.B, uint64(v)) }
func (w *Writer) UUID(id [16]byte) {
	w.B = append(w.B, id[:]...)
}

// Bool is one byte, 0 or 1, as Kafka's writeByte((byte) (b ? 1 : 0)).
func (w *Writer) Bool(v bool) {
	if v {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// Str is a non-flexible (int16-length) string, as keys carry them.
func (w *Writer) Str(s string) {
	w.Int16(int16(len(s)))
	w.B = append(w.B, s...)
}

func (w *Writer) CompactString(s string) {
	w.Uvarint(len(s) + 1)
	w.B = append(w.B, s...)
}

func (w *Writer) CompactNullableString(s *string) {
	if s == nil {
		w.Uvarint(0)
		return
	}
	w.CompactString(*s)
}

// CompactBytes is a non-nullable compact byte array.
func (w *Writer) CompactBytes(b []byte) {
	w.Uvarint(len(b) + 1)
	w.B = append(w.B, b...)
}

// CompactArrayLen starts a compact array of n elements; -1 is null.
func (w *Writer) CompactArrayLen(n int) { w.Uvarint(n + 1) }

// CompactInt32s writes a compact array of int32; nil is written as an
// empty array (use CompactNullableInt32s where null is meaningful).
func (w *Writer) CompactInt32s(vs []int32) {
	w.CompactArrayLen(len(vs))
	for _, v := range vs {
		w.Int32(v)
	}
}

// CompactNullableInt32s writes nil as a null array.
func (w *Writer) CompactNullableInt32s(vs []int32) {
	if vs == nil {
		w.CompactArrayLen(-1)
		return
	}
	w.CompactInt32s(vs)
}

func (w *Writer) CompactUUIDs(ids [][16]byte) {
	w.CompactArrayLen(len(ids))
	for _, id := range ids {
		w.UUID(id)
	}
}

// NoTags ends a struct with an empty tagged-field section.
func (w *Writer) NoTags() { w.Uvarint(0) }

// Tag writes one tagged field: its tag, its size, then the bytes body
// appends. Tags must be written in increasing order (KIP-482).
func (w *Writer) Tag(tag int, body func(*Writer)) {
	var fw Writer
	body(&fw)
	w.Uvarint(tag)
	w.Uvarint(len(fw.B))
	w.B = append(w.B, fw.B...)
}

// Reader reads fields from a message.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met, nil if every read so far succeeded.
func (r *Reader) Err() error { return r.err }

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// Fail records err as the reader's error unless one is already set, for
// decoders that find a value they cannot accept.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Take returns the next n bytes (aliasing the input).
func (r *Reader) Take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = ErrShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *Reader) Int8() int8 {
	b := r.Take(1)
	if b == nil {
		return 0
	}
	return int8(b[0])
}

func (r *Reader) Bool() bool { return r.Int8() != 0 }

func (r *Reader) Int16() int16 {
	b := r.Take(2)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

func (r *Reader) Uint16() uint16 { return uint16(r.Int16()) }

func (r *Reader) Int32() int32 {
	b := r.Take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *Reader) Int64() int64 {
	b := r.Take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *Reader) Uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<31 {
		r.err = ErrBadVarint
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *Reader) UUID() (id [16]byte) {
	copy(id[:], r.Take(16))
	return id
}

// Str reads a non-flexible (int16-length) string.
func (r *Reader) Str() string {
	n := r.Int16()
	return string(r.Take(int(n)))
}

// CompactNullableString returns nil for a null string.
func (r *Reader) CompactNullableString() *string {
	n := r.Uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	s := string(r.Take(n - 1))
	return &s
}

func (r *Reader) CompactString() string {
	if s := r.CompactNullableString(); s != nil {
		return *s
	}
	return ""
}

// CompactBytes reads a non-nullable compact byte array, copied (a record
// outlives the buffer it was read from); null reads as empty.
func (r *Reader) CompactBytes() []byte {
	n := r.Uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	return append([]byte{}, r.Take(n-1)...)
}

// CompactArrayLen returns the element count, -1 for a null array. A count
// larger than the bytes left cannot be real (every element takes at least
// a byte): it is an error, not an allocation.
func (r *Reader) CompactArrayLen() int {
	n := r.Uvarint() - 1
	if n > len(r.b) {
		r.Fail(ErrShort)
		return 0
	}
	return n
}

// SkipTags skips a tagged-field section: fields a later Kafka added are
// read past, not rejected.
func (r *Reader) SkipTags() { r.Tags(nil) }

// Tags reads a tagged-field section, calling fn with each field's tag and
// a Reader over its bytes; fields fn does not know (it returns false) are
// skipped. A known field with bytes left after its value is an error.
func (r *Reader) Tags(fn func(tag int, fr *Reader) bool) {
	n := r.Uvarint()
	if n > len(r.b) { // each field takes at least two bytes
		r.Fail(ErrShort)
		return
	}
	for range n {
		tag := r.Uvarint()
		body := r.Take(r.Uvarint())
		if r.err != nil || fn == nil {
			continue
		}
		fr := NewReader(body)
		if fn(tag, fr) {
			if fr.err != nil {
				r.Fail(fr.err)
			} else if fr.Len() != 0 {
				r.Fail(ErrTagSize)
			}
		}
	}
}

func (r *Reader) CompactInt32s() []int32 {
	n := r.CompactArrayLen()
	if n < 0 {
		return nil
	}
	out := make([]int32, 0, n)
	for range n {
		out = append(out, r.Int32())
	}
	return out
}

func (r *Reader) CompactUUIDs() [][16]byte {
	n := r.CompactArrayLen()
	if n < 0 {
		return nil
	}
	out := make([][16]byte, 0, n)
	for range n {
		out = append(out, r.UUID())
	}
	return out
}

func (r *Reader) CompactStrings() []string {
	n := r.CompactArrayLen()
	if n < 0 {
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, r.CompactString())
	}
	return out
}
