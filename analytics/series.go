package analytics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/warehouse"
)

// MaxSeriesSteps bounds the steps of one series: 10000 steps are about a
// week of minutes, 14 months of hours or 27 years of days.
const MaxSeriesSteps = 10000

// ErrTooManySteps is wrapped by the error of a series with more than
// MaxSeriesSteps steps.
var ErrTooManySteps = fmt.Errorf("a series has at most %d steps", MaxSeriesSteps)

// ErrTooManyGroups is wrapped by the error of a question with more groups
// than the Querier returns (Options.MaxRows, or a series' values bound):
// the asker's to narrow, not a failure.
var ErrTooManyGroups = errors.New("too many groups")

// MaxSeriesValues bounds the values one Series call holds (groups × steps).
const MaxSeriesValues = 2_000_000

// ParseStep returns the step named s: "1m", "1h" or "1d" ("" is 1h).
func ParseStep(s string) (time.Duration, error) {
	switch s {
	case "1m":
		return time.Minute, nil
	case "", "1h":
		return time.Hour, nil
	case "1d":
		return day, nil
	}
	return 0, fmt.Errorf("unknown step %q: want 1m, 1h or 1d", s)
}

// stepGranularity is the granularity whose table has one row per step.
func stepGranularity(step time.Duration) (Granularity, error) {
	switch step {
	case time.Minute:
		return GranularityMinute, nil
	case time.Hour:
		return GranularityHour, nil
	case day:
		return GranularityDay, nil
	}
	return "", fmt.Errorf("unknown step %s: want 1m, 1h or 1d", step)
}

// SeriesQuery asks for one value per step of time, per group.
type SeriesQuery struct {
	// From is the start, rounded down to a whole step (UTC). Required.
	From time.Time
	// To is the end, rounded up to a whole step; zero means the Querier's
	// Now (the last step is then the current one, so far).
	To time.Time
	// Step is the width of a step: time.Minute (read from usage_1m),
	// time.Hour (usage_1h) or 24 hours (usage_1d, UTC days); zero means an
	// hour. The range holds at most MaxSeriesSteps steps.
	Step time.Duration
	// By and Where are as in UsageQuery.
	By    []Dim
	Where map[Dim][]string
	// Metric is the value of a step; zero is MetricCost.
	Metric Metric
}

// SeriesResult is the answer of Series.
type SeriesResult struct {
	Metric Metric
	Step   time.Duration
	// From and To (exclusive) bound the steps: the query's range widened
	// to whole steps.
	From, To time.Time
	// Steps are the start of each step, UTC, oldest first.
	Steps []time.Time
	// AsOf is the Querier's Now when the series was read (UTC). A step
	// that ends after it had not ended: its value is the step so far.
	AsOf time.Time
	// Series are the groups with usage in the range, ordered by the sum of
	// their values (descending), then by group.
	Series []GroupSeries
	// UnpricedRequests, for MetricCost, are the calls of the range whose
	// model had no price when they were priced: their cost is 0 in the
	// values. Zero for other metrics.
	UnpricedRequests uint64
	// Note says which steps read as zero because retention has dropped
	// their rows (minute steps past --keep-minutes, hour steps past
	// --keep-hours); "" when none did.
	Note string
}

// GroupSeries is one group's values, one per step; a step without usage
// has the value 0 (empty steps are filled).
type GroupSeries struct {
	Group map[Dim]string
	// Values[i] is the metric of step i (USD for cost).
	Values []float64
	// Cost[i] is the exact cost of step i when the metric is MetricCost
	// (Values[i] is its float64); nil otherwise.
	Cost []pricing.Pico
	// UnpricedRequests, for MetricCost, are the group's calls in the range
	// whose model had no price (cost 0); zero for other metrics.
	UnpricedRequests uint64
}

// Series returns the value of sq.Metric in every step of the range, per
// group, read from the table whose rows are the steps; a group has a value
// for every step, zero where it had no usage.
func (q *Querier) Series(ctx context.Context, sq SeriesQuery) (SeriesResult, error) {
	res := SeriesResult{Metric: sq.Metric, Step: sq.Step}
	if res.Metric == "" {
		res.Metric = MetricCost
	}
	if res.Step == 0 {
		res.Step = time.Hour
	}
	exact, ok := res.Metric.exactExpr()
	if !ok {
		return res, unknownMetric(string(sq.Metric))
	}
	g, err := stepGranularity(res.Step)
	if err != nil {
		return res, err
	}
	if sq.From.IsZero() {
		return res, fmt.Errorf("series query needs a start time (From)")
	}
	res.AsOf = q.opts.Now().UTC()
	to := sq.To
	if to.IsZero() {
		to = res.AsOf
	}
	if !sq.From.Before(to) {
		return res, fmt.Errorf("series range [%s, %s) is empty: from must be before to",
			sq.From.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	res.From, res.To = sq.From.UTC().Truncate(res.Step), ceil(to.UTC(), res.Step)
	steps := int(res.To.Sub(res.From) / res.Step)
	if steps > MaxSeriesSteps {
		return res, fmt.Errorf("%w, not %d of %s in [%s, %s): shorten the range or take a longer step",
			ErrTooManySteps, steps, stepName(res.Step), res.From.Format(time.RFC3339), res.To.Format(time.RFC3339))
	}
	for i := range steps {
		res.Steps = append(res.Steps, res.From.Add(time.Duration(i)*res.Step))
	}
	n, err := normalize(UsageQuery{From: res.From, To: res.To, By: sq.By, Where: sq.Where, Granularity: g}, res.To)
	if err != nil {
		return res, err
	}
	_, err = q.retainedRead(ctx, n, func(n normalized) error { return q.readSeries(ctx, n, &res, exact, steps) })
	if de := (*DroppedError)(nil); errors.As(err, &de) {
		// Its other steps are right, and a reader of steps (the anomaly
		// rules) tells the empty ones apart: kept, with a note.
		res.Note = de.StepsNote()
		return res, nil
	}
	return res, err
}

// readSeries is Series reading n (one table: the steps') into res.
func (q *Querier) readSeries(ctx context.Context, n normalized, res *SeriesResult, exact string, steps int) error {
	segs, err := plan(n.from, n.to, n.g)
	if err != nil {
		return err
	}
	// The exact value as text: Decimal(38,12) for cost, UInt64 otherwise;
	// for cost also the calls priced at 0 because their model had no price.
	value := "toString(" + exact + ")"
	cost := res.Metric == MetricCost
	if cost {
		unpriced, _ := warehouse.MergeExpr("unpriced_requests")
		value += ", " + unpriced
	}
	query, args := bucketSQL(q.w.Database(), segs[0].table, n, "toUInt32(ts)", value)
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("cannot query the %s series in [%s, %s): %w", res.Metric, res.From.Format(time.RFC3339), res.To.Format(time.RFC3339), err)
	}
	defer rows.Close()
	acc := newSeriesAcc(n.by, steps, min(q.opts.MaxRows, MaxSeriesValues/max(steps, 1)), "series")
	acc.cost = cost
	for rows.Next() {
		vals := make([]string, len(n.by))
		var ts uint32
		var v string
		var unpriced uint64
		dest := make([]any, 0, len(vals)+3)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		dest = append(dest, &ts, &v)
		if cost {
			dest = append(dest, &unpriced)
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("cannot read series row: %w", err)
		}
		i := int(time.Unix(int64(ts), 0).Sub(res.From) / res.Step)
		if i < 0 || i >= steps {
			continue // cannot happen: the WHERE bounds the steps
		}
		s, err := acc.group(vals)
		if err != nil {
			return err
		}
		if acc.cost {
			c, err := pricing.ParsePico(v)
			if err != nil {
				return fmt.Errorf("cannot read the cost of %s at %s: %w", groupString(n.by, vals), res.Steps[i].Format(time.RFC3339), err)
			}
			s.Cost[i] = s.Cost[i].Add(c)
			s.Values[i] = s.Cost[i].Float64()
			s.UnpricedRequests += unpriced
			res.UnpricedRequests += unpriced
			continue
		}
		u, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("cannot read the %s of %s at %s: %w", res.Metric, groupString(n.by, vals), res.Steps[i].Format(time.RFC3339), err)
		}
		s.Values[i] += float64(u)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read series rows: %w", err)
	}
	if len(n.by) == 0 {
		// Ungrouped, the range's one series exists with or without usage:
		// its empty steps are 0 like any other's.
		if _, err := acc.group(nil); err != nil {
			return err
		}
	}
	res.Series = acc.series()
	return nil
}

// stepName is "1m", "1h" or "1d".
func stepName(step time.Duration) string {
	switch step {
	case time.Minute:
		return "1m"
	case time.Hour:
		return "1h"
	case day:
		return "1d"
	}
	return step.String()
}

// bucketSQL builds the query of one value per group and bucket of table
// over [n.from, n.to) filtered by n.where: the group's keys, then bucket
// (an expression of ts naming the step or day) and value (a merge
// expression), one row per group and bucket that has usage. Each of and is
// one more condition of the WHERE (SQL built by the caller, no parameters).
func bucketSQL(db string, table warehouse.Table, n normalized, bucket, value string, and ...string) (string, []any) {
	var sb strings.Builder
	sb.WriteString("SELECT ")
	for _, d := range n.by {
		e, a := d.expr()
		if e != a {
			e += " AS " + a
		}
		sb.WriteString(e + ", ")
	}
	fmt.Fprintf(&sb, "%s AS bucket, %s AS v\nFROM %s.%s\nWHERE ", bucket, value, db, table.Name())
	args := appendWhere(&sb, nil, table, n.from, n.to, n.where)
	for _, c := range and {
		sb.WriteString(" AND " + c)
	}
	sb.WriteString("\nGROUP BY ")
	for _, d := range n.by {
		_, a := d.expr()
		sb.WriteString(a + ", ")
	}
	sb.WriteString("bucket")
	return sb.String(), args
}

// seriesAcc collects the series of groups, each with a value per step,
// bounding the number of groups.
type seriesAcc struct {
	by        []Dim
	steps     int
	maxGroups int
	what      string // "series", "daily": for the error
	cost      bool   // keep exact costs
	groups    map[string]*GroupSeries
	order     []string
}

func newSeriesAcc(by []Dim, steps, maxGroups int, what string) *seriesAcc {
	return &seriesAcc{by: by, steps: steps, maxGroups: maxGroups, what: what, groups: map[string]*GroupSeries{}}
}

// group returns the series of the group with the values vals of by,
// creating it (all zero) on first use.
func (a *seriesAcc) group(vals []string) (*GroupSeries, error) {
	g := make(map[Dim]string, len(a.by))
	for i, d := range a.by {
		g[d] = vals[i]
	}
	k := groupKey(a.by, g)
	if s := a.groups[k]; s != nil {
		return s, nil
	}
	if len(a.groups) == a.maxGroups {
		if a.what == "series" {
			return nil, fmt.Errorf("%w: series query has more than %d groups of %d steps: group by fewer dimensions, filter, or take a longer step or range", ErrTooManyGroups, a.maxGroups, a.steps)
		}
		return nil, fmt.Errorf("%w: %s query has more than %d groups: group by fewer dimensions or filter", ErrTooManyGroups, a.what, a.maxGroups)
	}
	s := &GroupSeries{Group: g, Values: make([]float64, a.steps)}
	if a.cost {
		s.Cost = make([]pricing.Pico, a.steps)
	}
	a.groups[k] = s
	a.order = append(a.order, k)
	return s, nil
}

// series returns the groups ordered by sortSeries.
func (a *seriesAcc) series() []GroupSeries {
	out := make([]GroupSeries, 0, len(a.order))
	for _, k := range a.order {
		out = append(out, *a.groups[k])
	}
	sortSeries(a.by, out)
	return out
}

// sortSeries orders series by their total, descending, then by group.
func sortSeries(by []Dim, s []GroupSeries) {
	type keyed struct {
		total float64
		key   string
		s     GroupSeries
	}
	ks := make([]keyed, len(s))
	for i := range s {
		t := 0.0
		for _, v := range s[i].Values {
			t += v
		}
		ks[i] = keyed{t, groupKey(by, s[i].Group), s[i]}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		switch {
		case a.total > b.total:
			return -1
		case a.total < b.total:
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	for i := range ks {
		s[i] = ks[i].s
	}
}
