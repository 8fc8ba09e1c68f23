package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPerfHistBuckets(t *testing.T) {
	// Buckets are ordered, contiguous and hold their values.
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 513, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, math.MaxInt64, math.MaxUint64} {
		b := perfHistBucket(v)
		if b < prev || b >= perfHistBuckets {
			t.Fatalf("bucket(%d) = %d after %d (of %d)", v, b, prev, perfHistBuckets)
		}
		prev = b
		if up := perfHistUpper(b); up < v {
			t.Errorf("upper(bucket(%d)) = %d < %d", v, up, v)
		}
		if b > 0 && perfHistUpper(b-1) >= v {
			t.Errorf("%d also fits bucket %d (upper %d)", v, b-1, perfHistUpper(b-1))
		}
	}
	for b := 1; b < perfHistBuckets; b++ {
		if perfHistBucket(perfHistUpper(b-1)+1) != b {
			t.Fatalf("bucket %d does not start right after bucket %d", b, b-1)
		}
	}
}

func TestPerfHistQuantiles(t *testing.T) {
	// Against sorted samples: log-uniform latencies from 1 µs to 10 s.
	r := rand.New(rand.NewPCG(1, 2))
	var h perfHist
	samples := make([]time.Duration, 100000)
	for i := range samples {
		d := time.Duration(math.Exp(r.Float64()*math.Log(1e10/1e3)) * 1e3)
		samples[i] = d
		h.record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0, 0.5, 0.95, 0.99, 0.999, 1} {
		rank := max(1, int(math.Ceil(q*float64(len(samples)))))
		exact := samples[rank-1]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/128 {
			t.Errorf("q%v = %v, exact %v: more than 1/128 off or below", q, got, exact)
		}
	}
	if h.max != samples[len(samples)-1] || h.quantile(1) != h.max {
		t.Errorf("max %v, quantile(1) %v, want %v", h.max, h.quantile(1), samples[len(samples)-1])
	}
	var empty perfHist
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("empty histogram reports latency")
	}
}
