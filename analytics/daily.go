package analytics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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
// UTC are read from usage_1d, days in other zones from usage_1h. In a zone
// whose midnight falls inside a UTC hour (Asia/Kolkata, UTC+5:30) that hour
// is split at midnight from its usage_1m rows; where retention no longer
// keeps them (older than --keep-minutes, 35 days by default) it counts
// whole for the day it starts in: such a day runs from the offset's odd
// minutes past midnight to the same time the next day (in Kolkata 00:30 to
// 00:30), each call counted on one day — for the calls of the first day's
// first half hour, the day before the range.
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
	// UTC days are usage_1d's rows. In another zone every hour of usage_1h
	// counts for the day it starts in; where a day starts inside a UTC
	// hour (offsets such as +5:30, +5:45, -3:30) that hour is split at
	// midnight from its usage_1m rows, or, for a group with none (retention
	// no longer keeps the minutes), counted whole for the day it starts in.
	table := warehouse.Day
	var edges []time.Time
	if loc != time.UTC {
		table = warehouse.Hour
		edges = splitHours(days, end)
	}
	dayExpr := "toString(toDate(ts, '" + zone + "'))"
	bucket, inEdges := dayExpr, ""
	if len(edges) > 0 {
		inEdges = timeList(edges)
		bucket = "concat(" + dayExpr + ", if(ts IN " + inEdges + ", '" + edgeMark + "', ''))"
	}
	index := make(map[string]int, len(days))
	for i, d := range days {
		index[d.Format(time.DateOnly)] = i
	}
	acc := newSeriesAcc(n.by, len(days), q.opts.MaxRows, "daily")
	edgeOf := make(map[string]time.Time, len(edges)) // the edge hour starting in a day
	for _, h := range edges {
		edgeOf[h.In(loc).Format(time.DateOnly)] = h
	}
	type groupHour struct {
		s    *GroupSeries
		hour int64
	}
	whole := map[groupHour]float64{}    // an edge hour's usage_1h value
	split := map[groupHour][]dayValue{} // its usage_1m values by day
	read := func(table warehouse.Table, bucket string, and []string, row func(s *GroupSeries, bucket string, v float64) error) error {
		query, args := bucketSQL(q.w.Database(), table, n, bucket, expr, and...)
		rows, err := q.w.Conn().Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("cannot query daily %s in [%s, %s]: %w", dq.Metric, first.Format(time.DateOnly), last.Format(time.DateOnly), err)
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]string, len(n.by))
			var b string
			var v float64
			dest := make([]any, 0, len(vals)+2)
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(append(dest, &b, &v)...); err != nil {
				return fmt.Errorf("cannot read daily row: %w", err)
			}
			s, err := acc.group(vals)
			if err != nil {
				return err
			}
			if err := row(s, b, v); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("cannot read daily rows: %w", err)
		}
		return nil
	}
	err = read(table, bucket, nil, func(s *GroupSeries, b string, v float64) error {
		if day, ok := strings.CutSuffix(b, edgeMark); ok {
			if h, ok := edgeOf[day]; ok {
				whole[groupHour{s, h.Unix()}] += v
			}
			return nil
		}
		if i, ok := index[b]; ok { // always: the WHERE bounds the days
			s.Values[i] += v
		}
		return nil
	})
	if err == nil && len(edges) > 0 {
		err = read(warehouse.Minute, "concat(toString(toUInt32(toStartOfHour(ts))), ' ', "+dayExpr+")",
			[]string{"toStartOfHour(ts) IN " + inEdges}, func(s *GroupSeries, b string, v float64) error {
				hour, day, _ := strings.Cut(b, " ")
				h, err := strconv.ParseInt(hour, 10, 64)
				if err != nil {
					return fmt.Errorf("cannot read daily row: hour %q: %w", hour, err)
				}
				k := groupHour{s, h}
				split[k] = append(split[k], dayValue{day, v})
				return nil
			})
	}
	if err != nil {
		return nil, nil, err
	}
	// Edge hours in order, each group's in the order of its days, so that
	// the sums come out the same in every run.
	for _, key := range acc.order {
		s := acc.groups[key]
		for _, h := range edges {
			k := groupHour{s, h.Unix()}
			if dvs, ok := split[k]; ok {
				slices.SortFunc(dvs, func(a, b dayValue) int { return strings.Compare(a.day, b.day) })
				for _, dv := range dvs {
					if i, ok := index[dv.day]; ok { // always: the WHERE bounds the minutes
						s.Values[i] += dv.v
					}
				}
			} else if v, ok := whole[k]; ok {
				if i, ok := index[h.In(loc).Format(time.DateOnly)]; ok {
					s.Values[i] += v
				}
			}
		}
	}
	for _, s := range acc.series() {
		out = append(out, DailySeries{Group: s.Group, Values: s.Values})
	}
	return days, out, nil
}

// edgeMark marks, in Daily's usage_1h query, the bucket of a day's edge
// hour (one that a midnight of the zone splits).
const edgeMark = "*"

// dayValue is a metric's value on a day (YYYY-MM-DD).
type dayValue struct {
	day string
	v   float64
}

// splitHours returns the UTC hours, in order, that hold the start of one
// of days or end inside them (not at their start): those a zone whose
// offset is not a whole number of hours splits between two days.
func splitHours(days []time.Time, end time.Time) []time.Time {
	var out []time.Time
	for _, b := range append(days[:len(days):len(days)], end) {
		if h := b.UTC().Truncate(time.Hour); !h.Equal(b) {
			out = append(out, h)
		}
	}
	return out
}

// timeList is ts as a SQL list of UTC DateTimes, "(toDateTime(…), …)".
func timeList(ts []time.Time) string {
	var sb strings.Builder
	sb.WriteString("(")
	for i, t := range ts {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "toDateTime(%d, 'UTC')", t.Unix())
	}
	sb.WriteString(")")
	return sb.String()
}

// dayStart is the start of t's calendar day in loc.
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
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
