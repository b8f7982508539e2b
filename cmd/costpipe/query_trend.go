package main

import (
	"fmt"
	"math"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/render"
)

// trendFlags are the flags query growth and query forecast share.
func trendFlags() []cli.Flag {
	return append(groupFlags(),
		metricFlag("what to follow"),
		&cli.StringFlag{Name: "tz", Value: "UTC", EnvVars: []string{"COSTPIPE_QUERY_TZ"},
			Usage: "IANA time `ZONE` of the calendar days (Europe/Berlin, America/New_York, …)"},
		&cli.StringFlag{Name: "at", EnvVars: []string{"COSTPIPE_QUERY_AT"},
			Usage: "answer as of `TIME` (RFC 3339 or a date; default now)"},
		formatFlag(),
	)
}

// metricFlag is --metric; what says what it does.
func metricFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "metric", Value: "cost", EnvVars: []string{"COSTPIPE_QUERY_METRIC"},
		Usage: what + ", `METRIC`: cost (USD), requests, input_tokens, output_tokens or tokens"}
}

// trendRequest is what query growth and query forecast read from flags.
type trendRequest struct {
	by     []analytics.Dim
	where  map[analytics.Dim][]string
	conds  []render.Filter
	metric analytics.Metric
	loc    *time.Location
	at     time.Time
	format render.Format
}

func parseTrendFlags(c *cli.Context) (trendRequest, error) {
	var r trendRequest
	var err error
	if c.NArg() > 0 {
		return r, fmt.Errorf("%s takes no arguments, got %q", c.Command.FullName(), c.Args().First())
	}
	if r.by, r.where, r.conds, err = parseByWhere(c); err != nil {
		return r, err
	}
	if r.metric, err = analytics.ParseMetric(c.String("metric")); err != nil {
		return r, fmt.Errorf("invalid --metric: %w", err)
	}
	tz := c.String("tz")
	if tz == "Local" || tz == "" {
		return r, fmt.Errorf("invalid --tz %q: want an IANA zone name such as UTC or Europe/Berlin", tz)
	}
	if r.loc, err = time.LoadLocation(tz); err != nil {
		return r, fmt.Errorf("invalid --tz %q: %v", tz, err)
	}
	r.at = time.Now()
	if s := c.String("at"); s != "" {
		if r.at, err = parseTime(s); err != nil {
			return r, fmt.Errorf("invalid --at: %w", err)
		}
	}
	r.format, err = parseFormat(c)
	return r, err
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
of its days without) gives a note instead of a number.

Examples:
  costpipe query growth --by model
  costpipe query growth --by tenant --metric requests --window 56 --format json`,
		Flags: append(trendFlags(),
			&cli.IntFlag{Name: "window", Value: 28, EnvVars: []string{"COSTPIPE_QUERY_WINDOW"},
				Usage: "`DAYS` of the trend (14 to 366)"}),
		Action: runQueryGrowth,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, msg: err.Error() + " (see costpipe query growth --help)"}
		},
	}
}

func runQueryGrowth(c *cli.Context) error {
	req, err := parseTrendFlags(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	rows, err := q.Growth(c.Context, analytics.GrowthQuery{At: req.at, Location: req.loc, By: req.by, Where: req.where,
		Metric: req.metric, Window: c.Int("window")})
	if err != nil {
		return migrateHint(err, w)
	}
	return writeReport(c, req.format, render.Growth(render.GrowthReport{Scope: render.Scope{By: req.by, Where: req.conds},
		Metric: req.metric, Location: req.loc, Rows: rows}))
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

Examples:
  costpipe query forecast --by tenant --budget 5000
  costpipe query forecast --period week --tz Europe/Berlin --format json`,
		Flags: append(trendFlags(),
			&cli.IntFlag{Name: "horizon", EnvVars: []string{"COSTPIPE_QUERY_HORIZON"},
				Usage: "forecast the next `DAYS` days from the start of today instead of a calendar period"},
			&cli.StringFlag{Name: "period", Value: "month", EnvVars: []string{"COSTPIPE_QUERY_PERIOD"},
				Usage: "calendar `PERIOD` forecast: day, week (Monday to Sunday) or month"},
			&cli.Float64Flag{Name: "budget", EnvVars: []string{"COSTPIPE_QUERY_BUDGET"},
				Usage: "the period's budget in the metric's unit (`USD` for cost), per group"},
			&cli.IntFlag{Name: "history", Value: 91, EnvVars: []string{"COSTPIPE_QUERY_HISTORY"},
				Usage: "`DAYS` of history to fit and backtest on"}),
		Action: runQueryForecast,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, msg: err.Error() + " (see costpipe query forecast --help)"}
		},
	}
}

func runQueryForecast(c *cli.Context) error {
	req, err := parseTrendFlags(c)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	period, err := analytics.ParsePeriod(c.String("period"))
	if err != nil {
		return &exitError{code: 2, msg: "invalid --period: " + err.Error()}
	}
	var budget *float64
	if c.IsSet("budget") {
		b := c.Float64("budget")
		if !(b > 0) || math.IsInf(b, 0) {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --budget %v: want a positive amount", b)}
		}
		budget = &b
	}
	horizon := c.Int("horizon")
	if horizon != 0 {
		if c.IsSet("period") {
			return &exitError{code: 2, msg: "--period and --horizon are mutually exclusive: a calendar period or the next N days"}
		}
		if horizon < 1 || horizon > 366 {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --horizon %d: want 1 to 366 days", horizon)}
		}
	}
	w, q, err := openQuerier(c)
	if err != nil {
		return err
	}
	defer w.Close()
	rows, err := q.Forecast(c.Context, analytics.ForecastQuery{At: req.at, Location: req.loc, Period: period, By: req.by,
		Where: req.where, Metric: req.metric, History: c.Int("history"), Budget: budget, Horizon: horizon})
	if horizon > 0 {
		period = analytics.Period(fmt.Sprintf("next %d days", horizon)) // for the report's title
	}
	if err != nil {
		return migrateHint(err, w)
	}
	return writeReport(c, req.format, render.Forecast(render.ForecastReport{Scope: render.Scope{By: req.by, Where: req.conds},
		Metric: req.metric, Location: req.loc, Period: period, Budget: budget != nil, Rows: rows}))
}
