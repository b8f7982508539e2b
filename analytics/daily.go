package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// Metric is a measure a daily series can follow.
type Metric string

// The metrics of daily series (growth, forecasts).
const (
	MetricCost         Metric = "cost"          // USD
	MetricRequests     Metric = "requests"      // calls
	MetricInputTokens  Metric = "input_tokens"  // prompt tokens
	MetricOutputTokens Metric = "output_tokens" // completion tokens
	MetricTokens       Metric = "tokens"        // input + output tokens
)

// metrics are the metrics in the order error messages list them, each with
// the rollup measures it adds up.
var metrics = []struct {
	m        Metric
	measures []string
}{
	{MetricCost, []string{"cost_usd"}},
	{MetricRequests, []string{"requests"}},
	{MetricInputTokens, []string{"input_tokens"}},
	{MetricOutputTokens, []string{"output_tokens"}},
	{MetricTokens, []string{"input_tokens", "output_tokens"}},
}

// exactExpr is m's merge expression over the state tables in the measures'
// own types (exact), to order groups by: the sum of its measures'
// warehouse.MergeExpr. ok is false for an unknown metric.
func (m Metric) exactExpr() (expr string, ok bool) {
	for _, x := range metrics {
		if x.m != m {
			continue
		}
		parts := make([]string, len(x.measures))
		for i, name := range x.measures {
			e, err := warehouse.MergeExpr(name)
			if err != nil {
				panic(err) // a measure renamed in warehouse; TestMetricExprs catches it
			}
			parts[i] = e
		}
		return strings.Join(parts, " + "), true
	}
	return "", false
}

// floatExpr is exactExpr as a Float64, for series and trends.
func (m Metric) floatExpr() (expr string, ok bool) {
	e, ok := m.exactExpr()
	return "toFloat64(" + e + ")", ok
}

// unknownMetric is the error for a metric named s that is none of metrics.
func unknownMetric(s string) error {
	names := make([]string, len(metrics))
	for i, x := range metrics {
		names[i] = string(x.m)
	}
	return fmt.Errorf("unknown metric %q: want %s or %s", s, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
}

// ParseMetric returns the metric named s ("" is cost), or an error naming
// the valid ones.
func ParseMetric(s string) (Metric, error) {
	if s == "" {
		return MetricCost, nil
	}
	if _, ok := Metric(s).exactExpr(); ok {
		return Metric(s), nil
	}
	return "", unknownMetric(s)
}

// DailyQuery asks for one value per calendar day in Location, per group.
type DailyQuery struct {
	// First and Last are the first and last day (any time within them; the
	// days are those of Location). Last ≥ First.
	First, Last time.Time
	// Location is the calendar of the days; nil means UTC.
	Location *time.Location
	// By and Where are as in UsageQuery.
	By    []Dim
	Where map[Dim][]string
	// Metric is the value of a day; zero is MetricCost.
	Metric Metric
}

// DailySeries is one group's values, one per day of the query (zero for a
// day without usage).
type DailySeries struct {
	Group map[Dim]string
	// Values[i] is the metric of day First+i.
	Values []float64
}

// Daily returns the daily series of every group with usage in the range,
// ordered by the sum of their values (descending), then by group. Days in
// UTC are read from usage_1d; in a zone whose offset is a whole number of
// hours over the range from usage_1h; otherwise (e.g. Asia/Kolkata, UTC+5:30)
// from usage_1m, which retention keeps for 35 days.
func (q *Querier) Daily(ctx context.Context, dq DailyQuery) (days []time.Time, out []DailySeries, err error) {
	loc := dq.Location
	if loc == nil {
		loc = time.UTC
	}
	if dq.Metric == "" {
		dq.Metric = MetricCost
	}
	expr, ok := dq.Metric.floatExpr()
	if !ok {
		return nil, nil, unknownMetric(string(dq.Metric))
	}
	zone, err := zoneName(loc)
	if err != nil {
		return nil, nil, err
	}
	first, last := dayStart(dq.First, loc), dayStart(dq.Last, loc)
	if last.Before(first) {
		return nil, nil, fmt.Errorf("daily range is empty: last day %s is before the first %s", last.Format(time.DateOnly), first.Format(time.DateOnly))
	}
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
		if len(days) > 3660 {
			return nil, nil, fmt.Errorf("daily range of more than 3660 days")
		}
	}
	end := last.AddDate(0, 0, 1)
	n, err := normalize(UsageQuery{From: first, To: end, By: dq.By, Where: dq.Where}, end)
	if err != nil {
		return nil, nil, err
	}
	table := warehouse.Day
	switch {
	case loc == time.UTC:
	case wholeHourOffsets(loc, first, end):
		table = warehouse.Hour
	default:
		table = warehouse.Minute
	}
	// toDate(ts, zone) is the calendar day of the bucket start in the zone;
	// every bucket of the chosen table lies within one day of the zone.
	query, args := bucketSQL(q.w.Database(), table, n, "toString(toDate(ts, '"+zone+"'))", expr)
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot query daily %s in [%s, %s]: %w", dq.Metric, first.Format(time.DateOnly), last.Format(time.DateOnly), err)
	}
	defer rows.Close()
	index := map[string]int{}
	for i, d := range days {
		index[d.Format(time.DateOnly)] = i
	}
	acc := newSeriesAcc(n.by, len(days), q.opts.MaxRows, "daily")
	for rows.Next() {
		vals := make([]string, len(n.by))
		var day string
		var v float64
		dest := make([]any, 0, len(vals)+2)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(append(dest, &day, &v)...); err != nil {
			return nil, nil, fmt.Errorf("cannot read daily row: %w", err)
		}
		i, ok := index[day]
		if !ok {
			continue // cannot happen: the WHERE bounds the days
		}
		s, err := acc.group(vals)
		if err != nil {
			return nil, nil, err
		}
		s.Values[i] += v
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("cannot read daily rows: %w", err)
	}
	for _, s := range acc.series() {
		out = append(out, DailySeries{Group: s.Group, Values: s.Values})
	}
	return days, out, nil
}

// dayStart is the start of t's calendar day in loc.
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// wholeHourOffsets reports whether loc's UTC offset is a whole number of
// hours at every instant of [from, to) (checked at each transition).
func wholeHourOffsets(loc *time.Location, from, to time.Time) bool {
	for t := from; t.Before(to); {
		_, off := t.In(loc).Zone()
		if off%3600 != 0 {
			return false
		}
		_, end := t.In(loc).ZoneBounds()
		if end.IsZero() {
			break
		}
		t = end
	}
	return true
}

// zoneName is loc's IANA name as ClickHouse knows it, checked to be a
// plain name (it is spliced into SQL).
func zoneName(loc *time.Location) (string, error) {
	name := loc.String()
	if name == "Local" || name == "" {
		return "", fmt.Errorf("time zone must be an IANA name such as Europe/Berlin, not the machine's local zone")
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+') {
			return "", fmt.Errorf("time zone %q is not an IANA name", name)
		}
	}
	return name, nil
}
