package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
	"github.com/costpipe/costpipe/render"
)

// Usage is a usage request: the range, and what-if pricing (Query.Reprice,
// Query.MapModel, set by the caller) with Compare.
type Usage struct {
	Range
	// Query is the analytics query; ParseUsage fills it from Range.
	Query analytics.UsageQuery
	// Compare keeps the stored cost beside the re-priced one.
	Compare bool
}

// ParseUsage reads the parameters of a usage or latency report.
func ParseUsage(p Params, now time.Time) (Usage, error) {
	r, err := ParseRange(p, now)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Range: r, Query: r.usageQuery()}, nil
}

// SwapRepriced makes the re-priced cost the rows' cost: CostUSD and
// UnpricedRequests take the re-priced values, and Reprice then holds the
// stored ones (kept only with compare, for the stored_* fields).
func SwapRepriced(rows []analytics.UsageRow, compare bool) {
	for i := range rows {
		r := &rows[i]
		if r.Reprice == nil {
			continue
		}
		stored := analytics.Repriced{CostUSD: r.CostUSD, UnpricedRequests: r.UnpricedRequests}
		r.CostUSD, r.UnpricedRequests = r.Reprice.CostUSD, r.Reprice.UnpricedRequests
		r.Reprice = nil
		if compare {
			r.Reprice = &stored
		}
	}
}

// rows runs the usage query, re-priced as asked, most expensive first,
// and says which range they count (analytics.Answered).
func (u *Usage) rows(ctx context.Context, q *analytics.Querier) ([]analytics.UsageRow, analytics.Answered, error) {
	rows, ans, err := q.UsageAnswered(ctx, u.Query)
	if err != nil {
		return nil, ans, err
	}
	if u.Query.Reprice != nil {
		SwapRepriced(rows, u.Compare)
		// Most expensive first, by the re-priced cost.
		slices.SortStableFunc(rows, func(a, b analytics.UsageRow) int { return b.CostUSD.Cmp(a.CostUSD) })
	}
	return rows, ans, nil
}

// answeredScope is scope with the range the rows count, and its note.
func answeredScope(scope render.Scope, ans analytics.Answered) (render.Scope, []string) {
	scope.From, scope.To = ans.From, ans.To
	if ans.Note == "" {
		return scope, nil
	}
	return scope, []string{ans.Note}
}

// UsageTable runs u and builds its report; with total (and more than one
// row) it adds the TOTAL line of the table format, the sum of the rows
// (analytics.Total).
func UsageTable(ctx context.Context, q *analytics.Querier, u Usage, total bool) (*render.Table, error) {
	rows, ans, err := u.rows(ctx, q)
	if err != nil {
		return nil, err
	}
	scope, notes := answeredScope(u.Scope(), ans)
	report := render.UsageReport{Scope: scope, Rows: rows, Compare: u.Compare}
	if u.Query.Reprice != nil {
		report.RepricedWith = u.Query.Reprice.Name()
	}
	if total && len(rows) > 1 {
		t := analytics.Total(rows)
		report.Total = &t
	}
	t := render.Usage(report)
	t.Notes = append(t.Notes, notes...)
	return t, nil
}

// LatencyTable runs u and builds its latency report; total as UsageTable.
func LatencyTable(ctx context.Context, q *analytics.Querier, u Usage, total bool) (*render.Table, error) {
	rows, ans, err := q.UsageAnswered(ctx, u.Query)
	if err != nil {
		return nil, err
	}
	scope, notes := answeredScope(u.Scope(), ans)
	report := render.LatencyReport{Scope: scope, Rows: rows}
	if total && len(rows) > 1 {
		t := analytics.Total(rows)
		report.Total = &t
	}
	t := render.Latency(report)
	t.Notes = append(t.Notes, notes...)
	return t, nil
}

// Top is a top request.
type Top struct {
	Range
	Metric analytics.Metric
	N      int
}

// ParseTop reads the parameters of a top report: the range, metric, limit
// (1 to maxN, default analytics.DefaultTopN) and a required by.
func ParseTop(p Params, now time.Time, maxN int) (Top, error) {
	var t Top
	var err error
	if t.Range, err = ParseRange(p, now); err != nil {
		return t, err
	}
	if t.Metric, err = ParseMetric(p); err != nil {
		return t, err
	}
	if len(t.By) == 0 {
		return t, paramErr("by", "query top needs %s: the dimensions of a group, e.g. tenant", p.Name("by"))
	}
	if t.N, err = intParam(p, "limit", analytics.DefaultTopN); err != nil {
		return t, err
	}
	if t.N < 1 || t.N > maxN {
		return t, paramErr("limit", "invalid %s %d: want 1 to %d", p.Name("limit"), t.N, maxN)
	}
	return t, nil
}

// TopTable runs t and builds its report.
func TopTable(ctx context.Context, q *analytics.Querier, t Top) (*render.Table, error) {
	res, err := q.Top(ctx, analytics.TopQuery{From: t.From, To: t.To, By: t.By, Where: t.Where,
		Granularity: t.Granularity, Metric: t.Metric, N: t.N, NoLatency: true}) // the report shows no latency
	if err != nil {
		return nil, err
	}
	scope, notes := answeredScope(t.Scope(), res.Answered)
	table := render.Top(render.TopReport{Scope: scope, Result: res})
	table.Notes = append(table.Notes, notes...)
	return table, nil
}

// Series is a series request.
type Series struct {
	Range
	Step   time.Duration
	Metric analytics.Metric
	// MaxCells, when > 0, refuses (ErrTooLarge) an answer whose table
	// would hold more cells (values × columns), before it is built.
	MaxCells int
}

// ErrTooLarge is wrapped by the error of a report whose table would hold
// more cells than its bound: a server refuses it before building it (a
// table costs about 56 bytes a cell in memory, whatever it renders to).
var ErrTooLarge = errors.New("the answer has too many values")

// checkCells fails with ErrTooLarge when rows × cols is over max (> 0).
func checkCells(rows, cols, max int) error {
	if max > 0 && rows*cols > max {
		return fmt.Errorf("%w: %d rows of %d columns, at most %d values", ErrTooLarge, rows, cols, max)
	}
	return nil
}

// ParseSeries reads the parameters of a series report: the range, step
// (default 1h) and metric.
func ParseSeries(p Params, now time.Time) (Series, error) {
	var s Series
	var err error
	if s.Range, err = ParseRange(p, now); err != nil {
		return s, err
	}
	step := p.Value("step")
	if step == "" {
		step = DefaultStep
	}
	if s.Step, err = analytics.ParseStep(step); err != nil {
		return s, paramErr("step", "invalid %s: %v", p.Name("step"), err)
	}
	s.Metric, err = ParseMetric(p)
	return s, err
}

// SeriesTable runs s and builds its report. Too many steps is
// analytics.ErrTooManySteps (a usage error).
func SeriesTable(ctx context.Context, q *analytics.Querier, s Series) (*render.Table, error) {
	res, err := q.Series(ctx, analytics.SeriesQuery{From: s.From, To: s.To, Step: s.Step, By: s.By, Where: s.Where, Metric: s.Metric})
	if err != nil {
		return nil, err
	}
	if err := checkCells(len(res.Series)*len(res.Steps), len(s.By)+2, s.MaxCells); err != nil {
		return nil, err
	}
	t := render.Series(render.SeriesReport{Scope: s.Scope(), Result: res})
	if res.Note != "" {
		if t.View != nil {
			t.View.Notes = append(t.View.Notes, res.Note)
		}
		t.Notes = append(t.Notes, res.Note)
	}
	return t, nil
}

// Trend is what growth and forecast requests share.
type Trend struct {
	By     []analytics.Dim
	Where  map[analytics.Dim][]string
	Conds  []render.Filter
	Metric analytics.Metric
	Loc    *time.Location
	At     time.Time
}

// scope is the trend's scope, for titles.
func (t *Trend) scope() render.Scope { return render.Scope{By: t.By, Where: t.Conds} }

// ParseTrend reads by, where, metric, tz (an IANA zone, default UTC) and
// at (default now).
func ParseTrend(p Params, now time.Time) (Trend, error) {
	var r Trend
	var err error
	if r.By, r.Where, r.Conds, err = ParseByWhere(p); err != nil {
		return r, err
	}
	if r.Metric, err = ParseMetric(p); err != nil {
		return r, err
	}
	tz := p.Value("tz")
	if !p.IsSet("tz") && tz == "" {
		tz = DefaultTZ
	}
	if tz == "Local" || tz == "" {
		return r, paramErr("tz", "invalid %s %q: want an IANA zone name such as UTC or Europe/Berlin", p.Name("tz"), tz)
	}
	if r.Loc, err = time.LoadLocation(tz); err != nil {
		return r, paramErr("tz", "invalid %s %q: %v", p.Name("tz"), tz, err)
	}
	r.At = now
	if s := p.Value("at"); s != "" {
		// A date is the start of that day in tz: at=2026-04-01 with
		// tz=America/New_York asks about April there.
		if r.At, err = ParseTimeIn(s, r.Loc); err != nil {
			return r, paramErr("at", "invalid %s: %v", p.Name("at"), err)
		}
	}
	return r, nil
}

// Growth is a growth request.
type Growth struct {
	Trend
	// Window is the trend's days, growth.MinWindow to growth.MaxWindow.
	Window int
}

// ParseGrowth reads the trend parameters and window (default 28).
func ParseGrowth(p Params, now time.Time) (Growth, error) {
	var g Growth
	var err error
	if g.Trend, err = ParseTrend(p, now); err != nil {
		return g, err
	}
	if g.Window, err = intParam(p, "window", DefaultWindow); err != nil {
		return g, err
	}
	if g.Window < growth.MinWindow || g.Window > growth.MaxWindow {
		return g, paramErr("window", "invalid %s %d: want %d to %d days", p.Name("window"), g.Window, growth.MinWindow, growth.MaxWindow)
	}
	return g, nil
}

// GrowthTable runs g and builds its report.
func GrowthTable(ctx context.Context, q *analytics.Querier, g Growth) (*render.Table, error) {
	rows, err := q.Growth(ctx, analytics.GrowthQuery{At: g.At, Location: g.Loc, By: g.By, Where: g.Where,
		Metric: g.Metric, Window: g.Window})
	if err != nil {
		return nil, err
	}
	return render.Growth(render.GrowthReport{Scope: g.scope(), Metric: g.Metric, Location: g.Loc, Window: g.Window, Rows: rows}), nil
}

// Forecast is a forecast request.
type Forecast struct {
	Trend
	Period analytics.Period
	Budget *float64
	// Horizon, in days, or HorizonHours, replaces the calendar period.
	Horizon      int
	HorizonHours int
	History      int
}

// parseHorizon reads a horizon: N or Nd (days, 1 to 366) or Nh (hours, 1
// to growth.MaxHourlyHorizon).
func parseHorizon(s string) (days, hours int, err error) {
	unit, num := "d", s
	if n := len(s); n > 0 && (s[n-1] == 'd' || s[n-1] == 'h') {
		unit, num = s[n-1:], s[:n-1]
	}
	v, err := strconv.Atoi(num)
	if err != nil {
		return 0, 0, fmt.Errorf("want N days (7 or 7d) or N hours (24h)")
	}
	if unit == "h" {
		if v < 1 || v > growth.MaxHourlyHorizon {
			return 0, 0, fmt.Errorf("want 1h to %dh", growth.MaxHourlyHorizon)
		}
		return 0, v, nil
	}
	if v < 1 || v > 366 {
		return 0, 0, fmt.Errorf("want 1 to 366 days")
	}
	return v, 0, nil
}

// ParseForecast reads the trend parameters, period (default month),
// budget, horizon (N or Nd: 1 to 366 days; Nh: 1 to 168 hours; excludes
// period) and history (default 91 days).
func ParseForecast(p Params, now time.Time) (Forecast, error) {
	var f Forecast
	var err error
	if f.Trend, err = ParseTrend(p, now); err != nil {
		return f, err
	}
	period := p.Value("period")
	if period == "" {
		period = DefaultPeriod
	}
	if f.Period, err = analytics.ParsePeriod(period); err != nil {
		return f, paramErr("period", "invalid %s: %v", p.Name("period"), err)
	}
	if p.IsSet("budget") {
		s := p.Value("budget")
		b, err := strconv.ParseFloat(s, 64)
		if err != nil || !(b > 0) || math.IsInf(b, 0) {
			return f, paramErr("budget", "invalid %s %s: want a positive amount", p.Name("budget"), s)
		}
		f.Budget = &b
	}
	if f.History, err = intParam(p, "history", DefaultHistory); err != nil {
		return f, err
	}
	if f.History < growth.MinForecastHistory || f.History > growth.MaxHistory {
		return f, paramErr("history", "invalid %s %d: want %d to %d days", p.Name("history"), f.History, growth.MinForecastHistory, growth.MaxHistory)
	}
	if h := p.Value("horizon"); h != "" {
		if p.IsSet("period") {
			return f, paramErr("horizon", "%s and %s are mutually exclusive: a calendar period or the next N days or hours", p.Name("period"), p.Name("horizon"))
		}
		if f.Horizon, f.HorizonHours, err = parseHorizon(h); err != nil {
			return f, paramErr("horizon", "invalid %s %s: %v", p.Name("horizon"), h, err)
		}
		if f.HorizonHours > 0 && f.Budget != nil {
			return f, paramErr("budget", "%s applies to a calendar period or a horizon in days, not in hours", p.Name("budget"))
		}
	}
	return f, nil
}

// ForecastTable runs f and builds its report.
func ForecastTable(ctx context.Context, q *analytics.Querier, f Forecast) (*render.Table, error) {
	rows, err := q.Forecast(ctx, analytics.ForecastQuery{At: f.At, Location: f.Loc, Period: f.Period, By: f.By,
		Where: f.Where, Metric: f.Metric, History: f.History, Budget: f.Budget, Horizon: f.Horizon, HorizonHours: f.HorizonHours})
	if err != nil {
		return nil, err
	}
	period, history := f.Period, f.History // for the report's title and note
	switch {
	case f.Horizon > 0:
		period = analytics.Period(fmt.Sprintf("next %d days", f.Horizon))
	case f.HorizonHours > 0:
		period = analytics.Period(fmt.Sprintf("next %d hours", f.HorizonHours))
		history = 0 // hours, not f.History days
	}
	return render.Forecast(render.ForecastReport{Scope: f.scope(), Metric: f.Metric, Location: f.Loc, Period: period,
		Budget: f.Budget != nil, History: history, Hours: f.HorizonHours > 0, Rows: rows}), nil
}
