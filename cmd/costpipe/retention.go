package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/costpipe/costpipe/warehouse"
)

func retentionCommand() *cli.Command {
	return &cli.Command{
		Name:  "retention",
		Usage: "drop rollup partitions past their retention (minutes after 35 days, hours after 400; days never)",
		Description: `Drops the month partitions of usage_1m whose every row is older than
--keep-minutes and those of usage_1h and its per-model summary usage_model_1h older
than --keep-hours, with ALTER TABLE ... DROP PARTITION. usage_1d and the day and week
summaries are kept forever. Partitions are UTC months, so minute data stays between
--keep-minutes and a month longer. --dry-run lists what would go.
Durations take a "d" suffix for days (35d) or Go units (840h). Run it daily (cron).

--max-event-age is the largest --max-event-age of any aggregator group landing into
the database, a backfill group's included: --keep-minutes must be at least that plus
one day (an aggregator whose clock steps back lands events a day older).

Every expired partition is tried: a drop that fails is reported and the others still
go. A server refuses to drop a partition larger than its max_partition_size_to_drop
(50 GB by default): raise that limit (0 lifts it) in the server's config, or create
its force_drop_table flag file as the message says, and run retention again.

Exit status: 0 success, 1 a partition could not be listed or dropped, 2 usage error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "keep-minutes", Value: "35d", EnvVars: []string{"COSTPIPE_KEEP_MINUTES"}, Usage: "keep usage_1m months this long"},
			&cli.StringFlag{Name: "keep-hours", Value: "400d", EnvVars: []string{"COSTPIPE_KEEP_HOURS"}, Usage: "keep usage_1h and usage_model_1h months this long"},
			&cli.StringFlag{Name: "max-event-age", Value: "7d", EnvVars: []string{"COSTPIPE_MAX_EVENT_AGE"},
				Usage: "the largest --max-event-age of any aggregator group (a backfill's too): retention never drops what a late event could still land into"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list the partitions that would be dropped; drop nothing"},
			&cli.StringFlag{Name: "now", Hidden: true, Usage: "RFC 3339 time to use as now (tests)"},
		},
		Action: runRetention,
	}
}

func runRetention(c *cli.Context) error {
	if c.NArg() > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("retention takes no arguments, got %q", c.Args().First())}
	}
	o := warehouse.DefaultRetentionOptions()
	var err error
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"keep-minutes", &o.KeepMinutes}, {"keep-hours", &o.KeepHours}, {"max-event-age", &o.MaxEventAge}} {
		if *f.dst, err = parseDays(c.String(f.name)); err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --%s: %v", f.name, err)}
		}
	}
	if s := c.String("now"); s != "" {
		now, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return &exitError{code: 2, msg: fmt.Sprintf("invalid --now %q: want RFC 3339", s)}
		}
		o.Now = func() time.Time { return now }
	}
	o.DryRun = c.Bool("dry-run")
	if err := o.Validate(); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}

	wo := warehouse.DefaultOptions()
	wo.DSN = c.String("clickhouse")
	if err := clickhouseSecurity(c, &wo); err != nil {
		return err
	}
	w, err := warehouse.Open(c.Context, wo)
	if err != nil {
		return err
	}
	defer w.Close()
	out := c.App.Writer
	now := o.Now().UTC()
	// The partitions are where the data is: on a cluster, the shard-local
	// tables behind the Distributed ones of the DSN's database.
	cluster, err := w.ClusterOf(c.Context)
	if err != nil {
		return err
	}
	where := "database " + w.Database()
	if cluster != "" {
		where = fmt.Sprintf("database %s (the shard-local tables behind %s) on every shard of cluster %s",
			warehouse.LocalDatabase(w.Database()), w.Database(), cluster)
	}
	fmt.Fprintf(out, "%s, now %s: keep usage_1m after %s, usage_1h and usage_model_1h after %s, usage_1d forever\n",
		where, now.Format(time.RFC3339), now.Add(-o.KeepMinutes).Format(time.RFC3339), now.Add(-o.KeepHours).Format(time.RFC3339))
	ps, err := w.Retention(c.Context, o)
	var (
		rows, bytes uint64
		dropped     int
		failed      []string
		flag        string
	)
	for _, p := range ps {
		what, why := "would drop", ""
		switch {
		case p.Dropped:
			what = "dropped"
		case p.Err != nil:
			what, why = "FAILED", ": "+p.Reason()
			failed = append(failed, fmt.Sprintf("%s.%s partition %d: %s", p.Database, p.Name(), p.Month, p.Reason()))
			if f := warehouse.DropFlagFile(p.Err); f != "" {
				flag = f
			}
		case !o.DryRun:
			what = "left" // the run was cut short
		}
		fmt.Fprintf(out, "%-10s %s partition %d (ends %s): %d rows, %s%s\n", what, p.Name(), p.Month,
			p.End.Format("2006-01-02"), p.Rows, humanBytes(p.Bytes), why)
		if p.Dropped || o.DryRun {
			dropped++
			rows += p.Rows
			bytes += p.Bytes
		}
	}
	if o.DryRun {
		fmt.Fprintf(out, "would drop (dry run) %d partition(s), %d rows, %s\n", dropped, rows, humanBytes(bytes))
	} else if len(ps) > 0 || err == nil {
		fmt.Fprintf(out, "dropped %d partition(s), %d rows, %s\n", dropped, rows, humanBytes(bytes))
	}
	warnUpgradeCopies(c, w)
	if err != nil {
		if len(failed) == 0 {
			return err
		}
		msg := fmt.Sprintf("could not drop %d of %d expired partition(s), dropped the other %d:\n  %s",
			len(failed), len(ps), dropped, strings.Join(failed, "\n  "))
		if warehouse.DropSizeLimited(err) {
			msg += "\nTo drop a partition larger than the server's max_partition_size_to_drop (50 GB by default), raise that limit " +
				"in the server's config (0 lifts it; 18.16 reads it at start; on a cluster on every member), or create its flag file"
			if flag != "" {
				msg += " " + flag
			} else {
				msg += " flags/force_drop_table in its data directory"
			}
			msg += " (writable by the server, which removes it after one drop; on a cluster on every member), " +
				"then run costpipe retention again (docs/operations.md, \"Retention per granularity\")"
		}
		return &exitError{code: 1, msg: msg}
	}
	return nil
}

// warnUpgradeCopies says which copies of the rollups older upgrades kept
// still hold data: retention never drops them.
func warnUpgradeCopies(c *cli.Context, w *warehouse.Warehouse) {
	copies, err := w.UpgradeCopies(c.Context)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", err)
		return
	}
	for _, t := range copies {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s.%s holds %d rows, %s: a copy an upgrade kept of the old rollup table; retention never drops it: "+
			"DROP TABLE %s.%s once the upgrade is verified (docs/operations.md, \"Retention per granularity\")\n",
			t.Database, t.Table, t.Rows, humanBytes(t.Bytes), t.Database, t.Table)
	}
}

// maxRetentionDays bounds a length in days (100 years).
const maxRetentionDays = 100 * 365

// parseDays parses "35d" as 35 days, or a Go duration such as "840h".
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		d, err := strconv.ParseFloat(n, 64)
		switch {
		case err != nil:
			return 0, fmt.Errorf("cannot parse %q: want days such as 35d", s)
		case !(d > 0) || d > maxRetentionDays:
			return 0, fmt.Errorf("%q is out of range: want more than 0 and at most %dd", s, maxRetentionDays)
		}
		return time.Duration(d * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("cannot parse %q: want days such as 35d or a duration such as 840h", s)
	case d <= 0:
		return 0, fmt.Errorf("%q is out of range: want more than 0", s)
	}
	return d, nil
}

// humanBytes is 1.5 MiB.
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
