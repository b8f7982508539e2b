package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/report"
)

func queryTopCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "the largest groups by cost, requests or tokens, with their share of the total",
		Description: `Ranks the groups of --by dimensions by --metric over the half-open range
[--from, --to) (or the last --since) and prints the --limit largest: rank, the
group, its value (cost_usd exact in USD, or a count), share (its part of the
total of every group that matched --where, 0 to 1) and cumulative_share. The
ranking and the total come from one query, so the shares never sum to more
than 1. The table format adds OTHER (the groups not listed) and TOTAL lines.

Metrics: cost (USD), requests, tokens (input + output), input_tokens,
output_tokens. Dimensions and --where are those of query usage.

Examples:
  costpipe query top --by tenant --since 30d
  costpipe query top --by provider,model --metric tokens -n 5
  costpipe query top --by application --where tenant=acme --metric requests --format json

Exit status: 0 success (also when nothing matched), 1 query failed, 2 usage error.`,
		Flags: append(append(rangeFlags("24h"), groupFlags()...),
			metricFlag("what to rank by"),
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: analytics.DefaultTopN, EnvVars: []string{"COSTPIPE_QUERY_LIMIT"},
				Usage: "the number `N` of groups to list"},
			formatFlag(), granularityFlag()),
		Action: runQueryTop,
	}
}

func runQueryTop(c *cli.Context) error {
	parse := func(p report.Params, now time.Time) (report.Top, error) {
		return report.ParseTop(p, now, analytics.DefaultOptions().MaxRows)
	}
	return runReport(c, fromFlags(parse), tableOf(report.TopTable))
}
