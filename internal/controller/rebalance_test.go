package controller

import "testing"

func TestRebalanceChanges(t *testing.T) {
	// Broker 1 prefers a/0-a/3 and leads 1 of them; broker 2 prefers b/0
	// to b/9 and leads all but b/9; broker 3 is fenced.
	a := []part{
		{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 2}, // moves back
		{replicas: []int32{1, 2}, isr: []int32{2}, leader: 2},    // 1 out of the ISR: stays
		{replicas: []int32{1, 2}, isr: []int32{1, 2}, leader: 1}, // led by 1 already
		{replicas: []int32{1, 3}, isr: []int32{1, 3}, leader: 3}, // moves back from fenced 3
	}
	var b []part
	for i := 0; i < 10; i++ {
		b = append(b, part{replicas: []int32{2, 1}, isr: []int32{2, 1}, leader: 2})
	}
	b[9].leader = 1
	im := testImage(3, []int32{3}, a, b, []part{
		{replicas: []int32{3, 1}, isr: []int32{3, 1}, leader: 1},  // c/0: 3 is fenced
		{replicas: []int32{2, 1}, isr: []int32{2, 1}, leader: -1}, // c/1: leaderless, left alone
	})
	// 10%: broker 1 leads 1 of its 4 (3 off: 75%), broker 2 all but 1 of
	// its 11 (9% off).
	want := "a/0 leader=1 isr=-\na/3 leader=1 isr=-\n"
	if got := show(im, RebalanceChanges(im, 10)); got != want {
		t.Errorf("10%%:\n%s\nwant:\n%s", got, want)
	}
	// 0%: every imbalanced partition whose preferred replica can lead.
	want = "a/0 leader=1 isr=-\na/3 leader=1 isr=-\nb/9 leader=2 isr=-\n"
	if got := show(im, RebalanceChanges(im, 0)); got != want {
		t.Errorf("0%%:\n%s\nwant:\n%s", got, want)
	}
	if got := RebalanceChanges(im, 75); len(got) != 0 {
		t.Errorf("75%%: %s", show(im, got))
	}
}
