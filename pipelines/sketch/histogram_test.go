package sketch

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// quantiles are the quantiles every data set is checked at.
var quantiles = []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1}

// logNormal returns a log-normal value with median m and shape sigma,
// clamped to the event contract [0, 24 h].
func logNormal(r *rand.Rand, m, sigma float64) float64 {
	return min(m*math.Exp(sigma*r.NormFloat64()), maxEventMS)
}

// dataSet is a named generator of n values.
type dataSet struct {
	name string
	gen  func(r *rand.Rand, n int) []float64
}

func fill(n int, f func() float64) []float64 {
	xs := make([]float64, n)
	for k := range xs {
		xs[k] = f()
	}
	return xs
}

// dataSets covers the shapes of latency data and the extremes of the range.
var dataSets = []dataSet{
	{"uniform-1s", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return 1000 * r.Float64() }) }},
	{"uniform-24h", func(r *rand.Rand, n int) []float64 {
		return fill(n, func() float64 { return maxEventMS * r.Float64() })
	}},
	{"lognormal-0.5", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return logNormal(r, 800, 0.5) }) }},
	{"lognormal-1", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return logNormal(r, 800, 1) }) }},
	{"lognormal-2", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return logNormal(r, 300, 2) }) }},
	{"lognormal-3", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return logNormal(r, 300, 3) }) }},
	{"bimodal", func(r *rand.Rand, n int) []float64 {
		return fill(n, func() float64 {
			if r.IntN(10) < 3 {
				return logNormal(r, 40, 0.3) // cache hits
			}
			return logNormal(r, 2500, 0.6)
		})
	}},
	{"constant", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return 1234.5 }) }},
	{"zeros", func(r *rand.Rand, n int) []float64 { return fill(n, func() float64 { return 0 }) }},
	{"with-zeros", func(r *rand.Rand, n int) []float64 {
		return fill(n, func() float64 {
			if r.IntN(10) == 0 {
				return 0
			}
			return logNormal(r, 500, 1)
		})
	}},
	{"extremes", func(r *rand.Rand, n int) []float64 {
		return fill(n, func() float64 {
			switch r.IntN(4) {
			case 0:
				return 1e-3
			case 1:
				return maxEventMS
			case 2:
				return MinValue
			}
			return math.Exp(r.Float64()*(math.Log(maxEventMS)-math.Log(1e-3))) * 1e-3
		})
	}},
}

// exactQuantile is the exact sample quantile with the rank definition of
// Quantile; sorted must be sorted.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[rank(q, uint64(len(sorted)))-1]
}

// withinAlpha reports whether est answers the exact value x: within Alpha
// relative error, or 0 for values below MinValue.
func withinAlpha(est, x float64) bool {
	if x < MinValue {
		return est == 0
	}
	return math.Abs(est-x) <= relTol*x
}

func histogramOf(xs []float64) *Histogram {
	h := &Histogram{}
	for _, x := range xs {
		h.Add(x)
	}
	return h
}

func arraysOf(h *Histogram) ([]int16, []uint64) {
	return h.AppendArrays(nil, nil)
}

// equalHistograms fails the test unless a and b have identical buckets.
func equalHistograms(t *testing.T, what string, a, b *Histogram) {
	t.Helper()
	ai, ac := arraysOf(a)
	bi, bc := arraysOf(b)
	if a.Count() != b.Count() || !slices.Equal(ai, bi) || !slices.Equal(ac, bc) {
		t.Fatalf("%s: histograms differ:\n n=%d %v %v\n n=%d %v %v", what, a.Count(), ai, ac, b.Count(), bi, bc)
	}
}

// checkInvariants fails the test unless h is well formed: indices strictly
// ascending and valid, counts non-zero and summing to Count.
func checkInvariants(t *testing.T, h *Histogram) {
	t.Helper()
	idx, cnt := arraysOf(h)
	var sum uint64
	for k, i := range idx {
		if !validIndex(i) || (k > 0 && idx[k-1] >= i) || cnt[k] == 0 {
			t.Fatalf("malformed histogram at position %d: %v %v", k, idx, cnt)
		}
		sum += cnt[k]
	}
	if sum != h.Count() {
		t.Fatalf("counts sum to %d, Count() = %d", sum, h.Count())
	}
	if len(h.idx) != len(h.cnt)+len(h.wide) || (h.cnt != nil && h.wide != nil) || cap(h.idx) != cap(h.cnt)+cap(h.wide) {
		t.Fatalf("inconsistent storage: len %d/%d/%d cap %d/%d/%d", len(h.idx), len(h.cnt), len(h.wide), cap(h.idx), cap(h.cnt), cap(h.wide))
	}
}

// TestQuantileErrorBound is the accuracy property: on every data set, every
// quantile is within Alpha of the exact sample quantile of the same rank.
func TestQuantileErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	worst := 0.0
	checked := 0
	for _, ds := range dataSets {
		for _, n := range []int{1, 2, 3, 10, 100, 1000, 10000, 100000} {
			for rep := range 3 {
				xs := ds.gen(r, n)
				h := histogramOf(xs)
				checkInvariants(t, h)
				if h.Count() != uint64(n) {
					t.Fatalf("%s n=%d: Count() = %d", ds.name, n, h.Count())
				}
				slices.Sort(xs)
				for _, q := range quantiles {
					est, ok := h.Quantile(q)
					x := exactQuantile(xs, q)
					if !ok || !withinAlpha(est, x) {
						t.Fatalf("%s n=%d rep %d: Quantile(%v) = %v, %v; exact %v", ds.name, n, rep, q, est, ok, x)
					}
					if x > 0 {
						worst = max(worst, math.Abs(est-x)/x)
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d quantiles checked, worst relative error %.12f", checked, worst)
}

// TestQuantileAllRanks checks every rank of a small data set, not only the
// usual quantiles: q = k/n for k = 0..n and just around them.
func TestQuantileAllRanks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := fill(997, func() float64 { return logNormal(r, 800, 1.5) })
	h := histogramOf(xs)
	slices.Sort(xs)
	n := float64(len(xs))
	for k := 0; k <= len(xs); k++ {
		for _, q := range []float64{float64(k) / n, math.Nextafter(float64(k)/n, 0), math.Nextafter(float64(k)/n, 2)} {
			est, _ := h.Quantile(q)
			if x := exactQuantile(xs, q); !withinAlpha(est, x) {
				t.Fatalf("Quantile(%v) = %v, exact %v", q, est, x)
			}
		}
	}
}

// TestQuantileEdgeCases covers the empty histogram, NaN and q outside [0,1].
func TestQuantileEdgeCases(t *testing.T) {
	var h Histogram
	if v, ok := h.Quantile(0.5); ok || v != 0 {
		t.Fatalf("empty: Quantile = %v, %v; want 0, false", v, ok)
	}
	for _, x := range []float64{5, 1, 100} {
		h.Add(x)
	}
	if _, ok := h.Quantile(math.NaN()); ok {
		t.Fatalf("Quantile(NaN) ok")
	}
	for _, tc := range []struct{ q, want float64 }{
		{-1, 1}, {0, 1}, {0.33, 1}, {0.34, 5}, {0.5, 5}, {0.66, 5}, {0.67, 100}, {1, 100}, {7, 100}, {math.Inf(1), 100}, {math.Inf(-1), 1},
	} {
		v, ok := h.Quantile(tc.q)
		if !ok || v != Value(Index(tc.want)) {
			t.Errorf("Quantile(%v) = %v, %v; want %v", tc.q, v, ok, Value(Index(tc.want)))
		}
	}
}

// split distributes xs over k parts at random.
func split(r *rand.Rand, xs []float64, k int) [][]float64 {
	parts := make([][]float64, k)
	for _, x := range xs {
		p := r.IntN(k)
		parts[p] = append(parts[p], x)
	}
	return parts
}

// TestMergeEqualsWhole is the mergeability property: split into k parts,
// sketched separately and merged in any order and any tree shape, or summed
// as ClickHouse's sumMap sums concatenated arrays, the result has exactly
// the buckets of the whole data set.
func TestMergeEqualsWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, ds := range dataSets {
		for _, k := range []int{1, 2, 3, 8, 31} {
			xs := ds.gen(r, 5000)
			whole := histogramOf(xs)
			parts := split(r, xs, k)
			hs := make([]*Histogram, k)
			for p := range parts {
				hs[p] = histogramOf(parts[p])
			}
			what := fmt.Sprintf("%s k=%d", ds.name, k)

			// Sequential, random order, into the zero value.
			var seq Histogram
			for _, p := range r.Perm(k) {
				seq.Merge(hs[p])
			}
			checkInvariants(t, &seq)
			equalHistograms(t, what+" sequential", whole, &seq)

			// Random tree: merge random pairs of partial results.
			pool := make([]*Histogram, k)
			for p := range hs {
				pool[p] = &Histogram{}
				pool[p].Merge(hs[p])
			}
			for len(pool) > 1 {
				a := r.IntN(len(pool))
				b := r.IntN(len(pool) - 1)
				if b >= a {
					b++
				}
				pool[a].Merge(pool[b])
				checkInvariants(t, pool[a])
				pool = slices.Delete(pool, b, b+1)
			}
			equalHistograms(t, what+" tree", whole, pool[0])

			// ClickHouse: concatenated arrays of the parts (unsorted,
			// repeated indices), and a sumMap-style sorted sum.
			var idx []int16
			var cnt []uint64
			sums := map[int16]uint64{}
			for _, p := range r.Perm(k) {
				pi, pc := arraysOf(hs[p])
				idx, cnt = append(idx, pi...), append(cnt, pc...)
				for j := range pi {
					sums[pi[j]] += pc[j]
				}
			}
			cat, err := FromArrays(idx, cnt)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, cat)
			equalHistograms(t, what+" concatenated arrays", whole, cat)
			var si []int16
			var sc []uint64
			for _, i := range slices.Sorted(func(yield func(int16) bool) {
				for i := range sums {
					if !yield(i) {
						return
					}
				}
			}) {
				si, sc = append(si, i), append(sc, sums[i])
			}
			summed, err := FromArrays(si, sc)
			if err != nil {
				t.Fatal(err)
			}
			equalHistograms(t, what+" sumMap", whole, summed)

			for _, q := range quantiles {
				a, _ := whole.Quantile(q)
				b, _ := cat.Quantile(q)
				if a != b {
					t.Fatalf("%s: Quantile(%v) whole %v, merged %v", what, q, a, b)
				}
			}
		}
	}
}

// TestArraysRoundTrip checks AppendArrays → FromArrays and that
// AppendArrays appends.
func TestArraysRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	h := histogramOf(fill(3000, func() float64 { return logNormal(r, 800, 1) }))
	idx, cnt := h.AppendArrays([]int16{1, 2}, []uint64{3})
	if idx[0] != 1 || idx[1] != 2 || cnt[0] != 3 || len(idx) != len(cnt)+1 {
		t.Fatalf("AppendArrays did not append to the given slices")
	}
	back, err := FromArrays(idx[2:], cnt[1:])
	if err != nil {
		t.Fatal(err)
	}
	equalHistograms(t, "round trip", h, back)
}

// TestFromArraysInputs covers what FromArrays accepts and rejects.
func TestFromArraysInputs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		idx      []int16
		cnt      []uint64
		wantErr  string
		wantIdx  []int16
		wantCnt  []uint64
		wantWide bool
	}{
		{name: "empty", idx: nil, cnt: nil},
		{name: "length mismatch", idx: []int16{1, 2}, cnt: []uint64{1}, wantErr: "2 bucket indices but 1 counts"},
		{name: "index too large", idx: []int16{1, 1201}, cnt: []uint64{1, 1}, wantErr: "bucket index 1201 at position 1"},
		{name: "index too small", idx: []int16{-691}, cnt: []uint64{1}, wantErr: "bucket index -691 at position 0"},
		{name: "overflow", idx: []int16{1, 2}, cnt: []uint64{math.MaxUint64, 1}, wantErr: "overflows uint64 at position 1"},
		{name: "sorted with zeros", idx: []int16{ZeroIndex, -5, 0, 7}, cnt: []uint64{2, 0, 3, 4},
			wantIdx: []int16{ZeroIndex, 0, 7}, wantCnt: []uint64{2, 3, 4}},
		{name: "unsorted duplicates", idx: []int16{7, 0, ZeroIndex, 7, 0, MaxIndex, MinIndex}, cnt: []uint64{1, 2, 3, 4, 0, 6, 7},
			wantIdx: []int16{ZeroIndex, MinIndex, 0, 7, MaxIndex}, wantCnt: []uint64{3, 7, 2, 5, 6}},
		{name: "wide", idx: []int16{3, 1, 3}, cnt: []uint64{math.MaxUint32, 5, 1},
			wantIdx: []int16{1, 3}, wantCnt: []uint64{5, math.MaxUint32 + 1}, wantWide: true},
		{name: "max total", idx: []int16{3, 4}, cnt: []uint64{math.MaxUint64 - 1, 1},
			wantIdx: []int16{3, 4}, wantCnt: []uint64{math.MaxUint64 - 1, 1}, wantWide: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := FromArrays(tc.idx, tc.cnt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "cannot decode histogram: ") {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, h)
			idx, cnt := arraysOf(h)
			if !slices.Equal(idx, tc.wantIdx) || !slices.Equal(cnt, tc.wantCnt) || (h.wide != nil) != tc.wantWide {
				t.Fatalf("got %v %v wide=%v, want %v %v wide=%v", idx, cnt, h.wide != nil, tc.wantIdx, tc.wantCnt, tc.wantWide)
			}
		})
	}
}

// TestWideCounts crosses the 32-bit total: counts widen and stay exact.
func TestWideCounts(t *testing.T) {
	var h Histogram
	h.AddN(10, math.MaxUint32-1)
	h.Add(Value(10))
	if h.wide != nil {
		t.Fatalf("widened at a total of MaxUint32")
	}
	h.Add(Value(11))
	if h.wide == nil {
		t.Fatalf("not widened above MaxUint32")
	}
	checkInvariants(t, &h)
	var o Histogram
	o.AddN(10, 7)
	o.AddN(ZeroIndex, 1)
	o.Merge(&h)
	o.Merge(&o) // doubles
	checkInvariants(t, &o)
	idx, cnt := arraysOf(&o)
	want := []uint64{2, 2 * (math.MaxUint32 + 7), 2}
	if !slices.Equal(idx, []int16{ZeroIndex, 10, 11}) || !slices.Equal(cnt, want) {
		t.Fatalf("got %v %v, want [ZeroIndex 10 11] %v", idx, cnt, want)
	}
	if v, _ := o.Quantile(1); v != Value(11) {
		t.Fatalf("max = %v, want %v", v, Value(11))
	}
	if v, _ := o.Quantile(0.5); v != Value(10) {
		t.Fatalf("median = %v, want %v", v, Value(10))
	}
	o.Reset()
	if o.wide != nil || o.Count() != 0 {
		t.Fatalf("Reset kept wide counts")
	}
	o.Add(1)
	checkInvariants(t, &o)

	// The uint64 total overflows: panic rather than wrap.
	mustPanic(t, "AddN overflow", func() {
		var x Histogram
		x.AddN(1, math.MaxUint64)
		x.AddN(2, 1)
	})
	mustPanic(t, "Add overflow", func() {
		var x Histogram
		x.AddN(1, math.MaxUint64)
		x.Add(1)
	})
	mustPanic(t, "Merge overflow", func() {
		var x, y Histogram
		x.AddN(1, math.MaxUint64)
		y.AddN(1, 1)
		x.Merge(&y)
	})
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// TestAddN covers AddN: zero counts are ignored, bad indices panic.
func TestAddN(t *testing.T) {
	var h Histogram
	h.AddN(5, 0)
	if h.Count() != 0 || len(h.idx) != 0 {
		t.Fatalf("AddN(…, 0) added a bucket")
	}
	h.AddN(5, 3)
	h.AddN(ZeroIndex, 2)
	h.AddN(MaxIndex, 1)
	h.AddN(5, 1)
	idx, cnt := arraysOf(&h)
	if !slices.Equal(idx, []int16{ZeroIndex, 5, MaxIndex}) || !slices.Equal(cnt, []uint64{2, 4, 1}) {
		t.Fatalf("got %v %v", idx, cnt)
	}
	mustPanic(t, "AddN(MaxIndex+1)", func() { h.AddN(MaxIndex+1, 1) })
	mustPanic(t, "AddN(MinIndex-1)", func() { h.AddN(MinIndex-1, 1) })
}

// TestMergeSpecialOperands covers nil, empty and self.
func TestMergeSpecialOperands(t *testing.T) {
	var h, empty Histogram
	h.Merge(nil)
	h.Merge(&empty)
	if h.Count() != 0 {
		t.Fatalf("merging nothing counted %d", h.Count())
	}
	for _, x := range []float64{0, 1, 1, 50} {
		h.Add(x)
	}
	h.Merge(&h)
	idx, cnt := arraysOf(&h)
	if !slices.Equal(idx, []int16{ZeroIndex, 0, Index(50)}) || !slices.Equal(cnt, []uint64{2, 4, 2}) || h.Count() != 8 {
		t.Fatalf("self-merge: got %v %v n=%d", idx, cnt, h.Count())
	}
	empty.Merge(&h)
	equalHistograms(t, "merge into empty", &h, &empty)
	h.Add(50) // the copy must not share storage
	if empty.Count() != 8 || empty.cnt[2] != 2 {
		t.Fatalf("merged copy shares storage with its source")
	}
}

// TestReset checks that Reset empties the histogram and keeps its storage.
func TestReset(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	xs := fill(1000, func() float64 { return logNormal(r, 800, 1) })
	h := histogramOf(xs)
	before := h.Bytes()
	h.Reset()
	if h.Count() != 0 || h.Bytes() != before {
		t.Fatalf("after Reset: Count %d, Bytes %d (before %d)", h.Count(), h.Bytes(), before)
	}
	if _, ok := h.Quantile(0.5); ok {
		t.Fatalf("Quantile ok after Reset")
	}
	for _, x := range xs {
		h.Add(x)
	}
	equalHistograms(t, "refilled", histogramOf(xs), h)
	if h.Bytes() != before {
		t.Fatalf("refilling after Reset grew the storage: %d → %d bytes", before, h.Bytes())
	}
}

// TestNoAllocations checks the hot paths: Add into known buckets, Index,
// Quantile and Merge of known buckets do not allocate.
func TestNoAllocations(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	xs := fill(10000, func() float64 { return logNormal(r, 800, 1) })
	h := histogramOf(xs)
	o := histogramOf(xs[:100])
	k := 0
	for name, f := range map[string]func(){
		"Add":      func() { h.Add(xs[k%len(xs)]); k++ },
		"Index":    func() { _ = Index(xs[k%len(xs)]); k++ },
		"Quantile": func() { _, _ = h.Quantile(0.99) },
		"Merge":    func() { h.Merge(o) },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s allocates %v times per call", name, a)
		}
	}
}

// footprint returns the average Bytes of histograms of n log-normal values
// (median 800 ms, shape sigma), the average number of distinct buckets, and
// what a dense window of uint32 counts spanning min..max bucket would take.
func footprint(n int, sigma float64) (bytes, buckets, dense float64) {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	const reps = 200
	for range reps {
		h := histogramOf(fill(n, func() float64 { return logNormal(r, 800, sigma) }))
		bytes += float64(h.Bytes())
		buckets += float64(len(h.idx))
		dense += float64(headerBytes + 4*(int(h.idx[len(h.idx)-1])-int(h.idx[0])+1))
	}
	return bytes / reps, buckets / reps, dense / reps
}

// TestFootprint bounds the memory of one key-minute's histogram: latencies
// of one model (σ = 0.5) must stay a few hundred bytes.
func TestFootprint(t *testing.T) {
	for _, tc := range []struct {
		n        int
		sigma    float64
		maxBytes float64
	}{
		{10, 0.5, 200},
		{100, 0.5, 600},
		{10000, 0.5, 1600},
		{100, 1, 800},
		{10000, 1, 2500},
	} {
		b, k, d := footprint(tc.n, tc.sigma)
		t.Logf("n=%d σ=%v: %.0f B, %.1f buckets (dense uint32 window: %.0f B)", tc.n, tc.sigma, b, k, d)
		if b > tc.maxBytes {
			t.Errorf("n=%d σ=%v: %.0f bytes per histogram, want ≤ %.0f", tc.n, tc.sigma, b, tc.maxBytes)
		}
	}
}
