package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

func deriveCommand() *cli.Command {
	d := analytics.DefaultDeriverOptions()
	return &cli.Command{
		Name:  "derive",
		Usage: "keep growth_daily up to date: each day's growth and month-end forecast, per tenant, model and tenant × model",
		Description: `A long-running process (one per database) that writes growth_daily (docs/sql.md):
for each UTC day that ended more than --delay ago, what ` + "`query growth`" + ` and
` + "`query forecast`" + ` report as of the end of that day, for the totals and per tenant, per
model and per tenant × model, for each of --metrics. On start it derives the days of
the last --backfill that the table lacks, then checks every --interval. Deriving a day
again replaces its rows (ReplacingMergeTree: read with FINAL). Applies pending
migrations at start. SIGTERM stops it; a day cut short is derived at the next start.
A failed pass is retried every --interval and logged at once, then once a minute
while passes fail, and once when one completes again.

--metrics-listen serves, from the start (while ClickHouse is still waited for),
/metrics (costpipe_derive_*), /healthz (liveness: 200 while the process runs) and
/readyz (readiness: 503 until a pass has completed, and when none has for three
--interval, at least a minute; the body says why).

  --once         derive the missing days and exit (cron, tests)
  --day DATE     derive these days again (repeatable) and exit

Examples:
  costpipe derive --metrics-listen :9466
  costpipe derive --once --backfill 30d
  costpipe derive --day 2026-03-01 --day 2026-03-02`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backfill", Value: fmt.Sprintf("%dd", d.Backfill), EnvVars: []string{"COSTPIPE_DERIVE_BACKFILL"},
				Usage: "derive the days of this last stretch (whole days, e.g. 7d) that growth_daily lacks"},
			&cli.DurationFlag{Name: "delay", Value: d.Delay, EnvVars: []string{"COSTPIPE_DERIVE_DELAY"},
				Usage: "a day is derived this long after it ends (UTC midnight), so late flushes have landed"},
			&cli.DurationFlag{Name: "interval", Value: d.Interval, EnvVars: []string{"COSTPIPE_DERIVE_INTERVAL"},
				Usage: "how often to check for a day to derive"},
			&cli.StringFlag{Name: "metrics", Value: joinMetrics(d.Derive.Metrics), EnvVars: []string{"COSTPIPE_DERIVE_METRICS"},
				Usage: "comma-separated `METRICS` to derive: cost, requests, input_tokens, output_tokens, tokens"},
			&cli.IntFlag{Name: "max-groups", Value: d.Derive.MaxGroups, EnvVars: []string{"COSTPIPE_DERIVE_MAX_GROUPS"},
				Usage: "at most this many groups per scope, metric and day, the biggest first (bounds the work and the rows)"},
			&cli.IntFlag{Name: "window", Value: d.Derive.Window, EnvVars: []string{"COSTPIPE_DERIVE_WINDOW"},
				Usage: "`DAYS` of the growth trend (14 to 366), as query growth --window"},
			&cli.IntFlag{Name: "history", Value: d.Derive.History, EnvVars: []string{"COSTPIPE_DERIVE_HISTORY"},
				Usage: "`DAYS` of history the forecast is fitted and backtested on (7 to 182)"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_METRICS_LISTEN"},
				Usage: "serve Prometheus /metrics, /healthz (alive) and /readyz (a pass completed recently) on `HOST:PORT` (default: off; not with --once or --day)"},
			&cli.BoolFlag{Name: "once", Usage: "derive the missing days and exit"},
			&cli.StringSliceFlag{Name: "day", Usage: "derive `DATE` (YYYY-MM-DD, UTC) again and exit; repeatable"},
			&cli.StringFlag{Name: "now", Hidden: true, Usage: "RFC 3339 time to use as now (tests)"},
		},
		Action: runDerive,
	}
}

func joinMetrics(ms []analytics.Metric) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}

func runDerive(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("derive takes no arguments, got %q", c.Args().First())}
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	o := analytics.DefaultDeriverOptions()
	o.Logger = log
	o.Delay = c.Duration("delay")
	o.Interval = c.Duration("interval")
	for _, f := range []struct {
		name string
		dst  *int
	}{{"max-groups", &o.Derive.MaxGroups}, {"window", &o.Derive.Window}, {"history", &o.Derive.History}} {
		if *f.dst = c.Int(f.name); *f.dst <= 0 { // 0 would mean the default in DeriveOptions
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --%s %d: want a positive number", f.name, *f.dst)}
		}
	}
	backfill, err := parseDays(c.String("backfill"))
	if err != nil || backfill%(24*time.Hour) != 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --backfill %q: want whole days such as 7d", c.String("backfill"))}
	}
	o.Backfill = int(backfill / (24 * time.Hour))
	o.Derive.Metrics = nil
	for _, s := range splitList(c.String("metrics")) {
		m, err := analytics.ParseMetric(s)
		if err != nil {
			return &exitError{code: 2, msg: "invalid --metrics: " + err.Error()}
		}
		o.Derive.Metrics = append(o.Derive.Metrics, m)
	}
	if len(o.Derive.Metrics) == 0 {
		return &exitError{code: 2, msg: "invalid --metrics: name at least one metric"}
	}
	var days []time.Time
	for _, s := range c.StringSlice("day") {
		day, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --day %q: want a date such as 2026-03-01", s)}
		}
		days = append(days, day)
	}
	now := time.Now
	if s := c.String("now"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --now %q: want RFC 3339", s)}
		}
		now = func() time.Time { return t }
	}
	if err := o.Validate(); err != nil {
		return &exitError{code: 2, msg: "invalid derive options: " + err.Error()}
	}
	today := now().UTC().Truncate(24 * time.Hour)
	for _, day := range days {
		if !day.Before(today) {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --day %s: the day has not ended yet (UTC)", day.Format(time.DateOnly))}
		}
	}

	wo := warehouse.DefaultOptions()
	wo.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wo); err != nil {
		return err
	}
	if err := wo.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	// The long-running derive serves /metrics, /healthz and /readyz from
	// here on, while ClickHouse is waited for; --once and --day do not
	// (they end before anything scrapes them).
	longRunning := len(days) == 0 && !c.Bool("once")
	probes := &probeServer{reg: prometheus.NewRegistry()}
	if longRunning {
		probes.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		o.Registerer = probes.reg
		closeProbes, err := probes.listen(log, c.String("metrics-listen"))
		if err != nil {
			return err
		}
		defer closeProbes()
	}
	w, err := openWarehouse(c.Context, log, wo)
	if err == nil {
		defer w.Close()
		var res []warehouse.MigrationResult
		res, err = w.Migrate(c.Context)
		logMigrations(log, w.Database(), res)
	}
	if err != nil {
		if longRunning && c.Context.Err() != nil {
			log.Info("derive stopped before it started", "waiting_for", err)
			return nil
		}
		return err
	}
	q := analytics.New(w, analytics.Options{Now: now, Logger: log})
	if err := q.CheckGrowthSchema(c.Context); err != nil {
		return err
	}
	dv, err := analytics.NewDeriver(q, o)
	if err != nil {
		return &exitError{code: 2, msg: "invalid derive options: " + err.Error()}
	}
	out := c.App.Writer
	table := w.Database() + "." + analytics.GrowthTable
	switch {
	case len(days) > 0:
		rows := 0
		for _, day := range days {
			res, err := dv.DeriveDay(c.Context, day)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "derived %s: %d rows into %s\n", res.Day.Format(time.DateOnly), res.Rows, table)
			rows += res.Rows
		}
		fmt.Fprintf(out, "%d day(s) derived, %d rows\n", len(days), rows)
		return nil
	case c.Bool("once"):
		res, err := dv.RunOnce(c.Context)
		rows := 0
		for _, r := range res {
			fmt.Fprintf(out, "derived %s: %d rows into %s\n", r.Day.Format(time.DateOnly), r.Rows, table)
			rows += r.Rows
		}
		if err != nil {
			return err
		}
		last := dv.LastDue(now())
		fmt.Fprintf(out, "%d day(s) derived, %d rows; %s is up to date from %s to %s\n", len(res), rows, table,
			last.AddDate(0, 0, -(o.Backfill-1)).Format(time.DateOnly), last.Format(time.DateOnly))
		return nil
	}
	probes.setReady(dv.Ready)
	log.Info("deriving growth", "table", table, "backfill_days", o.Backfill, "delay", o.Delay, "interval", o.Interval,
		"metrics", joinMetrics(o.Derive.Metrics), "max_groups", o.Derive.MaxGroups, "ready_limit", dv.ReadyLimit())
	err = dv.Run(c.Context)
	probes.setReady(func() error { return errors.New("stopping") })
	log.Info("derive stopped")
	return err
}
