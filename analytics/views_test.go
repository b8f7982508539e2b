package analytics

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/sketch"
)

// TestViews checks that every analyst view of migration 0002 runs on the
// real server and agrees with the query layer.
func TestViews(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	end := d(2026, 2, 2, 0, 0, 0)
	q := fx.querier(end)
	db := fx.w.Database()
	from, to := d(2026, 1, 31, 0, 0, 0), d(2026, 2, 1, 0, 0, 0) // one whole day
	want, err := q.Totals(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if want.Requests == 0 {
		t.Fatal("fixture: no usage on 2026-01-31")
	}
	for _, view := range []string{"usage_minute", "usage_hourly", "usage_daily"} {
		var (
			rows, requests, errors, input, latCount, latSum, gpuUs uint64
			cost                                                   string
			gpuMs                                                  float64
			latMin, latMax, latAvg                                 *float64
			idx                                                    []int16
			cnt                                                    []uint64
		)
		err := fx.w.Conn().QueryRow(ctx, `SELECT count(), sum(requests), sum(errors), sum(input_tokens), toString(sum(cost_usd)),
    sum(gpu_us), sum(gpu_ms), sum(latency_count), sum(latency_sum_us), min(latency_min_ms), max(latency_max_ms),
    sum(latency_sum_us) / sum(latency_count) / 1000,
    sumMap(latency_hist_idx, latency_hist_cnt).1, sumMap(latency_hist_idx, latency_hist_cnt).2
FROM `+db+`.`+view+` WHERE ts >= toDateTime(?) AND ts < toDateTime(?)`, from.Unix(), to.Unix()).
			Scan(&rows, &requests, &errors, &input, &cost, &gpuUs, &gpuMs, &latCount, &latSum, &latMin, &latMax, &latAvg, &idx, &cnt)
		if err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if requests != want.Requests || errors != want.Errors || input != want.InputTokens || cost != want.CostUSD.String() ||
			gpuUs != want.GPUMicros || latCount != want.Latency.Count {
			t.Errorf("%s: requests=%d errors=%d input=%d cost=%s gpu_us=%d latency_count=%d; want %d %d %d %s %d %d", view,
				requests, errors, input, cost, gpuUs, latCount,
				want.Requests, want.Errors, want.InputTokens, want.CostUSD, want.GPUMicros, want.Latency.Count)
		}
		if math.Abs(gpuMs-want.GPUMs) > 1e-6*want.GPUMs {
			t.Errorf("%s: gpu_ms = %v, want %v", view, gpuMs, want.GPUMs)
		}
		// min and max are the ALIAS columns of 0008, computed in SQL: the
		// extreme buckets' values to a few ulps.
		near := func(a *float64, b float64) bool { return a != nil && math.Abs(*a-b) <= 1e-12*b }
		if !near(latMin, want.Latency.Min) || !near(latMax, want.Latency.Max) || latAvg == nil || *latAvg != want.Latency.Avg {
			t.Errorf("%s: latency min/max/avg = %v/%v/%v, want %v/%v/%v", view, deref(latMin), deref(latMax), deref(latAvg), want.Latency.Min, want.Latency.Max, want.Latency.Avg)
		}
		h, err := sketch.FromArrays(idx, cnt)
		if err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if p99, _ := h.Quantile(0.99); p99 != want.Latency.P99 {
			t.Errorf("%s: p99 from the view's arrays = %v, want %v", view, p99, want.Latency.P99)
		}
		if strings.Contains(view, "minute") && rows <= 24*60/10 {
			t.Errorf("%s: only %d rows for a day: not per minute?", view, rows)
		}
	}

	// Rows without TTFT samples give NULL, not the +inf / 0 sentinels.
	var n, nulls uint64
	if err := fx.w.Conn().QueryRow(ctx, "SELECT count(), countIf(ttft_min_ms IS NULL AND ttft_max_ms IS NULL AND ttft_avg_ms IS NULL) FROM "+db+
		".usage_hourly WHERE model = ?", "text-embedding-3-small").Scan(&n, &nulls); err != nil {
		t.Fatal(err)
	}
	if n == 0 || nulls != n {
		t.Errorf("usage_hourly: %d of %d embedding rows have NULL ttft min/max/avg, want all", nulls, n)
	}

	// cost_by_model_daily equals the query layer by provider and model.
	byModel, err := q.Usage(ctx, UsageQuery{From: fixtureStart, To: end, By: []Dim{DimProvider, DimModel}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := fx.w.Conn().Query(ctx, "SELECT provider, model, sum(requests), toString(sum(cost_usd)) FROM "+db+
		".cost_by_model_daily WHERE day >= toDate(?) AND day < toDate(?) GROUP BY provider, model ORDER BY sum(cost_usd) DESC, provider, model",
		fixtureStart.Format("2006-01-02"), end.Format("2006-01-02"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var provider, model, cost string
		var requests uint64
		if err := rows.Scan(&provider, &model, &requests, &cost); err != nil {
			t.Fatal(err)
		}
		if i >= len(byModel) {
			t.Fatalf("cost_by_model_daily has more than %d rows", len(byModel))
		}
		w := byModel[i]
		if provider != w.Group[DimProvider] || model != w.Group[DimModel] || requests != w.Requests || cost != w.CostUSD.String() {
			t.Errorf("cost_by_model_daily row %d: %s %s %d %s; want %s %s %d %s", i, provider, model, requests, cost,
				w.Group[DimProvider], w.Group[DimModel], w.Requests, w.CostUSD)
		}
	}
	if i != len(byModel) {
		t.Errorf("cost_by_model_daily has %d rows, want %d", i, len(byModel))
	}
}

// TestCookbook runs every SQL example of docs/sql.md against the fixture,
// with now() pinned to the end of the fixture, and checks that each returns
// rows; the percentile recipe must agree with the query layer.
func TestCookbook(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	end := d(2026, 2, 2, 0, 0, 0)
	doc, err := os.ReadFile("../docs/sql.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 8 {
		t.Fatalf("docs/sql.md has %d sql examples, want at least 8", len(blocks))
	}
	now := fmt.Sprintf("toDateTime(%d)", end.Unix())
	for i, b := range blocks {
		sql := strings.ReplaceAll(b[1], "costpipe.", fx.w.Database()+".")
		sql = strings.ReplaceAll(sql, "now()", now)
		label := fmt.Sprintf("example %d (%s…)", i+1, strings.Fields(b[1])[1])
		rows, err := fx.w.Conn().Query(ctx, sql)
		if err != nil {
			t.Errorf("%s fails on the server: %v\n%s", label, err, b[1])
			continue
		}
		if strings.Contains(sql, "AS p50_ms") {
			checkPercentileRecipe(t, fx, rows, end)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", label, err)
		}
		rows.Close()
		if n == 0 {
			t.Errorf("%s returned no rows over the fixture", label)
		}
	}
}

// checkPercentileRecipe compares the SQL percentiles (recipe 6: model,
// calls, p50_ms, p99_ms over the last 24 hours) with Usage by model.
func checkPercentileRecipe(t *testing.T, fx *fixture, rows interface {
	Next() bool
	Scan(...any) error
	Close() error
}, end time.Time) {
	t.Helper()
	defer rows.Close()
	got, err := fx.querier(end).Usage(context.Background(), UsageQuery{From: end.Add(-24 * time.Hour), To: end, By: []Dim{DimModel}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]UsageRow{}
	for _, r := range got {
		if r.Latency.Present() {
			want[r.Group[DimModel]] = r
		}
	}
	n := 0
	for rows.Next() {
		var model string
		var calls uint64
		var p50, p99 float64
		if err := rows.Scan(&model, &calls, &p50, &p99); err != nil {
			t.Fatal(err)
		}
		n++
		w := want[model]
		if calls != w.Latency.Count || math.Abs(p50-w.Latency.P50) > 1e-9*w.Latency.P50 || math.Abs(p99-w.Latency.P99) > 1e-9*w.Latency.P99 {
			t.Errorf("percentile recipe, %s: calls=%d p50=%v p99=%v; query layer %d %v %v", model, calls, p50, p99,
				w.Latency.Count, w.Latency.P50, w.Latency.P99)
		}
	}
	if n != len(want) || n == 0 {
		t.Errorf("percentile recipe returned %d models, want %d", n, len(want))
	}
}
