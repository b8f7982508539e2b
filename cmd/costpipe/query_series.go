package main

import (
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/report"
)

func querySeriesCommand() *cli.Command {
	return &cli.Command{
		Name:  "series",
		Usage: "a value per minute, hour or day per group, empty steps filled with zero",
		Description: `Reads --metric for every --step of the range [--from, --to) (or the last
--since), widened to whole steps in UTC, per group of --by dimensions: 1m steps
from usage_1m, 1h from usage_1h, 1d from usage_1d. A step without usage is
there with 0. At most 10000 steps.

json, csv and arrow give one row per group and step: the group, ts (the start
of the step, UTC) and the value (cost_usd exact in USD, or a count). The table
shows a line per step and a column per group (the 8 largest, then OTHER and
TOTAL), with a TOTAL line and a TREND sparkline under each column, and says
when the last step had not ended yet (its value is the step so far).

Metrics: cost (USD), requests, tokens (input + output), input_tokens,
output_tokens. Dimensions and --where are those of query usage.

Examples:
  costpipe query series --since 24h --step 1h --by model
  costpipe query series --since 2h --step 1m --metric requests --where tenant=acme
  costpipe query series --from 2026-01-01 --to 2026-02-01 --step 1d --by tenant --format csv

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags: append(append(rangeFlags("24h"), groupFlags()...),
			&cli.StringFlag{Name: "step", Value: "1h", EnvVars: []string{"COSTPIPE_QUERY_STEP"},
				Usage: "the width of a step, `STEP`: 1m, 1h or 1d"},
			metricFlag("the value of a step"),
			formatFlag()),
		Action: runQuerySeries,
	}
}

func runQuerySeries(c *cli.Context) error {
	return runReport(c, fromFlags(report.ParseSeries), tableOf(report.SeriesTable))
}
