//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it.

package kafka

import "testing"

// TestProduceFetchAllocsConstant holds the broker to issue 6: in the steady
// state one Produce or one Fetch request costs the same allocations whatever
// the number of records in its batches (the broker validates a batch's CRC
// over its bytes and sends stored batches as file regions, never touching
// records one by one), and no more than a small fixed number per request.
// BenchmarkProduceAllocs and BenchmarkFetchAllocs show the figures.
func TestProduceFetchAllocsConstant(t *testing.T) {
	const partitions = 2
	// maxAllocs bounds one request over two partitions: today's counts
	// (kmsg's request and response structs, the response topics, a
	// fetch's wait channel) with some headroom, so that a regression to
	// per-partition buffers or per-request growth shows here.
	maxAllocs := map[string]float64{"produce": 16, "fetch": 24}
	measure := func(api string, records int) float64 {
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
		few, many := measure(api, 10), measure(api, 1000)
		t.Logf("%s: %.0f allocs/request with 10 records per batch, %.0f with 1000", api, few, many)
		// One allocation of slack: a background goroutine (the log's
		// flusher, a group timer) can allocate during the run.
		if many > few+1 {
			t.Errorf("%s: %.0f allocs/request with 1000 records, %.0f with 10: per-record work crept in", api, many, few)
		}
		if many > maxAllocs[api] {
			t.Errorf("%s: %.0f allocs/request over %d partitions, want at most %.0f", api, many, partitions, maxAllocs[api])
		}
	}
}
