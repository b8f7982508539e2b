package consumers

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func testSeeds() [2]maphash.Seed { return [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()} }

func TestDedupeWindowByArrival(t *testing.T) {
	t.Parallel()
	d := newDedupe(time.Hour, 1_000_000, testSeeds())
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Unix()
	if d.seen("a", t0) {
		t.Fatal("first sight of a reported as duplicate")
	}
	if !d.seen("a", t0+1) {
		t.Fatal("second sight of a not reported")
	}
	// Just under an hour of arrival time later: still remembered.
	d.seen("b", t0+59*60)
	if !d.seen("a", t0+59*60) {
		t.Error("a forgotten within the 1h window")
	}
	// Two hours after its last sighting: forgotten, and the window moved.
	d.seen("c", t0+59*60+2*3600)
	if d.seen("a", t0+59*60+2*3600) {
		t.Error("a remembered 2h after it was last seen with a 1h window")
	}
}

// Every id is remembered for at least the window after it arrived, whatever
// the arrival times of the ids around it.
func TestDedupeRemembersAtLeastTheWindow(t *testing.T) {
	t.Parallel()
	const window = time.Hour
	d := newDedupe(window, 1_000_000, testSeeds())
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Unix()
	// One id every 7 s for 3 h; every earlier id within the window must be
	// a duplicate when it comes again.
	for i := 0; i < 3*3600/7; i++ {
		at := t0 + int64(i)*7
		if d.seen(fmt.Sprint("id-", i), at) {
			t.Fatalf("fresh id %d reported as duplicate", i)
		}
		back := i - int(window/time.Second)/7 + 1 // the oldest id within the window
		if back >= 0 && !d.seen(fmt.Sprint("id-", back), at) {
			t.Fatalf("at %ds, id %d (arrived %ds before) was forgotten inside the %s window", at-t0, back, (i-back)*7, window)
		}
	}
}

// A retry is a duplicate whatever its event time: the window is arrival
// time, so an event from yesterday resent a few minutes later is caught
// (the old rule, by event time, never remembered it).
func TestDedupeIgnoresEventTime(t *testing.T) {
	t.Parallel()
	d := newDedupe(time.Hour, 1_000_000, testSeeds())
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Unix()
	for i := 0; i < 1000; i++ {
		d.seen(fmt.Sprint("live-", i), now+int64(i))
	}
	// A delayed event (its event time is 30 h old) arrives, then its retry.
	if d.seen("backfill-1", now+1000) {
		t.Fatal("first sight of a delayed event reported as duplicate")
	}
	if !d.seen("backfill-1", now+1300) {
		t.Error("the retry of a delayed event was not recognised")
	}
	// Arrival times that go backwards (another producer's clock) keep the
	// window where it is: earlier ids are still remembered.
	if d.seen("skewed", now-600) {
		t.Fatal("fresh id with an earlier arrival time reported as duplicate")
	}
	if !d.seen("live-999", now-600) || !d.seen("skewed", now+1400) {
		t.Error("ids forgotten after an arrival time went backwards")
	}
}

func TestDedupeBoundedMemory(t *testing.T) {
	t.Parallel()
	const max = 4000
	d := newDedupe(time.Hour, max, testSeeds())
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 100_000; i++ {
		d.seen(fmt.Sprint("id-", i), t0.Add(time.Duration(i)*time.Millisecond).Unix())
		if d.size() > max {
			t.Fatalf("after %d ids the set holds %d > max %d", i+1, d.size(), max)
		}
	}
	if d.evicted == 0 {
		t.Error("no early eviction counted although the ids exceeded max")
	}
	// The most recent ids are still recognised.
	if !d.seen("id-99999", t0.Add(100*time.Second).Unix()) {
		t.Error("the newest id was forgotten")
	}
}

func TestCommitMeta(t *testing.T) {
	t.Parallel()
	for _, ms := range []int64{0, 1, 1764410000123} {
		got, ok := parseCommitMeta(commitMeta(ms))
		if !ok || got != ms {
			t.Errorf("parseCommitMeta(commitMeta(%d)) = %d, %v", ms, got, ok)
		}
	}
	for _, s := range []string{"", "member-1", "costpipe/1 t=", "costpipe/1 t=-5", "costpipe/1 t=12x", "costpipe/2 t=5"} {
		if _, ok := parseCommitMeta(s); ok {
			t.Errorf("parseCommitMeta(%q) accepted", s)
		}
	}
}

// Large sets live off the Go heap (Linux): they grow, are dropped with their
// generation and are replaced whole without losing or inventing an id.
func TestDedupeLargeSetsOffHeap(t *testing.T) {
	t.Parallel()
	const max = 1_000_000 // 250,000 ids per generation: 512Ki slots, 8 MiB
	d := newDedupe(time.Hour, max, testSeeds())
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).Unix()
	id := func(i int) string { return fmt.Sprintf("id-%07d", i) }
	const n = 600_000 // gens[0] fills and a new generation starts early twice
	for i := range n {
		if d.seen(id(i), t0) {
			t.Fatalf("new id %d reported as a duplicate", i)
		}
	}
	if runtime.GOOS == "linux" && d.gens[1].unmap == nil {
		t.Error("a full generation of 250,000 ids is on the Go heap")
	}
	for i := range n {
		if !d.seen(id(i), t0) {
			t.Fatalf("id %d forgotten within the window", i)
		}
	}
	// Three generations of arrival time later every set was dropped (and
	// unmapped): the ids are forgotten, and the window works on.
	later := t0 + 3*3600
	d.seen("another", later) // moves the window
	for i := range 1000 {
		if d.seen(id(i), later) {
			t.Fatalf("id %d remembered 3 h later with a 1 h window", i)
		}
	}
	if !d.seen(id(0), later) || d.size() != 1001 {
		t.Fatalf("after the window moved: size %d, want 1001", d.size())
	}
	// A window replaced whole is unmapped by its cleanup.
	d = nil
	runtime.GC()
}

// The window behaves as a plain model of its rule: generations of arrival
// time, each a set of ids, the oldest dropped as time moves on or when the
// newest is full; an id is a duplicate while any generation holds it. Random
// arrivals (repeats of recent and old ids, time that jumps, stalls and goes
// backwards, bursts past the bound) must get the same answers, and the
// window as many ids.
func TestDedupeMatchesModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	const max, window = 2000, 30 * 60 // 500 ids per generation, 10 min each
	d := newDedupe(window*time.Second, max, testSeeds())
	var gens [dedupeGenerations]map[string]bool
	for i := range gens {
		gens[i] = map[string]bool{}
	}
	shift := func(n int64) {
		for ; n > 0; n-- {
			copy(gens[1:], gens[:dedupeGenerations-1])
			gens[0] = map[string]bool{}
		}
	}
	span := int64(window / (dedupeGenerations - 1))
	at, genOf, started := int64(1_000_000), int64(0), false
	next := 0
	for step := range 400_000 {
		switch r := rng.IntN(1000); {
		case r < 5:
			at += rng.Int64N(3 * span) // a jump, sometimes past the window
		case r < 10:
			at -= rng.Int64N(span) // a producer's clock behind
		case r < 600:
			at += rng.Int64N(2)
		}
		var id string
		if next == 0 || rng.IntN(4) > 0 {
			id = fmt.Sprint("id-", next)
			next++
		} else {
			id = fmt.Sprint("id-", next-1-rng.IntN(min(next, 3000)))
		}
		// The model: a duplicate while any generation holds the id;
		// otherwise the window moves to the id's arrival time, a full
		// newest generation makes way for a new one, and the id joins the
		// newest.
		want := false
		for _, m := range gens {
			want = want || m[id]
		}
		if !want {
			g := at / span
			if !started {
				started, genOf = true, g
			}
			if g > genOf {
				shift(g - genOf)
				genOf = g
			}
			if len(gens[0]) >= max/dedupeGenerations {
				shift(1)
			}
			gens[0][id] = true
		}
		if got := d.seen(id, at); got != want {
			t.Fatalf("step %d: seen(%s, %d) = %v, the model says %v", step, id, at, got, want)
		}
		held := 0
		for _, m := range gens {
			held += len(m)
		}
		if d.size() != held {
			t.Fatalf("step %d: the window holds %d ids, the model %d", step, d.size(), held)
		}
	}
}
