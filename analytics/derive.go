package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics/growth"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// GrowthTable is the table Derive writes (migration 0005): one row per
// UTC day, metric, scope and group with the day's growth and month-end
// forecast, so that analysts can join growth like any view.
const GrowthTable = "growth_daily"

// Scope is a grouping of growth_daily rows.
type Scope string

// The scopes Derive writes, each with the dimensions it groups by; the
// others are empty in its rows.
const (
	ScopeTotal       Scope = "total"        // no dimension: all usage
	ScopeTenant      Scope = "tenant"       // tenant
	ScopeModel       Scope = "model"        // provider, model
	ScopeTenantModel Scope = "tenant_model" // tenant, provider, model
)

// Scopes returns every scope, in the order Derive computes them.
func Scopes() []Scope { return []Scope{ScopeTotal, ScopeTenant, ScopeModel, ScopeTenantModel} }

// Dims returns the dimensions s groups by.
func (s Scope) Dims() []Dim {
	switch s {
	case ScopeTenant:
		return []Dim{DimTenant}
	case ScopeModel:
		return []Dim{DimProvider, DimModel}
	case ScopeTenantModel:
		return []Dim{DimTenant, DimProvider, DimModel}
	}
	return nil
}

// GrowthDailyRow is one row of growth_daily: the growth and the month-end
// forecast of one group's Metric as of the end of the UTC day Day.
type GrowthDailyRow struct {
	// Day is the last complete day of the series (midnight UTC): the
	// growth is Querier.Growth at the start of the next day.
	Day    time.Time
	Metric Metric
	Scope  Scope
	// Tenant, Provider and Model identify the group; empty for the
	// dimensions Scope does not group by.
	Tenant, Provider, Model string
	// Growth is of the days up to Day (a group with usage this month but
	// none in the growth window has sums of 0 and a note).
	Growth growth.Growth
	// PeriodStart is the first day of Day's month, the period forecast;
	// DaysLeft the days of the month after Day (0 on its last day, when
	// the forecast is the total so far).
	PeriodStart time.Time
	DaysLeft    int
	// ToDate is the metric's value from PeriodStart to the end of Day.
	ToDate float64
	// Forecast is of the month's total.
	Forecast growth.Forecast
	// ComputedAt is when Derive computed the row (the Querier's clock),
	// the version ReplacingMergeTree keeps the newest of.
	ComputedAt time.Time
}

// growthColumn is one column of growth_daily and its value in a row.
type growthColumn struct {
	warehouse.Column
	get func(r *GrowthDailyRow) any
}

func gcol(name, typ string, get func(r *GrowthDailyRow) any) growthColumn {
	return growthColumn{warehouse.Column{Name: name, Type: typ}, get}
}

// nullable is a Nullable(Float64) column read from a *float64 of the row.
func nullable(name string, field func(r *GrowthDailyRow) *float64) growthColumn {
	return gcol(name, "Nullable(Float64)", func(r *GrowthDailyRow) any { return field(r) })
}

// u16 is a count as UInt16, clamped (the counts are days, at most 366).
func u16(v int) uint16 { return uint16(min(max(v, 0), math.MaxUint16)) }

// growthColumns are growth_daily's columns in table order: the one list
// the INSERT and the schema check are generated from. The migration
// (0005_growth_daily.sql) is literal SQL; TestGrowthDailySchema DESCRIBEs
// the table against this list.
var growthColumns = []growthColumn{
	gcol("day", "Date", func(r *GrowthDailyRow) any { return r.Day }),
	gcol("metric", "String", func(r *GrowthDailyRow) any { return string(r.Metric) }),
	gcol("scope", "String", func(r *GrowthDailyRow) any { return string(r.Scope) }),
	gcol("tenant", "String", func(r *GrowthDailyRow) any { return r.Tenant }),
	gcol("provider", "String", func(r *GrowthDailyRow) any { return r.Provider }),
	gcol("model", "String", func(r *GrowthDailyRow) any { return r.Model }),
	nullable("last_7d", func(r *GrowthDailyRow) *float64 { return r.Growth.Last7d }),
	nullable("prev_7d", func(r *GrowthDailyRow) *float64 { return r.Growth.Prev7d }),
	nullable("wow_pct", func(r *GrowthDailyRow) *float64 { return r.Growth.WoWPct }),
	nullable("dod_pct", func(r *GrowthDailyRow) *float64 { return r.Growth.DoDPct }),
	gcol("window_days", "UInt16", func(r *GrowthDailyRow) any { return u16(r.Growth.Window) }),
	gcol("days_used", "UInt16", func(r *GrowthDailyRow) any { return u16(r.Growth.DaysUsed) }),
	gcol("zero_days", "UInt16", func(r *GrowthDailyRow) any { return u16(r.Growth.ZeroDays) }),
	nullable("daily_rate", func(r *GrowthDailyRow) *float64 { return r.Growth.DailyRate }),
	nullable("rate_ci_low", func(r *GrowthDailyRow) *float64 { return r.Growth.RateCILow }),
	nullable("rate_ci_high", func(r *GrowthDailyRow) *float64 { return r.Growth.RateCIHigh }),
	nullable("cmgr_pct", func(r *GrowthDailyRow) *float64 { return r.Growth.CMGRPct }),
	nullable("doubling_days", func(r *GrowthDailyRow) *float64 { return r.Growth.DoublingDays }),
	nullable("halving_days", func(r *GrowthDailyRow) *float64 { return r.Growth.HalvingDays }),
	gcol("note", "String", func(r *GrowthDailyRow) any { return r.Growth.Note }),
	gcol("period_start", "Date", func(r *GrowthDailyRow) any { return r.PeriodStart }),
	gcol("days_left", "UInt16", func(r *GrowthDailyRow) any { return u16(r.DaysLeft) }),
	gcol("to_date", "Float64", func(r *GrowthDailyRow) any { return r.ToDate }),
	nullable("forecast_p10", func(r *GrowthDailyRow) *float64 { return r.Forecast.P10 }),
	nullable("forecast_p50", func(r *GrowthDailyRow) *float64 { return r.Forecast.P50 }),
	nullable("forecast_p90", func(r *GrowthDailyRow) *float64 { return r.Forecast.P90 }),
	gcol("method", "String", func(r *GrowthDailyRow) any { return r.Forecast.Method }),
	nullable("mase", func(r *GrowthDailyRow) *float64 { return r.Forecast.MASE }),
	nullable("coverage", func(r *GrowthDailyRow) *float64 { return r.Forecast.Coverage }),
	gcol("forecast_note", "String", func(r *GrowthDailyRow) any { return r.Forecast.Note }),
	gcol("computed_at", "DateTime('UTC')", func(r *GrowthDailyRow) any { return r.ComputedAt.UTC() }),
}

// GrowthColumns returns growth_daily's columns as DESCRIBE TABLE reports
// them.
func GrowthColumns() []warehouse.Column {
	out := make([]warehouse.Column, len(growthColumns))
	for i, c := range growthColumns {
		out[i] = c.Column
	}
	return out
}

// growthInsert is the INSERT of growth_daily rows into database db, naming
// its columns (clickhouse-go needs them against 18.16).
func growthInsert(db string) string {
	names := make([]string, len(growthColumns))
	for i, c := range growthColumns {
		names[i] = c.Name
	}
	return "INSERT INTO " + db + "." + GrowthTable + " (" + strings.Join(names, ", ") + ")"
}

// CheckGrowthSchema compares growth_daily with GrowthColumns and reports
// the first difference: a table changed by hand, or a database whose
// migrations are older than the binary.
func (q *Querier) CheckGrowthSchema(ctx context.Context) error {
	got, err := q.w.Describe(ctx, GrowthTable)
	if err != nil {
		return err
	}
	want := GrowthColumns()
	norm := func(t string) string { return strings.ReplaceAll(t, " ", "") }
	for i := 0; i < max(len(got), len(want)); i++ {
		var diff string
		switch {
		case i >= len(got):
			diff = fmt.Sprintf("column %d %s %s is missing", i+1, want[i].Name, want[i].Type)
		case i >= len(want):
			diff = fmt.Sprintf("unexpected column %d %s %s", i+1, got[i].Name, got[i].Type)
		case got[i].Name != want[i].Name || norm(got[i].Type) != norm(want[i].Type):
			diff = fmt.Sprintf("column %d is %s %s, want %s %s", i+1, got[i].Name, got[i].Type, want[i].Name, want[i].Type)
		default:
			continue
		}
		return fmt.Errorf("%s.%s does not have the columns costpipe expects (run costpipe migrate): %s", q.w.Database(), GrowthTable, diff)
	}
	return nil
}

// DeriveOptions configure Derive.
type DeriveOptions struct {
	// Metrics are the metrics derived. Default cost and requests.
	Metrics []Metric
	// MaxGroups bounds the groups of one scope and metric written per
	// day: the biggest first (by the growth window's total), then groups
	// with usage only this month. Default 1000.
	MaxGroups int
	// Window is the growth trend window in days (GrowthQuery.Window).
	// Default 28.
	Window int
	// History is the forecast history in days (ForecastQuery.History).
	// Default 91.
	History int
}

// DefaultDeriveOptions returns DeriveOptions with every default filled in.
func DefaultDeriveOptions() DeriveOptions {
	return DeriveOptions{Metrics: []Metric{MetricCost, MetricRequests}, MaxGroups: 1000, Window: growth.DefaultWindow, History: 91}
}

// withDefaults fills the zero fields of o.
func (o DeriveOptions) withDefaults() DeriveOptions {
	def := DefaultDeriveOptions()
	if len(o.Metrics) == 0 {
		o.Metrics = def.Metrics
	}
	if o.MaxGroups == 0 {
		o.MaxGroups = def.MaxGroups
	}
	if o.Window == 0 {
		o.Window = def.Window
	}
	if o.History == 0 {
		o.History = def.History
	}
	return o
}

// Validate reports the first option that cannot work.
func (o DeriveOptions) Validate() error {
	if len(o.Metrics) == 0 {
		return fmt.Errorf("derive needs at least one metric")
	}
	seen := map[Metric]bool{}
	for _, m := range o.Metrics {
		if _, err := ParseMetric(string(m)); err != nil || m == "" {
			return fmt.Errorf("cannot derive metric %q: want cost, requests, input_tokens, output_tokens or tokens", m)
		}
		if seen[m] {
			return fmt.Errorf("metric %q is listed twice", m)
		}
		seen[m] = true
	}
	if o.MaxGroups <= 0 {
		return fmt.Errorf("derive max groups must be > 0, got %d", o.MaxGroups)
	}
	if o.Window < growth.MinWindow || o.Window > growth.MaxWindow {
		return fmt.Errorf("growth window of %d days: want %d to %d", o.Window, growth.MinWindow, growth.MaxWindow)
	}
	if o.History < growth.MinForecastHistory || o.History > growth.MaxHistory {
		return fmt.Errorf("forecast history of %d days: want %d to %d", o.History, growth.MinForecastHistory, growth.MaxHistory)
	}
	return nil
}

// DeriveResult says what Derive wrote for one day.
type DeriveResult struct {
	// Day is the day derived (midnight UTC).
	Day time.Time
	// Rows is the number of rows inserted.
	Rows int
	// Dropped is the number of groups left out by MaxGroups, over all
	// scopes and metrics.
	Dropped int
	// Failed is the number of scopes (of a metric) that could not be
	// derived; Derive's error says why. The others are written.
	Failed int
	// Again is set by the Deriver on a day it derived before and derives
	// again because its usage changed since (late calls, a reprice).
	Again bool
	// Err is set by the Deriver (RunOnce) on a day that failed, wholly or
	// in part: what Derive returned. Nil for a day derived.
	Err error
}

// Derive computes the growth_daily rows of the UTC day containing day and
// inserts them in one INSERT (one part of one partition). For every metric
// and scope, the growth is what Querier.Growth answers at the start of the
// next day (the series ends with day) and the forecast what
// Querier.Forecast answers for the month at the same instant, except on
// the month's last day, where Forecast would be the next month's: there
// the forecast is the month's total so far (no day is left). Each metric
// and scope is one read of the daily values of at most MaxGroups groups
// (the biggest, chosen in SQL), from which the growth and forecast are
// computed as Growth and Forecast compute them (the same functions of the
// same values: TestDeriveMatchesGrowthAndForecast), so a scope with more
// groups than the Querier's MaxRows is derived for its biggest ones
// instead of failing.
//
// A scope that fails (a query that times out, say) does not lose the
// others: they are inserted, res.Failed counts the failed ones, and the
// error says which and why; the Deriver derives such a day again at its
// next pass. The total rows are then left out: on a day derived before,
// the total's stale to_date is what tells the next pass (and a restarted
// process) that the day is still to derive again — a fresh one would
// match the rollups and the failed scope's old rows would stay. A day cut
// short by ctx is not written at all.
//
// Deriving a day again inserts rows with the same keys and a newer
// computed_at (the Querier's clock), which replace the old rows; a group
// that is no longer among the MaxGroups biggest keeps its older row.
//
// The day should be complete (before today, UTC); Derive does not check.
func (q *Querier) Derive(ctx context.Context, day time.Time, o DeriveOptions) (DeriveResult, error) {
	rows, res, err := q.DeriveRows(ctx, day, o)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil {
		rows = slices.DeleteFunc(rows, func(r GrowthDailyRow) bool { return r.Scope == ScopeTotal })
	}
	if ierr := q.insertGrowth(ctx, res.Day, rows); ierr != nil {
		return res, errors.Join(err, ierr)
	}
	res.Rows = len(rows)
	return res, err
}

// insertGrowth inserts the rows of day into growth_daily as one block.
func (q *Querier) insertGrowth(ctx context.Context, day time.Time, rows []GrowthDailyRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := q.w.Conn().PrepareBatch(ctx, growthInsert(q.w.Database()))
	if err != nil {
		return fmt.Errorf("cannot prepare insert into %s.%s: %w", q.w.Database(), GrowthTable, err)
	}
	vals := make([]any, len(growthColumns))
	for i := range rows {
		for j, c := range growthColumns {
			vals[j] = c.get(&rows[i])
		}
		if err := b.Append(vals...); err != nil {
			b.Abort()
			return fmt.Errorf("cannot append %s row of %s to the insert: %w", GrowthTable, day.Format(time.DateOnly), err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert %d %s rows of %s: %w", len(rows), GrowthTable, day.Format(time.DateOnly), err)
	}
	return nil
}

// deriveScopeFault, when set (tests only), is called before each scope of
// DeriveRows; an error it returns is that scope's.
var deriveScopeFault func(day time.Time, m Metric, s Scope) error

// DeriveRows computes what Derive inserts, without inserting it; the
// result's Rows is 0. The rows are those of the scopes that could be
// derived; the error (and the result's Failed) says which could not.
func (q *Querier) DeriveRows(ctx context.Context, day time.Time, o DeriveOptions) ([]GrowthDailyRow, DeriveResult, error) {
	o = o.withDefaults()
	d := dayStart(day, time.UTC)
	res := DeriveResult{Day: d}
	if err := o.Validate(); err != nil {
		return nil, res, err
	}
	now := q.opts.Now().UTC()
	var out []GrowthDailyRow
	var errs []error
	for _, m := range o.Metrics {
		for _, s := range Scopes() {
			if ctx.Err() != nil {
				return nil, res, ctx.Err()
			}
			var rows []GrowthDailyRow
			var dropped int
			var err error
			if deriveScopeFault != nil {
				err = deriveScopeFault(d, m, s)
			}
			if err == nil {
				rows, dropped, err = q.deriveScope(ctx, d, m, s, o)
			}
			if err != nil {
				res.Failed++
				errs = append(errs, fmt.Errorf("cannot derive %s growth of %s by %s: %w", m, d.Format(time.DateOnly), s, err))
				continue
			}
			for i := range rows {
				rows[i].ComputedAt = now
			}
			out = append(out, rows...)
			res.Dropped += dropped
		}
	}
	return out, res, errors.Join(errs...)
}

// deriveGroup is one group of a scope as deriveScope reads it.
type deriveGroup struct {
	group map[Dim]string
	key   string
	// values are the metric of the days read (Float64, as Daily reads
	// them), oldest first.
	values []float64
	// inWindow is whether the group has a rollup row in the growth window;
	// window and month are the exact sums of the growth window and of the
	// month up to the day.
	inWindow      bool
	window, month pricing.Pico
}

// deriveScope computes the rows of one metric and scope of day d: the
// groups with usage in the growth window (the biggest first, by its sum),
// then those with usage only earlier this month, at most o.MaxGroups,
// chosen in SQL (ORDER BY … DESC LIMIT), so that no more than that many
// groups are read. The numbers are those Growth and Forecast compute at
// the next midnight, from the same daily values.
func (q *Querier) deriveScope(ctx context.Context, d time.Time, m Metric, s Scope, o DeriveOptions) ([]GrowthDailyRow, int, error) {
	by := s.Dims()
	at := d.AddDate(0, 0, 1)
	periodStart, periodEnd := PeriodMonth.Bounds(d, time.UTC)
	daysLeft := int(periodEnd.Sub(at).Hours()/24 + 0.5)
	n := max(o.Window, 14) // the days Growth reads
	span := max(n, int(at.Sub(periodStart).Hours()/24+0.5))
	if daysLeft > 0 {
		span = max(span, o.History)
	}
	first := at.AddDate(0, 0, -span)
	windowStart := at.AddDate(0, 0, -n)
	groups, total, err := q.readScope(ctx, scopeRead{by: by, metric: m, first: first, at: at, windowStart: windowStart,
		periodStart: periodStart, limit: o.MaxGroups})
	if err != nil {
		return nil, 0, err
	}
	out := make([]GrowthDailyRow, 0, len(groups))
	for _, g := range groups {
		toDate := g.month.Float64()
		r := GrowthDailyRow{Day: d, Metric: m, Scope: s, Tenant: g.group[DimTenant], Provider: g.group[DimProvider], Model: g.group[DimModel],
			Growth: growth.Compute(g.values[span-n:], o.Window), PeriodStart: periodStart, DaysLeft: daysLeft, ToDate: toDate}
		if daysLeft > 0 {
			// Forecast at the next midnight: the history is the days
			// before it from the group's first use, the month so far is
			// exact, nothing of the next day is spent yet.
			r.Forecast = growth.ForecastPeriod(FromFirstUse(g.values[span-o.History:]), toDate, daysLeft, growth.ForecastOptions{})
		} else {
			// The month ends with d: its total is known, nothing is left to
			// forecast (Forecast at the next midnight is the next month's).
			r.Forecast = growth.ForecastPeriod(nil, toDate, 0, growth.DefaultForecastOptions())
		}
		out = append(out, r)
	}
	return out, max(total-len(out), 0), nil
}

// scopeRead is one read of deriveScope.
type scopeRead struct {
	by     []Dim
	metric Metric
	// first and at bound the days read, [first, at); windowStart and
	// periodStart start the growth window and the month, within them.
	first, at, windowStart, periodStart time.Time
	// limit bounds the groups read (by ≠ nil).
	limit int
}

// readScope reads the daily values of the groups of r, at most r.limit:
// those with a rollup row in the growth window or a sum above 0 in the
// month so far, ordered by (a row in the window, the window's sum, the
// month's sum, the group), the biggest first. total is the number of such
// groups, r.limit or fewer read.
//
// The groups are chosen in the query that reads their values (a GLOBAL IN
// over the ranking subquery, which on a cluster is ranked over every
// shard once), so what is read is bounded by the limit; counting the
// groups left out takes a second query, only when the limit was reached.
func (q *Querier) readScope(ctx context.Context, r scopeRead) (groups []*deriveGroup, total int, err error) {
	exact, ok := r.metric.exactExpr()
	if !ok {
		return nil, 0, unknownMetric(string(r.metric))
	}
	db := q.w.Database()
	table := warehouse.Day
	keys := make([]string, len(r.by))  // the dimensions' aliases
	exprs := make([]string, len(r.by)) // expr AS alias
	for i, d := range r.by {
		e, a := d.expr()
		keys[i], exprs[i] = a, a
		if e != a {
			exprs[i] = e + " AS " + a
		}
	}
	keyList := strings.Join(keys, ", ")
	days := int(r.at.Sub(r.first).Hours()/24 + 0.5)
	rankFrom := r.windowStart
	if r.periodStart.Before(rankFrom) {
		rankFrom = r.periodStart
	}

	// ranked is the subquery of the groups worth a row, its HAVING and
	// ORDER BY, and its arguments.
	rankedArgs := []any{dateTimeArg(r.windowStart), dateTimeArg(r.periodStart)}
	ranked := "SELECT " + strings.Join(exprs, ", ") + ", ts >= toDateTime(?, 'UTC') AS in_window, ts >= toDateTime(?, 'UTC') AS in_month, " +
		exact + " AS x\n    FROM " + db + "." + table.Name() + "\n    WHERE " + table.TimeRange() + "\n    GROUP BY " + keyList + ", ts"
	rankedArgs = table.TimeRangeArgs(rankedArgs, rankFrom, r.at)
	const worthy = "max(in_window) = 1 OR sumIf(x, in_month) > 0"

	var sb strings.Builder
	sb.WriteString("SELECT ")
	for _, e := range exprs {
		sb.WriteString(e + ", ")
	}
	sb.WriteString("toString(toDate(ts, 'UTC')) AS bucket, toFloat64(" + exact + ") AS v, toString(" + exact + ") AS exact\nFROM " +
		db + "." + table.Name() + "\nWHERE " + table.TimeRange())
	args := table.TimeRangeArgs(nil, r.first, r.at)
	if len(r.by) > 0 {
		// Tuples of one element are not tuples: compare the column.
		lhs := keyList
		if len(keys) > 1 {
			lhs = "(" + keyList + ")"
		}
		sb.WriteString(" AND " + lhs + " GLOBAL IN\n(\n    SELECT " + keyList + " FROM\n    (\n    " + ranked + "\n    )\n    GROUP BY " + keyList +
			"\n    HAVING " + worthy + "\n    ORDER BY max(in_window) DESC, sumIf(x, in_window) DESC, sumIf(x, in_month) DESC, " + keyList +
			"\n    LIMIT " + strconv.Itoa(r.limit) + "\n)")
		args = append(args, rankedArgs...)
	}
	sb.WriteString("\nGROUP BY ")
	for _, k := range keys {
		sb.WriteString(k + ", ")
	}
	sb.WriteString("bucket")

	rows, err := q.w.Conn().Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot query daily %s in [%s, %s): %w", r.metric, r.first.Format(time.DateOnly), r.at.Format(time.DateOnly), err)
	}
	defer rows.Close()
	byKey := map[string]*deriveGroup{}
	windowDay := r.windowStart.Format(time.DateOnly)
	monthDay := r.periodStart.Format(time.DateOnly)
	for rows.Next() {
		vals := make([]string, len(keys))
		var day, x string
		var v float64
		dest := make([]any, 0, len(vals)+3)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(append(dest, &day, &v, &x)...); err != nil {
			return nil, 0, fmt.Errorf("cannot read daily row: %w", err)
		}
		t, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return nil, 0, fmt.Errorf("cannot read daily row: day %q: %w", day, err)
		}
		i := int(t.Sub(r.first).Hours()/24 + 0.5)
		if i < 0 || i >= days {
			continue // cannot happen: the WHERE bounds the days
		}
		p, err := pricing.ParsePico(x)
		if err != nil {
			return nil, 0, fmt.Errorf("cannot read the %s of %s on %s: %w", r.metric, groupString(r.by, vals), day, err)
		}
		g := map[Dim]string{}
		for i, d := range r.by {
			g[d] = vals[i]
		}
		k := groupKey(r.by, g)
		dg := byKey[k]
		if dg == nil {
			dg = &deriveGroup{group: g, key: k, values: make([]float64, days)}
			byKey[k] = dg
		}
		dg.values[i] += v
		if day >= windowDay {
			dg.inWindow = true
			dg.window = dg.window.Add(p)
		}
		if day >= monthDay {
			dg.month = dg.month.Add(p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("cannot read daily rows: %w", err)
	}
	for _, g := range byKey {
		if g.inWindow || g.month.Sign() > 0 { // the HAVING of ranked (the total scope has none)
			groups = append(groups, g)
		}
	}
	slices.SortFunc(groups, func(a, b *deriveGroup) int {
		switch {
		case a.inWindow != b.inWindow:
			if a.inWindow {
				return -1
			}
			return 1
		case a.window.Cmp(b.window) != 0:
			return -a.window.Cmp(b.window)
		case a.month.Cmp(b.month) != 0:
			return -a.month.Cmp(b.month)
		}
		return strings.Compare(a.key, b.key)
	})
	if len(r.by) == 0 || len(groups) < r.limit {
		return groups, len(groups), nil
	}
	groups = groups[:r.limit]
	// The limit was reached: count the groups it left out.
	var n uint64
	if err := q.w.Conn().QueryRow(ctx, "SELECT count() FROM\n(\n    SELECT "+keyList+" FROM\n    (\n    "+ranked+"\n    )\n    GROUP BY "+keyList+
		"\n    HAVING "+worthy+"\n)", rankedArgs...).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("cannot count the %s groups by %s: %w", r.metric, keyList, err)
	}
	return groups, max(int(n), len(groups)), nil
}

// dateTimeArg is t as a toDateTime(?, 'UTC') argument (unix seconds,
// clamped as the rollups' time ranges are).
func dateTimeArg(t time.Time) int64 {
	return warehouse.Day.TimeRangeArgs(nil, t, t)[0].(int64)
}
