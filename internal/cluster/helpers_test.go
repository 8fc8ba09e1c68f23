package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/log"
	"github.com/strata-io/strata/internal/record"
)

const testNode = 1

func metaLogConfig() log.Config {
	cfg := log.DefaultConfig()
	cfg.FlushMessages = 1
	cfg.RetentionMs = -1
	return cfg
}

// openLog opens the metadata log in dir; the test closes it.
func openLog(t *testing.T, dir string) *log.Log {
	t.Helper()
	l, err := log.Open(dir, metaLogConfig(), log.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openStore opens a store over the log in dir, returning both; closeStore
// closes them as a clean shutdown does.
func openStore(t *testing.T, dir string, opts Options) (*Store, *log.Log) {
	t.Helper()
	l := openLog(t, dir)
	if opts.NodeID == 0 {
		opts.NodeID = testNode
	}
	s, err := Open(l, opts)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return s, l
}

func closeStore(t *testing.T, s *Store, l *log.Log) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// sameImage fails unless a and b hold the same metadata and end offset.
func sameImage(t *testing.T, a, b *Image) {
	t.Helper()
	if a.EndOffset != b.EndOffset || a.ProducerIDsEnd != b.ProducerIDsEnd || !reflect.DeepEqual(a.Records(), b.Records()) {
		t.Fatalf("images differ:\n%s\n%s", dump(a), dump(b))
	}
}

func dump(im *Image) string {
	out, _ := json.Marshal(struct {
		End, PIDs int64
		Recs      []records.Record
	}{im.EndOffset, im.ProducerIDsEnd, im.Records()})
	return string(out)
}

// logRecords decodes every record of the log, with its batch's base
// offset.
func logRecords(t *testing.T, l *log.Log) (recs []records.Record, batches []int64) {
	t.Helper()
	err := l.Scan(0, func(b record.Batch) error {
		batches = append(batches, b.BaseOffset())
		return b.ForEachRecord(func(r *record.Record) bool {
			rec, _, err := records.Decode(r.Value)
			if err != nil {
				t.Fatalf("offset %d: %v", r.Offset, err)
			}
			recs = append(recs, rec)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, batches
}

// metaRecord is a verbatim copy of the record type of metadata.go at
// 886126a, the last strata to write JSON metadata records; kept here so
// that the upgrade test does not depend on legacy.go's reading of it.
type metaRecord struct {
	Type       string             `json:"type"`
	Name       string             `json:"name"`
	ID         string             `json:"id,omitempty"`
	Partitions int32              `json:"partitions,omitempty"`
	Configs    map[string]*string `json:"configs,omitempty"`
	// BlockEnd is the end of a reserved producer id block.
	BlockEnd int64 `json:"block_end,omitempty"`
}

// legacyAppend writes a JSON metadata record exactly as strata before the
// KRaft records did (metadata.go at 886126a: json.Marshal of metaRecord,
// one record per batch, appended and then the high watermark moved).
func legacyAppend(t *testing.T, l *log.Log, mr metaRecord) {
	t.Helper()
	value, err := json.Marshal(mr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: value, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(b, 0); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermark(l.LogEndOffset())
}

func strp(s string) *string { return &s }

// legacyAppendRaw appends one record with value as its own batch.
func legacyAppendRaw(t *testing.T, l *log.Log, value []byte) {
	t.Helper()
	b, err := record.Build(record.BuildOptions{}, record.NewRecord{Value: value, Timestamp: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(b, 0); err != nil {
		t.Fatal(err)
	}
}

// local returns a local-mode store's committer.
func local(s *Store) *localLog { return s.c.(*localLog) }
