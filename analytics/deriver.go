package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/loglimit"
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
	// Registerer receives the costpipe_derive_* metrics (passes, rows,
	// the last success); nil registers nothing.
	Registerer prometheus.Registerer
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
// time from its Querier's clock. A Deriver is used by one goroutine; Ready
// may be called from any.
type Deriver struct {
	q *Querier
	o DeriverOptions
	// empty holds days derived without a row (no usage at all), so that
	// a check does not derive them again; bounded by Backfill.
	empty map[string]bool
	m     deriverMetrics
	// last is the unix nanoseconds (Querier's clock) of the end of the
	// last pass that completed; 0 before the first.
	last atomic.Int64
	// failing is the run of failed passes Run is in; zero when the last
	// pass completed.
	failing loglimit.Failures
}

// failureLogEvery is how often at most Run logs its failing passes.
const failureLogEvery = time.Minute

type deriverMetrics struct {
	runs     *prometheus.CounterVec
	rows     prometheus.Counter
	days     prometheus.Counter
	dropped  prometheus.Counter
	last     prometheus.Gauge
	duration prometheus.Histogram
}

func newDeriverMetrics(reg prometheus.Registerer) (deriverMetrics, error) {
	m := deriverMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_derive_runs_total",
			Help: "Derive passes (read which due days growth_daily lacks, derive them), by result (ok, error)."}, []string{"result"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_rows_written_total",
			Help: "Rows inserted into growth_daily."}),
		days: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_days_derived_total",
			Help: "Days derived into growth_daily (a day without usage writes no row and counts)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_groups_dropped_total",
			Help: "Groups not derived because a scope and metric reached --max-groups on a day."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "costpipe_derive_last_success_timestamp_seconds",
			Help: "When the last derive pass completed (unix seconds); 0 before the first."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "costpipe_derive_run_duration_seconds",
			Help: "Time one derive pass took, failed ones included.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
	}
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("error")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.rows, m.days, m.dropped, m.last, m.duration} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("cannot register derive metrics: %w", err)
			}
		}
	}
	return m, nil
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
	m, err := newDeriverMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Deriver{q: q, o: o, empty: map[string]bool{}, m: m}, nil
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

// RunOnce is one pass: it derives every pending day, oldest first, and
// returns what it wrote; it stops at the first error. The pass is counted
// in the metrics (unless ctx ended it) and, when it completes, is what
// Ready reports.
func (d *Deriver) RunOnce(ctx context.Context) ([]DeriveResult, error) {
	start := time.Now()
	out, err := d.runOnce(ctx)
	if err != nil && ctx.Err() != nil {
		return out, err // cut short: not a failure
	}
	d.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		d.m.runs.WithLabelValues("error").Inc()
		return out, err
	}
	d.m.runs.WithLabelValues("ok").Inc()
	now := d.q.opts.Now()
	d.m.last.Set(float64(now.Unix()))
	d.last.Store(now.UnixNano())
	return out, nil
}

// ReadyLimit is how long after the last completed pass Ready still
// reports ready: three Intervals, at least a minute.
func (d *Deriver) ReadyLimit() time.Duration { return max(3*d.o.Interval, time.Minute) }

// Ready reports whether a pass (RunOnce) completed within the last
// ReadyLimit; the error says why not. Safe to call from any goroutine
// (/readyz).
func (d *Deriver) Ready() error {
	last := d.last.Load()
	if last == 0 {
		return errors.New("no derive pass has completed yet")
	}
	if age, limit := d.q.opts.Now().Sub(time.Unix(0, last)), d.ReadyLimit(); age > limit {
		return fmt.Errorf("the last complete derive pass was %s ago (limit %s): see the log", age.Round(time.Second), limit)
	}
	return nil
}

func (d *Deriver) runOnce(ctx context.Context) ([]DeriveResult, error) {
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
	d.m.days.Inc()
	d.m.rows.Add(float64(res.Rows))
	d.m.dropped.Add(float64(res.Dropped))
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
// A failed pass is retried at the next interval and logged: the first of
// a run of failures at once, then one line a minute at most with the
// failures since the line before, and the pass that completes again with
// how long passes failed.
func (d *Deriver) Run(ctx context.Context) error {
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); ctx.Err() == nil {
			d.notePass(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// notePass logs a pass of Run that ended with err (nil: completed), as
// Run says.
func (d *Deriver) notePass(err error) {
	now := d.q.opts.Now()
	if err == nil {
		if since, _, ok := d.failing.Succeed(); ok {
			d.o.Logger.Info("derive recovered", "failed_for", now.Sub(since).Round(time.Second))
		}
		return
	}
	if n, since, due := d.failing.Fail(now, failureLogEvery); due {
		d.o.Logger.Warn("cannot derive growth; retrying", "retry_in", d.o.Interval, "failures", n,
			"failing_for", now.Sub(since).Round(time.Second), "err", err)
	}
}
