package growth

import "math"

// hourlyHoltWinters is Holt–Winters with a damped additive trend and two
// multiplicative seasons, the hour of the day and the hour of the week
// (Taylor 2003, "Short-term electricity demand forecasting using double
// seasonal exponential smoothing"), for hour t with hour of the day
// h = t mod 24 and of the week w = t mod 168:
//
//	ℓ_t   = α·y_t/(D_h·W_w) + (1−α)·(ℓ_{t−1} + φ·b_{t−1})
//	b_t   = β·(ℓ_t − ℓ_{t−1}) + (1−β)·φ·b_{t−1}
//	D_h  ← δ·y_t/(ℓ_t·W_w) + (1−δ)·D_h
//	W_w  ← ω·y_t/(ℓ_t·D_h) + (1−ω)·W_w
//	ŷ_{t+k} = (ℓ_t + (φ + … + φ^k)·b_t)·D_{(t+k) mod 24}·W_{(t+k) mod 168}
//
// Why two seasons: a single 168-hour season sees each of its hours once
// a week, so after a few weeks each factor rests on a handful of noisy
// hours; the daily profile D is updated every day from the same hour of
// every day, and W only carries what differs by weekday (a weekend at
// 40%, a Monday peak). Multiplicative for the reason holtWinters gives.
//
// The initial state comes from the first two weeks (hourInit hours): the
// level and trend from the weekly means, D from each hour of the day's
// share of its week, W from each day of the week's share (the same for
// the 24 hours of a day, refined by ω). The parameters are the point of
// hourGrid with the least one-step squared error before each origin, as
// holtWinters chooses them. Guards as holtWinters': the level never
// below 0, factors in [seasonMin, seasonMax], updated only when the level
// is above 0.
type hourlyHoltWinters struct{}

// hourGrid holds the candidate (α, β, δ, ω, φ): 4·3·2·2·3 = 144 points;
// φ is per hour, so 0.99 damps the trend to about 100 hours of it.
var hourGrid = func() [][5]float64 {
	var g [][5]float64
	for _, a := range []float64{0.02, 0.05, 0.1, 0.2} {
		for _, b := range []float64{0.001, 0.01, 0.05} {
			for _, d := range []float64{0.05, 0.2} {
				for _, w := range []float64{0.05, 0.2} {
					for _, p := range []float64{0.95, 0.99, 0.998} {
						g = append(g, [5]float64{a, b, d, w, p})
					}
				}
			}
		}
	}
	return g
}()

func (hourlyHoltWinters) name() string { return MethodHoltWinters }

func (hourlyHoltWinters) fit(y []float64, origins []int, out []hourState) {
	if len(origins) == 0 {
		return
	}
	best := make([]float64, len(origins))
	for i := range best {
		best[i] = math.Inf(1)
	}
	last := origins[len(origins)-1]
	if last >= hourInit {
		init := hourInitial(y)
		var s hourState
		for _, p := range hourGrid {
			alpha, beta, delta, omega, phi := p[0], p[1], p[2], p[3], p[4]
			s = init
			s.phi = phi
			l, b := s.level, s.trend
			sse := 0.0
			oi := 0
			for oi < len(origins) && origins[oi] < hourInit {
				oi++
			}
			for t := hourInit; ; t++ {
				for ; oi < len(origins) && origins[oi] == t; oi++ {
					if sse < best[oi] {
						best[oi] = sse
						s.level, s.trend = l, b
						out[oi] = s
					}
				}
				if t >= last {
					break
				}
				v, h, w := y[t], t%24, t%HoursPerWeek
				sd, sw := s.day[h], s.week[w]
				e := v - max(l+phi*b, 0)*sd*sw
				sse += e * e
				lp := l
				l = max(alpha*v/(sd*sw)+(1-alpha)*(l+phi*b), 0)
				b = beta*(l-lp) + (1-beta)*phi*b
				if l > 0 {
					s.day[h] = min(max(delta*v/(l*sw)+(1-delta)*sd, seasonMin), seasonMax)
					s.week[w] = min(max(omega*v/(l*sd)+(1-omega)*sw, seasonMin), seasonMax)
				}
			}
		}
	}
	// Origins the grid never reached fall back to the run rate.
	for i, t := range origins {
		if math.IsInf(best[i], 1) {
			out[i] = hourState{level: meanWeek(y, t)}
			out[i].flat()
		}
	}
}

// hourInitial estimates the state after the first hourInit hours of y.
func hourInitial(y []float64) hourState {
	var s hourState
	w1, w2 := meanWeek(y, HoursPerWeek), meanWeek(y, 2*HoursPerWeek)
	s.trend = (w2 - w1) / HoursPerWeek
	// w2 is centred on hour 251.5 of the 336: the level at the end of
	// hour 335 is 83.5 hours of trend further.
	s.level = max(w2+83.5*s.trend, 0)
	// Each hour's share of its week's mean hour.
	share := func(t int) (float64, bool) {
		m := w1
		if t >= HoursPerWeek {
			m = w2
		}
		if m == 0 {
			return 0, false
		}
		return y[t] / m, true
	}
	var daySum, dayN [24]float64
	for t := range hourInit {
		if r, ok := share(t); ok {
			daySum[t%24] += r
			dayN[t%24]++
		}
	}
	norm(s.day[:], daySum[:], dayN[:])
	// Each day of the week's share, over the daily profile.
	var dowSum, dowN [7]float64
	for t := range hourInit {
		if r, ok := share(t); ok {
			dowSum[(t%HoursPerWeek)/24] += r / s.day[t%24]
			dowN[(t%HoursPerWeek)/24]++
		}
	}
	var dow [7]float64
	norm(dow[:], dowSum[:], dowN[:])
	for w := range s.week {
		s.week[w] = dow[w/24]
	}
	return s
}

// norm sets f[i] to sum[i]/n[i] (1 where n[i] is 0), scaled to a mean of
// 1 and clamped to [seasonMin, seasonMax].
func norm(f, sum, n []float64) {
	total := 0.0
	for i := range f {
		f[i] = 1
		if n[i] > 0 {
			f[i] = sum[i] / n[i]
		}
		total += f[i]
	}
	for i := range f {
		if total > 0 {
			f[i] *= float64(len(f)) / total
		}
		f[i] = min(max(f[i], seasonMin), seasonMax)
	}
}
