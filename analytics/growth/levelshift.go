package growth

import (
	"math"
	"slices"
)

// LevelShift is a lasting step in a daily series's level that
// ForecastPeriod found and adjusted its history for.
type LevelShift struct {
	// DaysAgo is how many days before today the new level began: the
	// first day at the new level is history[len(history)−DaysAgo].
	DaysAgo int `json:"days_ago"`
	// Ratio is the new level over the old one (2: doubled), trend
	// excluded.
	Ratio float64 `json:"ratio"`
}

// Level-shift detection (see levelShifts).
const (
	// shiftBlock is the number of days at the new level a shift needs to
	// be seen: a week, so that every weekday has been seen at it.
	shiftBlock = 7
	// shiftZ is how many standard errors of a week's median the
	// shift's median seasonal log change must lie from the series's
	// usual one.
	shiftZ = 6
	// shiftMinLog is the smallest |ln ratio| adjusted for: ×1.25 or
	// ×0.8. A smaller step costs the forecast little and is hard to tell
	// from a change of trend.
	shiftMinLog = 0.22
	// maxShifts is the most shifts adjusted for in one history.
	maxShifts = 3
	// shiftQuiet is how small, as a share of a step's week of seasonal
	// log changes, the weeks before and after it must be: a step lifts
	// one week of them, a change of trend every week from some day on.
	shiftQuiet = 1.0 / 3
	// minShiftFinite is the fewest days of a shift's week that must have
	// usage, on the day and a week before, for it to be judged.
	minShiftFinite = 5
)

// seMedian7 is the standard error of the median of 7 independent normal
// draws, in units of their standard deviation (the exact value for n = 7;
// the large-n approximation √(π/2n) gives 0.474).
const seMedian7 = 0.459

// levelShifts finds lasting steps in the level of y and returns y with
// the days before each step rescaled to the level after it, and the steps
// found, latest first. y itself is not modified; without a step the
// result is y.
//
// Why: after a step (a new customer, a model switch, a price change) the
// history before it describes another series. Fitted on it as it is,
// Holt–Winters takes the jump partly for a trend and overshoots, and the
// backtest origins whose days straddle the step (up to 14 of 35) have
// errors of several days' spend that no honest interval covers: they
// drag the interval's median and its upper quantile far up. Rescaled, the
// history is the series as if it had always been at today's level — the
// usual intervention adjustment of level-shift regressors (X-13ARIMA-SEATS's
// LS) — and the methods, the backtest and the interval work as on a
// series without a step.
//
// The test works on the seasonal log changes d_t = ln y_t − ln y_{t−7}:
// a weekly pattern cancels in them, a steady trend makes them a constant
// (7 times the daily log rate), and a step of ratio r at day c makes the
// 7 values d_c … d_{c+6} — and only those — larger by ln r, whereas a
// change of trend lifts every later value and a one-day spike only two,
// a week apart (strongestStep). A step needs a whole week after it to be
// seen, and is adjusted for when its strength z is at least shiftZ and
// its ratio, the median of the trend-corrected changes between same
// weekdays 7 and 14 days apart across it (up to 21 pairs), at least
// shiftMinLog away from 1. The search is repeated on the adjusted series,
// up to maxShifts times. Days without usage have no log: pairs with one
// are left out, and zeros stay zeros.
//
// TestLevelShifts: on 3,000 series without a step (growth, doubling,
// weekly, flat, shrinking; ±15–40% noise) none was found, the largest z
// 4.9; a ×2, ×3 or ×0.5 step with ±15% noise is found in every seed from
// 7 days after it, on its day, its ratio within 20% and unbiased; with
// ±30% noise a ×2 step is found in about half the seeds. Out of sample
// the interval after a step then covers as without one
// (TestForecastOutOfSample).
func levelShifts(y []float64) ([]float64, []LevelShift) {
	n := len(y)
	if n < 2*shiftBlock+shiftBlock {
		return y, nil
	}
	var out []float64 // copy on the first step found
	var found []LevelShift
	cur := y
	l := make([]float64, n)
	d := make([]float64, n)
	for range maxShifts {
		for i, v := range cur {
			l[i] = math.NaN()
			if v > 0 {
				l[i] = math.Log(v)
			}
		}
		for t := range n {
			d[t] = math.NaN()
			if t >= shiftBlock {
				d[t] = l[t] - l[t-shiftBlock]
			}
		}
		c, z, mu := strongestStep(l, d)
		if c < 0 || z < shiftZ {
			break
		}
		// The ratio: trend-corrected changes across c between same
		// weekdays 7 and 14 days apart, the trend from the changes
		// outside the step's week (mu has the step in it).
		rest := make([]float64, 0, n)
		for t, v := range d {
			if !math.IsNaN(v) && (t < c || t >= c+shiftBlock) {
				rest = append(rest, v)
			}
		}
		slices.Sort(rest)
		mu = medianSorted(rest)
		pairs := make([]float64, 0, 3*shiftBlock)
		for _, lag := range []int{shiftBlock, 2 * shiftBlock} {
			for s := max(c-lag, 0); s < c; s++ {
				if t := s + lag; t < n && !math.IsNaN(l[t]) && !math.IsNaN(l[s]) {
					pairs = append(pairs, l[t]-l[s]-mu*float64(lag)/shiftBlock)
				}
			}
		}
		slices.Sort(pairs)
		lr := medianSorted(pairs)
		if math.Abs(lr) < shiftMinLog {
			break
		}
		if out == nil {
			out = slices.Clone(y)
			cur = out
		}
		r := math.Exp(lr)
		for i := range c {
			out[i] *= r
		}
		found = append(found, LevelShift{DaysAgo: n - c, Ratio: r})
	}
	if out == nil {
		return y, nil
	}
	// Latest first; a later shift found earlier was measured on a series
	// not yet adjusted for an earlier one, which its ratio does not see
	// (the ratio compares days near the shift only).
	slices.SortFunc(found, func(a, b LevelShift) int { return a.DaysAgo - b.DaysAgo })
	return out, found
}

// medianSorted is the median of sorted, non-empty xs.
func medianSorted(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// strongestStep is the day c at which a step in the level of l (log
// values, NaN where unknown) is most evident, with its strength z, or c
// −1 when no day looks like a step; mu is the median of d, the seasonal
// log changes of l (d_t = l_t − l_{t−7}): the trend of a week.
//
// For every c with a whole week after it, the step's size m there is the
// median of the trend-corrected changes l_t − l_s − (t−s)·mu/7 over the
// pairs of same weekdays across c (s < c ≤ t) 7 and 14 days apart, up to
// 21 pairs; z is |m| in standard errors: 1.2533 (the median's efficiency)
// times the standard error of the pairs' mean, √(Σ a_i²)·σ_l/N for N
// pairs in which day i appears with net coefficient a_i, σ_l = σ_d/√2 and
// σ_d from the median absolute deviation of d (robust to the step
// itself). A candidate's week of d (less mu) must have a median of at
// least shiftMinLog/2, its pairs one of at least shiftMinLog, and the
// medians of the weeks before and after its week must be within
// shiftQuiet of its week's: a step lifts one week of
// changes, a change of trend all of them from some day on. The median of
// pairs is nearly as large a few days off the step, so the day is then
// the one within 6 days whose week fits a step of size m best in d
// (least absolute deviation).
func strongestStep(l, d []float64) (c int, z, mu float64) {
	n := len(d)
	all := make([]float64, 0, n)
	for _, v := range d {
		if !math.IsNaN(v) {
			all = append(all, v)
		}
	}
	if len(all) < 3*shiftBlock {
		return -1, 0, 0
	}
	slices.Sort(all)
	mu = medianSorted(all)
	for i := range all {
		all[i] = math.Abs(all[i] - mu)
	}
	slices.Sort(all)
	sigmaL := 1.4826 * medianSorted(all) / math.Sqrt2
	if sigmaL == 0 {
		return -1, 0, mu
	}
	// wm[a] is the median of d[a:a+7] less mu, known (wok) with at
	// least minShiftFinite known values.
	wm, wok := make([]float64, n), make([]bool, n)
	week := make([]float64, 0, shiftBlock)
	for a := shiftBlock; a < n; a++ {
		week = week[:0]
		for _, v := range d[a:min(a+shiftBlock, n)] {
			if !math.IsNaN(v) {
				week = append(week, v)
			}
		}
		if len(week) >= minShiftFinite {
			slices.Sort(week)
			wm[a], wok[a] = medianSorted(week)-mu, true
		}
	}
	// quiet(b, w) is whether the week at b is unknown or its median lies
	// within shiftQuiet·|w| of 0.
	quiet := func(b int, w float64) bool {
		return b < shiftBlock || b >= n || !wok[b] || math.Abs(wm[b]) < shiftQuiet*math.Abs(w)
	}
	var step float64
	pairs := make([]float64, 0, 3*shiftBlock)
	coef := make([]float64, 4*shiftBlock) // net coefficient of day c−14+i
	c = -1
	for a := shiftBlock; a+shiftBlock <= n; a++ {
		// A step's week of d is as high as the step (in expectation):
		// weeks below half the smallest step are not looked at further.
		if !wok[a] || math.Abs(wm[a]) < shiftMinLog/2 {
			continue
		}
		pairs = pairs[:0]
		clear(coef)
		for _, lag := range []int{shiftBlock, 2 * shiftBlock} {
			for s := max(a-lag, 0); s < a; s++ {
				if t := s + lag; t < n && !math.IsNaN(l[t]) && !math.IsNaN(l[s]) {
					pairs = append(pairs, l[t]-l[s]-mu*float64(lag)/shiftBlock)
					coef[t-a+2*shiftBlock]++
					coef[s-a+2*shiftBlock]--
				}
			}
		}
		if len(pairs) < minShiftFinite {
			continue
		}
		slices.Sort(pairs)
		m := medianSorted(pairs)
		if math.Abs(m) < shiftMinLog {
			continue
		}
		ss := 0.0
		for _, v := range coef {
			ss += v * v
		}
		za := math.Abs(m) / (1.2533 * math.Sqrt(ss) * sigmaL / float64(len(pairs)))
		if za <= z {
			continue
		}
		// A step lifts the changes of its own week only; after (or
		// before) a change of trend the neighbouring weeks' are as high.
		if w := wm[a]; !quiet(a+shiftBlock, w) || !quiet(a-shiftBlock, w) {
			continue
		}
		c, z, step = a, za, m
	}
	if c < 0 {
		return -1, 0, mu
	}
	// The day: the week of d that fits a step of size m best (ties to
	// the nearest to c).
	best, bestC := math.Inf(1), c
	for _, off := range []int{0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6} {
		a := c + off
		if a < shiftBlock || a+shiftBlock > n {
			continue
		}
		dev := 0.0
		for t := max(c-shiftBlock+1, shiftBlock); t < min(c+2*shiftBlock-1, n); t++ {
			if !math.IsNaN(d[t]) {
				e := d[t] - mu
				if a <= t && t < a+shiftBlock {
					e -= step
				}
				dev += math.Abs(e)
			}
		}
		if dev < best {
			best, bestC = dev, a
		}
	}
	return bestC, z, mu
}
