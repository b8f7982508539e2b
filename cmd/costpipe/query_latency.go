package main

import (
	"time"

	"github.com/urfave/cli/v2"

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
it), mean, min and max (exact), and p50, p90, p95, p99 and p99.9 in ms (within
1%: percentiles are evaluated on the merged histograms, never averaged).
Groups whose calls reported no duration show nulls ("-").

Dimensions and --where are those of query usage.

Examples:
  costpipe query latency --since 24h --by model
  costpipe query latency --since 7d --by provider,model --where tenant=acme --format csv
  costpipe query latency --from 2026-01-01 --to 2026-01-02 --format json

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags:        append(append(rangeFlags("24h"), groupFlags()...), formatFlag(), granularityFlag()),
		Action:       runQueryLatency,
		OnUsageError: usageError("latency"),
	}
}

func runQueryLatency(c *cli.Context) error {
	req, format, err := parseQueryFlags(c, time.Now())
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	t, err := report.LatencyTable(c.Context, q, req, format == render.FormatTable)
	if err != nil {
		return migrateHint(err, w)
	}
	return writeReport(c, format, t)
}
