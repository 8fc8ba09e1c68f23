package group

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal codec for the KIP-848 records of __consumer_offsets, which kmsg
// does not define (it has only OffsetCommitKey/Value and
// GroupMetadataKey/Value). Keys are not flexible: int16 version, then
// int16-length strings. Values are flexible version 0: int16 version,
// compact strings and arrays (uvarint length+1, 0 for null), and a tagged
// field section after each struct, as Kafka's generated
// ConsumerGroup*Value classes write them.

var errShort = errors.New("group: record too short")

type flexWriter struct{ b []byte }

func (w *flexWriter) int8(v int8)   { w.b = append(w.b, byte(v)) }
func (w *flexWriter) int16(v int16) { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *flexWriter) int32(v int32) { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *flexWriter) uvarint(v int) { w.b = binary.AppendUvarint(w.b, uint64(v)) }
func (w *flexWriter) uuid(id [16]byte) {
	w.b = append(w.b, id[:]...)
}

// str is a non-flexible (int16-length) string, as keys carry them.
func (w *flexWriter) str(s string) {
	w.int16(int16(len(s)))
	w.b = append(w.b, s...)
}

func (w *flexWriter) compactString(s string) {
	w.uvarint(len(s) + 1)
	w.b = append(w.b, s...)
}

func (w *flexWriter) compactNullableString(s *string) {
	if s == nil {
		w.uvarint(0)
		return
	}
	w.compactString(*s)
}

func (w *flexWriter) compactArrayLen(n int) { w.uvarint(n + 1) }

// noTags ends a struct with an empty tagged-field section.
func (w *flexWriter) noTags() { w.uvarint(0) }

type flexReader struct {
	b   []byte
	err error
}

func (r *flexReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *flexReader) int8() int8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int8(b[0])
}

func (r *flexReader) int16() int16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

func (r *flexReader) int32() int32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *flexReader) uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<31 {
		r.err = fmt.Errorf("group: bad uvarint in record")
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *flexReader) uuid() (id [16]byte) {
	copy(id[:], r.take(16))
	return id
}

func (r *flexReader) str() string {
	n := r.int16()
	return string(r.take(int(n)))
}

// compactNullableString returns nil for a null string.
func (r *flexReader) compactNullableString() *string {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil
	}
	s := string(r.take(n - 1))
	return &s
}

func (r *flexReader) compactString() string {
	if s := r.compactNullableString(); s != nil {
		return *s
	}
	return ""
}

// compactArrayLen returns the element count, -1 for a null array. A count
// larger than the bytes left cannot be real: it is an error, not an
// allocation.
func (r *flexReader) compactArrayLen() int {
	n := r.uvarint() - 1
	if n > len(r.b) {
		r.err = errShort
		return 0
	}
	return n
}

// skipTags skips a tagged-field section: fields a later Kafka added
// (MetadataHash, AssignmentEpochs, ...) are read past, not rejected.
func (r *flexReader) skipTags() {
	n := r.uvarint()
	if n > len(r.b) { // each field takes at least two bytes
		r.err = errShort
		return
	}
	for range n {
		r.uvarint() // tag
		r.take(r.uvarint())
	}
}

func (r *flexReader) int32s() []int32 {
	n := r.compactArrayLen()
	if n < 0 {
		return nil
	}
	out := make([]int32, 0, n)
	for range n {
		out = append(out, r.int32())
	}
	return out
}

func (r *flexReader) strings() []string {
	n := r.compactArrayLen()
	if n < 0 {
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, r.compactString())
	}
	return out
}
