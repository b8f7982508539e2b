package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
)

// DeriverOptions configure a Deriver.
type DeriverOptions struct {
	// Derive are the options of every Derive call (DefaultDeriveOptions).
	Derive DeriveOptions
	// Backfill is how many days, up to the last one due, are derived when
	// growth_daily lacks them (on start and on every check). Default 7.
	Backfill int
	// Delay is how long after UTC midnight the day that just ended is
	// due, so that late flushes of the aggregators have landed.
	// DefaultDeriverOptions has 10 minutes; 0 is no delay.
	Delay time.Duration
	// Interval is the time between checks for a due day in Run. Default
	// 5 minutes.
	Interval time.Duration
	// Logger receives one line per derived day and the errors Run
	// retries. Default: discard.
	Logger *slog.Logger
}

// DefaultDeriverOptions returns DeriverOptions with every default filled
// in.
func DefaultDeriverOptions() DeriverOptions {
	return DeriverOptions{Derive: DefaultDeriveOptions(), Backfill: 7, Delay: 10 * time.Minute, Interval: 5 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Validate reports the first option that cannot work.
func (o DeriverOptions) Validate() error {
	if err := o.Derive.withDefaults().Validate(); err != nil {
		return err
	}
	if o.Backfill < 1 || o.Backfill > 366 {
		return fmt.Errorf("derive backfill of %d days: want 1 to 366", o.Backfill)
	}
	if o.Delay < 0 || o.Delay >= 24*time.Hour {
		return fmt.Errorf("derive delay %s: want 0 to 24h", o.Delay)
	}
	if o.Interval <= 0 {
		return fmt.Errorf("derive interval must be > 0, got %s", o.Interval)
	}
	if o.Logger == nil {
		return fmt.Errorf("derive logger must be set")
	}
	return nil
}

// Deriver keeps growth_daily up to date: every day that ended (UTC) more
// than Delay ago, back to Backfill days, is derived once. It reads the
// time from its Querier's clock. A Deriver is used by one goroutine.
type Deriver struct {
	q *Querier
	o DeriverOptions
	// empty holds days derived without a row (no usage at all), so that
	// a check does not derive them again; bounded by Backfill.
	empty map[string]bool
}

// NewDeriver returns a Deriver writing with q. Zero Derive fields,
// Backfill, Interval and Logger take their defaults
// (DefaultDeriverOptions); a zero Delay is no delay.
func NewDeriver(q *Querier, o DeriverOptions) (*Deriver, error) {
	def := DefaultDeriverOptions()
	o.Derive = o.Derive.withDefaults()
	if o.Backfill == 0 {
		o.Backfill = def.Backfill
	}
	if o.Interval == 0 {
		o.Interval = def.Interval
	}
	if o.Logger == nil {
		o.Logger = def.Logger
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Deriver{q: q, o: o, empty: map[string]bool{}}, nil
}

// LastDue is the last day due at now: the day before the UTC day of
// now − Delay.
func (d *Deriver) LastDue(now time.Time) time.Time {
	return dayStart(now.Add(-d.o.Delay), time.UTC).AddDate(0, 0, -1)
}

// Pending returns the due days of the backfill window, oldest first, that
// growth_daily lacks for some metric.
func (d *Deriver) Pending(ctx context.Context) ([]time.Time, error) {
	last := d.LastDue(d.q.opts.Now())
	first := last.AddDate(0, 0, -(d.o.Backfill - 1))
	rows, err := d.q.w.Conn().Query(ctx, "SELECT toString(day), metric FROM "+d.q.w.Database()+"."+GrowthTable+
		" WHERE day >= toDate(?) AND day <= toDate(?) GROUP BY day, metric", first.Format(time.DateOnly), last.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("cannot read the days derived into %s.%s: %w", d.q.w.Database(), GrowthTable, err)
	}
	defer rows.Close()
	have := map[string]int{}
	for rows.Next() {
		var day, metric string
		if err := rows.Scan(&day, &metric); err != nil {
			return nil, fmt.Errorf("cannot read the days derived: %w", err)
		}
		if slices.Contains(d.o.Derive.Metrics, Metric(metric)) {
			have[day]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the days derived: %w", err)
	}
	for day := range d.empty {
		if day < first.Format(time.DateOnly) {
			delete(d.empty, day)
		}
	}
	var out []time.Time
	for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
		if k := day.Format(time.DateOnly); have[k] < len(d.o.Derive.Metrics) && !d.empty[k] {
			out = append(out, day)
		}
	}
	return out, nil
}

// RunOnce derives every pending day, oldest first, and returns what it
// wrote; it stops at the first error.
func (d *Deriver) RunOnce(ctx context.Context) ([]DeriveResult, error) {
	days, err := d.Pending(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeriveResult
	for _, day := range days {
		res, err := d.DeriveDay(ctx, day)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// DeriveDay derives day (again, if it was) and logs what it wrote.
func (d *Deriver) DeriveDay(ctx context.Context, day time.Time) (DeriveResult, error) {
	start := time.Now()
	res, err := d.q.Derive(ctx, day, d.o.Derive)
	if err != nil {
		return res, err
	}
	if res.Rows == 0 {
		d.empty[res.Day.Format(time.DateOnly)] = true
	}
	d.o.Logger.Info("derived growth", "day", res.Day.Format(time.DateOnly), "table", d.q.w.Database()+"."+GrowthTable,
		"rows", res.Rows, "groups_dropped", res.Dropped, "took", time.Since(start).Round(time.Millisecond))
	if res.Dropped > 0 {
		d.o.Logger.Warn("groups beyond the per-scope limit were not derived", "day", res.Day.Format(time.DateOnly),
			"dropped", res.Dropped, "max_groups", d.o.Derive.MaxGroups)
	}
	return res, nil
}

// Run derives the pending days, then checks again every Interval until
// ctx is done, when it returns nil: a day whose derivation was cut short
// is not written (one INSERT per day) and is pending at the next start.
// A failed check is logged and retried at the next interval.
func (d *Deriver) Run(ctx context.Context) error {
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("cannot derive growth; retrying", "retry_in", d.o.Interval, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
