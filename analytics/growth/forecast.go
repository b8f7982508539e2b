package growth

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Bounds of ForecastPeriod.
const (
	// MaxHorizon is the most remaining days ForecastPeriod accepts: a year.
	MaxHorizon = 366
	// MaxHistory is the most history ForecastPeriod reads: older days are
	// ignored (the method fit and the backtest stay bounded, and recent
	// behaviour is what matters).
	MaxHistory = 182
	// MinForecastHistory is the fewest days of history any forecast is made
	// from: one week, the run rate's.
	MinForecastHistory = 7
	// BacktestHorizon is the longest horizon the backtest forecasts; the
	// interval of a longer one is extrapolated (see Forecast).
	BacktestHorizon = 14
)

// Backtest design.
const (
	// firstOrigin is the first backtest origin: every method has seen
	// three weeks, Holt–Winters two for its initial state and one to
	// choose its parameters on.
	firstOrigin = 21
	// minOrigins is the fewest backtest origins a method is chosen on and
	// an interval taken from; fewer leave the run rate without interval.
	minOrigins = 8
	// maxOrigins is the most (latest) backtest origins used: 8 weeks.
	maxOrigins = 56
	// minCoverageOrigins is the fewest origins Coverage is measured on.
	minCoverageOrigins = 7
	// coverageUnknown is the note of a forecast whose coverage could not
	// be measured: minOrigins, minCoverageOrigins, the origins evaluated.
	coverageUnknown = "coverage is unknown: it is measured at backtest origins with %d earlier outcomes known to draw an interval from, and needs %d such origins; there were %d"
	// tieMargin is how much lower (relatively) a method's error must be
	// than every simpler method's to be chosen over them.
	tieMargin = 0.01
)

// ForecastOptions tune ForecastPeriod.
type ForecastOptions struct {
	// Budget is the period's budget, in the series' unit. Nil (the
	// default) leaves ExhaustionP50, ExhaustionP90 and POverspend nil. It
	// must be finite and non-negative.
	Budget *float64
	// SpentToday is what today has spent so far, which toDate leaves out
	// (today is forecast as a whole day): no path of the period's total
	// falls below toDate + SpentToday, the money already spent. Default 0;
	// it must be finite and non-negative.
	SpentToday float64
}

// DefaultForecastOptions returns the defaults: no budget.
func DefaultForecastOptions() ForecastOptions { return ForecastOptions{} }

// Validate reports options ForecastPeriod cannot use.
func (o ForecastOptions) Validate() error {
	if o.Budget != nil && (!(*o.Budget >= 0) || math.IsInf(*o.Budget, 1)) {
		return fmt.Errorf("cannot use budget %v: it must be finite and non-negative", *o.Budget)
	}
	if !(o.SpentToday >= 0) || math.IsInf(o.SpentToday, 1) {
		return fmt.Errorf("cannot use today's spend %v: it must be finite and non-negative", o.SpentToday)
	}
	return nil
}

// Forecast is the projection of a period's total. Every pointer is nil
// when the number cannot be known (Note says why); non-nil ones are
// finite.
//
// The interval: at every backtest origin t the chosen method forecasts
// the next H days (BacktestHorizonDays) from the days before t, and the
// error of each k-day sum (k = 1…H), realised minus forecast, is divided
// by the mean of the 7 days before t, which makes the errors of a growing
// or shrinking series comparable. P10, P50 and P90 are ToDate plus the
// forecast of the remaining days plus the 10%, 50% and 90% empirical
// quantiles of those errors for as many days (quantile explains the
// interpolation), times the last 7 days' mean. P50 is thus the forecast
// corrected by the method's median error: a damped trend forecasts steady
// growth too low, and the backtest measures by how much. Beyond H days
// the H-day errors are scaled by (k/H)^p, p the growth exponent of their
// mean absolute value from H/2 to H days, clamped to [1, 2] (1: an error
// of level, which grows with the days summed; 2: of trend). The remaining
// spend is never below 0, so P10 ≥ ToDate.
type Forecast struct {
	// Method is the forecasting method chosen by the backtest: one of
	// MethodSeasonalNaive, MethodRunRate and MethodHoltWinters; empty when
	// no forecast is made.
	Method string `json:"method"`
	// MASE is the chosen method's mean absolute scaled error in the
	// backtest: its mean absolute error over all origins and horizons
	// 1…BacktestHorizonDays, divided by the mean absolute error of the
	// one-step seasonal naive forecast over the whole history (Hyndman and
	// Koehler 2006). Below 1 is better than that in-sample baseline. Both
	// are measured on the history as adjusted for LevelShift.
	MASE *float64 `json:"mase"`
	// Coverage is the share of backtest origins whose realised
	// BacktestHorizonDays-day sum fell inside the P10–P90 interval
	// computed at that origin from the errors of earlier origins only
	// (those whose days were all before it), on the history as adjusted
	// for LevelShift; nominal 0.8.
	Coverage *float64 `json:"coverage"`
	// BacktestHorizonDays is H, the horizon of the backtest's forecasts
	// (0 without a backtest).
	BacktestHorizonDays int `json:"backtest_horizon_days"`
	// BacktestOrigins is the number of backtest origins (0 without a
	// backtest).
	BacktestOrigins int `json:"backtest_origins"`

	// ToDate is the period's spend so far, as given.
	ToDate *float64 `json:"to_date"`
	// P10, P50 and P90 are quantiles of the period's total: ToDate plus
	// the remaining days.
	P10 *float64 `json:"forecast_p10"`
	P50 *float64 `json:"forecast_p50"`
	P90 *float64 `json:"forecast_p90"`

	// ExhaustionP50 and ExhaustionP90 are the first day, as an offset
	// from today (0 is today, the first remaining day), at whose end the
	// cumulative spend reaches the budget on the P50 and on the P90 path
	// (the quantile of each day's cumulative spend); nil when it does not
	// within the period, 0 when ToDate already reaches it. P90 is the
	// high-spend path, so ExhaustionP90 ≤ ExhaustionP50 when both are set.
	ExhaustionP50 *int `json:"exhaustion_p50"`
	ExhaustionP90 *int `json:"exhaustion_p90"`
	// POverspend is the probability that the period's total exceeds the
	// budget, from the same error distribution as the interval (linear
	// between its order statistics, so it is 0.1 at a budget of P90, and
	// 0 above the largest error seen); 1 when ToDate already exceeds it.
	POverspend *float64 `json:"p_overspend"`

	// LevelShift is the latest lasting step in the history's level that
	// the forecast adjusted for (see ForecastPeriod); nil when none was
	// found.
	LevelShift *LevelShift `json:"level_shift,omitempty"`

	// Note says why numbers are unknown, and which level shifts the
	// history was adjusted for, "; "-separated.
	Note string `json:"note,omitempty"`
}

// ForecastPeriod projects the total of the current period.
//
// history holds the complete days before today, oldest first (only the
// last MaxHistory are read). toDate is the period's spend so far.
// remainingDays is the number of whole days left in the period, today
// included, at most MaxHorizon: every one of them is forecast as a whole
// day. To count today once, pass toDate up to the end of yesterday (and
// today's spend so far as opts.SpentToday, the floor of every total); a
// toDate that includes today's partial spend makes the totals high by
// that amount. remainingDays 0 means the period is over: the total is
// toDate.
//
// The method is chosen per series by a rolling-origin backtest: origins
// every day, the latest maxOrigins (8 weeks) of those from day 21 on
// whose forecast days are all in history, each forecasting the next H =
// min(remainingDays, BacktestHorizon) days; the method with the least
// mean absolute error over all origins and horizons 1…H, and so the least
// MASE, wins, a more complex one (methods are ordered seasonal naive, run
// rate, Holt–Winters) only by a margin of 1%. That needs 28 + H days of history with H at
// least min(remainingDays, 7). With less (and at least
// MinForecastHistory days) the forecast is the run rate, without MASE,
// interval, Coverage, ExhaustionP90 or POverspend; with less than a week,
// only ToDate is known.
//
// Before all this, a lasting step in the history's level (a new
// customer, a switch of model) at least a week old is found and the days
// before it are rescaled to the level after it (levelShifts), so that the
// methods, the backtest, MASE, the interval and Coverage all work on the
// history as if it had always been at today's level; LevelShift and Note
// say so. Without that the origins whose days straddle the step have
// errors no interval covers, which pull the interval's median and upper
// quantile far up for weeks (and Holt–Winters overshoots); a step less
// than a week old is not told from noise.
//
// Values must be finite and non-negative, and so must toDate and the
// budget; otherwise Note says which input is invalid and only ToDate
// (when valid) is set.
func ForecastPeriod(history []float64, toDate float64, remainingDays int, opts ForecastOptions) Forecast {
	f, _ := forecastPeriod(history, toDate, remainingDays, opts)
	return f
}

// forecastPeriod is ForecastPeriod, also returning the projection's
// workings (nil on invalid input) for the tests.
func forecastPeriod(history []float64, toDate float64, remainingDays int, opts ForecastOptions) (Forecast, *projection) {
	var f Forecast
	if !(toDate >= 0) || math.IsInf(toDate, 1) {
		f.Note = fmt.Sprintf("invalid input: to_date is %v; it must be finite and non-negative", toDate)
		return f, nil
	}
	f.ToDate = &toDate
	if i, ok := firstInvalid(history); !ok {
		f.Note = invalidNote("history", i, history[i])
		return f, nil
	}
	if remainingDays < 0 || remainingDays > MaxHorizon {
		f.Note = fmt.Sprintf("invalid input: remaining days %d must be in [0, %d]", remainingDays, MaxHorizon)
		return f, nil
	}
	if err := opts.Validate(); err != nil {
		f.Note = "invalid input: " + err.Error()
		return f, nil
	}
	if len(history) > MaxHistory {
		history = history[len(history)-MaxHistory:]
	}
	p := projection{toDate: toDate, spent: toDate + opts.SpentToday, h: remainingDays, budget: opts.Budget}
	p.run(history, &f)
	p.finish(&f)
	return f, &p
}

// projection is the work of one ForecastPeriod call.
type projection struct {
	toDate float64
	// spent is toDate plus today's spend so far: the floor of every total
	// from today on.
	spent  float64
	h      int      // remaining days
	budget *float64 // nil without one
	notes  []string

	shifts []LevelShift // level shifts adjusted for, latest first

	y     []float64 // history adjusted for shifts, divided by scale
	scale float64   // history's maximum, 1 when it is all 0
	cum   []float64 // cumulative point forecast of the remaining days, scaled
	level float64   // mean of the last 7 days, scaled: the errors' unit

	// errs[k-1] holds the sorted backtest errors of k-day sums, k = 1…H,
	// in units of level; nil without an interval.
	errs [][]float64
	pExp float64 // growth exponent of the errors beyond H days

	// mae[i] is methods[i]'s mean absolute error in the backtest, naiveQ
	// the in-sample mean absolute error of the one-step seasonal naive
	// forecast: MASE = mae/naiveQ.
	mae    []float64
	naiveQ float64
	// origins are the backtest origins Coverage was measured on.
	origins []originCoverage
}

// originCoverage is whether the interval at backtest origin t covered
// the realised sum of the next H days.
type originCoverage struct {
	t  int
	in bool
}

func (p *projection) note(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}

// run fills f's method, backtest figures and the projection's paths.
func (p *projection) run(history []float64, f *Forecast) {
	n := len(history)
	if p.h == 0 {
		p.note("no days remain in the period: the total is to_date")
		return
	}
	if n < MinForecastHistory {
		p.note("only %d days of history; a forecast needs at least %d", n, MinForecastHistory)
		return
	}
	history, p.shifts = levelShifts(history)
	if len(p.shifts) > 0 {
		ls := p.shifts[0]
		f.LevelShift = &ls
		p.note("level ×%.2f since %d days ago: the %d days before were rescaled to it (%d level shifts found)", ls.Ratio, ls.DaysAgo, n-ls.DaysAgo, len(p.shifts))
	}
	p.scale = maxOf(history)
	if p.scale == 0 {
		p.scale = 1
	}
	p.y = make([]float64, n)
	for i, v := range history {
		p.y[i] = v / p.scale
	}
	p.level = mean7(p.y, n)
	p.cum = make([]float64, p.h)

	H := min(p.h, BacktestHorizon, n-firstOrigin-minOrigins+1)
	if H < min(p.h, 7) {
		need := firstOrigin + minOrigins - 1 + min(p.h, 7)
		p.note("only %d days of history; choosing a method and an interval needs %d: run rate without interval", n, need)
		f.Method = MethodRunRate
		for k := range p.cum {
			p.cum[k] = float64(k+1) * p.level
		}
		return
	}
	y := p.y
	last := n - H
	origins := make([]int, 0, maxOrigins+1)
	for t := max(firstOrigin, last-maxOrigins+1); t <= last; t++ {
		origins = append(origins, t)
	}
	origins = append(origins, n) // the forecast itself
	no := len(origins) - 1
	f.BacktestHorizonDays, f.BacktestOrigins = H, no

	// Mean absolute error of each method over origins and horizons.
	states := make([]state, len(origins))
	bestStates := make([]state, len(origins))
	fc := make([]float64, H)
	bestMAE, chosen := math.Inf(1), -1
	for mi, m := range methods {
		m.fit(y, origins, states)
		mae := 0.0
		for i, t := range origins[:no] {
			states[i].path(t, fc)
			for k, v := range fc {
				mae += math.Abs(y[t+k] - v)
			}
		}
		mae /= float64(no * H)
		p.mae = append(p.mae, mae)
		if chosen < 0 || mae < bestMAE*(1-tieMargin) {
			bestMAE, chosen = mae, mi
			states, bestStates = bestStates, states
		}
	}
	f.Method = methods[chosen].name()
	q := 0.0
	for i := 7; i < n; i++ {
		q += math.Abs(y[i] - y[i-7])
	}
	q /= float64(n - 7)
	p.naiveQ = q
	empty := maxOf(history) == 0
	switch {
	case q > 0:
		f.MASE = ptr(bestMAE / q)
	case empty:
		p.note("nothing in the %d days of history: the forecast is the total so far, without interval", n)
	default:
		p.note("mase is unknown: the history repeats every week exactly")
	}

	// The final forecast.
	daily := make([]float64, p.h)
	bestStates[no].path(n, daily)
	s := 0.0
	for k, v := range daily {
		s += v
		p.cum[k] = s
	}

	// Errors of the chosen method's k-day sums, in units of the mean of
	// the 7 days before their origin; origins without usage in those days
	// have no unit and are left out.
	type origin struct {
		t          int
		unit       float64
		fcH, realH float64 // forecast and realised H-day sums
		errH       float64
	}
	var used []origin
	byK := make([][]float64, H)
	for i, t := range origins[:no] {
		unit := mean7(y, t)
		if unit == 0 {
			continue
		}
		bestStates[i].path(t, fc)
		fs, rs := 0.0, 0.0
		for k := range H {
			fs += fc[k]
			rs += y[t+k]
			byK[k] = append(byK[k], (rs-fs)/unit)
		}
		used = append(used, origin{t: t, unit: unit, fcH: fs, realH: rs, errH: (rs - fs) / unit})
	}
	if len(used) < minOrigins {
		if !empty { // an empty history's note says all there is
			p.note("only %d backtest origins had usage in the week before them; an interval needs %d", len(used), minOrigins)
		}
		return
	}
	if p.level == 0 {
		p.note("no usage in the last 7 days: the interval is unknown")
		return
	}

	// Coverage, honestly: the interval at an origin uses only the errors
	// of origins whose H days had all passed by then.
	covered, evaluated := 0, 0
	var prior []float64
	j := 0
	for _, o := range used {
		for ; j < len(used) && used[j].t+H <= o.t; j++ {
			i, _ := slices.BinarySearch(prior, used[j].errH)
			prior = slices.Insert(prior, i, used[j].errH)
		}
		if len(prior) < minOrigins {
			continue
		}
		lo := max(o.fcH+o.unit*quantile(prior, 0.1), 0)
		hi := max(o.fcH+o.unit*quantile(prior, 0.9), 0)
		evaluated++
		in := lo <= o.realH && o.realH <= hi
		if in {
			covered++
		}
		p.origins = append(p.origins, originCoverage{t: o.t, in: in})
	}
	if evaluated >= minCoverageOrigins {
		f.Coverage = ptr(float64(covered) / float64(evaluated))
	} else {
		p.note(coverageUnknown, minOrigins, minCoverageOrigins, evaluated)
	}

	for _, e := range byK {
		slices.Sort(e)
	}
	p.errs = byK
	p.pExp = 1
	if h2 := H / 2; p.h > H && h2 >= 1 {
		a, b := meanAbs(byK[h2-1]), meanAbs(byK[H-1])
		if a > 0 && b > 0 {
			p.pExp = min(max(math.Log(b/a)/math.Log(float64(H)/float64(h2)), 1), 2)
		}
	}
}

// quantileAt is the p-quantile of the error of a k-day sum (1 ≤ k ≤ h),
// in units of p.level.
func (p *projection) quantileAt(k int, q float64) float64 {
	H := len(p.errs)
	v := quantile(p.errs[min(k, H)-1], q)
	if k > H {
		v *= math.Pow(float64(k)/float64(H), p.pExp)
	}
	return v
}

// total is the period's total at the end of remaining day k (1 ≤ k ≤ h)
// on the q path: to date plus the forecast plus the error quantile, the
// remaining spend never below 0, and never below floor.
func (p *projection) total(k int, q float64) float64 {
	return max(p.toDate+max(p.scale*(p.cum[k-1]+p.level*p.quantileAt(k, q)), 0), p.floor(k, q))
}

// floor is the least total at the end of remaining day k on the q path:
// what is spent (to date and today so far) plus the days after today. A
// today that has already spent more than its forecast (a burst) leaves the
// days after it to come: floored at what is spent alone, the total was
// that, P10 = P50 = P90, and no budget was at risk, however many days were
// left. Without an interval (errs nil) the days after today are their
// point forecast.
func (p *projection) floor(k int, q float64) float64 {
	if k <= 1 {
		return p.spent
	}
	later := p.cum[k-1] - p.cum[0]
	if p.errs != nil {
		later += p.level * p.quantileAt(k-1, q)
	}
	return p.spent + max(p.scale*later, 0)
}

// finish fills f's totals, budget figures and note from the projection.
func (p *projection) finish(f *Forecast) {
	switch {
	case p.h == 0:
		f.P10, f.P50, f.P90 = ptr(p.toDate), ptr(p.toDate), ptr(p.toDate)
	case p.cum == nil:
		// No forecast.
	case p.errs == nil:
		f.P50 = p.finite(max(p.toDate+p.scale*p.cum[p.h-1], p.floor(p.h, 0.5)), "forecast_p50")
	default:
		f.P10 = p.finite(p.total(p.h, 0.1), "forecast_p10")
		f.P50 = p.finite(p.total(p.h, 0.5), "forecast_p50")
		f.P90 = p.finite(p.total(p.h, 0.9), "forecast_p90")
	}
	if p.budget != nil {
		p.budgetFigures(f, *p.budget)
	}
	f.Note = strings.Join(p.notes, "; ")
}

// budgetFigures fills the exhaustion days and POverspend.
func (p *projection) budgetFigures(f *Forecast, budget float64) {
	switch {
	case p.h == 0:
		f.POverspend = ptr(0.0)
		if p.spent > budget {
			f.POverspend = ptr(1.0)
		}
		return
	case p.spent > budget:
		f.POverspend = ptr(1.0)
	}
	if p.spent >= budget {
		f.ExhaustionP50, f.ExhaustionP90 = ptr(0), ptr(0)
	}
	if p.cum == nil {
		return
	}
	crossing := func(total func(k int) float64) *int {
		for k := 1; k <= p.h; k++ {
			if total(k) >= budget {
				return ptr(k - 1)
			}
		}
		return nil
	}
	if p.errs == nil {
		if f.ExhaustionP50 == nil {
			f.ExhaustionP50 = crossing(func(k int) float64 { return max(p.toDate+p.scale*p.cum[k-1], p.floor(k, 0.5)) })
		}
		return
	}
	if f.ExhaustionP50 == nil {
		f.ExhaustionP50 = crossing(func(k int) float64 { return p.total(k, 0.5) })
		f.ExhaustionP90 = crossing(func(k int) float64 { return p.total(k, 0.9) })
	}
	if f.POverspend != nil {
		return
	}
	// total > budget ⇔ error > x, in units of level, of the h-day errors
	// (the H-day errors scaled to h days), or the floor's (h-1)-day error
	// of the days after today > xFloor. The larger of the two
	// probabilities is a lower bound of their union's (after a burst today
	// the second is the likelier), as the quantiles take the larger total.
	errAbove := func(k int, x float64) float64 {
		H := len(p.errs)
		if k > H {
			x /= math.Pow(float64(k)/float64(H), p.pExp)
		}
		return above(p.errs[min(k, H)-1], x)
	}
	pOver := errAbove(p.h, ((budget-p.toDate)/p.scale-p.cum[p.h-1])/p.level)
	if p.h > 1 {
		pOver = max(pOver, errAbove(p.h-1, ((budget-p.spent)/p.scale-(p.cum[p.h-1]-p.cum[0]))/p.level))
	}
	f.POverspend = p.finite(pOver, "p_overspend")
}

// finite is a pointer to v, or nil with a note when v is not finite.
func (p *projection) finite(v float64, field string) *float64 {
	return finite(v, &p.notes, field)
}

// meanAbs is the mean absolute value of xs, 0 when empty.
func meanAbs(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += math.Abs(x)
	}
	return s / float64(len(xs))
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
