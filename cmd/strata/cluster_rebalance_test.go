package main

import (
	"fmt"
	"testing"
)

func TestPlanRebalance(t *testing.T) {
	a := func(topic string, p int32, replicas ...int32) assignment {
		return assignment{Topic: topic, Partition: p, Replicas: replicas}
	}
	for _, tc := range []struct {
		name    string
		brokers []int32
		parts   []assignment
		want    string
	}{
		{name: "one broker", brokers: []int32{1}, parts: []assignment{a("t", 0, 1)}, want: "[]"},
		{name: "balanced", brokers: []int32{1, 2}, parts: []assignment{a("t", 0, 1), a("t", 1, 2), a("t", 2, 1)}, want: "[]"},
		{
			name:    "all on one broker: spread, in place",
			brokers: []int32{1, 2, 3},
			parts:   []assignment{a("t", 0, 1), a("t", 1, 1), a("t", 2, 1), a("t", 3, 1)},
			want:    "[{t 0 [2]} {t 1 [3]}]",
		},
		{
			name:    "a new broker gets replicas, never two of one partition",
			brokers: []int32{1, 2, 3},
			parts:   []assignment{a("t", 0, 1, 2), a("t", 1, 2, 1), a("t", 2, 1, 2)},
			want:    "[{t 0 [3 2]} {t 1 [3 1]}]",
		},
		{
			name:    "replicas on a broker not listed (fenced) stay",
			brokers: []int32{1, 2},
			parts:   []assignment{a("t", 0, 3, 1), a("t", 1, 1), a("t", 2, 1)},
			want:    "[{t 0 [3 2]}]",
		},
		{
			name:    "full replica sets and one spare replica: within one, nothing to move",
			brokers: []int32{1, 2, 3},
			parts:   []assignment{a("t", 0, 1, 2, 3), a("t", 1, 1, 2, 3), a("t", 2, 1)},
			want:    "[]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := planRebalance(tc.brokers, tc.parts)
			if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && got == nil) {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
		})
	}
}
