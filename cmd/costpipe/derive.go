package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/warehouse"
)

// maxDeriveDays bounds the days one derive --day run derives (its ranges
// together).
const maxDeriveDays = 366

func deriveCommand() *cli.Command {
	d := analytics.DefaultDeriverOptions()
	return &cli.Command{
		Name:  "derive",
		Usage: "keep growth_daily up to date: each day's growth and month-end forecast, per tenant, model and tenant × model",
		Description: `A long-running process (one per database) that writes growth_daily (docs/sql.md):
for each UTC day that ended more than --delay ago, what ` + "`query growth`" + ` and
` + "`query forecast`" + ` report as of the end of that day, for the totals and per tenant, per
model and per tenant × model, for each of --metrics. Every --interval it derives the
days of the last --backfill that the table lacks (and that have usage), and compares
the days of the last --recheck with the rollups: from the first whose usage changed
since it was derived (calls that landed late, up to the aggregators' --max-event-age;
a reprice), it derives that day and every later one again. Deriving a day again
replaces its rows (ReplacingMergeTree: read with FINAL). Days older than --recheck
are not followed: after a reprice of older days, derive them with --day.

It does not apply migrations: it waits (long-running) or refuses (--once, --day) until
` + "`costpipe migrate`" + ` has brought the database to this binary's schema. SIGTERM stops it;
a day cut short is derived at the next start. A failed pass (ClickHouse down) is
retried every --interval (sooner while starting) and logged at once, then once a
minute while passes fail, and once when one completes again; a day that fails does
not stop the days after it.

--metrics-listen serves, from the start (while ClickHouse is still waited for),
/metrics (costpipe_derive_*), /healthz (liveness: 200 while the process runs) and
/readyz (readiness: 503 until a pass has completed, and when none has for three
--interval, at least a minute; the body says why).

  --once              derive the missing and changed days and exit (cron, tests)
  --day DATE          derive these days again (repeatable; FIRST..LAST for a range) and exit

--once and --day wait up to --wait for ClickHouse to answer, then exit 1.

Examples:
  costpipe derive --metrics-listen :9466
  costpipe derive --once --backfill 30d
  costpipe derive --day 2026-03-01 --day 2026-03-02
  costpipe derive --day 2026-01-05..2026-03-09   # after a reprice of those days`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backfill", Value: fmt.Sprintf("%dd", d.Backfill), EnvVars: []string{"COSTPIPE_DERIVE_BACKFILL"},
				Usage: "derive the days of this last stretch (whole days, e.g. 7d) that growth_daily lacks"},
			&cli.StringFlag{Name: "recheck", Value: fmt.Sprintf("%dd", d.Recheck), EnvVars: []string{"COSTPIPE_DERIVE_RECHECK"},
				Usage: "derive again the days of this last stretch (whole days) whose usage changed since (late calls, a reprice): at least the aggregators' --max-event-age plus their landing delay"},
			&cli.DurationFlag{Name: "delay", Value: d.Delay, EnvVars: []string{"COSTPIPE_DERIVE_DELAY"},
				Usage: "a day is first derived this long after it ends (UTC midnight), once the aggregators' last flushes of it have landed; calls landing later are picked up by --recheck"},
			&cli.DurationFlag{Name: "interval", Value: d.Interval, EnvVars: []string{"COSTPIPE_DERIVE_INTERVAL"},
				Usage: "how often to check for a day to derive"},
			&cli.StringFlag{Name: "metrics", Value: joinMetrics(d.Derive.Metrics), EnvVars: []string{"COSTPIPE_DERIVE_METRICS"},
				Usage: "comma-separated `METRICS` to derive: cost, requests, input_tokens, output_tokens, tokens"},
			&cli.IntFlag{Name: "max-groups", Value: d.Derive.MaxGroups, EnvVars: []string{"COSTPIPE_DERIVE_MAX_GROUPS"},
				Usage: "at most this many groups per scope, metric and day, the biggest first: bounds what is read and written"},
			&cli.IntFlag{Name: "window", Value: d.Derive.Window, EnvVars: []string{"COSTPIPE_DERIVE_WINDOW"},
				Usage: "`DAYS` of the growth trend (14 to 366), as query growth --window"},
			&cli.IntFlag{Name: "history", Value: d.Derive.History, EnvVars: []string{"COSTPIPE_DERIVE_HISTORY"},
				Usage: "`DAYS` of history the forecast is fitted and backtested on (7 to 182)"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"COSTPIPE_METRICS_LISTEN"},
				Usage: "serve Prometheus /metrics, /healthz (alive) and /readyz (a pass completed recently) on `HOST:PORT` (default: off; the long-running derive only: refused with --once or --day)"},
			&cli.BoolFlag{Name: "once", Usage: "derive the missing and changed days and exit (not with --day)"},
			&cli.StringSliceFlag{Name: "day", Usage: "derive `DATE` (YYYY-MM-DD, UTC; or FIRST..LAST) again and exit; repeatable (not with --once)"},
			&cli.DurationFlag{Name: "wait", Value: 30 * time.Second, EnvVars: []string{"COSTPIPE_DERIVE_WAIT"},
				Usage: "--once and --day: how long to wait for ClickHouse to answer before exiting 1 (the long-running derive waits as long as it takes)"},
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

// parseDeriveDays returns the days of --day values: dates and FIRST..LAST
// ranges (inclusive), in the order given.
func parseDeriveDays(values []string) ([]time.Time, error) {
	var days []time.Time
	for _, v := range values {
		s := strings.TrimSpace(v)
		firstS, lastS, isRange := strings.Cut(s, "..")
		if !isRange {
			lastS = firstS
		}
		first, err1 := time.Parse(time.DateOnly, strings.TrimSpace(firstS))
		last, err2 := time.Parse(time.DateOnly, strings.TrimSpace(lastS))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("invalid --day %q: want a date such as 2026-03-01, or a range such as 2026-03-01..2026-03-07", v)
		}
		if last.Before(first) {
			return nil, fmt.Errorf("invalid --day %q: the range ends before it starts", v)
		}
		for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
			if days = append(days, d); len(days) > maxDeriveDays {
				return nil, fmt.Errorf("invalid --day: more than %d days in one run", maxDeriveDays)
			}
		}
	}
	return days, nil
}

// wholeDays parses flag name's value as whole days (7d).
func wholeDays(c *cli.Context, name string) (int, error) {
	d, err := parseDays(c.String(name))
	if err != nil || d%(24*time.Hour) != 0 {
		return 0, &exitError{code: 2, msg: fmt.Sprintf("invalid --%s %q: want whole days such as 7d", name, c.String(name))}
	}
	return int(d / (24 * time.Hour)), nil
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
	if o.Backfill, err = wholeDays(c, "backfill"); err != nil {
		return err
	}
	if o.Recheck, err = wholeDays(c, "recheck"); err != nil {
		return err
	}
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
	days, err := parseDeriveDays(c.StringSlice("day"))
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
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
	// The modes: one long-running, two one-shot ones; flags of the one
	// given to another are refused rather than ignored.
	once := c.Bool("once")
	longRunning := len(days) == 0 && !once
	switch {
	case once && len(days) > 0:
		return &exitError{code: 2, msg: "--once and --day are two ways of deriving once: give one (--day derives the days given, --once the missing and changed ones)"}
	case !longRunning && c.IsSet("metrics-listen"):
		return &exitError{code: 2, msg: "--metrics-listen (COSTPIPE_METRICS_LISTEN) serves the long-running derive: not with --once or --day, which exit before anything scrapes them"}
	case longRunning && c.IsSet("wait"):
		return &exitError{code: 2, msg: "--wait bounds how long --once and --day wait for ClickHouse: the long-running derive waits as long as it takes"}
	case c.Duration("wait") <= 0:
		return &exitError{code: 2, msg: fmt.Sprintf("invalid --wait %s: want a positive duration", c.Duration("wait"))}
	}

	wo := warehouse.DefaultOptions()
	wo.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wo); err != nil {
		return err
	}
	// Lazily: nothing is asked of ClickHouse before the Deriver's first
	// pass (or Check), so its metrics exist while ClickHouse is waited for.
	w, err := warehouse.OpenLazy(wo)
	if err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	defer w.Close()
	q := analytics.New(w, analytics.Options{Now: now, Logger: log})
	table := w.Database() + "." + analytics.GrowthTable
	if !longRunning {
		dv, err := analytics.NewDeriver(q, o)
		if err != nil {
			return &exitError{code: 2, msg: "invalid derive options: " + err.Error()}
		}
		if err := waitForClickHouse(c.Context, log, dv, c.Duration("wait")); err != nil {
			return err
		}
		if len(days) > 0 {
			return deriveDays(c, dv, days, table)
		}
		return deriveOnce(c, dv, o, now, table)
	}

	// The long-running derive serves /metrics, /healthz and /readyz from
	// here on, with its metrics registered, while ClickHouse is waited
	// for.
	probes := &probeServer{reg: prometheus.NewRegistry()}
	probes.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.Registerer = probes.reg
	dv, err := analytics.NewDeriver(q, o)
	if err != nil {
		return &exitError{code: 2, msg: "invalid derive options: " + err.Error()}
	}
	probes.setReady(dv.Ready)
	closeProbes, err := probes.listen(log, c.String("metrics-listen"))
	if err != nil {
		return err
	}
	defer closeProbes()
	log.Info("deriving growth", "table", table, "backfill_days", o.Backfill, "recheck_days", o.Recheck, "delay", o.Delay, "interval", o.Interval,
		"metrics", joinMetrics(o.Derive.Metrics), "max_groups", o.Derive.MaxGroups, "ready_limit", dv.ReadyLimit())
	err = dv.Run(c.Context)
	probes.setReady(func() error { return errors.New("stopping") })
	log.Info("derive stopped")
	return err
}

// waitForClickHouse runs dv's start-up check (ClickHouse answers, the
// database is migrated, growth_daily as expected) for the one-shot modes:
// while ClickHouse does not answer it retries, up to wait; any other
// failure (a database to migrate first, TLS, credentials) ends it at once.
// Both exit 1.
func waitForClickHouse(ctx context.Context, log *slog.Logger, dv *analytics.Deriver, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	backoff := 500 * time.Millisecond
	for {
		err := dv.Check(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return &exitError{code: 1, msg: fmt.Sprintf("derive stopped while waiting for ClickHouse: %v", err)}
		case !warehouse.Unavailable(err):
			return &exitError{code: 1, msg: err.Error()}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &exitError{code: 1, msg: fmt.Sprintf("ClickHouse did not answer within --wait %s: %v", wait, err)}
		}
		pause := min(backoff, left)
		log.Warn("clickhouse not reachable yet; retrying", "retry_in", pause.Round(time.Millisecond), "gives_up_in", left.Round(time.Second), "err", err)
		select {
		case <-ctx.Done():
			return &exitError{code: 1, msg: fmt.Sprintf("derive stopped while waiting for ClickHouse: %v", err)}
		case <-time.After(pause):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// deriveDays is derive --day: every day, a failed one not stopping the
// others; exit 1 when one failed.
func deriveDays(c *cli.Context, dv *analytics.Deriver, days []time.Time, table string) error {
	out := c.App.Writer
	rows := 0
	var failed []string
	for _, day := range days {
		res, err := dv.DeriveDay(c.Context, day)
		rows += res.Rows
		if c.Context.Err() != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(out, "failed %s: %d rows into %s; %v\n", day.Format(time.DateOnly), res.Rows, table, err)
			failed = append(failed, day.Format(time.DateOnly))
			continue
		}
		fmt.Fprintf(out, "derived %s: %d rows into %s\n", res.Day.Format(time.DateOnly), res.Rows, table)
	}
	fmt.Fprintf(out, "%d day(s) derived, %d rows\n", len(days)-len(failed), rows)
	if len(failed) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d day(s) not derived (%s): run derive --day again for them", len(failed), len(days), strings.Join(failed, ", "))}
	}
	return nil
}

// deriveOnce is derive --once: one pass; exit 1 when a day failed.
func deriveOnce(c *cli.Context, dv *analytics.Deriver, o analytics.DeriverOptions, now func() time.Time, table string) error {
	out := c.App.Writer
	res, err := dv.RunOnce(c.Context)
	rows, derived := 0, 0
	for _, r := range res {
		rows += r.Rows
		switch {
		case r.Err != nil:
			fmt.Fprintf(out, "failed %s: %d rows into %s; %v\n", r.Day.Format(time.DateOnly), r.Rows, table, r.Err)
		case r.Again:
			derived++
			fmt.Fprintf(out, "derived %s again (its usage changed): %d rows into %s\n", r.Day.Format(time.DateOnly), r.Rows, table)
		default:
			derived++
			fmt.Fprintf(out, "derived %s: %d rows into %s\n", r.Day.Format(time.DateOnly), r.Rows, table)
		}
	}
	if err != nil {
		return err
	}
	last := dv.LastDue(now())
	fmt.Fprintf(out, "%d day(s) derived, %d rows; %s is up to date from %s to %s\n", derived, rows, table,
		last.AddDate(0, 0, -(o.Backfill-1)).Format(time.DateOnly), last.Format(time.DateOnly))
	return nil
}
