package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/faultproxy"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// growthStart is the first day of the growth test data; growthEnd the day
// after its last.
var (
	growthStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	growthEnd   = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

// growthSeries are the test's groups and their daily cost in USD on day i
// of the data: gpt-4o (only acme uses it) doubles every 7 days exactly,
// claude-sonnet is flat for both tenants, so globex is flat.
var growthSeries = []struct {
	tenant, provider, model string
	cost                    func(i int) float64
	requests                uint64
}{
	{"acme", "openai", "gpt-4o", func(i int) float64 { return math.Pow(2, float64(i)/7) }, 100},
	{"acme", "anthropic", "claude-sonnet", func(int) float64 { return 20 }, 50},
	{"globex", "anthropic", "claude-sonnet", func(int) float64 { return 30 }, 40},
}

// growthDB returns a migrated database of the shared server holding
// growthSeries from growthStart to growthEnd, one row per day and group in
// every rollup table (one insert per table and month, as the aggregator).
func growthDB(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	ctx := context.Background()
	w := migratedDB(t)
	off := int64(0)
	for m := growthStart; m.Before(growthEnd); m = m.AddDate(0, 1, 0) {
		var rows []warehouse.Rollup
		for ts := m; ts.Before(m.AddDate(0, 1, 0)); ts = ts.AddDate(0, 0, 1) {
			i := int(ts.Sub(growthStart).Hours() / 24)
			for _, s := range growthSeries {
				off++
				rows = append(rows, warehouse.Rollup{TS: ts, Tenant: s.tenant, Provider: s.provider, Model: s.model,
					SrcTopic: "costpipe.events", SrcOffset: off, Requests: s.requests,
					Cost: pricing.FromPicos(int64(math.Round(s.cost(i) * 1e12)))})
			}
		}
		for _, tb := range warehouse.Tables {
			if err := w.InsertRollups(ctx, tb, rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// TestGrowthDailySchema: the migrated growth_daily has the columns of the
// one list in derive.go, and a column changed by hand is reported.
func TestGrowthDailySchema(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	ctx := context.Background()
	w := whtest.Migrated(t, srv.DSN(srv.NewDatabase(t)))
	got, err := w.Describe(ctx, GrowthTable)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(GrowthColumns()) {
		t.Errorf("DESCRIBE %s: %d columns, want %d", GrowthTable, len(got), len(GrowthColumns()))
	}
	q := New(w, Options{})
	if err := q.CheckGrowthSchema(ctx); err != nil {
		t.Fatalf("CheckGrowthSchema on a migrated database: %v", err)
	}
	// The sort key holds no Nullable column and ends with the day.
	var key string
	if err := w.Conn().QueryRow(ctx, "SELECT sorting_key FROM system.tables WHERE database = ? AND name = ?", w.Database(), GrowthTable).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if key != "metric, scope, tenant, provider, model, day" {
		t.Errorf("sorting key %q", key)
	}
	if err := w.Conn().Exec(ctx, "ALTER TABLE "+w.Database()+"."+GrowthTable+" MODIFY COLUMN days_left UInt32"); err != nil {
		t.Fatal(err)
	}
	if err := q.CheckGrowthSchema(ctx); err == nil || !strings.Contains(err.Error(), "days_left UInt32") {
		t.Errorf("CheckGrowthSchema after changing days_left = %v, want an error naming days_left UInt32", err)
	}
}

// growthRows reads growth_daily FINAL in key order, each row as the
// values of its columns (computed_at left out unless withTime).
func growthRows(t *testing.T, w *warehouse.Warehouse, where string, withTime bool) [][]any {
	t.Helper()
	cols := GrowthColumns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	rows, err := w.Conn().Query(context.Background(), "SELECT "+strings.Join(names, ", ")+" FROM "+w.Database()+"."+GrowthTable+
		" FINAL WHERE "+where+" ORDER BY metric, scope, tenant, provider, model, day")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		dest := make([]any, len(cols))
		for i, c := range cols {
			switch c.Type {
			case "Nullable(Float64)":
				dest[i] = new(*float64)
			case "Float64":
				dest[i] = new(float64)
			case "UInt16":
				dest[i] = new(uint16)
			case "String":
				dest[i] = new(string)
			default: // Date, DateTime('UTC')
				dest[i] = new(time.Time)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		vals := make([]any, 0, len(cols))
		for i, p := range dest {
			v := reflect.ValueOf(p).Elem().Interface()
			if f, ok := v.(*float64); ok && f != nil {
				v = *f
			}
			if cols[i].Name != "computed_at" || withTime {
				vals = append(vals, v)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// colIndex is the position of column name in GrowthColumns.
func colIndex(t *testing.T, name string) int {
	for i, c := range GrowthColumns() {
		if c.Name == name {
			return i
		}
	}
	t.Fatalf("no column %q", name)
	return -1
}

// TestDeriveGrowthDaily derives a mid-month day and a month's last day,
// twice, and checks the rows against the query layer: the doubling series
// doubles every 7 days, the flat one has neither doubling nor halving,
// the forecast is Forecast's at the next midnight, the month's last day
// is closed; deriving again replaces the rows (same rows under FINAL, a
// newer computed_at).
func TestDeriveGrowthDaily(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 15, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return clock }})
	mid := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

	res, err := q.Derive(ctx, mid.Add(13*time.Hour), DeriveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 2 metrics × (1 total + 2 tenants + 2 models + 3 tenant×model).
	if !res.Day.Equal(mid) || res.Rows != 16 || res.Dropped != 0 {
		t.Fatalf("Derive = %+v, want day %s, 16 rows, none dropped", res, mid.Format(time.DateOnly))
	}
	where := "day = '2026-03-10'"
	first := growthRows(t, w, where, false)
	if len(first) != 16 {
		t.Fatalf("%d rows under FINAL, want 16", len(first))
	}

	// Again, an hour later: the same rows, the newer computed_at.
	clock = clock.Add(time.Hour)
	if res, err := q.Derive(ctx, mid, DeriveOptions{}); err != nil || res.Rows != 16 {
		t.Fatalf("second Derive = %+v, %v", res, err)
	}
	if again := growthRows(t, w, where, false); !reflect.DeepEqual(again, first) {
		t.Errorf("derived again, FINAL gives\n%v\nwant\n%v", again, first)
	}
	var n, versions uint64
	var newest time.Time
	if err := w.Conn().QueryRow(ctx, "SELECT count(), uniqExact(computed_at), max(computed_at) FROM "+w.Database()+"."+GrowthTable+" FINAL WHERE "+where).
		Scan(&n, &versions, &newest); err != nil {
		t.Fatal(err)
	}
	if n != 16 || versions != 1 || !newest.Equal(clock) {
		t.Errorf("FINAL: %d rows, %d computed_at, newest %s; want 16 rows of %s", n, versions, newest, clock)
	}

	// The rows are Growth and Forecast of the query layer at the next
	// midnight, group by group.
	rows, _, err := q.DeriveRows(ctx, mid, DeriveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]GrowthDailyRow{}
	for _, r := range rows {
		byKey[string(r.Metric)+"/"+string(r.Scope)+"/"+r.Tenant+"/"+r.Provider+"/"+r.Model] = r
	}
	at := mid.AddDate(0, 0, 1)
	gs, err := q.Growth(ctx, GrowthQuery{At: at, By: ScopeTenant.Dims()})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := q.Forecast(ctx, ForecastQuery{At: at, By: ScopeTenant.Dims()})
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || len(fs) != 2 {
		t.Fatalf("%d growth rows and %d forecasts by tenant, want 2", len(gs), len(fs))
	}
	for i := range gs {
		r := byKey["cost/tenant/"+gs[i].Group[DimTenant]+"//"]
		if !reflect.DeepEqual(r.Growth, gs[i].Growth) {
			t.Errorf("%s: derived growth %+v, Growth %+v", gs[i].Group[DimTenant], r.Growth, gs[i].Growth)
		}
	}
	for i := range fs {
		r := byKey["cost/tenant/"+fs[i].Group[DimTenant]+"//"]
		if !reflect.DeepEqual(r.Forecast, fs[i].Forecast) || r.ToDate != fs[i].SoFar || r.DaysLeft != 21 ||
			!r.PeriodStart.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: derived forecast %+v to_date %v days_left %d, Forecast %+v so far %v", fs[i].Group[DimTenant],
				r.Forecast, r.ToDate, r.DaysLeft, fs[i].Forecast, fs[i].SoFar)
		}
		if r.Forecast.P50 == nil || *r.Forecast.P50 <= r.ToDate {
			t.Errorf("%s: p50 %v, want above to_date %v", fs[i].Group[DimTenant], r.Forecast.P50, r.ToDate)
		}
	}
	dbl := byKey["cost/model//openai/gpt-4o"].Growth.DoublingDays
	if dbl == nil || math.Abs(*dbl-7) > 1e-6 {
		t.Errorf("gpt-4o doubling_days %v, want 7", dbl)
	}
	for _, k := range []string{"cost/tenant/globex//", "cost/tenant_model/globex/anthropic/claude-sonnet", "requests/total///"} {
		g := byKey[k].Growth
		if g.DailyRate == nil || *g.DailyRate != 0 || g.DoublingDays != nil || g.HalvingDays != nil {
			t.Errorf("%s (flat): rate %v doubling %v halving %v, want rate 0 and neither", k, g.DailyRate, g.DoublingDays, g.HalvingDays)
		}
	}
	// And in the table: the doubling time, a NULL for the flat tenant.
	var tableDbl float64
	var flat *float64
	if err := w.Conn().QueryRow(ctx, "SELECT doubling_days FROM "+w.Database()+"."+GrowthTable+
		" FINAL WHERE "+where+" AND metric = 'cost' AND scope = 'model' AND model = 'gpt-4o'").Scan(&tableDbl); err != nil || tableDbl != *dbl {
		t.Errorf("growth_daily doubling_days of gpt-4o = %v, %v; want %v", tableDbl, err, *dbl)
	}
	if err := w.Conn().QueryRow(ctx, "SELECT doubling_days FROM "+w.Database()+"."+GrowthTable+
		" FINAL WHERE "+where+" AND metric = 'cost' AND scope = 'tenant' AND tenant = 'globex'").Scan(&flat); err != nil || flat != nil {
		t.Errorf("growth_daily doubling_days of globex = %v, %v; want NULL", flat, err)
	}

	// The last day of February: the month is over, its forecast is its
	// total (Forecast at March 1 would be March's).
	feb := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
	if _, err := q.Derive(ctx, feb, DeriveOptions{Metrics: []Metric{MetricCost}}); err != nil {
		t.Fatal(err)
	}
	total, err := q.Totals(ctx, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	feb28 := growthRows(t, w, "day = '2026-02-28' AND scope = 'total'", false)
	if len(feb28) != 1 {
		t.Fatalf("%d total rows on 2026-02-28, want 1 (cost only)", len(feb28))
	}
	r := feb28[0]
	toDate, p10, p50, p90 := r[colIndex(t, "to_date")], r[colIndex(t, "forecast_p10")], r[colIndex(t, "forecast_p50")], r[colIndex(t, "forecast_p90")]
	if toDate != total.CostUSD.Float64() || p10 != toDate || p50 != toDate || p90 != toDate || r[colIndex(t, "days_left")] != uint16(0) ||
		!r[colIndex(t, "period_start")].(time.Time).Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("2026-02-28: to_date %v p10/p50/p90 %v/%v/%v days_left %v period %v; want February's total %v and nothing left",
			toDate, p10, p50, p90, r[colIndex(t, "days_left")], r[colIndex(t, "period_start")], total.CostUSD.Float64())
	}

	// At most MaxGroups per scope and metric, the biggest first.
	rows, res, err = q.DeriveRows(ctx, mid, DeriveOptions{MaxGroups: 1, Metrics: []Metric{MetricCost}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || res.Dropped != 4 { // one per scope; 1 tenant, 1 model, 2 tenant×model left out
		t.Fatalf("MaxGroups 1: %d rows, %d dropped; want 4 and 4", len(rows), res.Dropped)
	}
	if rows[2].Scope != ScopeModel || rows[2].Model != "gpt-4o" || rows[3].Tenant != "acme" || rows[3].Model != "gpt-4o" {
		t.Errorf("MaxGroups 1 kept %+v and %+v, want the biggest (gpt-4o)", rows[2], rows[3])
	}
	if _, err := q.Derive(ctx, mid, DeriveOptions{Window: 7}); err == nil {
		t.Error("Derive with a 7-day window: no error")
	}
}

// TestDeriverBackfill: on start the Deriver derives the due days of its
// backfill window that growth_daily lacks, then nothing until the next day
// is due (Delay after midnight); days without usage are not derived.
func TestDeriverBackfill(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	clock := time.Date(2026, 3, 11, 0, 5, 0, 0, time.UTC) // 2026-03-10 is not due before 00:10
	q := New(w, Options{Now: func() time.Time { return clock }})
	// 2026-03-08 was derived before.
	if _, err := q.Derive(ctx, time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), DeriveOptions{}); err != nil {
		t.Fatal(err)
	}
	dv, err := NewDeriver(q, DeriverOptions{Backfill: 3, Delay: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	days := func(rs []DeriveResult) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s:%d", r.Day.Format(time.DateOnly), r.Rows))
		}
		return strings.Join(s, " ")
	}
	got, err := dv.RunOnce(ctx)
	if err != nil || days(got) != "2026-03-07:16 2026-03-09:16" {
		t.Fatalf("first run derived %q, %v; want 2026-03-07 and 2026-03-09", days(got), err)
	}
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second run derived %q, %v; want nothing", days(got), err)
	}
	clock = clock.Add(5 * time.Minute)
	if got, err := dv.RunOnce(ctx); err != nil || days(got) != "2026-03-10:16" {
		t.Fatalf("after the delay derived %q, %v; want 2026-03-10", days(got), err)
	}
	// Days without usage (none in their growth window or month) are not
	// derived: they would write no row.
	clock = time.Date(2026, 6, 1, 0, 10, 0, 0, time.UTC)
	if got, err := dv.RunOnce(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after the data ends derived %q, %v; want nothing", days(got), err)
	}
	for _, o := range []DeriverOptions{{Backfill: -1}, {Recheck: -1}, {Recheck: 367}, {Interval: -time.Second}, {Delay: 25 * time.Hour},
		{Derive: DeriveOptions{Metrics: []Metric{"cost", "cost"}}},
		{Derive: DeriveOptions{Metrics: []Metric{"dollars"}}}, {Derive: DeriveOptions{MaxGroups: -1}}} {
		if _, err := NewDeriver(q, o); err == nil {
			t.Errorf("NewDeriver(%+v): no error", o)
		}
	}
}

// growthRecipes returns the SQL of docs/sql.md's blocks tagged
// "```sql growth-NAME", by tag (TestCookbook runs the untagged ones).
func growthRecipes(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```sql (growth-[a-z0-9-]+)\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestGrowthRecipes runs the growth and forecast recipes of docs/sql.md,
// word for word (the database renamed, now() pinned), against derived
// data and checks their answers against the query layer.
func TestGrowthRecipes(t *testing.T) {
	t.Parallel()
	w := growthDB(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 11, 6, 0, 0, 0, time.UTC)
	q := New(w, Options{Now: func() time.Time { return now }})
	mid := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	// An older day too: the recipes must pick the latest.
	for _, day := range []time.Time{mid.AddDate(0, 0, -1), mid} {
		if _, err := q.Derive(ctx, day, DeriveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	derived, _, err := q.DeriveRows(ctx, mid, DeriveOptions{Metrics: []Metric{MetricCost}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]GrowthDailyRow{}
	for _, r := range derived {
		want[string(r.Scope)+"/"+r.Tenant+"/"+r.Model] = r
	}
	recipes := growthRecipes(t)
	if len(recipes) != 4 {
		t.Fatalf("docs/sql.md has %d growth recipes (```sql growth-NAME), want 4", len(recipes))
	}
	// A stale row, older than the derived ones: FINAL and argMax must
	// both ignore it, although its doubling_days is not NULL where the
	// newest row's is.
	stale := want["tenant/globex/"]
	stale.ComputedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stale.Growth.DoublingDays, stale.Forecast.P50, stale.Forecast.P90 = ptrTo(1.0), ptrTo(1.0), ptrTo(1.0)
	if err := q.insertGrowth(ctx, mid, []GrowthDailyRow{stale}); err != nil {
		t.Fatal(err)
	}
	query := func(name string) [][]any {
		t.Helper()
		sql, ok := recipes[name]
		if !ok {
			t.Fatalf("docs/sql.md has no recipe %s", name)
		}
		sql = strings.ReplaceAll(sql, "costpipe.", w.Database()+".")
		sql = strings.ReplaceAll(sql, "now()", fmt.Sprintf("toDateTime(%d)", now.Unix()))
		rows, err := w.Conn().Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s fails on the server: %v\n%s", name, err, sql)
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			dest := make([]any, len(rows.ColumnTypes()))
			for i, ct := range rows.ColumnTypes() {
				dest[i] = reflect.New(ct.ScanType()).Interface()
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			vals := make([]any, len(dest))
			for i, p := range dest {
				vals[i] = reflect.ValueOf(p).Elem().Interface()
				if f, ok := vals[i].(*float64); ok && f != nil {
					vals[i] = *f
				}
			}
			out = append(out, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out) == 0 {
			t.Fatalf("%s returned no rows", name)
		}
		return out
	}

	// growth-1: models doubling in under 14 days, with their week over
	// week: gpt-4o only, as derived.
	rows := query("growth-1")
	g := want["model//gpt-4o"].Growth
	if len(rows) != 1 || rows[0][0] != "openai" || rows[0][1] != "gpt-4o" || rows[0][2] != *g.DoublingDays || rows[0][3] != *g.WoWPct {
		t.Errorf("growth-1 = %v, want openai gpt-4o doubling %v wow %v", rows, *g.DoublingDays, *g.WoWPct)
	}

	// growth-2: week over week per tenant from usage_daily, as Growth
	// computes it for the last complete day before now.
	gs, err := q.Growth(ctx, GrowthQuery{By: []Dim{DimTenant}})
	if err != nil {
		t.Fatal(err)
	}
	rows = query("growth-2")
	if len(rows) != len(gs) {
		t.Fatalf("growth-2 has %d rows, want %d: %v", len(rows), len(gs), rows)
	}
	for _, w := range gs {
		found := false
		for _, r := range rows {
			if r[0] != w.Group[DimTenant] {
				continue
			}
			found = true
			last, prev := mustParse(t, fmt.Sprint(r[1])), mustParse(t, fmt.Sprint(r[2]))
			if math.Abs(last-*w.Last7d) > 1e-9 || math.Abs(prev-*w.Prev7d) > 1e-9 || math.Abs(r[3].(float64)-*w.WoWPct) > 0.0051 {
				t.Errorf("growth-2 row %v, want %s %v %v %v", r, w.Group[DimTenant], *w.Last7d, *w.Prev7d, *w.WoWPct)
			}
		}
		if !found {
			t.Errorf("growth-2 has no row for %s: %v", w.Group[DimTenant], rows)
		}
	}

	// growth-3: the month-end forecast against each tenant's budget.
	rows = query("growth-3")
	if len(rows) != 2 {
		t.Fatalf("growth-3 has %d rows, want acme and globex: %v", len(rows), rows)
	}
	for _, r := range rows {
		w, ok := want["tenant/"+fmt.Sprint(r[0])+"/"]
		if !ok || !r[1].(time.Time).Equal(mid) || r[2] != w.ToDate || r[4] != *w.Forecast.P50 || r[5] != *w.Forecast.P90 {
			t.Errorf("growth-3 row %v, want day %s to_date %v p50 %v p90 %v", r, mid.Format(time.DateOnly), w.ToDate, *w.Forecast.P50, *w.Forecast.P90)
		}
	}

	// growth-argmax: the newest row per day and tenant, without FINAL.
	rows = query("growth-argmax")
	if len(rows) != 4 { // two days × two tenants
		t.Fatalf("growth-argmax has %d rows, want 4: %v", len(rows), rows)
	}
	for _, r := range rows {
		if !r[0].(time.Time).Equal(mid) {
			continue
		}
		w := want["tenant/"+fmt.Sprint(r[1])+"/"]
		if !reflect.DeepEqual(r[2], deref(w.Growth.DoublingDays)) || r[3] != *w.Forecast.P50 || r[4] != w.Growth.Note {
			t.Errorf("growth-argmax row %v, want doubling %v p50 %v note %q", r, deref(w.Growth.DoublingDays), *w.Forecast.P50, w.Growth.Note)
		}
	}
	// Without the tuple, argMax skips the newest row's NULL and returns
	// the stale number (what the doc warns about).
	var plain *float64
	if err := w.Conn().QueryRow(ctx, "SELECT argMax(doubling_days, computed_at) FROM "+w.Database()+"."+GrowthTable+
		" WHERE metric = 'cost' AND scope = 'tenant' AND tenant = 'globex' AND day = '2026-03-10'").Scan(&plain); err != nil {
		t.Fatal(err)
	}
	if plain == nil || *plain != 1 {
		t.Errorf("plain argMax(doubling_days) of globex = %v, want the stale 1 (docs/sql.md says so)", plain)
	}
}

// deref is *p, or p (a nil *float64) when nil, as the tests read Nullable
// values.
func deref(p *float64) any {
	if p == nil {
		return p
	}
	return *p
}

func ptrTo[T any](v T) *T { return &v }

func mustParse(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatalf("cannot parse %q: %v", s, err)
	}
	return f
}

// logBuffer is the shared concurrent log buffer.
type logBuffer = logtest.Buffer

// proxiedDeriver is a Deriver over growthDB's database reached through a
// fault proxy, with the clock the test moves (start 2026-03-11T00:30:00Z,
// 2026-03-10 due), checking every 20 ms.
type proxiedDeriver struct {
	dv    *Deriver
	proxy *faultproxy.Proxy
	clock *atomic.Int64
	log   *logBuffer
}

func newProxiedDeriver(t *testing.T, o DeriverOptions) *proxiedDeriver {
	t.Helper()
	w := growthDB(t)
	proxy := faultproxy.Start(t, chtest.Shared(t).TCPAddr)
	wo := warehouse.DefaultOptions()
	wo.DSN, wo.DialTimeout = "clickhouse://"+proxy.Addr+"/"+w.Database(), time.Second
	pw, err := warehouse.Open(context.Background(), wo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close() })
	p := &proxiedDeriver{proxy: proxy, clock: new(atomic.Int64), log: &logBuffer{}}
	p.clock.Store(time.Date(2026, 3, 11, 0, 30, 0, 0, time.UTC).UnixNano())
	q := New(pw, Options{Now: func() time.Time { return time.Unix(0, p.clock.Load()).UTC() }})
	o.Backfill, o.Interval, o.Logger = 2, 20*time.Millisecond, slog.New(slog.NewTextHandler(p.log, nil))
	if p.dv, err = NewDeriver(q, o); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs the Deriver until the test ends.
func (p *proxiedDeriver) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.dv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// waitLines waits up to 20 s for n lines containing s and returns them.
func (p *proxiedDeriver) waitLines(t *testing.T, s string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := p.log.Lines(s)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines with %q after 20 s, want %d:\n%s", len(got), s, n, p.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeriverOutageLogged: while ClickHouse is unreachable Run logs its
// first failed pass at once, then one line a minute with the failures
// since, and the first pass that completes again one line saying how long
// deriving failed (it logged every failed pass, every --interval); Ready
// fails once no pass completed for a minute (three 20 ms intervals are
// less) and holds again after the next complete pass.
func TestDeriverOutageLogged(t *testing.T) {
	t.Parallel()
	p := newProxiedDeriver(t, DeriverOptions{})
	p.run(t)
	p.waitLines(t, `msg="derived growth" day=2026-03-10`, 1)

	p.proxy.Refuse(true)
	p.proxy.Cut()
	const failed = `level=WARN msg="cannot derive growth; retrying"`
	if got := p.waitLines(t, failed, 1); !strings.Contains(got[0], "failures=1 failing_for=0s") {
		t.Errorf("first failure line %q, want failures=1 failing_for=0s", got[0])
	}
	time.Sleep(300 * time.Millisecond) // about 15 more failed passes
	if got := p.log.Lines(failed); len(got) != 1 {
		t.Fatalf("%d failure lines within a minute, want 1:\n%s", len(got), p.log.String())
	}
	if err := p.dv.Ready(); err != nil {
		t.Errorf("not ready within a minute of the last complete pass: %v", err)
	}
	p.clock.Add(int64(61 * time.Second))
	if err := p.dv.Ready(); err == nil || !strings.Contains(err.Error(), "the last complete derive pass was 1m1s ago (limit 1m0s)") {
		t.Errorf("Ready 61 s after the last complete pass: %v", err)
	}
	got := p.waitLines(t, failed, 2)
	if m := regexp.MustCompile(`failures=(\d+) failing_for=1m1s`).FindStringSubmatch(got[1]); m == nil || m[1] == "1" {
		t.Errorf("second failure line %q, want the failed passes since the first (several) and failing_for=1m1s", got[1])
	}

	p.proxy.Refuse(false)
	if got := p.waitLines(t, `msg="derive recovered"`, 1); !strings.Contains(got[0], "level=INFO") || !strings.Contains(got[0], "failed_for=1m1s") {
		t.Errorf("recovery line %q, want INFO with failed_for=1m1s", got[0])
	}
	if err := p.dv.Ready(); err != nil {
		t.Errorf("not ready after a complete pass: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(p.log.Lines(failed)); n != 2 || len(p.log.Lines("recovered")) != 1 {
		t.Errorf("%d failure lines, want 2 and one recovery:\n%s", n, p.log.String())
	}
}
