package report

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/render"
)

// MaxLatencySteps bounds the steps of a latency series: each step is one
// usage query (percentiles merge per range, they cannot be summed from
// finer steps).
const MaxLatencySteps = 200

// latencyWorkers is how many steps of a latency series are queried at once.
const latencyWorkers = 4

// LatencySteps returns the starts of the steps of [from, to) widened to
// whole steps in UTC, or a *ParamError naming step when there are more
// than MaxLatencySteps.
func LatencySteps(p Params, from, to time.Time, step time.Duration) ([]time.Time, error) {
	first := from.UTC().Truncate(step)
	var out []time.Time
	for t := first; t.Before(to); t = t.Add(step) {
		if len(out) == MaxLatencySteps {
			return nil, paramErr("step", "invalid %s: more than %d steps of latency: use a larger step or a shorter range", p.Name("step"), MaxLatencySteps)
		}
		out = append(out, t)
	}
	return out, nil
}

// LatencySeriesTable is the latency report of u for each step of steps
// (step long), one row per step, group and measure, with the step's start
// in a leading ts column. Each step's percentiles come from that step's
// merged histograms, as query latency computes them for a range.
func LatencySeriesTable(ctx context.Context, q *analytics.Querier, u Usage, steps []time.Time, step time.Duration) (*render.Table, error) {
	tables := make([]*render.Table, len(steps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(latencyWorkers)
	for i, s := range steps {
		g.Go(func() error {
			su := u
			su.From, su.To = s, s.Add(step)
			su.Query = su.Range.usageQuery()
			su.Query.Granularity = analytics.GranularityAuto
			t, err := LatencyTable(gctx, q, su, false)
			tables[i] = t
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := &render.Table{Title: "latency and time to first token per step", Empty: "no usage",
		Columns: append([]render.Column{{Name: "ts", Kind: render.KindTime}}, render.Latency(render.LatencyReport{Scope: u.Scope()}).Columns...)}
	for i, t := range tables {
		for _, row := range t.Rows {
			out.Rows = append(out.Rows, append([]render.Value{render.Time(steps[i])}, row...))
		}
	}
	return out, nil
}
