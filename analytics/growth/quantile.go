package growth

import "math"

// quantile is the p-quantile of sorted, non-empty xs, interpolated
// linearly between order statistics at position p·(n+1) from 1 (Hyndman
// and Fan's type 6) and clamped to [xs[0], xs[n−1]]: the k-th smallest of
// n errors is the k/(n+1) quantile, the expected share of the
// distribution below it, so that an interval taken from a few errors
// keeps its nominal coverage for the next one (type 7, R's and NumPy's
// default, is too narrow with few).
func quantile(xs []float64, p float64) float64 {
	n := len(xs)
	pos := p*float64(n+1) - 1
	i := int(math.Floor(pos))
	if i >= n-1 {
		return xs[n-1]
	}
	if i < 0 {
		return xs[0]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}

// above is the share of the distribution whose quantile function is
// quantile(xs, ·) lying above v: 1 − p where quantile(xs, p) = v, so that
// above(xs, quantile(xs, p)) = 1 − p wherever quantile is strictly
// increasing; 1 below the smallest of xs and 0 from the largest on. xs is
// sorted and non-empty.
func above(xs []float64, v float64) float64 {
	n := len(xs)
	switch {
	case math.IsNaN(v):
		return math.NaN()
	case v < xs[0]:
		return 1
	case v >= xs[n-1]:
		return 0
	}
	// xs[i] ≤ v < xs[i+1] for the last such i.
	i := 0
	for i+1 < n && xs[i+1] <= v {
		i++
	}
	pos := float64(i) + (v-xs[i])/(xs[i+1]-xs[i])
	return 1 - (pos+1)/float64(n+1)
}
