package analytics

import (
	"context"
	"fmt"
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

// metricExpr is each metric's merge expression over the state tables.
var metricExpr = map[Metric]string{
	MetricCost:         "toFloat64(sumMerge(cost_usd))",
	MetricRequests:     "toFloat64(sumMerge(requests))",
	MetricInputTokens:  "toFloat64(sumMerge(input_tokens))",
	MetricOutputTokens: "toFloat64(sumMerge(output_tokens))",
	MetricTokens:       "toFloat64(sumMerge(input_tokens) + sumMerge(output_tokens))",
}

// orderExpr is each metric's exact merge expression, to order groups by.
var orderExpr = map[Metric]string{
	MetricCost:         "sumMerge(cost_usd)",
	MetricRequests:     "sumMerge(requests)",
	MetricInputTokens:  "sumMerge(input_tokens)",
	MetricOutputTokens: "sumMerge(output_tokens)",
	MetricTokens:       "sumMerge(input_tokens) + sumMerge(output_tokens)",
}

// ParseMetric returns the metric named s ("" is cost), or an error naming
// the valid ones.
func ParseMetric(s string) (Metric, error) {
	if s == "" {
		return MetricCost, nil
	}
	if _, ok := metricExpr[Metric(s)]; ok {
		return Metric(s), nil
	}
	return "", fmt.Errorf("unknown metric %q: want cost, requests, input_tokens, output_tokens or tokens", s)
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
	expr, ok := metricExpr[dq.Metric]
	if !ok {
		return nil, nil, fmt.Errorf("unknown metric %q", dq.Metric)
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
