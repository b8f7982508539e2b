package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/loglimit"
	"github.com/costpipe/costpipe/internal/secure"
	"github.com/costpipe/costpipe/pipelines/pricing"
	chschema "github.com/costpipe/costpipe/schemas/clickhouse"
	"github.com/costpipe/costpipe/warehouse"
)

// DeriverOptions configure a Deriver.
type DeriverOptions struct {
	// Derive are the options of every Derive call (DefaultDeriveOptions).
	Derive DeriveOptions
	// Backfill is how many days, up to the last one due, are derived when
	// growth_daily lacks them and they have usage (on start and on every
	// check). Default 7.
	Backfill int
	// Recheck is how many days, up to the last one due, every check
	// compares with the rollups: the first whose usage changed since it
	// was derived (calls that landed late, a reprice) is derived again,
	// with every day after it, whose sums include it. It should cover the
	// aggregators' --max-event-age (7 days) and their landing delay.
	// Default 8.
	Recheck int
	// Delay is how long after UTC midnight the day that just ended is
	// first derived, so that the aggregators' last flushes of it have
	// landed (what lands later, Recheck picks up). DefaultDeriverOptions
	// has 10 minutes; 0 is no delay.
	Delay time.Duration
	// Interval is the time between checks for a due day in Run. Default
	// 5 minutes.
	Interval time.Duration
	// Logger receives one line per derived day and the errors Run
	// retries. Default: discard.
	Logger *slog.Logger
	// Registerer receives the costpipe_derive_* metrics (passes, rows,
	// the last success), registered by NewDeriver, before anything is
	// asked of ClickHouse; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultDeriverOptions returns DeriverOptions with every default filled
// in.
func DefaultDeriverOptions() DeriverOptions {
	return DeriverOptions{Derive: DefaultDeriveOptions(), Backfill: 7, Recheck: 8, Delay: 10 * time.Minute, Interval: 5 * time.Minute,
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
	if o.Recheck < 1 || o.Recheck > 366 {
		return fmt.Errorf("derive recheck of %d days: want 1 to 366", o.Recheck)
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

// Deriver keeps growth_daily up to date. Every pass (RunOnce) first checks,
// until that succeeds once, that ClickHouse answers and the database has
// this binary's schema (Check); then it derives the days that ended (UTC)
// more than Delay ago, back to Backfill days, that growth_daily lacks and
// that have usage, and derives again the days of the last Recheck whose
// usage changed since (with the days after them). It reads the time from
// its Querier's clock. A Deriver is used by one goroutine; Ready may be
// called from any.
type Deriver struct {
	q *Querier
	o DeriverOptions
	m deriverMetrics
	// started is set once Check succeeded; startErr is why the last
	// Check failed (nil before the first).
	started  atomic.Bool
	startErr atomic.Pointer[string]
	// derived holds, per day this process derived (by its date), the
	// fingerprint of its usage then (dueDay.fingerprint): a day whose
	// rows still differ from the rollups with the same usage (a day whose
	// usage was deleted writes no row to replace the old ones) is not
	// derived again at every pass. Pruned to the days checked.
	derived map[string]string
	// last is the unix nanoseconds (Querier's clock) of the end of the
	// last pass that completed; 0 before the first.
	last atomic.Int64
	// failing is the run of failed passes Run is in; zero when the last
	// pass completed.
	failing loglimit.Failures
}

// failureLogEvery is how often at most Run logs its failing passes.
const failureLogEvery = time.Minute

// Run's retries before Check has succeeded (ClickHouse not up yet, or not
// migrated yet): from startBackoff, doubling, up to maxStartBackoff, and
// never longer than the Interval.
const (
	startBackoff    = 500 * time.Millisecond
	maxStartBackoff = 10 * time.Second
)

type deriverMetrics struct {
	runs      *prometheus.CounterVec
	rows      prometheus.Counter
	days      prometheus.Counter
	rederived prometheus.Counter
	failed    prometheus.Counter
	dropped   prometheus.Counter
	last      prometheus.Gauge
	duration  prometheus.Histogram
}

func newDeriverMetrics(reg prometheus.Registerer) (deriverMetrics, error) {
	m := deriverMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "costpipe_derive_runs_total",
			Help: "Derive passes (the start-up check until it succeeds, then: read which days are due, derive them), by result (ok, error)."}, []string{"result"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_rows_written_total",
			Help: "Rows inserted into growth_daily."}),
		days: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_days_derived_total",
			Help: "Days derived into growth_daily, wholly (the first time, or again)."}),
		rederived: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_days_rederived_total",
			Help: "Days derived again because their usage changed since they were derived (calls that landed late, a reprice), or a day before them did."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "costpipe_derive_days_failed_total",
			Help: "Days whose derivation failed, wholly or for some scope; each is derived again at the next pass."}),
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
		for _, c := range []prometheus.Collector{m.runs, m.rows, m.days, m.rederived, m.failed, m.dropped, m.last, m.duration} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("cannot register derive metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewDeriver returns a Deriver writing with q and registers its metrics;
// it asks nothing of ClickHouse (the first pass does), so q's Warehouse
// may be opened lazily (warehouse.OpenLazy) while ClickHouse is down.
// Zero Derive fields, Backfill, Recheck, Interval and Logger take their
// defaults (DefaultDeriverOptions); a zero Delay is no delay.
func NewDeriver(q *Querier, o DeriverOptions) (*Deriver, error) {
	def := DefaultDeriverOptions()
	o.Derive = o.Derive.withDefaults()
	if o.Backfill == 0 {
		o.Backfill = def.Backfill
	}
	if o.Recheck == 0 {
		o.Recheck = def.Recheck
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
	return &Deriver{q: q, o: o, derived: map[string]string{}, m: m}, nil
}

// LastDue is the last day due at now: the day before the UTC day of
// now − Delay.
func (d *Deriver) LastDue(now time.Time) time.Time {
	return dayStart(now.Add(-d.o.Delay), time.UTC).AddDate(0, 0, -1)
}

// ErrNotMigrated is wrapped by the error of CheckMigrated (and so of
// Check) when the database lacks migrations this binary has: waiting does
// not help until someone runs costpipe migrate.
var ErrNotMigrated = errors.New("the database's schema is older than this costpipe")

// CheckMigrated reports an error wrapping ErrNotMigrated unless every
// migration embedded in this binary is recorded in the database's
// schema_migrations (a database migrated by a newer costpipe is fine). It
// applies nothing: a migration that changes the landing tables fences the
// running aggregators, so migrations are `costpipe migrate`'s, run before
// the new binaries are rolled out (docs/operations.md).
func (q *Querier) CheckMigrated(ctx context.Context) error {
	db := q.w.Database()
	var n uint64
	if err := q.w.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'", db).Scan(&n); err != nil {
		if migrating(err) {
			return fmt.Errorf("%w: database %s is being migrated (%v)", ErrNotMigrated, db, err)
		}
		return fmt.Errorf("cannot read the schema version of database %s: %w", db, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: database %s has no costpipe tables (no %s.schema_migrations): run `costpipe migrate` first (derive and alerts run apply no migrations)",
			ErrNotMigrated, db, db)
	}
	rows, err := q.w.Conn().Query(ctx, "SELECT DISTINCT version FROM "+db+".schema_migrations")
	if err != nil {
		if migrating(err) {
			return fmt.Errorf("%w: database %s is being migrated (%v)", ErrNotMigrated, db, err)
		}
		return fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	defer rows.Close()
	have := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
		}
		have[int(v)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read %s.schema_migrations: %w", db, err)
	}
	all, err := chschema.Migrations()
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range all {
		if !have[m.Version] {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: database %s lacks migration(s) %s: run `costpipe migrate` with this costpipe first "+
			"(derive and alerts run apply no migrations: one that changes the landing tables fences the running aggregators, so migrate, then roll the aggregators, derive and alerts run)",
			ErrNotMigrated, db, strings.Join(missing, ", "))
	}
	return nil
}

// migrating reports whether err is what reading a database's tables gives
// while another process migrates it: ClickHouse 18.16 fails a read of
// system.tables with UNKNOWN_TABLE (60) while a materialized view's target
// is still to be created, and the database itself may not exist yet (81).
func migrating(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && (ex.Code == 60 || ex.Code == 81)
}

// Check is the start-up check of the first passes: ClickHouse answers, the
// database has every migration of this binary (CheckMigrated) and
// growth_daily the columns it writes (CheckGrowthSchema). RunOnce runs it
// until it succeeds once; the one-shot commands call it themselves to
// bound how long they wait. Until it succeeds, Ready says why.
func (d *Deriver) Check(ctx context.Context) error {
	err := d.q.w.Ping(ctx)
	if err == nil {
		err = d.q.CheckMigrated(ctx)
	}
	if err == nil {
		err = d.q.CheckGrowthSchema(ctx)
	}
	if err != nil {
		msg := err.Error()
		d.startErr.Store(&msg)
		return err
	}
	d.started.Store(true)
	d.startErr.Store(nil)
	return nil
}

// DueDay is a day a pass derives (Pending).
type DueDay struct {
	// Day is midnight UTC.
	Day time.Time
	// Again is whether the day is derived again because its usage, or
	// that of a day before it, changed since it was derived (rather than
	// because growth_daily lacks its rows).
	Again bool
	// fingerprint is the day's usage as Pending read it.
	fingerprint string
}

// storedDay is what growth_daily holds of one day, per metric: the scopes
// with rows and the newest to_date of the total row.
type storedDay struct {
	scopes map[Metric]int
	total  map[Metric]float64
}

// Pending returns the days a pass derives, oldest first:
//
//   - the due days of the Backfill window that growth_daily lacks, wholly
//     or for some metric or scope, and that have usage (a rollup row in
//     the growth window or a metric above 0 in the month so far: a day
//     without either writes no row);
//   - from the first day of the Recheck window whose stored month to date
//     (the total row's to_date, per metric) differs from the rollups' now,
//     that day and every one after it that has rows (or lacks them, within
//     the Backfill window): each day's growth and forecast read the days
//     before it, so calls that land late for one day change the rows of
//     all later ones.
//
// A day this process derived whose usage (its fingerprint: the month to
// date and growth window sums) is unchanged since is left out, so a day
// whose rows cannot be replaced (its usage was deleted: no row is written)
// is not derived at every pass. The check reads growth_daily's rows of the
// window and the daily totals of the rollups from the first window day's
// month (or the growth window of the earliest day lacking rows): a few
// small queries.
func (d *Deriver) Pending(ctx context.Context) ([]DueDay, error) {
	last := d.LastDue(d.q.opts.Now())
	first := last.AddDate(0, 0, -(d.o.Backfill - 1))
	rfirst := last.AddDate(0, 0, -(d.o.Recheck - 1))
	lo := first
	if rfirst.Before(lo) {
		lo = rfirst
	}
	stored, err := d.readStored(ctx, lo, last)
	if err != nil {
		return nil, err
	}
	ms := d.o.Derive.Metrics
	full := len(Scopes())
	complete := func(k string) bool {
		s, ok := stored[k]
		if !ok {
			return false
		}
		for _, m := range ms {
			if s.scopes[m] < full {
				return false
			}
		}
		return true
	}
	n := max(d.o.Derive.Window, 14) // the growth window of a day
	from, _ := PeriodMonth.Bounds(rfirst, time.UTC)
	for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
		if !complete(day.Format(time.DateOnly)) {
			// The earliest day lacking rows: its growth window and month.
			start, _ := PeriodMonth.Bounds(day, time.UTC)
			if w := day.AddDate(0, 0, -(n - 1)); w.Before(start) {
				start = w
			}
			if start.Before(from) {
				from = start
			}
			break
		}
	}
	totals, err := d.q.dailyTotals(ctx, from, last.AddDate(0, 0, 1), ms)
	if err != nil {
		return nil, err
	}
	// usage is what a day's rows are computed from, as far as Pending
	// follows it: per metric the month to date, the growth window's sum,
	// and the days of the window with a rollup row.
	type usage struct {
		month, window []pricing.Pico
		rows          int
	}
	usageOf := func(day time.Time) usage {
		u := usage{month: make([]pricing.Pico, len(ms)), window: make([]pricing.Pico, len(ms))}
		monthStart, _ := PeriodMonth.Bounds(day, time.UTC)
		w := day.AddDate(0, 0, -(n - 1))
		t := monthStart
		if w.Before(t) {
			t = w
		}
		for ; !t.After(day); t = t.AddDate(0, 0, 1) {
			v, ok := totals[t.Format(time.DateOnly)]
			if !ok {
				continue
			}
			inWindow := !t.Before(w)
			if inWindow {
				u.rows++
			}
			for i := range ms {
				if inWindow {
					u.window[i] = u.window[i].Add(v[i])
				}
				if !t.Before(monthStart) {
					u.month[i] = u.month[i].Add(v[i])
				}
			}
		}
		return u
	}
	fingerprint := func(u usage) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%d", u.rows)
		for i := range ms {
			b.WriteString(" " + u.month[i].String() + "/" + u.window[i].String())
		}
		return b.String()
	}

	var out []DueDay
	changedFrom := time.Time{} // the first day of the Recheck window whose usage changed; zero: none
	for day := lo; !day.After(last); day = day.AddDate(0, 0, 1) {
		k := day.Format(time.DateOnly)
		u := usageOf(day)
		fp := fingerprint(u)
		s, has := stored[k]
		due, again := false, false
		if !changedFrom.IsZero() {
			// After a changed day: derive again what was derived, and
			// what lacks rows and has usage.
			due = has || !day.Before(first) && (u.rows > 0 || slices.ContainsFunc(u.month, func(p pricing.Pico) bool { return p.Sign() > 0 }))
			again = has
		} else if d.derived[k] != fp {
			if !complete(k) && !day.Before(first) {
				// Lacking rows: due when some metric lacking them has usage.
				for i, m := range ms {
					if (!has || s.scopes[m] < full) && (u.rows > 0 || u.month[i].Sign() > 0) {
						due = true
					}
				}
			}
			if has && !day.Before(rfirst) {
				for i, m := range ms {
					if td, ok := s.total[m]; ok && td != u.month[i].Float64() {
						due, again = true, true
						changedFrom = day
					}
				}
			}
		}
		if due {
			out = append(out, DueDay{Day: day, Again: again, fingerprint: fp})
		}
	}
	for k := range d.derived {
		if k < lo.Format(time.DateOnly) {
			delete(d.derived, k)
		}
	}
	return out, nil
}

// readStored reads what growth_daily holds of the days [first, last]: per
// day, metric and scope whether there are rows, and the total rows'
// newest to_date (argMax: no FINAL over the whole window).
func (d *Deriver) readStored(ctx context.Context, first, last time.Time) (map[string]storedDay, error) {
	rows, err := d.q.w.Conn().Query(ctx, "SELECT toString(day) AS d, metric, scope, argMax(to_date, computed_at) FROM "+d.q.w.Database()+"."+GrowthTable+
		" WHERE day >= toDate(?) AND day <= toDate(?) GROUP BY d, metric, scope", first.Format(time.DateOnly), last.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("cannot read the days derived into %s.%s: %w", d.q.w.Database(), GrowthTable, err)
	}
	defer rows.Close()
	out := map[string]storedDay{}
	for rows.Next() {
		var day, metric, scope string
		var toDate float64
		if err := rows.Scan(&day, &metric, &scope, &toDate); err != nil {
			return nil, fmt.Errorf("cannot read the days derived: %w", err)
		}
		m := Metric(metric)
		if !slices.Contains(d.o.Derive.Metrics, m) || !slices.Contains(Scopes(), Scope(scope)) {
			continue
		}
		s, ok := out[day]
		if !ok {
			s = storedDay{scopes: map[Metric]int{}, total: map[Metric]float64{}}
			out[day] = s
		}
		s.scopes[m]++
		if Scope(scope) == ScopeTotal {
			s.total[m] = toDate
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the days derived: %w", err)
	}
	return out, nil
}

// dailyTotals returns, per UTC day of [from, to) with a rollup row (by its
// date), the exact sum of each of ms over all usage: what Derive's total
// scope sums the month to date from.
func (q *Querier) dailyTotals(ctx context.Context, from, to time.Time, ms []Metric) (map[string][]pricing.Pico, error) {
	table := warehouse.Day
	var sb strings.Builder
	sb.WriteString("SELECT toString(toDate(ts, 'UTC')) AS bucket")
	for _, m := range ms {
		e, ok := m.exactExpr()
		if !ok {
			return nil, unknownMetric(string(m))
		}
		sb.WriteString(", toString(" + e + ")")
	}
	sb.WriteString(" FROM " + q.w.Database() + "." + table.Name() + " WHERE " + table.TimeRange() + " GROUP BY bucket")
	rows, err := q.w.Conn().Query(ctx, sb.String(), table.TimeRangeArgs(nil, from, to)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query the daily totals in [%s, %s): %w", from.Format(time.DateOnly), to.Format(time.DateOnly), err)
	}
	defer rows.Close()
	out := map[string][]pricing.Pico{}
	for rows.Next() {
		var day string
		vals := make([]string, len(ms))
		dest := []any{&day}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("cannot read the daily totals: %w", err)
		}
		ps := make([]pricing.Pico, len(ms))
		for i, v := range vals {
			if ps[i], err = pricing.ParsePico(v); err != nil {
				return nil, fmt.Errorf("cannot read the %s of %s: %w", ms[i], day, err)
			}
		}
		out[day] = ps
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the daily totals: %w", err)
	}
	return out, nil
}

// RunOnce is one pass: the start-up check (Check) until it has succeeded
// once, then every pending day (Pending), oldest first. A day that fails,
// wholly or for some scope, does not stop the days after it: it is counted
// (costpipe_derive_days_failed_total), has its Err set in the results,
// and is derived again at the next pass, and RunOnce returns an error
// naming it. The pass is counted in the metrics (unless ctx ended it) and,
// when it completes, is what Ready reports.
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
// ReadyLimit; the error says why not ("starting: …" with the start-up
// check's failure before it succeeded). Safe to call from any goroutine
// (/readyz).
func (d *Deriver) Ready() error {
	last := d.last.Load()
	if last == 0 {
		if !d.started.Load() {
			if why := d.startErr.Load(); why != nil {
				return fmt.Errorf("starting: %s", *why)
			}
			return errors.New("starting: connecting to ClickHouse and checking its schema")
		}
		return errors.New("no derive pass has completed yet")
	}
	if age, limit := d.q.opts.Now().Sub(time.Unix(0, last)), d.ReadyLimit(); age > limit {
		return fmt.Errorf("the last complete derive pass was %s ago (limit %s): see the log", age.Round(time.Second), limit)
	}
	return nil
}

func (d *Deriver) runOnce(ctx context.Context) ([]DeriveResult, error) {
	if !d.started.Load() {
		if err := d.Check(ctx); err != nil {
			return nil, err
		}
	}
	due, err := d.Pending(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeriveResult
	var failed []error
	for _, dd := range due {
		why := "new"
		if dd.Again {
			why = "usage changed"
		}
		res, err := d.deriveDay(ctx, dd.Day, why)
		res.Again = dd.Again
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if err != nil {
			res.Err = err
			failed = append(failed, fmt.Errorf("%s: %w", dd.Day.Format(time.DateOnly), err))
		} else {
			d.derived[dd.Day.Format(time.DateOnly)] = dd.fingerprint
			if dd.Again {
				d.m.rederived.Inc()
			}
		}
		out = append(out, res)
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%d of %d day(s) not derived (tried again at the next pass): %w", len(failed), len(due), errors.Join(failed...))
	}
	return out, nil
}

// DeriveDay derives day (again, if it was), counts it in the metrics and
// logs what it wrote. On an error the scopes that could be derived are
// written (res.Rows) and the day is counted as failed.
func (d *Deriver) DeriveDay(ctx context.Context, day time.Time) (DeriveResult, error) {
	return d.deriveDay(ctx, day, "asked")
}

// deriveDay is DeriveDay, logging why the day is derived.
func (d *Deriver) deriveDay(ctx context.Context, day time.Time, why string) (DeriveResult, error) {
	start := time.Now()
	res, err := d.q.Derive(ctx, day, d.o.Derive)
	if ctx.Err() != nil {
		return res, err
	}
	d.m.rows.Add(float64(res.Rows))
	d.m.dropped.Add(float64(res.Dropped))
	if err != nil {
		d.m.failed.Inc()
		return res, err
	}
	d.m.days.Inc()
	d.o.Logger.Info("derived growth", "day", res.Day.Format(time.DateOnly), "table", d.q.w.Database()+"."+GrowthTable,
		"rows", res.Rows, "groups_dropped", res.Dropped, "why", why, "took", time.Since(start).Round(time.Millisecond))
	if res.Dropped > 0 {
		d.o.Logger.Warn("groups beyond the per-scope limit were not derived", "day", res.Day.Format(time.DateOnly),
			"dropped", res.Dropped, "max_groups", d.o.Derive.MaxGroups)
	}
	return res, nil
}

// Run runs a pass (RunOnce), then another every Interval, until ctx is
// done, when it returns nil: a day whose derivation was cut short is not
// written and is pending at the next start. Until the start-up check has
// succeeded (ClickHouse down, or the database not migrated yet), passes
// are retried sooner: after 0.5 s, doubling up to 10 s (at most the
// Interval); a TLS or credentials error (secure.Permanent) then ends Run
// with it, as it does not get better by waiting. A failed pass is retried
// and logged: the first of a run of failures at once, then one line a
// minute at most with the failures since the line before, and the pass
// that completes again with how long passes failed.
func (d *Deriver) Run(ctx context.Context) error {
	backoff := startBackoff
	for {
		_, err := d.RunOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := d.o.Interval
		if !d.started.Load() {
			if secure.Permanent(err) {
				return err
			}
			wait = min(wait, backoff)
			backoff = min(2*backoff, maxStartBackoff)
		}
		d.notePass(err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// notePass logs a pass of Run that ended with err (nil: completed), as
// Run says; retry is when the next one runs.
func (d *Deriver) notePass(err error, retry time.Duration) {
	now := d.q.opts.Now()
	if err == nil {
		if since, _, ok := d.failing.Succeed(); ok {
			d.o.Logger.Info("derive recovered", "failed_for", now.Sub(since).Round(time.Second))
		}
		return
	}
	if n, since, due := d.failing.Fail(now, failureLogEvery); due {
		d.o.Logger.Warn("cannot derive growth; retrying", "retry_in", retry, "failures", n,
			"failing_for", now.Sub(since).Round(time.Second), "err", err)
	}
}
