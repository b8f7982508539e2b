package analytics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// landLate lands requests calls of tenant on gpt-4o at ts, costing cost
// USD, in every rollup table, as an aggregator that lags behind would.
func landLate(t *testing.T, w *warehouse.Warehouse, ts time.Time, tenant string, requests uint64, cost string, off int64) {
	t.Helper()
	for _, tb := range warehouse.Tables {
		r := warehouse.Rollup{TS: tb.Truncate(ts), Tenant: tenant, Provider: "openai", Model: "gpt-4o", SrcTopic: "costpipe.late",
			SrcPartition: 7, SrcOffset: off, Requests: requests, Cost: pricing.MustParsePico(cost)}
		if err := w.InsertRollups(context.Background(), tb, []warehouse.Rollup{r}); err != nil {
			t.Fatal(err)
		}
	}
}

// metricValue is the value of the counter or gauge name (without labels,
// or with the labels given as name="value" pairs) in reg; -1 when absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// derivedDays is "DAY:ROWS …" of rs.
func derivedDays(rs []DeriveResult) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%s:%d", r.Day.Format(time.DateOnly), r.Rows))
	}
	return strings.Join(s, " ")
}

// totalRow reads growth_daily's newest total row of day and metric:
// to_date and last_7d.
func totalRow(t *testing.T, w *warehouse.Warehouse, day string, m Metric) (toDate, last7 float64) {
	t.Helper()
	if err := w.Conn().QueryRow(context.Background(), "SELECT to_date, assumeNotNull(last_7d) FROM "+w.Database()+"."+GrowthTable+
		" FINAL WHERE day = toDate(?) AND metric = ? AND scope = 'total'", day, string(m)).Scan(&toDate, &last7); err != nil {
		t.Fatalf("total %s row of %s: %v", m, day, err)
	}
	return
}

// TestDeriverLateData: calls of an already derived day that land late (an
// aggregator behind, a stale replica, a reprice correction) reach
// growth_daily at the next pass: the day and every later one, whose
// 7-day sums and month to date include it, are derived again, counted in
// costpipe_derive_days_rederived_total; the pass after that has nothing to
// do, and a day before the late one is not touched.
func TestDeriverLateData(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	reg := prometheus.NewRegistry()
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 3, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || derivedDays(got) != "2026-03-08:16 2026-03-09:16 2026-03-10:16" {
		t.Fatalf("first pass derived %q, %v", derivedDays(got), err)
	}
	before8, _ := totalRow(t, w, "2026-03-08", MetricRequests)
	before10, _ := totalRow(t, w, "2026-03-10", MetricRequests)

	// 1,000 calls of 2026-03-09 land after it was derived.
	landLate(t, w, time.Date(2026, 3, 9, 23, 50, 0, 0, time.UTC), "acme", 1000, "100", 1)
	clock = time.Date(2026, 3, 11, 6, 0, 0, 0, time.UTC)
	got, err := dv.RunOnce(ctx)
	if err != nil || derivedDays(got) != "2026-03-09:16 2026-03-10:16" {
		t.Fatalf("pass after late data derived %q, %v; want 2026-03-09 and 2026-03-10 again", derivedDays(got), err)
	}
	if after8, _ := totalRow(t, w, "2026-03-08", MetricRequests); after8 != before8 {
		t.Errorf("2026-03-08 (before the late calls) changed: to_date %v, was %v", after8, before8)
	}
	toDate10, last7 := totalRow(t, w, "2026-03-10", MetricRequests)
	if toDate10 != before10+1000 {
		t.Errorf("2026-03-10 to_date %v after the late calls, want %v", toDate10, before10+1000)
	}
	gs, err := q.Growth(ctx, GrowthQuery{At: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), Metric: MetricRequests})
	if err != nil || len(gs) != 1 {
		t.Fatalf("Growth: %v, %v", gs, err)
	}
	if last7 != *gs[0].Last7d {
		t.Errorf("2026-03-10 last_7d %v, query growth %v", last7, *gs[0].Last7d)
	}
	if v := metricValue(t, reg, "costpipe_derive_days_rederived_total"); v != 2 {
		t.Errorf("costpipe_derive_days_rederived_total %v, want 2", v)
	}
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Errorf("the pass after derived %q, %v; want nothing", derivedDays(got), err)
	}
	// A process started afterwards finds nothing to do either.
	dv2, err := NewDeriver(q, DeriverOptions{Backfill: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dv2.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Errorf("a new process derived %q, %v; want nothing", derivedDays(got), err)
	}
}

// TestDeriverEmptyDaysThenData: days without usage are not written (and
// not counted); when their usage lands later (a backfill through produce,
// an aggregator catching up), the next pass of the same process derives
// them.
func TestDeriverEmptyDaysThenData(t *testing.T) {
	t.Parallel()
	w := migratedDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 3, Derive: DeriveOptions{Metrics: []Metric{MetricRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dv.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for i, d := range []int{8, 9, 10} {
		landLate(t, w, time.Date(2026, 3, d, 12, 0, 0, 0, time.UTC), "acme", 10, "1", int64(i+1))
	}
	clock = clock.Add(time.Hour)
	got, err := dv.RunOnce(ctx)
	// 1 metric × (total, acme, gpt-4o, acme × gpt-4o)
	if err != nil || derivedDays(got) != "2026-03-08:4 2026-03-09:4 2026-03-10:4" {
		t.Fatalf("pass after the usage landed derived %q, %v; want the three days", derivedDays(got), err)
	}
	if toDate, _ := totalRow(t, w, "2026-03-10", MetricRequests); toDate != 30 {
		t.Errorf("2026-03-10 to_date %v, want 30", toDate)
	}
}

// TestDeriverTooManyGroups: --max-groups bounds what a day reads, not only
// what it writes: with more groups than the Querier's MaxRows (which fails
// Growth and Forecast), every day is derived with the biggest group of
// each scope, and the others are counted as dropped.
func TestDeriverTooManyGroups(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }, MaxRows: 2})
	if _, err := q.Growth(ctx, GrowthQuery{By: ScopeTenantModel.Dims()}); err == nil {
		t.Fatal("Growth by tenant × model with MaxRows 2: no error; the test needs one")
	}
	reg := prometheus.NewRegistry()
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 2, Registerer: reg, Derive: DeriveOptions{MaxGroups: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// 2 metrics × 4 scopes × 1 group; dropped: 1 tenant, 1 model, 2
	// tenant × model per metric.
	got, err := dv.RunOnce(ctx)
	if err != nil || derivedDays(got) != "2026-03-09:8 2026-03-10:8" {
		t.Fatalf("derived %q, %v; want two days of 8 rows", derivedDays(got), err)
	}
	if v := metricValue(t, reg, "costpipe_derive_groups_dropped_total"); v != 16 {
		t.Errorf("costpipe_derive_groups_dropped_total %v, want 16", v)
	}
	rows := growthRows(t, w, "day = '2026-03-10' AND metric = 'cost' AND scope = 'tenant_model'", false)
	if len(rows) != 1 || rows[0][colIndex(t, "tenant")] != "acme" || rows[0][colIndex(t, "model")] != "gpt-4o" {
		t.Errorf("tenant × model rows %v, want acme × gpt-4o (the biggest) only", rows)
	}
}

// TestDeriverRepriced: a reprice (correction rows in the rollups) of days
// in the recheck window reaches growth_daily at the next pass.
func TestDeriverRepriced(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dv.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := totalRow(t, w, "2026-03-10", MetricCost)
	// A catalog that prices claude-sonnet per call: 5 USD a request,
	// instead of the 20 and 30 USD a day stored.
	cat, err := pricing.Parse("corrected.yaml", []byte(`
models:
  - provider: anthropic
    model: claude-sonnet
    prices:
      - from: 2026-01-01
        input: "0"
        output: "0"
        request: "5"
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.RewriteCosts(ctx, RewriteQuery{From: time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), Catalog: cat}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	got, err := dv.RunOnce(ctx)
	if err != nil || derivedDays(got) != "2026-03-09:16 2026-03-10:16" {
		t.Fatalf("after the reprice derived %q, %v; want 2026-03-09 and 2026-03-10 again", derivedDays(got), err)
	}
	total, err := q.Totals(ctx, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := totalRow(t, w, "2026-03-10", MetricCost)
	if after == before || after != total.CostUSD.Float64() {
		t.Errorf("2026-03-10 cost to_date %v after the reprice (was %v), want the rollups' %v", after, before, total.CostUSD.Float64())
	}
}

// TestDeriverUnreplaceableDay: a day whose stored rows differ from the
// rollups but whose derivation writes nothing (its usage is gone) is tried
// once, not at every pass.
func TestDeriverUnreplaceableDay(t *testing.T) {
	t.Parallel()
	w := growthDB(t) // usage until 2026-03-31
	ctx := context.Background()
	clock := time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	// A row of 2026-05-31 from usage that is no longer there.
	stale := GrowthDailyRow{Day: time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), Metric: MetricRequests, Scope: ScopeTotal, ToDate: 5,
		PeriodStart: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), ComputedAt: clock.Add(-time.Hour)}
	if err := q.insertGrowth(ctx, stale.Day, []GrowthDailyRow{stale}); err != nil {
		t.Fatal(err)
	}
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 2, Derive: DeriveOptions{Metrics: []Metric{MetricRequests}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || derivedDays(got) != "2026-05-31:0" {
		t.Fatalf("first pass derived %q, %v; want 2026-05-31, without rows", derivedDays(got), err)
	}
	for i := 0; i < 2; i++ {
		if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
			t.Fatalf("pass %d derived %q, %v; want nothing", i+2, derivedDays(got), err)
		}
	}
}
