package main

import (
	"fmt"
	"math"
	"sort"
)

// sample is one metric's values over the repetitions of a run, in order.
type sample []float64

func (s sample) sorted() []float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	return c
}

// median of the values; NaN when there are none.
func (s sample) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := s.sorted()
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

func (s sample) min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return s.sorted()[0]
}

func (s sample) max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return s.sorted()[len(s)-1]
}

// spread is (max-min)/median, the relative width of the values.
func (s sample) spread() float64 {
	m := s.median()
	if len(s) < 2 || m == 0 {
		return 0
	}
	return (s.max() - s.min()) / m
}

// ratios divides a by b repetition by repetition: a[i] and b[i] ran next
// to each other, so the machine's drift between repetitions cancels.
func ratios(a, b sample) sample {
	var r sample
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

// fmtMed prints the median with the spread, e.g. "512.3 ±4%".
func fmtMed(s sample, prec int) string {
	if len(s) == 0 {
		return "-"
	}
	m := s.median()
	if len(s) < 2 {
		return fmt.Sprintf("%.*f", prec, m)
	}
	return fmt.Sprintf("%.*f ±%.0f%%", prec, m, 100*s.spread()/2)
}

// fmtRatio prints the median ratio and the range of per-repetition
// ratios, e.g. "1.32x (1.20-1.41)".
func fmtRatio(r sample) string {
	if len(r) == 0 {
		return "-"
	}
	if len(r) < 2 {
		return fmt.Sprintf("%.2fx", r.median())
	}
	return fmt.Sprintf("%.2fx (%.2f-%.2f)", r.median(), r.min(), r.max())
}
