package wire

import (
	"errors"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	s := "x"
	var w Writer
	w.Int8(-1)
	w.Bool(true)
	w.Int16(-2)
	w.Uint16(65535)
	w.Int32(-3)
	w.Int64(-4)
	w.UUID([16]byte{1})
	w.Str("key")
	w.CompactString("")
	w.CompactNullableString(nil)
	w.CompactNullableString(&s)
	w.CompactInt32s([]int32{7, 8})
	w.CompactNullableInt32s(nil)
	w.CompactUUIDs([][16]byte{{2}})
	w.Uvarint(2)
	w.Tag(0, func(w *Writer) { w.Int32(9) })
	w.Tag(5, func(w *Writer) { w.Int8(1) })
	r := NewReader(w.B)
	got := []any{r.Int8(), r.Bool(), r.Int16(), r.Uint16(), r.Int32(), r.Int64(), r.UUID(), r.Str(), r.CompactString(),
		r.CompactNullableString(), *r.CompactNullableString(), r.CompactInt32s(), r.CompactInt32s(), r.CompactUUIDs()}
	var tag0 int32
	r.Tags(func(tag int, fr *Reader) bool {
		if tag == 0 {
			tag0 = fr.Int32()
			return true
		}
		return false // tag 5 unknown: skipped
	})
	want := []any{int8(-1), true, int16(-2), uint16(65535), int32(-3), int64(-4), [16]byte{1}, "key", "",
		(*string)(nil), "x", []int32{7, 8}, []int32(nil), [][16]byte{{2}}}
	if r.Err() != nil || r.Len() != 0 || tag0 != 9 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v %d %d\n%#v", r.Err(), r.Len(), tag0, got)
	}
}

func TestReaderErrors(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		read func(r *Reader)
		want error
	}{
		{"short int32", []byte{0, 0, 1}, func(r *Reader) { r.Int32() }, ErrShort},
		{"varint over 2^31", []byte{0xff, 0xff, 0xff, 0xff, 0x7f}, func(r *Reader) { r.Uvarint() }, ErrBadVarint},
		{"truncated varint", []byte{0x80}, func(r *Reader) { r.Uvarint() }, ErrBadVarint},
		{"array longer than input", []byte{100, 1}, func(r *Reader) { r.CompactInt32s() }, ErrShort},
		{"string longer than input", []byte{5, 'a'}, func(r *Reader) { r.CompactString() }, ErrShort},
		{"tag count larger than input", []byte{9, 0}, func(r *Reader) { r.SkipTags() }, ErrShort},
		{"known tag with bytes left", []byte{1, 0, 2, 1, 1}, func(r *Reader) {
			r.Tags(func(tag int, fr *Reader) bool { fr.Int8(); return true })
		}, ErrTagSize},
	}
	for _, c := range cases {
		r := NewReader(c.b)
		c.read(r)
		if !errors.Is(r.Err(), c.want) {
			t.Errorf("%s: %v, want %v", c.name, r.Err(), c.want)
		}
		// Once failed, reads return zero values and keep the first error.
		if r.Int64() != 0 || r.CompactNullableString() != nil || !errors.Is(r.Err(), c.want) {
			t.Errorf("%s: read after an error", c.name)
		}
	}
}
