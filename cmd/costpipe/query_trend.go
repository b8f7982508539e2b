package main

import (
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/report"
)

// trendFlags are the flags query growth and query forecast share.
func trendFlags() []cli.Flag {
	return append(groupFlags(),
		metricFlag("what to follow"),
		&cli.StringFlag{Name: "tz", Value: "UTC", EnvVars: []string{"COSTPIPE_QUERY_TZ"},
			Usage: "IANA time `ZONE` of the calendar days (Europe/Berlin, America/New_York, …)"},
		&cli.StringFlag{Name: "at", EnvVars: []string{"COSTPIPE_QUERY_AT"},
			Usage: "answer as of `TIME` (RFC 3339, or a date: its midnight in --tz; default now)"},
		formatFlag(),
	)
}

// metricFlag is --metric; what says what it does.
func metricFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "metric", Value: "cost", EnvVars: []string{"COSTPIPE_QUERY_METRIC"},
		Usage: what + ", `METRIC`: cost (USD), requests, input_tokens, output_tokens or tokens"}
}

func queryGrowthCommand() *cli.Command {
	return &cli.Command{
		Name:  "growth",
		Usage: "how fast usage grows per group: week over week, compound monthly growth, doubling time",
		Description: `For each group of --by (or the totals), from the daily values of --metric in
--tz up to the last complete day before --at:

  last_7d, prev_7d, wow_pct   the last 7 days against the 7 before (the weekly pattern cancels)
  dod_pct                     the last day against the same weekday a week earlier
  daily_rate                  the trend over --window days: the seasonal Theil–Sen slope of
                              ln(daily value) per day (robust to outliers and weekends)
  cmgr_pct                    compound monthly growth at that rate, e^(30·rate) − 1
  rate_ci_low, rate_ci_high   its 90% confidence interval
  doubling_days               ln 2 / rate, only when the whole interval is above 0
  halving_days                the same for a shrinking series

Too little data (fewer than 7 days with usage in the window, or more than half
of its days without) gives a note instead of a number; no usage at all in the
window (fresh data: no complete day yet) gives, in json, csv and arrow, one row
without a group (null dimensions) whose note says so. With --metric cost,
last_7d and prev_7d are USD as cost_usd is in query usage: an exact decimal
string in JSON ("12.345000000000").

Examples:
  costpipe query growth --by model
  costpipe query growth --by tenant --metric requests --window 56 --format json`,
		Flags: append(trendFlags(),
			&cli.IntFlag{Name: "window", Value: 28, EnvVars: []string{"COSTPIPE_QUERY_WINDOW"},
				Usage: "`DAYS` of the trend (14 to 366)"}),
		Action: runQueryGrowth,
	}
}

func runQueryGrowth(c *cli.Context) error {
	return runReport(c, fromFlags(report.ParseGrowth), tableOf(report.GrowthTable))
}

func queryForecastCommand() *cli.Command {
	return &cli.Command{
		Name:  "forecast",
		Usage: "where usage ends the current day, week or month per group, with a p10–p90 band and budget exhaustion",
		Description: `For each group of --by (or the totals): the exact value of the period so far
(to_date), and forecast_p10/p50/p90 of the period's total. The method is chosen
per series by a rolling-origin backtest over the --history days among
seasonal_naive (same weekday last week), run_rate (mean of the last 7 days) and
holt_winters (damped trend, weekly season); the backtest's mase (below 1 beats
last week's value) and the band's coverage (share of backtest origins whose
outcome fell inside the p10–p90 band; nominal 0.8) are part of the output.
Today is forecast as a whole day. With --budget: exhaustion_p50/p90 (the date
the spend crosses it on the median and on the high path) and p_overspend.
With --metric cost (the default), to_date and the forecasts are USD as cost_usd
is in query usage: an exact decimal string in JSON ("12.345000000000"; the
forecasts rounded to 1e-12 USD), decimal128 in Arrow; mase, coverage and
p_overspend are numbers.
With --horizon 24h (1h to 168h): the next hours from the start of the current
hour, fitted on up to 12 weeks of hourly history; the methods are the same hour
last week, last week's mean hour and holt_winters with a daily and a weekly
season (no --budget).

Examples:
  costpipe query forecast --by tenant --budget 5000
  costpipe query forecast --period week --tz Europe/Berlin --format json
  costpipe query forecast --horizon 24h --by model`,
		Flags: append(trendFlags(),
			&cli.StringFlag{Name: "horizon", EnvVars: []string{"COSTPIPE_QUERY_HORIZON"},
				Usage: "forecast the next `N` days (7 or 7d, from the start of today) or hours (24h, from the start of the hour, fitted on hourly history) instead of a calendar period"},
			&cli.StringFlag{Name: "period", Value: "month", EnvVars: []string{"COSTPIPE_QUERY_PERIOD"},
				Usage: "calendar `PERIOD` forecast: day, week (Monday to Sunday) or month"},
			&cli.Float64Flag{Name: "budget", EnvVars: []string{"COSTPIPE_QUERY_BUDGET"},
				Usage: "the period's budget in the metric's unit (`USD` for cost), per group"},
			&cli.IntFlag{Name: "history", Value: 91, EnvVars: []string{"COSTPIPE_QUERY_HISTORY"},
				Usage: "`DAYS` of history to fit and backtest on"}),
		Action: runQueryForecast,
	}
}

func runQueryForecast(c *cli.Context) error {
	return runReport(c, fromFlags(report.ParseForecast), tableOf(report.ForecastTable))
}
