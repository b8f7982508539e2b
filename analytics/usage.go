package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

// UsageQuery selects usage in the half-open range [From, To) of the rows'
// ts (the start of their minute, hour or day, UTC), grouped by By and
// filtered by Where.
type UsageQuery struct {
	// From is the inclusive start. Required. Sub-second parts round up
	// (ts has whole seconds).
	From time.Time
	// To is the exclusive end; zero means the Querier's Now().
	To time.Time
	// By lists the dimensions to group by, each at most once; none gives a
	// single row of totals.
	By []Dim
	// Where keeps rows whose dimension has one of the listed values: OR
	// within a dimension, AND across dimensions. A listed dimension needs at
	// least one value; "" matches the empty value (e.g. error_type of
	// successful calls).
	Where map[Dim][]string
	// Granularity chooses the tables read; zero is GranularityAuto.
	Granularity Granularity
}

// UsageRow is the usage of one group (or the totals).
type UsageRow struct {
	// Group holds the value of each dimension of the query's By.
	Group map[Dim]string

	Requests          uint64 // calls
	Errors            uint64 // calls with status "error"
	InputTokens       uint64 // all prompt tokens, cached ones included
	CachedInputTokens uint64 // prompt tokens read from cache (part of InputTokens)
	CacheWriteTokens  uint64 // prompt tokens written to cache (part of InputTokens)
	OutputTokens      uint64 // all completion tokens, reasoning included
	ReasoningTokens   uint64 // part of OutputTokens
	UnpricedRequests  uint64 // calls whose model had no price (cost 0)
	// GPUMicros is the accelerator time in microseconds (exact).
	GPUMicros uint64
	// GPUMs is GPUMicros/1000, for display.
	GPUMs float64
	// CostUSD is the exact cost.
	CostUSD pricing.Pico

	// Latency and TTFT summarise the calls that reported latency_ms and
	// ttft_ms respectively.
	Latency, TTFT Percentiles
}

// Percentiles summarise a duration, in milliseconds, over a group's calls.
// When Count is 0 (no call reported it) every other field is 0 and
// Present is false.
type Percentiles struct {
	Count uint64  // calls that reported the duration
	Avg   float64 // exact mean (from the microsecond sum)
	Min   float64 // exact minimum
	Max   float64 // exact maximum
	P50   float64 // median, within 1% (sketch.Alpha)
	P90   float64 // 90th percentile, within 1%
	P99   float64 // 99th percentile, within 1%

	hist *sketch.Histogram // the merged histogram, nil when empty
}

// Present reports whether any call reported the duration.
func (p Percentiles) Present() bool { return p.Count > 0 }

// Quantile returns the value at quantile q (0 ≤ q ≤ 1) in milliseconds,
// within 1% relative error; ok is false when no call reported the
// duration.
func (p Percentiles) Quantile(q float64) (v float64, ok bool) {
	if p.hist == nil {
		return 0, false
	}
	return p.hist.Quantile(q)
}

// Usage returns the usage of uq, one row per group ordered by cost
// (descending) then the group's values; an empty slice when nothing
// matched. It fails on an invalid query, naming the bad value, and when
// there are more groups than Options.MaxRows.
func (q *Querier) Usage(ctx context.Context, uq UsageQuery) ([]UsageRow, error) {
	n, err := normalize(uq, q.opts.Now())
	if err != nil {
		return nil, err
	}
	segs, err := plan(n.from, n.to, n.g)
	if err != nil {
		return nil, err
	}
	query, args := usageSQL(q.w.Database(), n, segs, q.opts.MaxRows+1)
	rows, err := q.w.Conn().Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query usage in [%s, %s): %w", n.from.Format(time.RFC3339), n.to.Format(time.RFC3339), err)
	}
	defer rows.Close()
	out := []UsageRow{}
	for rows.Next() {
		if len(out) == q.opts.MaxRows {
			return nil, fmt.Errorf("usage query has more than %d groups: group by fewer dimensions or filter", q.opts.MaxRows)
		}
		var s scanned
		keys := make([]string, len(n.by))
		dest := make([]any, 0, len(keys)+32)
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		dest = append(dest, s.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("cannot read usage row: %w", err)
		}
		if s.rows == 0 {
			continue // totals over no rows
		}
		r, err := s.row()
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", groupString(n.by, keys), err)
		}
		r.Group = make(map[Dim]string, len(keys))
		for i, d := range n.by {
			r.Group[d] = keys[i]
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read usage rows: %w", err)
	}
	return out, nil
}

// Totals returns the usage of every call in [from, to) as one row (zero
// when nothing matched), reading the tables as GranularityAuto does.
func (q *Querier) Totals(ctx context.Context, from, to time.Time) (UsageRow, error) {
	rows, err := q.Usage(ctx, UsageQuery{From: from, To: to})
	if err != nil || len(rows) == 0 {
		return UsageRow{Group: map[Dim]string{}}, err
	}
	return rows[0], nil
}

// groupString is "tenant=acme model=gpt-4o" for error messages.
func groupString(by []Dim, keys []string) string {
	if len(by) == 0 {
		return "totals"
	}
	parts := make([]string, len(by))
	for i, d := range by {
		parts[i] = fmt.Sprintf("%s=%q", d, keys[i])
	}
	return strings.Join(parts, " ")
}

// scanned is one result row as ClickHouse returns it: count() then
// warehouse.MergeSelect.
type scanned struct {
	rows uint64
	m    warehouse.Merged
}

func (s *scanned) dest() []any { return append([]any{&s.rows}, s.m.Dest()...) }

func (s *scanned) row() (UsageRow, error) {
	if err := s.m.Done(); err != nil {
		return UsageRow{}, err
	}
	r := &s.m.Rollup
	lat, err := percentiles(r.Latency)
	if err != nil {
		return UsageRow{}, fmt.Errorf("latency: %w", err)
	}
	ttft, err := percentiles(r.TTFT)
	if err != nil {
		return UsageRow{}, fmt.Errorf("ttft: %w", err)
	}
	return UsageRow{
		Requests:          r.Requests,
		Errors:            r.Errors,
		InputTokens:       r.InputTokens,
		CachedInputTokens: r.CachedInputTokens,
		CacheWriteTokens:  r.CacheWriteTokens,
		OutputTokens:      r.OutputTokens,
		ReasoningTokens:   r.ReasoningTokens,
		UnpricedRequests:  r.UnpricedRequests,
		GPUMicros:         r.GPUMicros,
		GPUMs:             float64(r.GPUMicros) / 1000,
		CostUSD:           r.Cost,
		Latency:           lat,
		TTFT:              ttft,
	}, nil
}

// percentiles evaluates a merged duration. Min and max carry the sentinels
// +Inf and 0 from rows without samples, so they are trusted only when the
// count is positive; a histogram that disagrees with the count is reported.
func percentiles(d warehouse.Dist) (Percentiles, error) {
	if d.Count == 0 {
		return Percentiles{}, nil
	}
	h, err := sketch.FromArrays(d.HistIdx, d.HistCnt)
	if err != nil {
		return Percentiles{}, err
	}
	if h.Count() != d.Count {
		return Percentiles{}, fmt.Errorf("histogram holds %d samples but the count is %d", h.Count(), d.Count)
	}
	p := Percentiles{
		Count: d.Count,
		Avg:   float64(d.SumMicros) / float64(d.Count) / 1000,
		Min:   d.MinMs,
		Max:   d.MaxMs,
		hist:  h,
	}
	p.P50, _ = h.Quantile(0.50)
	p.P90, _ = h.Quantile(0.90)
	p.P99, _ = h.Quantile(0.99)
	return p, nil
}
