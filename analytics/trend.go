package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/costpipe/costpipe/analytics/growth"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// GrowthQuery asks how fast each group's usage grows.
type GrowthQuery struct {
	// At is the moment of the question; the series ends with the last
	// complete day before it (in Location). Zero means the Querier's Now.
	At time.Time
	// Location is the calendar of the days; nil means UTC.
	Location *time.Location
	// By and Where are as in UsageQuery.
	By    []Dim
	Where map[Dim][]string
	// Metric is what grows; zero is MetricCost.
	Metric Metric
	// Window is the number of days of the trend; zero means 28.
	Window int
}

// GrowthRow is the growth of one group.
type GrowthRow struct {
	Group map[Dim]string
	growth.Growth
	// Days are the days of Daily, oldest first; Daily their values (the
	// trend window and the two weeks before the last day).
	Days  []time.Time
	Daily []float64
}

// Growth returns the growth of every group with usage in the window,
// ordered by the last 7 days' value (descending).
func (q *Querier) Growth(ctx context.Context, gq GrowthQuery) ([]GrowthRow, error) {
	if gq.Window == 0 {
		gq.Window = growth.DefaultWindow
	}
	if gq.Window < growth.MinWindow || gq.Window > growth.MaxWindow {
		return nil, fmt.Errorf("growth window of %d days: want %d to %d", gq.Window, growth.MinWindow, growth.MaxWindow)
	}
	at := gq.At
	if at.IsZero() {
		at = q.opts.Now()
	}
	loc := gq.Location
	if loc == nil {
		loc = time.UTC
	}
	last := dayStart(at, loc).AddDate(0, 0, -1) // the last complete day
	n := max(gq.Window, 14)
	days, series, err := q.Daily(ctx, DailyQuery{First: last.AddDate(0, 0, -(n - 1)), Last: last, Location: loc,
		By: gq.By, Where: gq.Where, Metric: gq.Metric})
	if err != nil {
		return nil, err
	}
	out := make([]GrowthRow, 0, len(series))
	for _, s := range series {
		out = append(out, GrowthRow{Group: s.Group, Growth: growth.Compute(s.Values, gq.Window), Days: days, Daily: s.Values})
	}
	return out, nil
}

// Period is a calendar period a forecast is for.
type Period string

// The periods of forecasts and budgets.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week" // Monday to Sunday
	PeriodMonth Period = "month"
)

// ParsePeriod returns the period named s ("" is month).
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case "":
		return PeriodMonth, nil
	case PeriodDay, PeriodWeek, PeriodMonth:
		return p, nil
	}
	return "", fmt.Errorf("unknown period %q: want day, week or month", s)
}

// Bounds returns the start and end (exclusive) of the period containing t
// in loc.
func (p Period) Bounds(t time.Time, loc *time.Location) (start, end time.Time) {
	d := dayStart(t, loc)
	switch p {
	case PeriodDay:
		return d, d.AddDate(0, 0, 1)
	case PeriodWeek:
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		start = d.AddDate(0, 0, -back)
		return start, start.AddDate(0, 0, 7)
	}
	y, m, _ := d.Date()
	start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 1, 0)
}

// ForecastQuery asks where each group's usage ends the current period.
type ForecastQuery struct {
	// At is now; zero means the Querier's Now.
	At time.Time
	// Location is the calendar of the period; nil means UTC.
	Location *time.Location
	// Period is the calendar period; zero is PeriodMonth.
	Period Period
	By     []Dim
	Where  map[Dim][]string
	// Metric is forecast; zero is MetricCost.
	Metric Metric
	// History is the days of history the methods are fitted and
	// backtested on; zero means 91.
	History int
	// Horizon, when > 0, replaces the calendar period by the next Horizon
	// days from the start of today (in Location).
	Horizon int
	// HorizonHours, when > 0, replaces the calendar period by the next
	// HorizonHours hours (1 … growth.MaxHourlyHorizon) from the start of
	// the current hour, forecast from hourly history (growth.ForecastHours:
	// up to 12 weeks of complete hours before the current one, from the
	// group's first hour with usage). Hours are UTC hours, whole hours in
	// every zone but the few with a fractional offset. Not with Horizon or
	// Budget.
	HorizonHours int
	// Budget, when set, is the period's budget in the metric's unit (USD
	// for cost): exhaustion dates and the chance of overspending.
	Budget *float64
}

// ForecastRow is the forecast of one group.
type ForecastRow struct {
	Group map[Dim]string
	// PeriodStart and PeriodEnd bound the period (end exclusive); Today
	// is the start of the current day, the day the forecast's offsets
	// (ExhaustionP50, ExhaustionP90) count from.
	PeriodStart, PeriodEnd, Today time.Time
	// SoFar is the metric's value of the period so far (until At);
	// SoFarCost the exact cost of it.
	SoFar     float64
	SoFarCost pricing.Pico
	// UnpricedSoFar are the calls of the period so far whose model had no
	// price (in SoFarCost at 0).
	UnpricedSoFar uint64
	// Forecast is of the period total: the period until the start of
	// today (exact) plus today and the days left, forecast.
	growth.Forecast
}

// Forecast returns the period-end forecast of every group with usage in
// the history or the period so far, ordered by the p50 (descending).
func (q *Querier) Forecast(ctx context.Context, fq ForecastQuery) ([]ForecastRow, error) {
	at := fq.At
	if at.IsZero() {
		at = q.opts.Now()
	}
	loc := fq.Location
	if loc == nil {
		loc = time.UTC
	}
	if fq.Period == "" {
		fq.Period = PeriodMonth
	}
	if fq.Metric == "" {
		fq.Metric = MetricCost
	}
	if fq.History == 0 {
		fq.History = 91
	}
	if fq.History < growth.MinForecastHistory || fq.History > growth.MaxHistory {
		return nil, fmt.Errorf("forecast history of %d days: want %d to %d", fq.History, growth.MinForecastHistory, growth.MaxHistory)
	}
	if fq.HorizonHours != 0 {
		return q.forecastHours(ctx, fq, at)
	}
	start, end := fq.Period.Bounds(at, loc)
	if fq.Horizon < 0 || fq.Horizon > growth.MaxHorizon {
		return nil, fmt.Errorf("forecast horizon of %d days: want 1 to %d", fq.Horizon, growth.MaxHorizon)
	}
	if fq.Horizon > 0 {
		start = dayStart(at, loc)
		end = start.AddDate(0, 0, fq.Horizon)
	}
	today := dayStart(at, loc)
	// History: complete days before today; the period so far: from its
	// start to now, exact.
	days, series, err := q.Daily(ctx, DailyQuery{First: today.AddDate(0, 0, -fq.History), Last: today.AddDate(0, 0, -1),
		Location: loc, By: fq.By, Where: fq.Where, Metric: fq.Metric})
	if err != nil {
		return nil, err
	}
	_ = days
	// The period so far, exact (shown), and up to the start of today (the
	// forecast's input: today is forecast as a whole day).
	var toDate []UsageRow
	if at.After(start) { // at the very start of the period nothing is spent yet
		if toDate, err = q.Usage(ctx, UsageQuery{From: start, To: at, By: fq.By, Where: fq.Where, NoLatency: true}); err != nil {
			return nil, err
		}
	}
	var beforeToday []UsageRow
	if today.After(start) {
		if beforeToday, err = q.Usage(ctx, UsageQuery{From: start, To: today, By: fq.By, Where: fq.Where, NoLatency: true}); err != nil {
			return nil, err
		}
	}
	return ForecastRows(fq, start, end, today, series, toDate, beforeToday), nil
}

// ForecastRows is the daily forecast of every group with usage in the
// history (series: the complete days before today) or in the period so
// far (toDate: from start to now; beforeToday: from start to today's
// start), for the period [start, end): each group's history from its first
// day with usage (FromFirstUse), the period before today as the
// forecast's input (today is forecast whole), and today's spend so far as
// the floor of every total. Forecast and the alerts' scripted source both
// call it, so a rule test forecasts what alerts run does.
func ForecastRows(fq ForecastQuery, start, end, today time.Time, series []DailySeries, toDate, beforeToday []UsageRow) []ForecastRow {
	type acc struct {
		group       map[Dim]string
		history     []float64
		toDate      *UsageRow
		beforeToday *UsageRow
	}
	groups := map[string]*acc{}
	var order []string
	for i := range series {
		k := groupKey(fq.By, series[i].Group)
		groups[k] = &acc{group: series[i].Group, history: FromFirstUse(series[i].Values)}
		order = append(order, k)
	}
	for i := range toDate {
		k := groupKey(fq.By, toDate[i].Group)
		a := groups[k]
		if a == nil {
			a = &acc{group: toDate[i].Group} // no history: it began this period
			groups[k] = a
			order = append(order, k)
		}
		a.toDate = &toDate[i]
	}
	for i := range beforeToday {
		if a := groups[groupKey(fq.By, beforeToday[i].Group)]; a != nil {
			a.beforeToday = &beforeToday[i]
		}
	}
	remaining := int(end.Sub(today).Hours()/24 + 0.5) // today included
	out := make([]ForecastRow, 0, len(order))
	for _, k := range order {
		a := groups[k]
		row := ForecastRow{Group: a.group, PeriodStart: start, PeriodEnd: end, Today: today}
		if a.toDate != nil {
			row.SoFarCost, row.UnpricedSoFar = a.toDate.CostUSD, a.toDate.UnpricedRequests
			row.SoFar = metricOf(fq.Metric, a.toDate)
		}
		before := 0.0
		if a.beforeToday != nil {
			before = metricOf(fq.Metric, a.beforeToday)
		}
		// Today is forecast as a whole day from before; what it has spent
		// already is the floor of every total.
		row.Forecast = growth.ForecastPeriod(a.history, before, remaining,
			growth.ForecastOptions{Budget: fq.Budget, SpentToday: max(row.SoFar-before, 0)})
		out = append(out, row)
	}
	return out
}

// metricOf is a usage row's value of m.
func metricOf(m Metric, r *UsageRow) float64 {
	switch m {
	case MetricRequests:
		return float64(r.Requests)
	case MetricInputTokens:
		return float64(r.InputTokens)
	case MetricOutputTokens:
		return float64(r.OutputTokens)
	case MetricTokens:
		return float64(r.InputTokens + r.OutputTokens)
	}
	return r.CostUSD.Float64()
}

// FromFirstUse is a group's history from its first day or hour with
// usage (a value other than 0), nil when it has none: the ones before it
// did not exist, they were not quiet, and read as zeros they would invent
// a backtest and an interval (a tenant two weeks old got 91 days of
// history and a p10 below what it had spent). Forecast trims every
// group's history with it; so must any other source of forecasts (the
// alerts' scripted one) to forecast alike.
func FromFirstUse(values []float64) []float64 {
	for j, v := range values {
		if v != 0 {
			return values[j:]
		}
	}
	return nil
}

// forecastHours is Forecast for fq.HorizonHours: the period is the current
// hour and the ones after it, the history the complete hours before it.
func (q *Querier) forecastHours(ctx context.Context, fq ForecastQuery, at time.Time) ([]ForecastRow, error) {
	h := fq.HorizonHours
	switch {
	case h < 1 || h > growth.MaxHourlyHorizon:
		return nil, fmt.Errorf("forecast horizon of %d hours: want 1 to %d", h, growth.MaxHourlyHorizon)
	case fq.Horizon != 0:
		return nil, fmt.Errorf("a forecast horizon is in days or in hours, not both")
	case fq.Budget != nil:
		return nil, fmt.Errorf("a budget applies to a calendar period or a horizon in days, not to hours")
	}
	hour := at.UTC().Truncate(time.Hour)
	end := hour.Add(time.Duration(h) * time.Hour)
	hist, err := q.Series(ctx, SeriesQuery{From: hour.Add(-growth.MaxHourlyHistory * time.Hour), To: hour, Step: time.Hour,
		By: fq.By, Where: fq.Where, Metric: fq.Metric})
	if err != nil {
		return nil, err
	}
	var toDate []UsageRow
	if at.After(hour) {
		if toDate, err = q.Usage(ctx, UsageQuery{From: hour, To: at, By: fq.By, Where: fq.Where, NoLatency: true}); err != nil {
			return nil, err
		}
	}
	type acc struct {
		group   map[Dim]string
		history []float64
		toDate  *UsageRow
	}
	groups := map[string]*acc{}
	var order []string
	for i := range hist.Series {
		s := &hist.Series[i]
		k := groupKey(fq.By, s.Group)
		groups[k] = &acc{group: s.Group, history: FromFirstUse(s.Values)}
		order = append(order, k)
	}
	for i := range toDate {
		k := groupKey(fq.By, toDate[i].Group)
		a := groups[k]
		if a == nil {
			a = &acc{group: toDate[i].Group}
			groups[k] = a
			order = append(order, k)
		}
		a.toDate = &toDate[i]
	}
	out := make([]ForecastRow, 0, len(order))
	for _, k := range order {
		a := groups[k]
		row := ForecastRow{Group: a.group, PeriodStart: hour, PeriodEnd: end, Today: hour}
		if a.toDate != nil {
			row.SoFarCost, row.UnpricedSoFar = a.toDate.CostUSD, a.toDate.UnpricedRequests
			row.SoFar = metricOf(fq.Metric, a.toDate)
		}
		// The current hour is forecast as a whole hour, like today in the
		// daily forecast: nothing of the period is complete yet.
		hf := growth.ForecastHours(a.history, 0, h)
		row.Forecast = growth.Forecast{Method: hf.Method, MASE: hf.MASE, Coverage: hf.Coverage,
			BacktestOrigins: hf.BacktestOrigins, ToDate: hf.ToDate, P10: hf.P10, P50: hf.P50, P90: hf.P90, Note: hf.Note}
		// What the current hour has spent is the floor of every total.
		for _, v := range []**float64{&row.Forecast.P10, &row.Forecast.P50, &row.Forecast.P90} {
			if *v != nil && **v < row.SoFar {
				spent := row.SoFar
				*v = &spent
			}
		}
		out = append(out, row)
	}
	return out, nil
}
