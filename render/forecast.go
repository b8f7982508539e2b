package render

import (
	"fmt"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// ForecastReport is what Forecast renders: the answer of
// analytics.Forecast.
type ForecastReport struct {
	// Scope gives By and Where.
	Scope    Scope
	Metric   analytics.Metric
	Location *time.Location
	Period   analytics.Period
	// Budget tells whether the query had a budget: the table format then
	// shows the exhaustion dates and the chance of overspending.
	Budget bool
	// History is the query's days of history (0: not in days), for the
	// note of an answer without groups.
	History int
	// Hours tells a horizon of hours (UTC hours, whatever Location): the
	// period's bounds are then instants, its end exclusive.
	Hours bool
	Rows  []analytics.ForecastRow
}

// Forecast is the forecast report: per group period_start, period_end
// (the last day; for a horizon of hours both are instants, the end
// exclusive), to_date (the period so far), forecast_p10/p50/p90 of
// the period's total, the method and its backtest (mase, coverage,
// backtest_origins), exhaustion_p50/p90 (dates) and p_overspend with a
// budget, and a note. For cost, to_date (exact) and the forecasts
// (rounded to 10⁻¹² USD) are Money, as cost_usd is in every report: a
// decimal string in JSON; other metrics are numbers. Without any usage in
// the history or the period so far the machine formats get one row without
// a group whose note says so (to_date 0, the rest null), the table format
// a line.
func Forecast(r ForecastReport) *Table {
	by := r.Scope.By
	unit, suffix := metricUnit(r.Metric), unitSuffix(r.Metric)
	t := &Table{Empty: fmt.Sprintf("no %s in the forecast history%s", r.Metric, r.Scope.whereText())}
	budget := ShowData
	if r.Budget {
		budget = ShowAll
	}
	usd := r.Metric == analytics.MetricCost || r.Metric == ""
	amount := KindFloat
	if usd {
		amount = KindMoney
	}
	t.Columns = dimColumns(by)
	for i := range t.Columns {
		t.Columns[i].Nullable = true // null in the row of a report without groups
	}
	bound, start, end := KindDate, Date, func(t time.Time) Value { return Date(lastDay(t)) }
	if r.Hours {
		bound, start, end = KindTime, Time, Time
	}
	t.Columns = append(t.Columns,
		Column{Name: "period_start", Kind: bound, Show: ShowData, Nullable: true},
		Column{Name: "period_end", Kind: bound, Show: ShowData, Nullable: true},
		Column{Name: "to_date", Head: "TO DATE" + suffix, Kind: amount, Unit: unit},
		Column{Name: "forecast_p10", Head: "P10" + suffix, Kind: amount, Unit: unit, Nullable: true},
		Column{Name: "forecast_p50", Head: "P50" + suffix, Kind: amount, Unit: unit, Nullable: true},
		Column{Name: "forecast_p90", Head: "P90" + suffix, Kind: amount, Unit: unit, Nullable: true},
		Column{Name: "method", Kind: KindText},
		Column{Name: "mase", Kind: KindFloat, Unit: UnitRatio, Nullable: true},
		Column{Name: "coverage", Kind: KindFloat, Unit: UnitRatio, Nullable: true},
		Column{Name: "backtest_origins", Kind: KindInt, Show: ShowData},
		Column{Name: "exhaustion_p50", Head: "EXHAUSTED P50", Kind: KindDate, Nullable: true, Show: budget},
		Column{Name: "exhaustion_p90", Head: "EXHAUSTED P90", Kind: KindDate, Nullable: true, Show: budget},
		Column{Name: "p_overspend", Head: "P(OVER)", Kind: KindFloat, Unit: UnitRatio, Nullable: true, Show: budget},
		Column{Name: "note", Kind: KindText, HideEmpty: true})
	for i := range r.Rows {
		f := &r.Rows[i]
		day := func(off *int) Value {
			if off == nil {
				return Null()
			}
			return Date(f.Today.AddDate(0, 0, *off))
		}
		so, amount := Float(f.SoFar), OptFloat
		if usd {
			so, amount = Money(f.SoFarCost), OptUSD
		}
		t.Rows = append(t.Rows, append(dimValues(by, f.Group),
			start(f.PeriodStart), end(f.PeriodEnd), so,
			amount(f.P10), amount(f.P50), amount(f.P90),
			Text(f.Method), OptFloat(f.MASE), OptFloat(f.Coverage), Int(f.BacktestOrigins),
			day(f.ExhaustionP50), day(f.ExhaustionP90), OptFloat(f.POverspend), Text(f.Note)))
	}
	if len(r.Rows) == 0 {
		// Nothing to forecast: the machine formats say why in the note
		// column, as growth does; the table format prints Empty.
		vals := make([]Value, len(by), len(t.Columns))
		zero := Float(0)
		if usd {
			zero = Money(pricing.Pico{})
		}
		hist := "the history"
		if r.History > 0 {
			hist = fmt.Sprintf("the %d days of history", r.History)
		}
		note := fmt.Sprintf("no %s in %s or the period so far%s: nothing to forecast", r.Metric, hist, r.Scope.whereText())
		t.Rows = append(t.Rows, append(vals, Null(), Null(), zero, Null(), Null(), Null(), Text(""), Null(), Null(), Int(0),
			Null(), Null(), Null(), Text(note)))
		t.View = &Table{Empty: t.Empty}
		return t
	}
	var unpriced uint64
	for i := range r.Rows {
		unpriced += r.Rows[i].UnpricedSoFar
	}
	if n := unpricedNote(unpriced); n != "" && usd {
		t.Notes = append(t.Notes, n+" (in the period so far)")
	}
	if len(r.Rows) > 0 {
		f := &r.Rows[0]
		from, to, loc := f.PeriodStart.Format(time.DateOnly), lastDay(f.PeriodEnd).Format(time.DateOnly), r.Location.String()
		if r.Hours {
			// UTC hours: the start and the (exclusive) end, to the minute.
			from, to, loc = f.PeriodStart.UTC().Format("2006-01-02 15:04"), f.PeriodEnd.UTC().Format("2006-01-02 15:04"), "UTC"
		}
		t.Notes = append(t.Notes, fmt.Sprintf("%s of the %s %s … %s (%s)%s; p10–p90 is the band of the period total", r.Metric, r.Period,
			from, to, loc, r.Scope.whereText()))
	}
	return t
}

// lastDay is the day holding the last instant of a period that ends
// (exclusive) at end: the day before a midnight, end's own day otherwise
// (a horizon of hours).
func lastDay(end time.Time) time.Time { return end.Add(-time.Nanosecond) }
