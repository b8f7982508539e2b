package analytics

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics/growth"
)

// referenceScope is what Derive computed for one metric and scope before
// it bounded its reads: Growth and Forecast (or, on a month's last day,
// Usage) of every group at the next midnight, keyed by group. Derive's rows
// must stay these numbers.
func referenceScope(t *testing.T, q *Querier, d time.Time, m Metric, s Scope, o DeriveOptions) map[string]GrowthDailyRow {
	t.Helper()
	ctx := context.Background()
	by := s.Dims()
	at := d.AddDate(0, 0, 1)
	periodStart, periodEnd := PeriodMonth.Bounds(d, time.UTC)
	daysLeft := int(periodEnd.Sub(at).Hours()/24 + 0.5)
	gs, err := q.Growth(ctx, GrowthQuery{At: at, Location: time.UTC, By: by, Metric: m, Window: o.Window})
	if err != nil {
		t.Fatal(err)
	}
	type forecast struct {
		toDate float64
		f      growth.Forecast
	}
	fcs := map[string]forecast{}
	groups := map[string]map[Dim]string{}
	if daysLeft > 0 {
		rows, err := q.Forecast(ctx, ForecastQuery{At: at, Location: time.UTC, Period: PeriodMonth, By: by, Metric: m, History: o.History})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			k := groupKey(by, r.Group)
			fcs[k], groups[k] = forecast{r.SoFar, r.Forecast}, r.Group
		}
	} else {
		rows, err := q.Usage(ctx, UsageQuery{From: periodStart, To: at, By: by, NoLatency: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			v := metricOf(m, &rows[i])
			k := groupKey(by, rows[i].Group)
			fcs[k], groups[k] = forecast{v, growth.ForecastPeriod(nil, v, 0, growth.DefaultForecastOptions())}, rows[i].Group
		}
	}
	out := map[string]GrowthDailyRow{}
	add := func(k string, g growth.Growth) {
		grp := groups[k]
		r := GrowthDailyRow{Day: d, Metric: m, Scope: s, Tenant: grp[DimTenant], Provider: grp[DimProvider], Model: grp[DimModel],
			Growth: g, PeriodStart: periodStart, DaysLeft: daysLeft}
		if fc, ok := fcs[k]; ok {
			r.ToDate, r.Forecast = fc.toDate, fc.f
		} else {
			r.Forecast = growth.ForecastPeriod(nil, 0, daysLeft, growth.DefaultForecastOptions())
		}
		out[k] = r
	}
	for _, g := range gs {
		k := groupKey(by, g.Group)
		if _, ok := groups[k]; !ok {
			groups[k] = g.Group
		}
		add(k, g.Growth)
	}
	for k, fc := range fcs {
		if _, ok := out[k]; !ok && fc.toDate > 0 {
			add(k, growth.Compute(make([]float64, max(o.Window, 14)), o.Window))
		}
	}
	return out
}

// TestDeriveMatchesGrowthAndForecast: the rows Derive computes from its
// bounded reads are, group by group, metric by metric and scope by scope,
// those of the query layer's Growth and Forecast (referenceScope): mid
// month, on a month's last day, in the first days of the data (short
// history), after the data ends (usage in the growth window only), with
// the default and with other windows and histories (with a 14-day window
// 2026-04-20 has no usage in its window and none in its month: no row).
func TestDeriveMatchesGrowthAndForecast(t *testing.T) {
	t.Parallel()
	w := growthDB(t) // 2026-01-01 … 2026-03-31
	q := New(w, Options{Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }})
	ctx := context.Background()
	days := []time.Time{
		time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC),
	}
	for i, o := range []DeriveOptions{
		{Metrics: []Metric{MetricCost, MetricRequests, MetricTokens}},
		{Metrics: []Metric{MetricCost}, Window: 14, History: 7},
		{Metrics: []Metric{MetricCost}, Window: 60, History: 182},
	} {
		o = o.withDefaults()
		for _, d := range days {
			rows, res, err := q.DeriveRows(ctx, d, o)
			if err != nil || res.Dropped != 0 {
				t.Fatalf("%s %+v: %v, %d dropped", d.Format(time.DateOnly), o, err, res.Dropped)
			}
			got := map[Metric]map[Scope]map[string]GrowthDailyRow{}
			for _, r := range rows {
				if got[r.Metric] == nil {
					got[r.Metric] = map[Scope]map[string]GrowthDailyRow{}
				}
				if got[r.Metric][r.Scope] == nil {
					got[r.Metric][r.Scope] = map[string]GrowthDailyRow{}
				}
				r.ComputedAt = time.Time{}
				got[r.Metric][r.Scope][groupKey(r.Scope.Dims(), map[Dim]string{DimTenant: r.Tenant, DimProvider: r.Provider, DimModel: r.Model})] = r
			}
			for _, m := range o.Metrics {
				for _, s := range Scopes() {
					want := referenceScope(t, q, d, m, s, o)
					if len(want) == 0 && i == 0 {
						t.Fatalf("%s %s %s: the reference has no rows; pick another day", d.Format(time.DateOnly), m, s)
					}
					if len(want) == 0 {
						want = nil
					}
					if !reflect.DeepEqual(got[m][s], want) {
						t.Errorf("%s %s by %s (window %d, history %d):\n got %+v\nwant %+v", d.Format(time.DateOnly), m, s, o.Window, o.History, got[m][s], want)
					}
				}
			}
		}
	}
}
