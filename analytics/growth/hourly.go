package growth

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Bounds of ForecastHours.
const (
	// HoursPerWeek is the season of an hourly series: a week of hours,
	// which holds the daily pattern (night and day) and the weekly one
	// (weekdays and weekend).
	HoursPerWeek = 168
	// MaxHourlyHorizon is the most remaining hours ForecastHours
	// accepts: a week (longer periods are for ForecastPeriod's days).
	MaxHourlyHorizon = HoursPerWeek
	// MaxHourlyHistory is the most hourly history ForecastHours reads:
	// twelve weeks (2,016 hours), which leaves eight weeks of backtest
	// origins; older hours are ignored.
	MaxHourlyHistory = 12 * HoursPerWeek
	// MinHourlyHistory is the fewest hours any hourly forecast is made
	// from: one week, the run rate's.
	MinHourlyHistory = HoursPerWeek
)

// Hourly backtest design.
const (
	// hourInit is the number of hours the initial Holt–Winters state is
	// estimated from: two weeks.
	hourInit = 2 * HoursPerWeek
	// firstHourOrigin is the first backtest origin: every method has seen
	// three weeks, Holt–Winters two for its initial state and one to
	// choose its parameters on.
	firstHourOrigin = 3 * HoursPerWeek
	// hourOriginStep is the spacing of the backtest origins: a day.
	hourOriginStep = 24
	// maxHourOrigins is the most (latest) backtest origins: eight weeks
	// of days. With four, a week's horizon had too few errors of earlier,
	// already realised weeks to take an interval from (the backtest
	// covered 0.64 on flat noise).
	maxHourOrigins = 56
)

// HourlyForecast is the projection of the total of the next hours from
// an hourly series. Every pointer is nil when the number cannot be known
// (Note says why); non-nil ones are finite.
type HourlyForecast struct {
	// Method is the method chosen by the backtest: MethodSeasonalNaive
	// (the same hour a week earlier), MethodRunRate (the mean of the last
	// week's hours) or MethodHoltWinters (damped, with a daily and a
	// weekly multiplicative season); empty when no forecast is made.
	Method string `json:"method"`
	// MASE is the chosen method's mean absolute error over the backtest's
	// origins and hours, divided by the in-sample mean absolute error of
	// the one-step seasonal naive forecast (the same hour a week before).
	MASE *float64 `json:"mase"`
	// Coverage is the share of backtest origins whose realised total of
	// BacktestHorizonHours fell inside the P10–P90 interval computed at
	// that origin from the errors of earlier origins only; nominal 0.8.
	Coverage *float64 `json:"coverage"`
	// BacktestHorizonHours is the horizon of the backtest's forecasts,
	// the remaining hours (0 without a backtest).
	BacktestHorizonHours int `json:"backtest_horizon_hours"`
	// BacktestOrigins is the number of backtest origins, one a day (0
	// without a backtest).
	BacktestOrigins int `json:"backtest_origins"`

	// ToDate is the spend so far, as given.
	ToDate *float64 `json:"to_date"`
	// P10, P50 and P90 are quantiles of the total: ToDate plus the
	// remaining hours.
	P10 *float64 `json:"forecast_p10"`
	P50 *float64 `json:"forecast_p50"`
	P90 *float64 `json:"forecast_p90"`

	// Note says why numbers are unknown, "; "-separated.
	Note string `json:"note,omitempty"`
}

// ForecastHours projects toDate plus the total of the next remainingHours
// hours (1 … MaxHourlyHorizon) from history, the complete hours before
// now, oldest first (only the last MaxHourlyHistory are read).
//
// It is ForecastPeriod for hours: the method is chosen by a
// rolling-origin backtest with an origin at every 24th hour, the latest
// maxHourOrigins of those from hour firstHourOrigin on whose remainingHours
// hours are all in history, each forecasting the sum of the next
// remainingHours hours; the method with the least mean absolute error
// over origins and hours wins (a more complex one only by a margin of
// 1%). The interval: the errors of those sums, realised minus forecast,
// divided by the mean hour of the week before their origin; P10, P50 and
// P90 are ToDate plus the forecast plus their 10%, 50% and 90% empirical
// quantiles times the last week's mean hour, the remaining spend never
// below 0. Coverage is measured as ForecastPeriod's. That needs
// firstHourOrigin + 7 days + remainingHours hours of history (5 weeks for
// a week's horizon); with less, but at least a week, the forecast is the
// run rate without MASE, interval or Coverage; with less than a week,
// only ToDate is known. No level-shift adjustment is made (see
// levelShifts for the daily one).
//
// Values must be finite and non-negative, and so must toDate; otherwise
// Note says which input is invalid.
func ForecastHours(history []float64, toDate float64, remainingHours int) HourlyForecast {
	f, _ := forecastHours(history, toDate, remainingHours)
	return f
}

// hourlyBacktest is the workings of one ForecastHours call, for tests.
type hourlyBacktest struct {
	mae     []float64 // per method, in hourlyMethods order
	naiveQ  float64
	origins []originCoverage
	errs    []float64 // sorted errors of the H-hour sums, in units of the mean hour
}

// forecastHours is ForecastHours, also returning its backtest's
// workings (nil without a backtest).
func forecastHours(history []float64, toDate float64, h int) (f HourlyForecast, bt *hourlyBacktest) {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	defer func() { f.Note = strings.Join(notes, "; ") }()
	if !(toDate >= 0) || math.IsInf(toDate, 1) {
		note("invalid input: to_date is %v; it must be finite and non-negative", toDate)
		return f, nil
	}
	f.ToDate = &toDate
	if i, ok := firstInvalid(history); !ok {
		note("%s", invalidNote("history", i, history[i]))
		return f, nil
	}
	if h < 1 || h > MaxHourlyHorizon {
		note("invalid input: remaining hours %d must be in [1, %d]", h, MaxHourlyHorizon)
		return f, nil
	}
	if len(history) > MaxHourlyHistory {
		history = history[len(history)-MaxHourlyHistory:]
	}
	n := len(history)
	if n < MinHourlyHistory {
		note("only %d hours of history; a forecast needs at least %d", n, MinHourlyHistory)
		return f, nil
	}
	scale := maxOf(history)
	if scale == 0 {
		scale = 1
	}
	y := make([]float64, n)
	for i, v := range history {
		y[i] = v / scale
	}
	level := meanWeek(y, n)
	fs := func(v float64, field string) *float64 { return finite(v, &notes, field) }

	last := n - h
	if need := firstHourOrigin + (minOrigins-1)*hourOriginStep + h; n < need {
		note("only %d hours of history; choosing a method and an interval needs %d: run rate without interval", n, need)
		f.Method = MethodRunRate
		f.P50 = fs(toDate+scale*level*float64(h), "forecast_p50")
		return f, nil
	}
	// Origins every 24 hours counted back from the last, so that the
	// latest is as recent as the horizon allows.
	var origins []int
	for t := last; t >= firstHourOrigin && len(origins) < maxHourOrigins; t -= hourOriginStep {
		origins = append(origins, t)
	}
	slices.Reverse(origins)
	origins = append(origins, n) // the forecast itself
	no := len(origins) - 1
	f.BacktestHorizonHours, f.BacktestOrigins = h, no
	bt = &hourlyBacktest{}

	states := make([]hourState, len(origins))
	bestStates := make([]hourState, len(origins))
	fc := make([]float64, h)
	bestMAE, chosen := math.Inf(1), -1
	for mi, m := range hourlyMethods {
		m.fit(y, origins, states)
		mae := 0.0
		for i, t := range origins[:no] {
			states[i].path(t, fc)
			for k, v := range fc {
				mae += math.Abs(y[t+k] - v)
			}
		}
		mae /= float64(no * h)
		bt.mae = append(bt.mae, mae)
		if chosen < 0 || mae < bestMAE*(1-tieMargin) {
			bestMAE, chosen = mae, mi
			states, bestStates = bestStates, states
		}
	}
	f.Method = hourlyMethods[chosen].name()
	q := 0.0
	for i := HoursPerWeek; i < n; i++ {
		q += math.Abs(y[i] - y[i-HoursPerWeek])
	}
	q /= float64(n - HoursPerWeek)
	bt.naiveQ = q
	empty := maxOf(history) == 0
	switch {
	case q > 0:
		f.MASE = ptr(bestMAE / q)
	case empty:
		note("nothing in the %d hours of history: the forecast is the total so far, without interval", n)
	default:
		note("mase is unknown: the history repeats every week exactly")
	}
	bestStates[no].path(n, fc)
	point := 0.0
	for _, v := range fc {
		point += v
	}

	// Errors of the chosen method's h-hour sums, in units of the mean
	// hour of the week before their origin; coverage honestly, from the
	// errors of origins whose hours had all passed.
	type origin struct {
		t                int
		unit, fcH, realH float64
	}
	var used []origin
	for i, t := range origins[:no] {
		unit := meanWeek(y, t)
		if unit == 0 {
			continue
		}
		bestStates[i].path(t, fc)
		o := origin{t: t, unit: unit}
		for k := range h {
			o.fcH += fc[k]
			o.realH += y[t+k]
		}
		used = append(used, o)
	}
	if len(used) < minOrigins {
		if !empty { // an empty history's note says all there is
			note("only %d backtest origins had usage in the week before them; an interval needs %d", len(used), minOrigins)
		}
		f.P50 = fs(toDate+scale*point, "forecast_p50")
		return f, bt
	}
	covered, evaluated := 0, 0
	var prior []float64
	j := 0
	for _, o := range used {
		for ; j < len(used) && used[j].t+h <= o.t; j++ {
			e := (used[j].realH - used[j].fcH) / used[j].unit
			k, _ := slices.BinarySearch(prior, e)
			prior = slices.Insert(prior, k, e)
		}
		if len(prior) < minOrigins {
			continue
		}
		lo := max(o.fcH+o.unit*quantile(prior, 0.1), 0)
		hi := max(o.fcH+o.unit*quantile(prior, 0.9), 0)
		in := lo <= o.realH && o.realH <= hi
		evaluated++
		if in {
			covered++
		}
		bt.origins = append(bt.origins, originCoverage{t: o.t, in: in})
	}
	if evaluated >= minCoverageOrigins {
		f.Coverage = ptr(float64(covered) / float64(evaluated))
	} else {
		note(coverageUnknown, minOrigins, minCoverageOrigins, evaluated)
	}
	for _, o := range used {
		bt.errs = append(bt.errs, (o.realH-o.fcH)/o.unit)
	}
	slices.Sort(bt.errs)
	if level == 0 {
		note("no usage in the last week: the interval is unknown")
		f.P50 = fs(toDate+scale*point, "forecast_p50")
		return f, bt
	}
	total := func(p float64) float64 {
		return toDate + max(scale*(point+level*quantile(bt.errs, p)), 0)
	}
	f.P10 = fs(total(0.1), "forecast_p10")
	f.P50 = fs(total(0.5), "forecast_p50")
	f.P90 = fs(total(0.9), "forecast_p90")
	return f, bt
}

// meanWeek is the mean of the HoursPerWeek hours before t (t ≥ 168).
func meanWeek(y []float64, t int) float64 {
	s := 0.0
	for _, v := range y[t-HoursPerWeek : t] {
		s += v
	}
	return s / HoursPerWeek
}

// An hourlyMethod forecasts an hourly series from its past, as method
// does a daily one.
type hourlyMethod interface {
	name() string
	// fit sets out[i] to what the method knows after seeing y[:origins[i]]
	// only; origins are ascending, each at least HoursPerWeek.
	fit(y []float64, origins []int, out []hourState)
}

// hourlyMethods are the hourly backtest's candidates, simplest first.
var hourlyMethods = []hourlyMethod{hourlyNaive{}, hourlyRunRate{}, hourlyHoltWinters{}}

// hourState is a fitted hourly method at an origin t: the forecast of
// hour t+k (k ≥ 0) is (level + trend·(φ + … + φ^(k+1)))·day[(t+k) mod
// 24]·week[(t+k) mod 168], never below 0.
type hourState struct {
	level, trend, phi float64
	day               [24]float64
	week              [HoursPerWeek]float64
}

// path writes the forecasts of hours t, t+1, …, t+len(dst)−1 to dst.
func (s *hourState) path(t int, dst []float64) {
	damp, cum := 1.0, 0.0
	for k := range dst {
		damp *= s.phi
		cum += damp
		dst[k] = max((s.level+s.trend*cum)*s.day[(t+k)%24]*s.week[(t+k)%HoursPerWeek], 0)
	}
}

// flat sets s's seasons to 1.
func (s *hourState) flat() {
	for i := range s.day {
		s.day[i] = 1
	}
	for i := range s.week {
		s.week[i] = 1
	}
}

// hourlyNaive repeats the last week seen, hour by hour.
type hourlyNaive struct{}

func (hourlyNaive) name() string { return MethodSeasonalNaive }

func (hourlyNaive) fit(y []float64, origins []int, out []hourState) {
	for i, t := range origins {
		s := hourState{level: 1}
		for d := range s.day {
			s.day[d] = 1
		}
		for j := t - HoursPerWeek; j < t; j++ {
			s.week[j%HoursPerWeek] = y[j]
		}
		out[i] = s
	}
}

// hourlyRunRate forecasts every hour with the mean of the last week's.
type hourlyRunRate struct{}

func (hourlyRunRate) name() string { return MethodRunRate }

func (hourlyRunRate) fit(y []float64, origins []int, out []hourState) {
	for i, t := range origins {
		s := hourState{level: meanWeek(y, t)}
		s.flat()
		out[i] = s
	}
}
