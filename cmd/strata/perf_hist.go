package main

import (
	"math"
	"math/bits"
	"time"
)

// perfHist is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^perfHistSubBits nanoseconds have a bucket each, and every
// power of two above that is cut into 2^(perfHistSubBits-1) equal buckets, so a
// quantile is within 1/128 (0.8%) of the true sample at any magnitude while
// the memory stays fixed (7,424 counters, 58 KiB) however many records a
// run sends. Sorted samples would be exact but grow with the run, or lose
// the tail when sampled, which is what p99.9 is about.
//
// Not safe for concurrent use; each owner guards its own.
type perfHist struct {
	counts [perfHistBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	perfHistSubBits = 8
	perfHistSub     = 1 << perfHistSubBits // exact buckets below this many ns
	perfHistHalf    = perfHistSub / 2      // buckets per power of two above it
	perfHistBuckets = perfHistSub + (64-perfHistSubBits)*perfHistHalf
)

// perfHistBucket is the bucket of v nanoseconds (v >= 0).
func perfHistBucket(v uint64) int {
	if v < perfHistSub {
		return int(v)
	}
	e := bits.Len64(v) - perfHistSubBits // >= 1: how far v is shifted to keep 8 bits
	m := v >> e                          // in [perfHistHalf, perfHistSub)
	return perfHistSub + (e-1)*perfHistHalf + int(m-perfHistHalf)
}

// perfHistUpper is the largest value that falls in bucket i: a quantile is
// reported as the highest value equivalent to its bucket, as
// HdrHistogram's getValueAtPercentile does, so it never understates.
func perfHistUpper(i int) uint64 {
	if i < perfHistSub {
		return uint64(i)
	}
	e := (i-perfHistSub)/perfHistHalf + 1
	m := uint64((i-perfHistSub)%perfHistHalf + perfHistHalf)
	if e >= 64-perfHistSubBits && m == perfHistSub-1 {
		return math.MaxUint64
	}
	return (m+1)<<e - 1
}

// record adds one latency; negative ones (a clock that went backwards
// across processes) count as zero.
func (h *perfHist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[perfHistBucket(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// quantile returns the latency at or below which a fraction q of the
// samples lie (q in [0, 1]), clamped to the exact maximum.
func (h *perfHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			v := perfHistUpper(i)
			if v > uint64(h.max) {
				return h.max
			}
			return time.Duration(v)
		}
	}
	return h.max
}

func (h *perfHist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// perfLatency is the latency block of every perf --json report, in
// milliseconds.
type perfLatency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func (h *perfHist) summary() perfLatency {
	return perfLatency{
		P50:  perfMs(h.quantile(0.50)),
		P95:  perfMs(h.quantile(0.95)),
		P99:  perfMs(h.quantile(0.99)),
		P999: perfMs(h.quantile(0.999)),
		Max:  perfMs(h.max),
		Mean: perfMs(h.mean()),
	}
}

// perfMs is d in milliseconds rounded to the microsecond.
func perfMs(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}
