// Package analytics is costpipe's one query layer over the ClickHouse
// rollups (usage_1m, usage_1h, usage_1d): `costpipe query`, the alert
// evaluator and any HTTP API read usage through it, so every number a user
// sees is computed one way (docs/design.md).
//
// Usage answers "what happened in [From, To)", grouped by any of the rollup
// dimensions and filtered by their values. It reads each part of the range
// from the coarsest table that covers it exactly (whole days from usage_1d,
// whole hours from usage_1h, the ragged edges from usage_1m) and merges the
// aggregate states in one SQL query, so the result equals summing usage_1m
// over the whole range. Money stays exact (pricing.Pico); latency and TTFT
// percentiles come from histograms merged in SQL (sumMap) and evaluated
// in Go with pipelines/sketch: percentiles are never averaged.
//
// Top ranks the groups by a metric in the same query (ORDER BY … LIMIT N
// WITH TOTALS), with each group's share of the total. Series and Daily
// read one value per step or calendar day per group from the one table
// whose rows are the steps, filling steps without usage with zero.
//
// Retention (`costpipe retention`) drops minute rows after --keep-minutes
// and hour rows after --keep-hours, whole months at a time. A ragged edge
// of a range in such a month cannot be read at minute (or hour)
// resolution: it is widened to the whole hour (or UTC day), whose row
// still holds its calls, and the answer says so (Answered); a question
// that reads one table only over a dropped month fails with a
// *DroppedError (ErrDropped). Which months are dropped is read from
// system.parts, beside the question itself when the range may need it
// (retainedRead).
//
// A *Querier is safe for concurrent use; besides its options and the
// warehouse connection pool it borrows, it remembers which months
// retention had dropped at its last look.
package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// Options configure a Querier.
type Options struct {
	// Now is the clock: a UsageQuery with a zero To ends at Now().
	// Default time.Now.
	Now func() time.Time
	// MaxRows bounds the number of groups one Usage call returns; a query
	// producing more fails and asks for fewer dimensions or a filter, so a
	// careless --by never buffers an unbounded result. Default 100000.
	MaxRows int
	// NoSummaries reads the rollups even where the per-model summaries
	// could answer (usage grouped and filtered by provider and model only).
	// Default false.
	NoSummaries bool
	// Logger receives a warning whenever the summaries could not be used
	// (they disagree with the rollups, or cannot be read). Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{Now: time.Now, MaxRows: 100000, Logger: slog.Default()}
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	if o.Now == nil {
		return fmt.Errorf("analytics clock Now must be set")
	}
	if o.MaxRows <= 0 {
		return fmt.Errorf("analytics max rows must be > 0, got %d", o.MaxRows)
	}
	return nil
}

// Querier runs usage queries against the rollups of one costpipe database.
type Querier struct {
	w    *warehouse.Warehouse
	opts Options
	// fallbacks counts the queries the summaries could have answered and
	// the rollups did (SummaryFallbacks).
	fallbacks atomic.Uint64
	// kept is what retention had left at the last look (lookRetained).
	kept keptMonths
	// lookups counts the looks at system.parts (tests).
	lookups atomic.Uint64
}

// keptMonths remembers the last answer of lookRetained: which months
// retention had dropped, and the database's cluster.
type keptMonths struct {
	mu    sync.Mutex
	last  retained
	known bool // last holds an answer
	// cluster is the cluster of the database's Distributed tables, "" on
	// a single server; clusterKnown once asked.
	cluster      string
	clusterKnown bool
}

// SummaryFallbacks returns how many queries since New were answered from
// the rollups because the per-model summaries disagreed with them or
// could not be read.
func (q *Querier) SummaryFallbacks() uint64 { return q.fallbacks.Load() }

// New returns a Querier reading the rollups of w's database. Zero fields of
// opts take their defaults (DefaultOptions); New panics when the options
// still fail Validate (a negative MaxRows), a programming error. w stays
// owned by the caller and must outlive the Querier.
func New(w *warehouse.Warehouse, opts Options) *Querier {
	def := DefaultOptions()
	if opts.Now == nil {
		opts.Now = def.Now
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = def.MaxRows
	}
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	if err := opts.Validate(); err != nil {
		panic("analytics.New: " + err.Error())
	}
	return &Querier{w: w, opts: opts}
}

// lookRetained reads which months retention has dropped from system.parts:
// those usage_1d has a partition for and usage_1m (minutes) or usage_1h
// (hours) has not, on any shard. It remembers the answer, and the
// database's cluster. One query on a single server (about 1.5 ms against
// 18.16 at rest, 3.5 ms on a server holding a dozen test databases); on a
// cluster it reads every shard's parts through the cluster table function.
func (q *Querier) lookRetained(ctx context.Context) (retained, error) {
	q.lookups.Add(1)
	q.kept.mu.Lock()
	cluster, clusterKnown := q.kept.cluster, q.kept.clusterKnown
	q.kept.mu.Unlock()
	db := q.w.Database()
	var (
		k     retained
		found bool
		err   error
	)
	if cluster == "" {
		if k, found, err = q.readParts(ctx, "system.parts", db); err != nil {
			return k, err
		}
		if !found && !clusterKnown {
			// Nothing on this server: a new database, or Distributed tables.
			if cluster, err = q.w.ClusterOf(ctx); err != nil {
				return k, fmt.Errorf("cannot tell which rollup months retention has dropped: %w", err)
			}
			clusterKnown = true
		}
	}
	if cluster != "" {
		if k, _, err = q.readParts(ctx, "cluster('"+cluster+"', system.parts)", warehouse.LocalDatabase(db)); err != nil {
			return k, err
		}
	}
	q.kept.mu.Lock()
	q.kept.last, q.kept.known = k, true
	q.kept.cluster, q.kept.clusterKnown = cluster, clusterKnown
	q.kept.mu.Unlock()
	return k, nil
}

// readParts reads the rollup partitions of db from parts (system.parts, or
// a cluster's), per server; found is false when there are none.
func (q *Querier) readParts(ctx context.Context, parts, db string) (k retained, found bool, err error) {
	rows, err := q.w.Conn().Query(ctx, "SELECT hostName() AS host, table, partition FROM "+parts+
		" WHERE active AND database = ? AND table IN ('usage_1m', 'usage_1h', 'usage_1d') GROUP BY host, table, partition", db)
	if err != nil {
		return k, false, fmt.Errorf("cannot tell which rollup months retention has dropped: %w", err)
	}
	defer rows.Close()
	type key struct {
		host  string
		table string
		month warehouse.Month
	}
	have := map[key]bool{}
	for rows.Next() {
		var host, table, id string
		if err := rows.Scan(&host, &table, &id); err != nil {
			return k, false, fmt.Errorf("cannot tell which rollup months retention has dropped: %w", err)
		}
		found = true
		if m, err := strconv.Atoi(id); err == nil {
			have[key{host, table, warehouse.Month(m)}] = true
		}
	}
	if err := rows.Err(); err != nil {
		return k, false, fmt.Errorf("cannot tell which rollup months retention has dropped: %w", err)
	}
	k = retained{minutesGone: map[warehouse.Month]bool{}, hoursGone: map[warehouse.Month]bool{}}
	for c := range have {
		if c.table != warehouse.Day.Name() {
			continue
		}
		if !have[key{c.host, warehouse.Minute.Name(), c.month}] {
			k.minutesGone[c.month] = true
		}
		if !have[key{c.host, warehouse.Hour.Name(), c.month}] {
			k.hoursGone[c.month] = true
		}
	}
	return k, found, nil
}

// lastRetained is lookRetained's last answer; known is false before the
// first.
func (q *Querier) lastRetained() (k retained, known bool) {
	q.kept.mu.Lock()
	defer q.kept.mu.Unlock()
	return q.kept.last, q.kept.known
}

// clock is the latest of the wall clock and the Querier's: months before
// its month may have been dropped by retention (which keeps every month
// that ended less than --keep-minutes ago, and --keep-minutes is more than
// a day). The Querier's clock alone would not do: a replay's is in the past.
func (q *Querier) clock() time.Time {
	now := time.Now()
	if n := q.opts.Now(); n.After(now) {
		now = n
	}
	return now.UTC()
}

// exposed reports whether a read of segs may touch rows retention has
// dropped: a segment of usage_1m or usage_1h in a month before now's; with
// likely, only those in a month that the default --keep-minutes or
// --keep-hours would have dropped by now.
func exposed(segs []segment, now time.Time, likely bool) bool {
	defaults := warehouse.DefaultRetentionOptions()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for _, s := range segs {
		limit := month
		switch {
		case s.table != warehouse.Minute && s.table != warehouse.Hour:
			continue
		case likely && s.table == warehouse.Minute:
			limit = now.Add(-defaults.KeepMinutes)
		case likely:
			limit = now.Add(-defaults.KeepHours)
		}
		// The segment's first month ends at or before the limit.
		y, m, _ := s.from.UTC().Date()
		if !time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).After(limit) {
			return true
		}
	}
	return false
}

// retainedRead runs read over n, on the range retention lets the rollups
// answer, and returns the normalized query read.
//
// A question of one table (GranularityMinute or GranularityHour) over a
// month whose rows retention has dropped fails with a *DroppedError, once
// read has run: a caller reading step by step (Series) may keep what it
// read and say which steps are not kept (DroppedError.StepsNote). Otherwise
// (GranularityAuto) n's edges are widened where their minute or hour rows
// are dropped (retained.widen), and the range read is the one returned.
//
// Which months are dropped is looked up (lookRetained) only when the
// question reads minute or hour rows of a month before the current one,
// and then beside it, on another connection: it adds no wait to the
// question. The months known dropped at the last look widen the range
// before it is read; should the look find otherwise (retention ran since),
// the question is read again over the range it gives. Without an earlier
// look, a question whose edge is old enough for the default retention to
// have dropped it looks first, rather than read twice. When the look
// fails, the Logger says so and the question is answered as asked.
func (q *Querier) retainedRead(ctx context.Context, n normalized, read func(normalized) error) (normalized, error) {
	segs, err := plan(n.from, n.to, n.g)
	if err != nil {
		return n, err
	}
	now := q.clock()
	switch n.g {
	case GranularityMinute, GranularityHour:
		if !exposed(segs, now, false) {
			return n, read(n)
		}
		k, ok, err := q.readLooking(ctx, n, n, read)
		if err != nil || !ok {
			return n, err
		}
		if ms := k.missing(segs[0].table, n.from, n.to); len(ms) > 0 {
			return n, &DroppedError{Table: segs[0].table, Months: ms, From: n.from, To: n.to}
		}
		return n, nil
	}
	hint, known := q.lastRetained()
	guess := n
	guess.from, guess.to = hint.widen(n.from, n.to)
	gsegs, _ := plan(guess.from, guess.to, guess.g)
	if !exposed(gsegs, now, false) {
		return guess, read(guess)
	}
	if !known && exposed(gsegs, now, true) {
		k, err := q.lookRetained(ctx)
		switch {
		case ctx.Err() != nil:
			return n, ctx.Err()
		case warehouse.Unavailable(err) || warehouse.PoolExhausted(err):
			return n, err // the question would fail the same way
		case err != nil:
			q.lookFailed(n, err)
			return n, read(n)
		}
		w := n
		w.from, w.to = k.widen(n.from, n.to)
		return w, read(w)
	}
	k, ok, err := q.readLooking(ctx, n, guess, read)
	if err != nil || !ok {
		return guess, err
	}
	w := n
	if w.from, w.to = k.widen(n.from, n.to); w.from.Equal(guess.from) && w.to.Equal(guess.to) {
		return guess, nil
	}
	return w, read(w)
}

// beside runs read and look at the same time and returns read's error once
// both are done.
func beside(read func() error, look func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		look()
	}()
	err := read()
	<-done
	return err
}

// readLooking runs read(r) with the look at which months retention has
// dropped beside it (lookRetained), for question n. ok is false when the
// look failed (logged by lookFailed): r's answer stands as read.
func (q *Querier) readLooking(ctx context.Context, n, r normalized, read func(normalized) error) (k retained, ok bool, err error) {
	var lerr error
	if err := beside(func() error { return read(r) }, func() { k, lerr = q.lookRetained(ctx) }); err != nil {
		return k, false, err
	}
	if lerr != nil {
		q.lookFailed(n, lerr)
		return k, false, nil
	}
	return k, true, nil
}

// lookFailed logs that a question is answered as asked because the months
// retention dropped could not be read.
func (q *Querier) lookFailed(n normalized, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		warehouse.Unavailable(err) || warehouse.PoolExhausted(err) {
		return // not a fault of the look: the question is answered, or fails, on its own
	}
	q.opts.Logger.Warn("cannot tell which months retention has dropped; answering the range as asked, whose edges may miss the calls of dropped minutes",
		"range", rangeString(n.from, n.to), "err", err)
}

// Answerable returns the range a usage question over [from, to)
// (GranularityAuto) is answered over: aligned to whole minutes (AlignRange;
// a zero to is the Querier's Now), and each edge widened to a whole hour
// where retention has dropped that hour's minute rows, or to a whole UTC
// day where it has dropped the day's hour rows (the row of the hour or day
// holds the calls the minutes or hours did); Note says so. It reads
// system.parts when the range's edges lie in a month before the current
// one.
func (q *Querier) Answerable(ctx context.Context, from, to time.Time) (Answered, error) {
	n, err := normalize(UsageQuery{From: from, To: to}, q.opts.Now())
	if err != nil {
		return Answered{}, err
	}
	segs, err := plan(n.from, n.to, n.g)
	if err != nil || !exposed(segs, q.clock(), false) {
		return Answered{From: n.from, To: n.to}, err
	}
	k, err := q.lookRetained(ctx)
	if err != nil {
		return Answered{}, err
	}
	wf, wt := k.widen(n.from, n.to)
	return answered(n.from, n.to, wf, wt), nil
}
