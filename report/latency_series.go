package report

import (
	"context"
	"sort"
	"sync/atomic"
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

// ParseLatencyStep reads the step of a latency series (1m, 1h or 1d), when
// step is given, and the starts of the steps of u's range (LatencySteps):
// step 0 and no steps without it, for the latency report of the whole
// range. Errors are *ParamError values naming step.
func ParseLatencyStep(p Params, u Usage) (step time.Duration, steps []time.Time, err error) {
	if !p.IsSet("step") {
		return 0, nil, nil
	}
	if step, err = analytics.ParseStep(p.Value("step")); err != nil {
		return 0, nil, paramErr("step", "invalid %s: %v", p.Name("step"), err)
	}
	if steps, err = LatencySteps(p, u.From, u.To, step); err != nil {
		return 0, nil, err
	}
	return step, steps, nil
}

// LatencySeriesTable is the latency report of u for each step of steps
// (step long), one row per step, group and measure, with the step's start
// in a leading ts column. Each step's percentiles come from that step's
// merged histograms, as query latency computes them for a range. maxCells,
// when > 0, refuses (ErrTooLarge) a table of more cells as soon as the
// rows are counted.
func LatencySeriesTable(ctx context.Context, q *analytics.Querier, u Usage, steps []time.Time, step time.Duration, maxCells int) (*render.Table, error) {
	if step == time.Hour || step == 24*time.Hour {
		return latencyStepsTable(ctx, q, u, steps, step, maxCells)
	}
	return latencyPerStepTable(ctx, q, u, steps, step, maxCells)
}

// latencySeriesShell is a latency series' table without rows: a ts column
// (the step's start) before the latency report's, and for the table format
// its title, with the step and the range of whole steps, and notes.
func latencySeriesShell(u Usage, steps []time.Time, step time.Duration) *render.Table {
	scope := u.Scope()
	if len(steps) > 0 {
		scope.From, scope.To = steps[0], steps[len(steps)-1].Add(step)
	}
	per := map[time.Duration]string{time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[step]
	t := render.Latency(render.LatencyReport{Scope: scope, Per: per})
	t.Columns = append([]render.Column{{Name: "ts", Kind: render.KindTime}}, t.Columns...)
	return t
}

// latencyPerStepTable is LatencySeriesTable with one usage query per step
// (minute steps, which usage_1m answers per range only).
func latencyPerStepTable(ctx context.Context, q *analytics.Querier, u Usage, steps []time.Time, step time.Duration, maxCells int) (*render.Table, error) {
	tables := make([]*render.Table, len(steps))
	cols := len(latencySeriesShell(u, steps, step).Columns)
	var rows atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(latencyWorkers)
	for i, s := range steps {
		g.Go(func() error {
			su := u
			su.From, su.To = s, s.Add(step)
			su.Query = su.Range.usageQuery()
			// A minute's rows only: a minute whose rows retention has
			// dropped fails (analytics.ErrDropped) rather than be answered
			// with its whole hour, as a range of minutes is.
			su.Query.Granularity = analytics.GranularityMinute
			t, err := LatencyTable(gctx, q, su, false)
			if err != nil {
				return err
			}
			tables[i] = t
			return checkCells(int(rows.Add(int64(len(t.Rows)))), cols, maxCells)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := latencySeriesShell(u, steps, step)
	for i, t := range tables {
		for _, row := range t.Rows {
			out.Rows = append(out.Rows, append([]render.Value{render.Time(steps[i])}, row...))
		}
	}
	return out, nil
}

// latencyStepsTable is LatencySeriesTable for hour and day steps: one
// query (analytics.UsageSteps, each row what Usage gives for its step and
// group) instead of one per step. Within a step the rows are in Usage's
// order: cost descending, then the group.
func latencyStepsTable(ctx context.Context, q *analytics.Querier, u Usage, steps []time.Time, step time.Duration, maxCells int) (*render.Table, error) {
	out := latencySeriesShell(u, steps, step)
	if len(steps) == 0 {
		return out, nil
	}
	uq := u.Range.usageQuery()
	uq.From, uq.To = steps[0], steps[len(steps)-1].Add(step)
	rows, err := q.UsageSteps(ctx, uq, step)
	if err != nil {
		return nil, err
	}
	// Each group and step is a row of latency and one of TTFT.
	if err := checkCells(2*len(rows), len(out.Columns), maxCells); err != nil {
		return nil, err
	}
	byStep := map[time.Time][]analytics.UsageRow{}
	for _, r := range rows {
		byStep[r.Start] = append(byStep[r.Start], r.UsageRow)
	}
	for _, s := range steps {
		rs := byStep[s]
		sort.SliceStable(rs, func(i, j int) bool {
			if c := rs[i].CostUSD.Cmp(rs[j].CostUSD); c != 0 {
				return c > 0
			}
			for _, d := range uq.By {
				if a, b := rs[i].Group[d], rs[j].Group[d]; a != b {
					return a < b
				}
			}
			return false
		})
		t := render.Latency(render.LatencyReport{Scope: u.Scope(), Rows: rs})
		for _, row := range t.Rows {
			out.Rows = append(out.Rows, append([]render.Value{render.Time(s)}, row...))
		}
	}
	return out, nil
}
