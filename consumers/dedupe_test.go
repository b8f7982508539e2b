package consumers

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"
)

func TestDedupeWindow(t *testing.T) {
	d := newDedupe(time.Hour, 1_000_000, [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()})
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	if d.seen("a", t0) {
		t.Fatal("first sight of a reported as duplicate")
	}
	if !d.seen("a", t0.Add(time.Second)) {
		t.Fatal("second sight of a not reported")
	}
	// 40 minutes later (≤ (g-1)/g of the window): still remembered.
	d.seen("b", t0.Add(40*time.Minute))
	if !d.seen("a", t0.Add(40*time.Minute)) {
		t.Error("a forgotten after 40 minutes of a 1h window")
	}
	// Two hours later: forgotten, and the window moved.
	d.seen("c", t0.Add(2*time.Hour))
	if d.seen("a", t0.Add(2*time.Hour)) {
		t.Error("a remembered after 2h with a 1h window")
	}
	// An event older than the whole window is accepted and not remembered.
	if d.seen("old", t0) || d.seen("old", t0) {
		t.Error("an id older than the window was reported as duplicate")
	}
}

func TestDedupeBoundedMemory(t *testing.T) {
	const max = 4000
	d := newDedupe(time.Hour, max, [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()})
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 100_000; i++ {
		d.seen(fmt.Sprint("id-", i), t0.Add(time.Duration(i)*time.Millisecond))
		if d.size() > max {
			t.Fatalf("after %d ids the set holds %d > max %d", i+1, d.size(), max)
		}
	}
	if d.evicted == 0 {
		t.Error("no early eviction counted although the ids exceeded max")
	}
	// The most recent ids are still recognised.
	if !d.seen("id-99999", t0.Add(100*time.Second)) {
		t.Error("the newest id was forgotten")
	}
}
