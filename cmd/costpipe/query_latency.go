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

Dimensions and --where are those of query usage.

Examples:
  costpipe query latency --since 24h --by model
  costpipe query latency --since 7d --by provider,model --where tenant=acme --format csv
  costpipe query latency --from 2026-01-01 --to 2026-01-02 --format json

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags:  append(append(rangeFlags("24h"), groupFlags()...), formatFlag(), granularityFlag()),
		Action: runQueryLatency,
	}
}

func runQueryLatency(c *cli.Context) error {
	return runReport(c, func(c *cli.Context) (report.Usage, render.Format, error) { return parseQueryFlags(c, time.Now()) },
		func(ctx context.Context, q *analytics.Querier, req report.Usage, f render.Format) (*render.Table, error) {
			return report.LatencyTable(ctx, q, req, f == render.FormatTable)
		})
}
