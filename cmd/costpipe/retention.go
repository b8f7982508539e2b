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
--keep-minutes and those of usage_1h older than --keep-hours, with ALTER TABLE ...
DROP PARTITION. usage_1d is kept forever. Partitions are UTC months, so minute data
stays between --keep-minutes and a month longer. --dry-run lists what would go.
Durations take a "d" suffix for days (35d) or Go units (840h). Run it daily (cron).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "keep-minutes", Value: "35d", EnvVars: []string{"COSTPIPE_KEEP_MINUTES"}, Usage: "keep usage_1m months this long"},
			&cli.StringFlag{Name: "keep-hours", Value: "400d", EnvVars: []string{"COSTPIPE_KEEP_HOURS"}, Usage: "keep usage_1h months this long"},
			&cli.StringFlag{Name: "max-event-age", Value: "7d", EnvVars: []string{"COSTPIPE_MAX_EVENT_AGE"},
				Usage: "the aggregators' --max-event-age: retention never drops what a late event could still land into"},
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
	fmt.Fprintf(out, "database %s, now %s: keep usage_1m after %s, usage_1h after %s, usage_1d forever\n",
		w.Database(), now.Format(time.RFC3339), now.Add(-o.KeepMinutes).Format(time.RFC3339), now.Add(-o.KeepHours).Format(time.RFC3339))
	ps, err := w.Retention(c.Context, o)
	var rows, bytes uint64
	for _, p := range ps {
		what := "dropped"
		if !p.Dropped {
			what = "would drop"
		}
		fmt.Fprintf(out, "%-10s %s partition %d (ends %s): %d rows, %s\n", what, p.Table.Name(), p.Month,
			p.End.Format("2006-01-02"), p.Rows, humanBytes(p.Bytes))
		rows += p.Rows
		bytes += p.Bytes
	}
	if err != nil {
		return err
	}
	verb := "dropped"
	if o.DryRun {
		verb = "would drop (dry run)"
	}
	fmt.Fprintf(out, "%s %d partition(s), %d rows, %s\n", verb, len(ps), rows, humanBytes(bytes))
	return nil
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
