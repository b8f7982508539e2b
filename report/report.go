// Package report is the one way costpipe turns a report's parameters into
// numbers: it parses them (a time range, --by and --where, a metric, a
// step, …) into an analytics query, runs it through an analytics.Querier
// and builds the render.Table the writers print. `costpipe query` reads
// the parameters from flags and `costpipe serve` from a URL's query, both
// through Params, so a parameter means the same in both and every report
// is computed once (docs/design.md: one query layer).
//
// Parse errors are *ParamError values naming the parameter the way the
// caller spells it (Params.Name: "--since" on the command line, "since"
// in a URL). The functions hold no state and are safe for concurrent use.
package report

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/render"
)

// Params is where a report's parameters come from.
type Params interface {
	// Value returns the parameter's value, or its default when it was not
	// given ("" when it has none).
	Value(name string) string
	// Values returns every value of a repeatable parameter (where).
	Values(name string) []string
	// IsSet reports whether the parameter was given.
	IsSet(name string) bool
	// Name is how messages name the parameter: "--since" for a flag,
	// "since" for a URL query parameter.
	Name(name string) string
}

// ParamError is a parameter that cannot be used. Param is its name as the
// caller knows it (without dashes); Error is a message naming it as
// Params.Name spells it.
type ParamError struct {
	Param string
	Msg   string
}

// Error returns the message.
func (e *ParamError) Error() string { return e.Msg }

// paramErr returns a *ParamError about param with a formatted message.
func paramErr(param, format string, args ...any) error {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// The defaults of the parameters that have one.
const (
	DefaultSince   = "24h"
	DefaultStep    = "1h"
	DefaultMetric  = "cost"
	DefaultTZ      = "UTC"
	DefaultWindow  = 28
	DefaultPeriod  = "month"
	DefaultHistory = 91
)

// Range is the part of a request shared by usage, latency, top and
// series: a half-open time range, the groups and the filters.
type Range struct {
	From, To time.Time
	By       []analytics.Dim
	Where    map[analytics.Dim][]string
	// Conds are the where conditions in the order given, for titles.
	Conds       []render.Filter
	Granularity analytics.Granularity
}

// Scope is what the range covers, for report titles.
func (r *Range) Scope() render.Scope {
	return render.Scope{From: r.From, To: r.To, By: r.By, Where: r.Conds}
}

// usageQuery is the range as an analytics usage query.
func (r *Range) usageQuery() analytics.UsageQuery {
	return analytics.UsageQuery{From: r.From, To: r.To, By: r.By, Where: r.Where, Granularity: r.Granularity}
}

// ParseRange reads from, to and since (since's default anchored at now),
// by, where and granularity (auto when not given).
func ParseRange(p Params, now time.Time) (Range, error) {
	var r Range
	var err error
	if r.Granularity, err = analytics.ParseGranularity(p.Value("granularity")); err != nil {
		return r, paramErr("granularity", "invalid %s: %v", p.Name("granularity"), err)
	}
	if r.From, r.To, err = ParseTimeRange(p, now); err != nil {
		return r, err
	}
	r.By, r.Where, r.Conds, err = ParseByWhere(p)
	return r, err
}

// ParseTimeRange reads from, to and since; now anchors since. The range
// returned is aligned to whole minutes (analytics.AlignRange).
func ParseTimeRange(p Params, now time.Time) (from, to time.Time, err error) {
	to = now.UTC()
	if s := p.Value("to"); s != "" {
		if to, err = ParseTime(s); err != nil {
			return from, to, paramErr("to", "invalid %s: %v", p.Name("to"), err)
		}
	}
	if s := p.Value("from"); s != "" {
		if p.IsSet("since") {
			return from, to, paramErr("since", "%s and %s are mutually exclusive: give a range with %s/%s or a length with %s",
				p.Name("from"), p.Name("since"), p.Name("from"), p.Name("to"), p.Name("since"))
		}
		if from, err = ParseTime(s); err != nil {
			return from, to, paramErr("from", "invalid %s: %v", p.Name("from"), err)
		}
		// Nothing is older than 1970 (event times start there), and Go's
		// zero time, 0001-01-01, would read as no start at all.
		if epoch := time.Unix(0, 0).UTC(); from.Before(epoch) {
			from = epoch
		}
	} else {
		since := p.Value("since")
		if since == "" {
			since = DefaultSince
		}
		d, err := ParseSince(since)
		if err != nil {
			return from, to, paramErr("since", "invalid %s %s", p.Name("since"), err)
		}
		from = to.Add(-d)
	}
	if !from.Before(to) {
		return from, to, paramErr("from", "empty range: %s %s is not before %s %s", p.Name("from"), from.Format(time.RFC3339),
			p.Name("to"), to.Format(time.RFC3339))
	}
	// The rollups hold whole minutes: the range answered, and printed, is
	// the one with both bounds rounded up to a minute.
	af, at := analytics.AlignRange(from, to)
	if !af.Before(at) {
		return from, to, paramErr("from", "empty range: %s %s and %s %s are in the same minute, and the rollups hold whole minutes: give a range of at least a minute",
			p.Name("from"), from.Format(time.RFC3339Nano), p.Name("to"), to.Format(time.RFC3339Nano))
	}
	return af, at, nil
}

// dimNames lists the dimensions, for messages.
const dimNames = "tenant, application, provider, model, error_type, service_tier or context_band"

// ParseByWhere reads by (comma-separated dimensions) and where
// (DIM=VALUE, repeatable: the same dimension is OR, different ones AND).
func ParseByWhere(p Params) (by []analytics.Dim, where map[analytics.Dim][]string, conds []render.Filter, err error) {
	seen := map[analytics.Dim]bool{}
	for _, s := range strings.Split(p.Value("by"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := analytics.ParseDim(s)
		if err != nil {
			return nil, nil, nil, paramErr("by", "invalid %s dimension %q: want %s", p.Name("by"), s, dimNames)
		}
		if seen[d] {
			return nil, nil, nil, paramErr("by", "invalid %s: dimension %q given twice", p.Name("by"), s)
		}
		seen[d] = true
		by = append(by, d)
	}
	for _, s := range p.Values("where") {
		cond, err := parseWhere(p, s)
		if err != nil {
			return nil, nil, nil, err
		}
		if where == nil {
			where = map[analytics.Dim][]string{}
		}
		conds = append(conds, cond)
		where[cond.Dim] = append(where[cond.Dim], cond.Value)
	}
	return by, where, conds, nil
}

// parseWhere parses DIM=VALUE.
func parseWhere(p Params, s string) (render.Filter, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return render.Filter{}, paramErr("where", "invalid %s %q: want DIMENSION=VALUE, e.g. tenant=acme", p.Name("where"), s)
	}
	d, err := analytics.ParseDim(strings.TrimSpace(name))
	if err != nil {
		return render.Filter{}, paramErr("where", "invalid %s %q: %v", p.Name("where"), s, err)
	}
	return render.Filter{Dim: d, Value: value}, nil
}

// ParseTime accepts RFC 3339 (fraction optional) or a date, taken as UTC
// midnight.
func ParseTime(s string) (time.Time, error) { return ParseTimeIn(s, time.UTC) }

// ParseTimeIn is ParseTime with a date taken as midnight in loc (the start
// of that day in the zone a question's days are in), returned in UTC.
func ParseTimeIn(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}

// errSince is the complaint about a length that is no duration.
var errSince = errors.New("want a duration such as 90m, 24h or 7d")

// ParseSince accepts a positive Go duration or a whole number of days
// ("7d"). Its error quotes s: `"week": want a duration …`.
func ParseSince(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 1e5 {
			return 0, fmt.Errorf("%q: %w", s, errSince)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: %w", s, errSince)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be positive", s)
	}
	return d, nil
}

// ParseMetric reads metric (default cost).
func ParseMetric(p Params) (analytics.Metric, error) {
	s := p.Value("metric")
	if s == "" {
		s = DefaultMetric
	}
	m, err := analytics.ParseMetric(s)
	if err != nil {
		return "", paramErr("metric", "invalid %s: %v", p.Name("metric"), err)
	}
	return m, nil
}

// intParam reads an integer parameter with a default.
func intParam(p Params, name string, def int) (int, error) {
	s := p.Value(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, paramErr(name, "invalid %s %q: want a whole number", p.Name(name), s)
	}
	return n, nil
}
