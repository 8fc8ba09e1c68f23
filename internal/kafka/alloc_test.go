//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

package kafka

import "testing"

// TestProduceFetchAllocsConstant holds the broker to issue 6: in the steady
// state one Produce or one Fetch request costs the same allocations whatever
// the number of records in its batches (the broker validates a batch's CRC
// over its bytes and sends stored batches as file regions, never touching
// records one by one) and whatever the number of partitions of its topic,
// and no more than a small fixed number. BenchmarkProduceAllocs and
// BenchmarkFetchAllocs show the figures.
func TestProduceFetchAllocsConstant(t *testing.T) {
	// maxAllocs bounds one request: today's counts (kmsg's request and
	// response structs and their topic and partition slices, a fetch's
	// wait channel) with a little headroom.
	maxAllocs := map[string]float64{"produce": 10, "fetch": 12}
	measure := func(api string, partitions, records int) float64 {
		ab := newAllocBroker(t, partitions)
		pr := ab.produceRequest(t, records)
		checkProduce(t, pr, ab.handle(t, pr))
		r := pr
		if api == "fetch" {
			r = ab.fetchRequest()
			checkFetch(t, ab.handle(t, r), partitions, int64(len(allocBatch(t, records))))
		}
		for range 20 {
			ab.roundTrip(t, r) // warm the pools
		}
		return testing.AllocsPerRun(200, func() { ab.roundTrip(t, r) })
	}
	for _, api := range []string{"produce", "fetch"} {
		base := measure(api, 1, 10)
		for _, c := range []struct{ partitions, records int }{{1, 1000}, {8, 10}, {8, 1000}} {
			got := measure(api, c.partitions, c.records)
			t.Logf("%s: %.0f allocs/request over %d partitions of %d records (%.0f for 1 of 10)", api, got, c.partitions, c.records, base)
			// One allocation of slack: a background goroutine (the
			// log's flusher, a group timer) can allocate during the run.
			if got > base+1 {
				t.Errorf("%s: %.0f allocs/request over %d partitions of %d records, %.0f over 1 of 10: per-record or per-partition work crept in",
					api, got, c.partitions, c.records, base)
			}
			if got > maxAllocs[api] {
				t.Errorf("%s: %.0f allocs/request over %d partitions of %d records, want at most %.0f", api, got, c.partitions, c.records, maxAllocs[api])
			}
		}
	}
}
