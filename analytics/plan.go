package analytics

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// Dim is a rollup dimension usage can be grouped and filtered by. Only the
// values of Dims are accepted: they are spliced into SQL as column names,
// while filter values are always bound parameters.
type Dim string

// The rollup dimensions, in their canonical order.
const (
	DimTenant      Dim = "tenant"
	DimApplication Dim = "application"
	DimProvider    Dim = "provider"
	DimModel       Dim = "model"
	DimErrorType   Dim = "error_type" // empty for successful calls
	// DimServiceTier is the calls' service tier, lower case; empty for the
	// standard tier.
	DimServiceTier Dim = "service_tier"
	// DimContextBand is the long-context band of the calls' input tokens
	// (pricing.ContextBand): "0", "128000", "200000", …
	DimContextBand Dim = "context_band"
)

// allDims is the allow-list, in canonical order.
var allDims = []Dim{DimTenant, DimApplication, DimProvider, DimModel, DimErrorType, DimServiceTier, DimContextBand}

// expr is the SQL expression of d's values as strings; alias names it in
// the inner SELECT of a query (a different name where expr is not the
// column itself, so that no alias shadows a column).
func (d Dim) expr() (expr, alias string) {
	if d == DimContextBand {
		return "toString(context_band)", "context_band_text"
	}
	return string(d), string(d)
}

// Dims returns every dimension, in canonical order.
func Dims() []Dim { return append([]Dim(nil), allDims...) }

// Valid reports whether d is one of Dims.
func (d Dim) Valid() bool {
	for _, v := range allDims {
		if d == v {
			return true
		}
	}
	return false
}

// ParseDim returns the dimension named s, or an error quoting s and naming
// the valid dimensions.
func ParseDim(s string) (Dim, error) {
	d := Dim(s)
	if !d.Valid() {
		return "", fmt.Errorf("unknown dimension %q: want %s", s, dimList())
	}
	return d, nil
}

// dimList is "tenant, application, provider, model or error_type".
func dimList() string {
	names := make([]string, len(allDims))
	for i, d := range allDims {
		names[i] = string(d)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Granularity chooses which rollup tables a query reads.
type Granularity string

// The granularities. GranularityAuto (also the zero value "") reads every
// part of the range from the coarsest table that covers it exactly; the
// others read one table only and require the range to be aligned to it.
const (
	GranularityAuto   Granularity = "auto"
	GranularityMinute Granularity = "minute" // usage_1m only
	GranularityHour   Granularity = "hour"   // usage_1h only; From and To on whole hours (UTC)
	GranularityDay    Granularity = "day"    // usage_1d only; From and To on whole days (UTC)
)

// ParseGranularity returns the granularity named s ("" is auto), or an
// error quoting s and naming the valid ones.
func ParseGranularity(s string) (Granularity, error) {
	switch g := Granularity(s); g {
	case "", GranularityAuto:
		return GranularityAuto, nil
	case GranularityMinute, GranularityHour, GranularityDay:
		return g, nil
	}
	return "", fmt.Errorf("unknown granularity %q: want auto, minute, hour or day", s)
}

// The rollup tables.
const (
	table1m = warehouse.Minute
	table1h = warehouse.Hour
	table1d = warehouse.Day
)

const day = 24 * time.Hour

// segment is a half-open range [from, to) of ts read from one table.
type segment struct {
	table    warehouse.Table
	from, to time.Time
}

// plan splits [from, to) (whole seconds, from < to) into segments. Auto
// reads whole UTC days from usage_1d, the whole hours around them from
// usage_1h and the rest from usage_1m; every row of a coarser table covers
// exactly the usage_1m rows of its hour or day, all inside the range, so
// the union equals usage_1m over [from, to).
func plan(from, to time.Time, g Granularity) ([]segment, error) {
	switch g {
	case GranularityMinute:
		return []segment{{table1m, from, to}}, nil
	case GranularityHour, GranularityDay:
		unit, table := time.Hour, table1h
		if g == GranularityDay {
			unit, table = day, table1d
		}
		for _, t := range []time.Time{from, to} {
			if !t.Truncate(unit).Equal(t) {
				return nil, granularityError(fmt.Sprintf("granularity %q needs a range on whole %ss (UTC), got %s", g, g, t.UTC().Format(time.RFC3339)))
			}
		}
		return []segment{{table, from, to}}, nil
	case "", GranularityAuto:
	default:
		return nil, granularityError(fmt.Sprintf("unknown granularity %q: want auto, minute, hour or day", g))
	}
	var segs []segment
	add := func(table warehouse.Table, a, b time.Time) {
		if a.Before(b) {
			segs = append(segs, segment{table, a, b})
		}
	}
	hs, he := ceil(from, time.Hour), to.Truncate(time.Hour)
	if !hs.Before(he) {
		return []segment{{table1m, from, to}}, nil
	}
	ds, de := ceil(hs, day), he.Truncate(day)
	add(table1m, from, hs)
	if ds.Before(de) {
		add(table1h, hs, ds)
		add(table1d, ds, de)
		add(table1h, de, he)
	} else {
		add(table1h, hs, he)
	}
	add(table1m, he, to)
	return segs, nil
}

// ceil rounds t up to a multiple of d since the zero time (UTC-aligned for
// seconds, hours and days).
func ceil(t time.Time, d time.Duration) time.Time {
	if f := t.Truncate(d); !f.Equal(t) {
		return f.Add(d)
	}
	return t
}

// normalized is a validated UsageQuery: whole-second UTC bounds, dims from
// the allow-list, filters in canonical dimension order.
type normalized struct {
	from, to time.Time
	by       []Dim
	where    []filter
	g        Granularity
	// order is the metric groups are ordered by, descending; zero is cost.
	order Metric
	// noDists leaves the latency and TTFT histograms out (UsageQuery.NoLatency).
	noDists bool
	// noTTFT leaves the TTFT histogram out (UsageQuery.NoTTFT).
	noTTFT bool
}

// filter is one dimension's accepted values (OR).
type filter struct {
	dim    Dim
	values []string
}

// AlignRange is the range [from, to) the rollups answer: both bounds
// rounded up to a whole minute (UTC), since a rollup row holds the calls of
// one minute, stamped with its start. A range inside one minute aligns to
// an empty one. Callers that print a range print the aligned one.
func AlignRange(from, to time.Time) (time.Time, time.Time) {
	return ceil(from, time.Minute).UTC(), ceil(to, time.Minute).UTC()
}

// normalize validates uq; now is the clock for a zero To.
func normalize(uq UsageQuery, now time.Time) (normalized, error) {
	n := normalized{g: uq.Granularity, noDists: uq.NoLatency, noTTFT: uq.NoTTFT}
	if uq.From.IsZero() {
		return n, fmt.Errorf("usage query needs a start time (From)")
	}
	to := uq.To
	if to.IsZero() {
		to = now
	}
	// A rollup row holds a whole minute, stamped with its start: a bound
	// inside a minute is rounded up to the next (AlignRange), which is the
	// range the rows answer (ts >= from is ts >= ⌈from⌉; ts < to counts the
	// minute holding to).
	n.from, n.to = AlignRange(uq.From, to)
	if !n.from.Before(n.to) {
		return n, fmt.Errorf("usage range [%s, %s) is empty: from must be before to",
			uq.From.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	if _, err := ParseGranularity(string(uq.Granularity)); err != nil {
		return n, err
	}
	seen := map[Dim]bool{}
	for _, d := range uq.By {
		if !d.Valid() {
			return n, fmt.Errorf("cannot group by %q: want %s", string(d), dimList())
		}
		if seen[d] {
			return n, fmt.Errorf("cannot group by %q twice", string(d))
		}
		seen[d] = true
		n.by = append(n.by, d)
	}
	for d, vs := range uq.Where {
		if !d.Valid() {
			return n, fmt.Errorf("cannot filter on %q: want %s", string(d), dimList())
		}
		if len(vs) == 0 {
			return n, fmt.Errorf("filter on %q has no values", string(d))
		}
		n.where = append(n.where, filter{d, vs})
	}
	sort.Slice(n.where, func(i, j int) bool { return dimPos(n.where[i].dim) < dimPos(n.where[j].dim) })
	return n, nil
}

// dimPos is d's position in the canonical order.
func dimPos(d Dim) int {
	for i, v := range allDims {
		if v == d {
			return i
		}
	}
	return len(allDims)
}

// appendWhere writes the condition "ts in [from, to) of table t and every
// filter" and returns args with its bound values appended.
func appendWhere(sb *strings.Builder, args []any, t warehouse.Table, from, to time.Time, where []filter) []any {
	sb.WriteString(t.TimeRange())
	args = t.TimeRangeArgs(args, from, to)
	for _, f := range where {
		e, _ := f.dim.expr()
		sb.WriteString(" AND " + e + " IN (")
		for j, v := range f.values {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("?")
			args = append(args, v)
		}
		sb.WriteString(")")
	}
	return args
}

// usageSQL builds the query of n over segs in database db, limited to
// limit rows, and its bound arguments; totals adds the totals of every
// group (WITH TOTALS, computed before the limit); summary reads each
// segment's per-model summary instead of its rollup (n must be
// summarizable), merging the pieces' rows once instead of in two stages.
// Column names come from the allow-list only; times and
// filter values are `?` parameters.
func usageSQL(db string, n normalized, segs []segment, limit int, totals, summary bool) (string, []any) {
	var sb strings.Builder
	var args []any
	keys := make([]string, len(n.by))  // aliases, in the outer query
	inner := make([]string, len(n.by)) // expressions AS aliases
	for i, d := range n.by {
		e, a := d.expr()
		keys[i] = a
		inner[i] = a
		if e != a {
			inner[i] = e + " AS " + a
		}
	}
	keyList := strings.Join(keys, ", ")

	partial, rows, final := n.twoStage()
	sb.WriteString("SELECT ")
	if len(keys) > 0 {
		sb.WriteString(keyList + ", ")
	}
	sb.WriteString("sum(_rows), " + final)
	sb.WriteString("\nFROM (")
	for i, s := range segs {
		if i > 0 {
			sb.WriteString("\n    UNION ALL")
		}
		// A piece of the rollups merges its own rows per group first (two
		// stages: see warehouse.TwoStageSelect); the summaries' pieces, a
		// few rows per group each, and the ragged minutes beside them are
		// merged once, by the outer query (docs/design.md, "One merge for
		// the summaries").
		name := s.table.Rollup().Name() // a week's days, when a week segment reaches the rollups
		if summary {
			name = s.table.SummaryName()
			// materialize: through a Distributed table (a cluster) the shards
			// send a constant as a full column, and a constant _rows in the
			// local part fails the union (code 171, "non constant in source
			// stream but must be constant in result").
			sb.WriteString("\n    SELECT " + strings.Join(append(append([]string{}, inner...), "materialize(toUInt64(1)) AS _rows", rows), ", "))
		} else {
			sb.WriteString("\n    SELECT " + strings.Join(append(append([]string{}, inner...), "count() AS _rows", partial), ", "))
		}
		sb.WriteString("\n    FROM " + db + "." + name)
		sb.WriteString("\n    WHERE ")
		args = appendWhere(&sb, args, s.table, s.from, s.to, n.where)
		if len(keys) > 0 && !summary {
			sb.WriteString("\n    GROUP BY " + keyList)
		}
	}
	sb.WriteString("\n)")
	if len(keys) > 0 {
		sb.WriteString("\nGROUP BY " + keyList)
		if totals {
			sb.WriteString(" WITH TOTALS")
		}
		order := n.order
		if order == "" {
			order = MetricCost
		}
		exact, _ := order.exactExpr() // normalize accepted only known metrics
		sb.WriteString("\nORDER BY " + exact + " DESC, " + keyList)
		fmt.Fprintf(&sb, "\nLIMIT %d", limit)
	}
	return sb.String(), args
}

// retained is what `costpipe retention` has left of the minute and hour
// rollups: the months whose minute rows (usage_1m) or hour rows (usage_1h)
// it has dropped while usage_1d, never dropped, still holds them. The zero
// value knows of no dropped month.
type retained struct {
	minutesGone map[warehouse.Month]bool
	hoursGone   map[warehouse.Month]bool
}

// gone reports whether retention has dropped month m of table t (usage_1d
// is never dropped).
func (k retained) gone(t warehouse.Table, m warehouse.Month) bool {
	switch t {
	case warehouse.Minute:
		return k.minutesGone[m]
	case warehouse.Hour:
		return k.hoursGone[m]
	}
	return false
}

// widen returns [from, to) (whole minutes, from < to) with each ragged edge
// rounded out to what the rollups still hold: to a whole hour (UTC) where
// retention has dropped that hour's minute rows, then to a whole UTC day
// where it has dropped that day's hour rows. plan then reads the edge from
// usage_1h or usage_1d, whose rows hold all the calls of their hour or
// day: the answer counts the calls of the widened range, exactly, instead
// of silently missing those of the dropped minutes (or hours). Only the
// edges can need it: plan reads whole hours and days in between from
// usage_1h and usage_1d.
func (k retained) widen(from, to time.Time) (time.Time, time.Time) {
	for _, u := range []struct {
		t    warehouse.Table
		unit time.Duration
	}{{warehouse.Minute, time.Hour}, {warehouse.Hour, day}} {
		if f := from.Truncate(u.unit); !f.Equal(from) && k.gone(u.t, warehouse.MonthOf(from)) {
			from = f
		}
		if t := to.Truncate(u.unit); !t.Equal(to) && k.gone(u.t, warehouse.MonthOf(to)) {
			to = t.Add(u.unit)
		}
	}
	return from, to
}

// missing returns the months of [from, to) whose rows of table t
// retention has dropped, oldest first; none when it has dropped none of
// them.
func (k retained) missing(t warehouse.Table, from, to time.Time) []warehouse.Month {
	var out []warehouse.Month
	for m := from.UTC(); m.Before(to); {
		if k.gone(t, warehouse.MonthOf(m)) {
			out = append(out, warehouse.MonthOf(m))
		}
		y, mo, _ := m.Date()
		m = time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return out
}

// ErrGranularity is wrapped by the error of a question whose fixed
// granularity does not fit its range (hour or day on a range whose bounds
// are not whole hours or days) or is unknown: the question's fault, its
// message says what to change.
var ErrGranularity = errors.New("invalid granularity")

// GranularityCause returns the innermost error of err's chain that is
// ErrGranularity (analytics' own message, without what wraps it), or nil.
func GranularityCause(err error) error {
	if !errors.Is(err, ErrGranularity) {
		return nil
	}
	for u := errors.Unwrap(err); u != nil && errors.Is(u, ErrGranularity); u = errors.Unwrap(err) {
		err = u
	}
	return err
}

// granularityError is an error that is ErrGranularity, its message its
// own.
type granularityError string

func (e granularityError) Error() string        { return string(e) }
func (e granularityError) Is(target error) bool { return target == ErrGranularity }

// ErrDropped is wrapped by the error of a question that reads one table
// only (a fixed granularity, a series' step) over months whose rows
// retention has dropped: read as if no call was made there, it would be
// silently wrong. Ask at a coarser granularity or step.
var ErrDropped = errors.New("rows no longer kept")

// DroppedError is the error of a question that reads Table only over
// [From, To), whose Months retention has dropped. It wraps ErrDropped.
type DroppedError struct {
	Table    warehouse.Table
	Months   []warehouse.Month
	From, To time.Time
}

// Error names the table, the months, the retention flag and what to ask
// instead.
func (e *DroppedError) Error() string {
	return fmt.Sprintf("%s: %s no longer holds %s, which [%s, %s) reads (costpipe retention %s); %s",
		ErrDropped, e.Table.Name(), monthNames(e.Months), e.From.UTC().Format(time.RFC3339), e.To.UTC().Format(time.RFC3339), e.flag(), e.coarser())
}

// Unwrap returns ErrDropped.
func (e *DroppedError) Unwrap() error { return ErrDropped }

// StepsNote is the note of a series whose steps in e.Months read as zero,
// for a caller that keeps what it read: "the steps of 2026-01 read as
// zero: usage_1m no longer holds them …".
func (e *DroppedError) StepsNote() string {
	return fmt.Sprintf("the steps of %s read as zero: %s no longer holds them (costpipe retention %s); %s",
		monthNames(e.Months), e.Table.Name(), e.flag(), e.coarser())
}

// flag is the retention flag that dropped e's rows.
func (e *DroppedError) flag() string {
	if e.Table == warehouse.Hour {
		return "--keep-hours"
	}
	return "--keep-minutes"
}

// coarser says what to ask instead.
func (e *DroppedError) coarser() string {
	if e.Table == warehouse.Hour {
		return "ask for days (granularity auto or day, a step of 1d)"
	}
	return "ask for hours or days (granularity auto or hour, a step of 1h or 1d)"
}

// monthNames is "2025-12, 2026-01".
func monthNames(ms []warehouse.Month) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = fmt.Sprintf("%04d-%02d", int(m)/100, int(m)%100)
	}
	return strings.Join(names, ", ")
}

// Answered is the range a usage question was answered over: the one asked,
// aligned to whole minutes (AlignRange), and widened at an edge where
// retention has dropped the minute or hour rows it needs (retained.widen).
type Answered struct {
	From, To time.Time
	// Note says how and why the range differs from the one asked, "" when
	// only the minute alignment does: a report prints it beside the range.
	Note string
}

// answered is the Answered of a question asked over [from, to) (aligned)
// and read over [wfrom, wto) (retained.widen).
func answered(from, to, wfrom, wto time.Time) Answered {
	var notes []string
	edge := func(what string, asked, read, hour time.Time) {
		if asked.Equal(read) {
			return
		}
		unit, rows, flag := "hour", "minute", "--keep-minutes"
		if !read.Equal(hour) {
			unit, rows, flag = "day", "hour", "--keep-hours"
		}
		notes = append(notes, fmt.Sprintf("the range %s at %s, not %s: the %s rows of that %s are no longer kept (costpipe retention %s), so the whole %s is counted",
			what, read.UTC().Format(time.RFC3339), asked.UTC().Format(time.RFC3339), rows, unit, flag, unit))
	}
	edge("starts", from, wfrom, from.Truncate(time.Hour))
	edge("ends", to, wto, ceil(to, time.Hour))
	return Answered{From: wfrom, To: wto, Note: strings.Join(notes, "; ")}
}
