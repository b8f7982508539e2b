package analytics

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics/growth"
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
}

// Derive computes the growth_daily rows of the UTC day containing day and
// inserts them in one INSERT (one part of one partition: a day is derived
// wholly or not at all). For every metric and scope, the growth is
// Querier.Growth at the start of the next day (the series ends with day)
// and the forecast Querier.Forecast of the month at the same instant,
// except on the month's last day, where Forecast would be the next month's:
// there the forecast is the month's total so far (no day is left).
// Deriving a day again inserts rows with the same keys and a newer
// computed_at (the Querier's clock), which replace the old rows; a group
// that is no longer among the MaxGroups biggest keeps its older row.
//
// The day should be complete (before today, UTC) and old enough that late
// events have landed; Derive does not check.
func (q *Querier) Derive(ctx context.Context, day time.Time, o DeriveOptions) (DeriveResult, error) {
	rows, res, err := q.DeriveRows(ctx, day, o)
	if err != nil {
		return res, err
	}
	if err := q.insertGrowth(ctx, res.Day, rows); err != nil {
		return res, err
	}
	res.Rows = len(rows)
	return res, nil
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

// DeriveRows computes what Derive inserts, without inserting it; the
// result's Rows is 0.
func (q *Querier) DeriveRows(ctx context.Context, day time.Time, o DeriveOptions) ([]GrowthDailyRow, DeriveResult, error) {
	o = o.withDefaults()
	d := dayStart(day, time.UTC)
	res := DeriveResult{Day: d}
	if err := o.Validate(); err != nil {
		return nil, res, err
	}
	now := q.opts.Now().UTC()
	var out []GrowthDailyRow
	for _, m := range o.Metrics {
		for _, s := range Scopes() {
			rows, dropped, err := q.deriveScope(ctx, d, m, s, o)
			if err != nil {
				return nil, res, fmt.Errorf("cannot derive %s growth of %s by %s: %w", m, d.Format(time.DateOnly), s, err)
			}
			for i := range rows {
				rows[i].ComputedAt = now
			}
			out = append(out, rows...)
			res.Dropped += dropped
		}
	}
	return out, res, nil
}

// deriveScope computes the rows of one metric and scope of day d: the
// groups of Growth (biggest first), then those with usage only this month,
// at most o.MaxGroups.
func (q *Querier) deriveScope(ctx context.Context, d time.Time, m Metric, s Scope, o DeriveOptions) ([]GrowthDailyRow, int, error) {
	by := s.Dims()
	at := d.AddDate(0, 0, 1)
	periodStart, periodEnd := PeriodMonth.Bounds(d, time.UTC)
	daysLeft := int(periodEnd.Sub(at).Hours()/24 + 0.5)
	gs, err := q.Growth(ctx, GrowthQuery{At: at, Location: time.UTC, By: by, Metric: m, Window: o.Window})
	if err != nil {
		return nil, 0, err
	}
	type forecast struct {
		toDate float64
		f      growth.Forecast
	}
	fcs := map[string]forecast{}
	var fcOrder []string
	groups := map[string]map[Dim]string{}
	if daysLeft > 0 {
		rows, err := q.Forecast(ctx, ForecastQuery{At: at, Location: time.UTC, Period: PeriodMonth, By: by, Metric: m, History: o.History})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			if !r.PeriodStart.Equal(periodStart) {
				return nil, 0, fmt.Errorf("forecast at %s is for the period from %s, want %s", at.Format(time.RFC3339),
					r.PeriodStart.Format(time.DateOnly), periodStart.Format(time.DateOnly))
			}
			k := groupKey(by, r.Group)
			fcs[k] = forecast{r.SoFar, r.Forecast}
			fcOrder = append(fcOrder, k)
			groups[k] = r.Group
		}
	} else {
		// The month ends with d: its total is known, nothing is left to
		// forecast (Forecast at the next midnight is the next month's).
		rows, err := q.Usage(ctx, UsageQuery{From: periodStart, To: at, By: by, NoLatency: true})
		if err != nil {
			return nil, 0, err
		}
		for i := range rows {
			v := metricOf(m, &rows[i])
			k := groupKey(by, rows[i].Group)
			fcs[k] = forecast{v, growth.ForecastPeriod(nil, v, 0, growth.DefaultForecastOptions())}
			fcOrder = append(fcOrder, k)
			groups[k] = rows[i].Group
		}
	}

	var out []GrowthDailyRow
	seen := map[string]bool{}
	dropped := 0
	add := func(k string, g growth.Growth) {
		seen[k] = true
		if len(out) == o.MaxGroups {
			dropped++
			return
		}
		grp := groups[k]
		r := GrowthDailyRow{Day: d, Metric: m, Scope: s, Tenant: grp[DimTenant], Provider: grp[DimProvider], Model: grp[DimModel],
			Growth: g, PeriodStart: periodStart, DaysLeft: daysLeft}
		if fc, ok := fcs[k]; ok {
			r.ToDate, r.Forecast = fc.toDate, fc.f
		} else {
			// Usage in the growth window but none in the forecast's
			// history or this month: nothing spent, nothing forecast.
			r.Forecast = growth.ForecastPeriod(nil, 0, daysLeft, growth.DefaultForecastOptions())
		}
		out = append(out, r)
	}
	for _, g := range gs {
		k := groupKey(by, g.Group)
		if _, ok := groups[k]; !ok {
			groups[k] = g.Group
		}
		add(k, g.Growth)
	}
	for _, k := range fcOrder {
		if !seen[k] && fcs[k].toDate > 0 {
			add(k, growth.Compute(make([]float64, max(o.Window, 14)), o.Window))
		}
	}
	return out, dropped, nil
}
