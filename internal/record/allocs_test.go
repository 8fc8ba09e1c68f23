//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

package record_test

import (
	"testing"

	"github.com/strata-io/strata/internal/record"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// TestSteadyStateAllocs checks that pooled and shared codecs make Compress
// and Decompress allocation-free once dst has room, so the broker's
// recompression and validation paths do not churn the heap. (They measure 0;
// the bound of 1 tolerates a GC emptying a pool mid-run.)
func TestSteadyStateAllocs(t *testing.T) {
	src := payloads()["text"][:256<<10]
	for _, c := range record.Codecs {
		comp, err := record.Compress(c, nil, src)
		if err != nil {
			t.Fatal(err)
		}
		cdst := make([]byte, 0, 2*len(src))
		ddst := make([]byte, 0, 2*len(src))
		if n := testing.AllocsPerRun(20, func() { cdst, _ = record.Compress(c, cdst[:0], src) }); n > 1 {
			t.Errorf("Compress %v: %.1f allocs", c, n)
		}
		if n := testing.AllocsPerRun(20, func() { ddst, _ = record.Decompress(c, ddst[:0], comp) }); n > 1 {
			t.Errorf("Decompress %v: %.1f allocs", c, n)
		}
	}
}

// TestValidateRecordsAllocs: the produce path's record walk allocates
// nothing once its pools are warm, in every codec (the bound of 1 tolerates
// a GC emptying a pool mid-run).
func TestValidateRecordsAllocs(t *testing.T) {
	for _, c := range record.Codecs {
		b := recordtest.Build(t, recordtest.Options{Codec: c}, benchRecords(500)...)
		checks := record.Checks{Timestamps: true, Now: 1_700_000_000_000, BeforeMaxMs: 1 << 62, AfterMaxMs: 3_600_000}
		if n := testing.AllocsPerRun(20, func() {
			if err := b.ValidateRecords(checks); err != nil {
				t.Fatal(err)
			}
		}); n > 1 {
			t.Errorf("ValidateRecords %v: %.1f allocs", c, n)
		}
	}
}
