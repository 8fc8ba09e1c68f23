package replica

import (
	"bytes"
	"testing"

	"github.com/strata-io/strata/internal/record"
)

func batches(t *testing.T, n int) []byte {
	t.Helper()
	var out []byte
	for i := range n {
		b, err := record.Build(record.BuildOptions{BaseOffset: int64(i)}, record.NewRecord{Value: []byte("value")})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// A fetch answer cut at the byte limit ends inside a batch: only whole
// batches are appended.
func TestCompleteBatches(t *testing.T) {
	data := batches(t, 3)
	if got := completeBatches(data); !bytes.Equal(got, data) {
		t.Fatalf("three whole batches: kept %d of %d bytes", len(got), len(data))
	}
	one := len(batches(t, 1))
	for _, cut := range []int{len(data) - 1, 2*one + 20, 2*one + 5} {
		if got := completeBatches(data[:cut]); len(got) != 2*one {
			t.Fatalf("cut at %d: kept %d bytes, want the first two batches (%d)", cut, len(got), 2*one)
		}
	}
	if got := completeBatches(data[:5]); len(got) != 0 {
		t.Fatalf("a 5-byte stub: kept %d bytes", len(got))
	}
	if got := completeBatches(nil); len(got) != 0 {
		t.Fatal("nil: kept bytes")
	}
}
