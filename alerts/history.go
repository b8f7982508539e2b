package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// LoadHistory reads what cfg's rules need to be replayed over [from, to)
// into a Script, in two queries: the hourly usage from 30 days before from
// (anomaly baselines, latency and error windows, budgets) and the daily
// usage (UTC days) of the days before that which forecasts and growth
// trends look back on. The backtest then evaluates in memory; windows
// shorter than an hour see their hour's rates, and a latency percentile
// over several hours is the highest hourly one.
func LoadHistory(ctx context.Context, q *analytics.Querier, cfg *Config, from, to time.Time) (*Script, error) {
	var dims []analytics.Dim
	add := func(ds ...analytics.Dim) {
		for _, d := range ds {
			if !slices.Contains(dims, d) {
				dims = append(dims, d)
			}
		}
	}
	back := 30 // days of hourly data before from
	daily := 0 // days of daily data before that
	var bounds []float64
	for _, r := range cfg.Rules {
		add(r.By...)
		for d := range r.Scope {
			add(d)
		}
		switch s := r.spec.(type) {
		case *AnomalySpec:
			add(s.ContributorsBy...)
		case *ForecastSpec:
			h := s.HistoryDays
			if h == 0 {
				h = 91
			}
			daily = max(daily, h+40-back)
		case *GrowthSpec:
			w := max(s.WindowDays, 28)
			daily = max(daily, w+1-back)
		case *LatencySpec:
			if s.SLO != nil && !slices.Contains(bounds, s.SLO.ThresholdMs) {
				bounds = append(bounds, s.SLO.ThresholdMs)
			}
		}
	}
	slices.SortFunc(dims, func(a, b analytics.Dim) int { return slices.Index(scopeDims, a) - slices.Index(scopeDims, b) })
	s := NewScript()
	hourFrom := from.UTC().Truncate(24*time.Hour).AddDate(0, 0, -back)
	load := func(start, end time.Time, step time.Duration) error {
		if !start.Before(end) {
			return nil
		}
		rows, err := q.UsageSteps(ctx, analytics.UsageQuery{From: start, To: end, By: dims}, step)
		if err != nil {
			return err
		}
		for _, r := range rows {
			p := Point{Cost: r.CostUSD.Float64(), Requests: float64(r.Requests), Errors: float64(r.Errors),
				Unpriced: float64(r.UnpricedRequests), Timed: float64(r.Latency.Count),
				Latency: Latencies{P50: r.Latency.P50, P90: r.Latency.P90, P95: r.Latency.P95, P99: r.Latency.P99, P999: r.Latency.P999}}
			if len(bounds) > 0 {
				p.SlowAbove = map[float64]float64{}
				for _, b := range bounds {
					p.SlowAbove[b] = float64(r.Latency.CountAbove(b))
				}
			}
			if err := s.AddSpan(r.Group, r.Start, step, p); err != nil {
				return fmt.Errorf("cannot hold the history: %w", err)
			}
		}
		return nil
	}
	if err := load(hourFrom.AddDate(0, 0, -daily), hourFrom, 24*time.Hour); err != nil {
		return nil, err
	}
	if err := load(hourFrom, to, time.Hour); err != nil {
		return nil, err
	}
	return s, nil
}
