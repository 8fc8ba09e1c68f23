package kafka

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/server"
)

// TestFetchResponseAssembly reads a Fetch response as a client would: the
// byte parts and the file regions (what the server sends with sendfile)
// joined and decoded by kmsg, at versions without and with flexible
// encoding and topic IDs. Every partition with data gets its batch back
// whole; a partition fetched at its log end gets none; and responses taken
// from the pool before earlier ones are released stay intact.
func TestFetchResponseAssembly(t *testing.T) {
	const partitions = 3
	ab := newAllocBroker(t, partitions)
	pr := ab.produceRequest(t, 5)
	checkProduce(t, pr, ab.handle(t, pr))
	batch := allocBatch(t, 5)
	batch.SetBaseOffset(0)
	batch.SetPartitionLeaderEpoch(0)
	for _, version := range []int16{4, 11, 12, 13, apis[1].max} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			r := ab.fetchRequest()
			req := kmsg.NewPtrFetchRequest()
			req.Version = apis[1].max
			if err := req.ReadFrom(r.Body); err != nil {
				t.Fatal(err)
			}
			req.Version = version
			req.Topics[0].Topic = ab.topic.Name         // v13+ carry only the ID
			req.Topics[0].Partitions[1].FetchOffset = 5 // the log end: nothing yet
			r.APIVersion, r.Body = version, req.AppendTo(nil)
			// Two responses in flight at once, then a third after
			// both went back to the pool.
			first, second := ab.handle(t, r), ab.handle(t, r)
			checkAssembled(t, version, first, batch)
			checkAssembled(t, version, second, batch)
			release(first)
			release(second)
			third := ab.handle(t, r)
			checkAssembled(t, version, third, batch)
			release(third)
		})
	}
}

func checkAssembled(t *testing.T, version int16, resp *server.Response, batch []byte) {
	t.Helper()
	var body []byte
	for _, p := range resp.Parts {
		if p.Region.File == nil {
			body = append(body, p.Bytes...)
			continue
		}
		b := make([]byte, p.Region.Len)
		if _, err := p.Region.File.ReadAt(b, p.Region.Pos); err != nil {
			t.Fatal(err)
		}
		body = append(body, b...)
	}
	if want := version >= 12; resp.HeaderFlexible != want {
		t.Errorf("HeaderFlexible %v at v%d", resp.HeaderFlexible, version)
	}
	kresp := kmsg.NewPtrFetchResponse()
	kresp.Version = version
	if err := kresp.ReadFrom(body); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 3 {
		t.Fatalf("response shape: %+v", kresp.Topics)
	}
	for i, p := range kresp.Topics[0].Partitions {
		if p.Partition != int32(i) || p.ErrorCode != 0 || p.HighWatermark != 5 {
			t.Errorf("partition %d: error %d, high watermark %d", p.Partition, p.ErrorCode, p.HighWatermark)
		}
		want := batch
		if i == 1 {
			want = nil
		}
		if !bytes.Equal(p.RecordBatches, want) {
			t.Errorf("partition %d: %d record bytes, want %d", i, len(p.RecordBatches), len(want))
		}
	}
}
