package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/render"
	"github.com/costpipe/costpipe/report"
)

func queryLatencyCommand() *cli.Command {
	return &cli.Command{
		Name:  "latency",
		Usage: "latency and time to first token per group: count, mean, min, max, p50, p90, p95, p99, p99.9",
		Description: `Merges the latency and TTFT histograms of the rollups over the half-open range
[--from, --to) (or the last --since) and prints, per group of --by dimensions
(most expensive first), one line for the whole call (measure latency) and one
for the time to first token (measure ttft): count (the calls that reported
it), mean (exact), min, max and p50, p90, p95, p99 and p99.9 in ms (within
1%: percentiles are evaluated on the merged histograms, never averaged).
Groups whose calls reported no duration show nulls ("-").

With --step 1m, 1h or 1d: the same per step of the range, widened to whole
steps in UTC, with the step's start first (ts); each step's percentiles come
from that step's merged histograms, and a step without usage has no lines.
At most 200 steps. The API's /api/v1/latency?step= answers the same.

Dimensions and --where are those of query usage.

Examples:
  costpipe query latency --since 24h --by model
  costpipe query latency --since 24h --by model --step 1h --format csv
  costpipe query latency --since 7d --by provider,model --where tenant=acme --format csv
  costpipe query latency --from 2026-01-01 --to 2026-01-02 --format json

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags: append(append(rangeFlags("24h"), groupFlags()...), formatFlag(), granularityFlag(),
			&cli.StringFlag{Name: "step", EnvVars: []string{"COSTPIPE_QUERY_LATENCY_STEP"},
				Usage: "one line per `STEP` of the range, group and measure: 1m, 1h or 1d (at most 200 steps; default: the whole range)"}),
		Action: runQueryLatency,
	}
}

// latencyRequest is a query latency request: the range and, with --step,
// its steps.
type latencyRequest struct {
	report.Usage
	step  time.Duration // 0: the whole range
	steps []time.Time
}

func runQueryLatency(c *cli.Context) error {
	return runReport(c, func(c *cli.Context) (latencyRequest, render.Format, error) {
		u, format, err := parseQueryFlags(c, time.Now())
		if err != nil {
			return latencyRequest{}, format, err
		}
		req := latencyRequest{Usage: u}
		req.step, req.steps, err = report.ParseLatencyStep(flagParams{c}, u)
		return req, format, err
	}, func(ctx context.Context, q *analytics.Querier, req latencyRequest, f render.Format) (*render.Table, error) {
		if req.step > 0 {
			return report.LatencySeriesTable(ctx, q, req.Usage, req.steps, req.step, 0)
		}
		return report.LatencyTable(ctx, q, req.Usage, f == render.FormatTable)
	})
}
