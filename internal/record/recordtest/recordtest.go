// Package recordtest builds v2 record batches for tests through
// record.Build, which uses franz-go's kmsg encoder, so fixtures are not
// hand-rolled.
package recordtest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/record"
)

// Record is one record of a batch to build. Timestamp is absolute (ms).
type Record struct {
	Key, Value []byte
	Timestamp  int64
	Headers    []kmsg.Header
}

// Options describe a batch; see record.BuildOptions.
type Options = record.BuildOptions

// Build encodes recs as one batch, failing the test on error.
func Build(tb testing.TB, opts Options, recs ...Record) record.Batch {
	tb.Helper()
	nr := make([]record.NewRecord, len(recs))
	for i, r := range recs {
		nr[i] = record.NewRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		for _, h := range r.Headers {
			nr[i].Headers = append(nr[i].Headers, record.Header{Key: h.Key, Value: h.Value})
		}
	}
	b, err := record.Build(opts, nr...)
	if err != nil {
		tb.Fatalf("recordtest: %v", err)
	}
	return b
}

// Values builds an uncompressed batch with one record per value, all at
// timestamp ts.
func Values(tb testing.TB, ts int64, values ...string) record.Batch {
	tb.Helper()
	recs := make([]Record, len(values))
	for i, v := range values {
		recs[i] = Record{Value: []byte(v), Timestamp: ts}
	}
	return Build(tb, Options{}, recs...)
}
