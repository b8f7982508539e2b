package report

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/whtest"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/warehouse"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestLatencyStepsTableEqualsPerStep: the one-query latency series of hour
// and day steps gives the rows, in the order, that one usage query per
// step gives, filters included.
func TestLatencyStepsTableEqualsPerStep(t *testing.T) {
	srv := chtest.Shared(t)
	ctx := context.Background()
	w := whtest.Migrated(t, srv.DSN(srv.NewDatabase(t)))
	start := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	off := int64(0)
	for _, tb := range warehouse.Tables {
		var rows []warehouse.Rollup
		for h := 0; h < 72; h += 5 {
			for i, m := range []string{"gpt-4o", "claude", "gemini"} {
				var hist sketch.Histogram
				for k := 0; k <= i+h%7; k++ {
					hist.Add(float64(100 + 37*k*(i+1) + h))
				}
				idx, cnt := hist.AppendArrays([]int16{}, []uint64{})
				off++
				rows = append(rows, warehouse.Rollup{TS: tb.Truncate(start.Add(time.Duration(h) * time.Hour)),
					Tenant: []string{"acme", "globex"}[h%2], Model: m, SrcTopic: "t", SrcOffset: off,
					Requests: uint64(1 + i + h), Cost: pricing.FromPicos(int64(1+(i*7+h/5)%5) * 1e9),
					Latency: warehouse.Dist{Count: uint64(len(idx)), SumMicros: 1000, MinMs: 100, MaxMs: 900, HistIdx: idx, HistCnt: cnt},
					TTFT:    warehouse.Dist{MinMs: math.Inf(1)}})
			}
		}
		if err := w.InsertRollups(ctx, tb, rows); err != nil {
			t.Fatal(err)
		}
	}
	q := analytics.New(w, analytics.DefaultOptions())
	for _, tc := range []struct {
		step  time.Duration
		where map[analytics.Dim][]string
		by    []analytics.Dim
	}{
		{time.Hour, nil, []analytics.Dim{analytics.DimModel}},
		{time.Hour, map[analytics.Dim][]string{analytics.DimTenant: {"acme"}}, []analytics.Dim{analytics.DimModel, analytics.DimTenant}},
		{24 * time.Hour, nil, []analytics.Dim{analytics.DimModel}},
		{24 * time.Hour, nil, nil},
	} {
		u := Usage{Range: Range{From: start.Add(30 * time.Minute), To: start.Add(70 * time.Hour), By: tc.by, Where: tc.where}}
		var steps []time.Time
		for s := u.From.Truncate(tc.step); s.Before(u.To); s = s.Add(tc.step) {
			steps = append(steps, s)
		}
		one, err := latencyStepsTable(ctx, q, u, steps, tc.step, 0)
		if err != nil {
			t.Fatal(err)
		}
		each, err := latencyPerStepTable(ctx, q, u, steps, tc.step, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Rows) == 0 || !reflect.DeepEqual(one.Rows, each.Rows) {
			t.Errorf("step %s, where %v, by %v: one query gives %d rows, one per step %d; differ: %v",
				tc.step, tc.where, tc.by, len(one.Rows), len(each.Rows), !reflect.DeepEqual(one.Rows, each.Rows))
		}
		// A bound one cell short of the table: refused by both ways, the
		// exact size allowed.
		cells := len(one.Rows) * len(one.Columns)
		for name, f := range map[string]func(int) (*render.Table, error){
			"one query": func(m int) (*render.Table, error) { return latencyStepsTable(ctx, q, u, steps, tc.step, m) },
			"per step":  func(m int) (*render.Table, error) { return latencyPerStepTable(ctx, q, u, steps, tc.step, m) },
		} {
			if _, err := f(cells - 1); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%s, step %s: %d cells under a bound of %d: %v, want ErrTooLarge", name, tc.step, cells, cells-1, err)
			}
			if _, err := f(cells); err != nil {
				t.Errorf("%s, step %s: %d cells under a bound of %d: %v", name, tc.step, cells, cells, err)
			}
		}
	}
}
