package render

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
)

// GrowthReport is what Growth renders: the answer of analytics.Growth.
type GrowthReport struct {
	// Scope gives By and Where (growth has no range: see the rows' Days).
	Scope    Scope
	Metric   analytics.Metric
	Location *time.Location
	// Window is the trend's days (growth.DefaultWindow when 0), for the
	// note of a report without rows.
	Window int
	Rows   []analytics.GrowthRow
}

// growthFields are the growth.Growth figures, in column order.
var growthFields = []struct {
	name, head string
	unit       Unit // 0: the metric's
	show       Show
	get        func(r *analytics.GrowthRow) *float64
}{
	{"last_7d", "LAST 7D", 0, ShowAll, func(r *analytics.GrowthRow) *float64 { return r.Last7d }},
	{"prev_7d", "PREV 7D", 0, ShowAll, func(r *analytics.GrowthRow) *float64 { return r.Prev7d }},
	{"wow_pct", "WOW", UnitPercent, ShowAll, func(r *analytics.GrowthRow) *float64 { return r.WoWPct }},
	{"dod_pct", "DOD", UnitPercent, ShowAll, func(r *analytics.GrowthRow) *float64 { return r.DoDPct }},
	{"daily_rate", "", UnitNone, ShowData, func(r *analytics.GrowthRow) *float64 { return r.DailyRate }},
	{"rate_ci_low", "", UnitNone, ShowData, func(r *analytics.GrowthRow) *float64 { return r.RateCILow }},
	{"rate_ci_high", "", UnitNone, ShowData, func(r *analytics.GrowthRow) *float64 { return r.RateCIHigh }},
	{"cmgr_pct", "CMGR", UnitPercent, ShowAll, func(r *analytics.GrowthRow) *float64 { return r.CMGRPct }},
	{"doubling_days", "", UnitDays, ShowData, func(r *analytics.GrowthRow) *float64 { return r.DoublingDays }},
	{"halving_days", "", UnitDays, ShowData, func(r *analytics.GrowthRow) *float64 { return r.HalvingDays }},
}

// trendDays is the number of days the table format's sparkline shows.
const trendDays = 28

// Growth is the growth report: per group the growth.Growth figures (null
// when there is too little data, with a note), window, days_used,
// zero_days, note, and the daily values (days, daily) the trend was
// fitted on; CSV leaves the lists out. The sums of the metric (last_7d,
// prev_7d) are Money for cost, as cost_usd is in every report (a decimal
// string in JSON); the daily values are a list of numbers. Without any
// usage in the window (fresh data) the machine formats get one row
// without a group whose note says so, the table format a line. The table
// format shows the doubling or halving time, the 90% interval of the
// monthly growth and a sparkline of the last 28 days.
func Growth(r GrowthReport) *Table {
	by := r.Scope.By
	t := &Table{Empty: fmt.Sprintf("no %s in the growth window%s", r.Metric, r.Scope.whereText())}
	usd := r.Metric == analytics.MetricCost || r.Metric == ""
	t.Columns = dimColumns(by)
	for i := range t.Columns {
		t.Columns[i].Nullable = true // null in the row of a report without groups
	}
	for _, f := range growthFields {
		c := Column{Name: f.name, Head: f.head, Kind: KindFloat, Unit: f.unit, Nullable: true, Show: f.show}
		if f.unit == 0 {
			c.Unit, c.Head = metricUnit(r.Metric), f.head+unitSuffix(r.Metric)
			if usd {
				c.Kind = KindMoney
			}
		}
		t.Columns = append(t.Columns, c)
	}
	t.Columns = append(t.Columns,
		Column{Name: "doubling", Head: "DOUBLING", Kind: KindText, Show: ShowTable},
		Column{Name: "cmgr_ci", Head: "90% CI OF CMGR", Kind: KindText, Show: ShowTable},
		Column{Name: "window", Kind: KindInt, Show: ShowData},
		Column{Name: "days_used", Kind: KindInt, Show: ShowData},
		Column{Name: "zero_days", Kind: KindInt, Show: ShowData},
		Column{Name: "trend", Head: "LAST " + strconv.Itoa(trendDays) + " DAYS", Kind: KindFloats, Show: ShowTable},
		Column{Name: "note", Kind: KindText, HideEmpty: true},
		Column{Name: "days", Kind: KindDates, Show: ShowData},
		Column{Name: "daily", Kind: KindFloats, Show: ShowData})
	for i := range r.Rows {
		g := &r.Rows[i]
		vals := dimValues(by, g.Group)
		for _, f := range growthFields {
			if f.unit == 0 && usd {
				vals = append(vals, OptUSD(f.get(g)))
			} else {
				vals = append(vals, OptFloat(f.get(g)))
			}
		}
		doubling := Null()
		switch {
		case g.DoublingDays != nil:
			doubling = Text(Cell(Float(*g.DoublingDays), UnitDays))
		case g.HalvingDays != nil:
			doubling = Text("halves " + Cell(Float(*g.HalvingDays), UnitDays))
		}
		ci := Null()
		if g.RateCILow != nil && g.RateCIHigh != nil {
			ci = Text(Cell(Float(cmgr(*g.RateCILow)), UnitPercent) + " … " + Cell(Float(cmgr(*g.RateCIHigh)), UnitPercent))
		}
		vals = append(vals, doubling, ci, Int(g.Window), Int(g.DaysUsed), Int(g.ZeroDays),
			Floats(g.Daily[max(0, len(g.Daily)-trendDays):]), Text(g.Note), Dates(g.Days), Floats(g.Daily))
		t.Rows = append(t.Rows, vals)
	}
	if len(r.Rows) == 0 {
		// Nothing to measure: the machine formats say why in the note
		// column, as for a group with too little data; the table format
		// prints Empty.
		window := r.Window
		if window <= 0 {
			window = growth.DefaultWindow
		}
		vals := make([]Value, len(by), len(t.Columns))
		for range growthFields {
			vals = append(vals, Null())
		}
		note := fmt.Sprintf("no %s in the %d-day window (complete days in %s): too little data for a growth rate; a trend needs usage on at least %d days",
			r.Metric, window, r.Location, growth.MinTrendDays)
		t.Rows = append(t.Rows, append(vals, Null(), Null(), Int(window), Int(0), Int(window), Floats(nil), Text(note),
			Dates(nil), Floats(nil)))
		t.View = &Table{Empty: t.Empty}
		return t
	}
	last := r.Rows[0].Days[len(r.Rows[0].Days)-1]
	t.Notes = append(t.Notes, fmt.Sprintf("%s per day in %s up to %s%s; CMGR = compound monthly growth of the %d-day trend",
		r.Metric, r.Location, last.Format(time.DateOnly), r.Scope.whereText(), r.Rows[0].Window))
	return t
}

// cmgr is the compound monthly growth in percent of a daily log rate.
func cmgr(rate float64) float64 { return 100 * (math.Exp(30*rate) - 1) }
