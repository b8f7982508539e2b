package analytics

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// TestForecastHours lands six weeks of hourly cost with a daily cycle for
// (±10% noise) for one tenant and three days for another, and forecasts the next 24 hours:
// the steady tenant's median is the cycle's daily total within 5% with a
// backtest behind it; the new tenant's history is too short for a number
// (its zero hours before it started do not count as history); the spend of
// the current hour so far is exact, its unpriced calls counted.
func TestForecastHours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := migratedDB(t)
	now := time.Date(2026, 3, 11, 10, 20, 0, 0, time.UTC)
	hour := now.Truncate(time.Hour)
	usd := func(v float64) pricing.Pico { return pricing.FromPicos(int64(math.Round(v * 1e12))) }
	cycle := func(ts time.Time) float64 { return 1 + 0.5*math.Sin(2*math.Pi*float64(ts.Hour())/24) }
	noise := rand.New(rand.NewPCG(3, 4))
	byMonth := map[warehouse.Month][]warehouse.Rollup{}
	off := int64(0)
	for ts := hour.Add(-42 * 24 * time.Hour); ts.Before(hour); ts = ts.Add(time.Hour) {
		off++
		byMonth[warehouse.MonthOf(ts)] = append(byMonth[warehouse.MonthOf(ts)], warehouse.Rollup{TS: ts, Tenant: "steady",
			SrcTopic: "costpipe.events", SrcOffset: off, Requests: 10, Cost: usd(cycle(ts) * (0.9 + 0.2*noise.Float64()))})
		if hour.Sub(ts) <= 72*time.Hour {
			byMonth[warehouse.MonthOf(ts)] = append(byMonth[warehouse.MonthOf(ts)], warehouse.Rollup{TS: ts, Tenant: "new",
				SrcTopic: "costpipe.events", SrcPartition: 1, SrcOffset: off, Requests: 1, Cost: usd(0.25)})
		}
	}
	for _, rows := range byMonth {
		if err := w.InsertRollups(ctx, warehouse.Hour, rows); err != nil {
			t.Fatal(err)
		}
	}
	// The current hour so far, in minutes.
	if err := w.InsertRollups(ctx, warehouse.Minute, []warehouse.Rollup{
		{TS: hour.Add(5 * time.Minute), Tenant: "steady", SrcTopic: "costpipe.events", SrcOffset: off + 1, Requests: 3, Cost: usd(0.3)},
		{TS: hour.Add(6 * time.Minute), Tenant: "steady", Model: "unknown-model", SrcTopic: "costpipe.events", SrcOffset: off + 2,
			Requests: 2, UnpricedRequests: 2},
	}); err != nil {
		t.Fatal(err)
	}

	q := New(w, Options{Now: func() time.Time { return now }})
	rows, err := q.Forecast(ctx, ForecastQuery{HorizonHours: 24, By: []Dim{DimTenant}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2 (steady, new): %+v", len(rows), rows)
	}
	var want float64
	for ts := hour; ts.Before(hour.Add(24 * time.Hour)); ts = ts.Add(time.Hour) {
		want += cycle(ts)
	}
	for _, r := range rows {
		if !r.PeriodStart.Equal(hour) || !r.PeriodEnd.Equal(hour.Add(24*time.Hour)) {
			t.Errorf("%v: period [%s, %s), want the next 24 hours from %s", r.Group, r.PeriodStart, r.PeriodEnd, hour)
		}
		switch r.Group[DimTenant] {
		case "steady":
			if r.SoFar != 0.3 || r.SoFarCost != usd(0.3) || r.UnpricedSoFar != 2 {
				t.Errorf("steady so far %v (%s), %d unpriced calls; want 0.3 and 2", r.SoFar, r.SoFarCost, r.UnpricedSoFar)
			}
			if r.P50 == nil || math.Abs(*r.P50-want)/want > 0.05 || r.Coverage == nil || r.MASE == nil || r.Method == "" {
				t.Errorf("steady forecast %+v, want p50 within 5%% of %.3f with a backtest", r.Forecast, want)
			} else if !(*r.P10 <= *r.P50 && *r.P50 <= *r.P90) {
				t.Errorf("steady band %v %v %v not ordered", *r.P10, *r.P50, *r.P90)
			}
		case "new":
			if r.P50 != nil || r.Note == "" {
				t.Errorf("new tenant (3 days of history): %+v, want no number and a note", r.Forecast)
			}
		default:
			t.Errorf("unexpected group %v", r.Group)
		}
	}

	for _, bad := range []ForecastQuery{
		{HorizonHours: 169},
		{HorizonHours: 24, Horizon: 2},
		{HorizonHours: 24, Budget: new(float64)},
	} {
		if _, err := q.Forecast(ctx, bad); err == nil || !strings.Contains(err.Error(), "hour") {
			t.Errorf("Forecast(%+v) = %v, want an error about hours", bad, err)
		}
	}
}

// TestForecastDailyYoungGroupAndSpentToday: a tenant that began 15 days
// ago has 15 days of history, not 91 with 76 zeros before it (those
// invented a backtest, a method and an interval); and no total falls below
// what the period has spent so far, today's spend included, even when
// today has already spent more than a usual day.
func TestForecastDailyYoungGroupAndSpentToday(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := migratedDB(t)
	now := time.Date(2026, 3, 20, 15, 0, 0, 0, time.UTC)
	today := now.Truncate(24 * time.Hour)
	usd := func(v float64) pricing.Pico { return pricing.FromPicos(int64(math.Round(v * 1e12))) }
	byMonth := map[warehouse.Month][]warehouse.Rollup{}
	off := int64(0)
	add := func(table warehouse.Table, ts time.Time, tenant string, cost float64) {
		off++
		byMonth[warehouse.MonthOf(ts)] = append(byMonth[warehouse.MonthOf(ts)], warehouse.Rollup{TS: ts, Tenant: tenant,
			SrcTopic: "costpipe.events", SrcOffset: off, Requests: 1, Cost: usd(cost)})
	}
	for d := today.AddDate(0, 0, -15); d.Before(today); d = d.AddDate(0, 0, 1) {
		add(warehouse.Day, d, "young", 1+0.1*float64(d.Weekday()))
	}
	for _, rows := range byMonth {
		if err := w.InsertRollups(ctx, warehouse.Day, rows); err != nil {
			t.Fatal(err)
		}
	}
	// Today so far: 30, far above a usual day (landed as the aggregator
	// does, in every table).
	for _, table := range []warehouse.Table{warehouse.Minute, warehouse.Hour, warehouse.Day} {
		ts := today.Add(9 * time.Hour)
		if table == warehouse.Day {
			ts = today
		}
		if err := w.InsertRollups(ctx, table, []warehouse.Rollup{
			{TS: ts, Tenant: "young", SrcTopic: "costpipe.events", SrcOffset: off + 1, Requests: 1, Cost: usd(30)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	q := New(w, Options{Now: func() time.Time { return now }})
	rows, err := q.Forecast(ctx, ForecastQuery{By: []Dim{DimTenant}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1: %+v", len(rows), rows)
	}
	r := rows[0]
	if !strings.Contains(r.Note, "only 15 days of history") || r.P10 != nil || r.BacktestOrigins != 0 {
		t.Errorf("young tenant: %+v; want 15 days of history (a note, no interval, no backtest)", r.Forecast)
	}
	if r.SoFar < 30 || r.P50 == nil || *r.P50 < r.SoFar {
		t.Errorf("young tenant: p50 %v below the %v spent so far", fmtPtr(r.P50), r.SoFar)
	}
}

// fmtPtr prints a *float64 for messages.
func fmtPtr(v *float64) string {
	if v == nil {
		return "nil"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}
