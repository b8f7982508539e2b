package alerts

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// History is what LoadHistory read for a backtest: each rule's usage in
// its scope, grouped by the dimensions the rule reads, as a Script of its
// own. Evaluate answers each rule from its Script; asked directly, without
// a rule, History's Source methods fail.
type History struct {
	rules map[string]*Script
}

var _ Source = (*History)(nil)

var errHistoryNoRule = errors.New("a backtest history answers each rule from its own usage: evaluate it with alerts.Evaluate")

// Usage fails: see History.
func (h *History) Usage(context.Context, analytics.UsageQuery) ([]analytics.UsageRow, error) {
	return nil, errHistoryNoRule
}

// Series fails: see History.
func (h *History) Series(context.Context, analytics.SeriesQuery) (analytics.SeriesResult, error) {
	return analytics.SeriesResult{}, errHistoryNoRule
}

// Growth fails: see History.
func (h *History) Growth(context.Context, analytics.GrowthQuery) ([]analytics.GrowthRow, error) {
	return nil, errHistoryNoRule
}

// Forecast fails: see History.
func (h *History) Forecast(context.Context, analytics.ForecastQuery) ([]analytics.ForecastRow, error) {
	return nil, errHistoryNoRule
}

// SLO fails: see History.
func (h *History) SLO(context.Context, analytics.SLOQuery) ([]analytics.SLORow, error) {
	return nil, errHistoryNoRule
}

// Rule returns the Script rule name is answered from; nil for a rule the
// history was not read for.
func (h *History) Rule(name string) *Script { return h.rules[name] }

// sourceFor is the Script of r (empty for a rule not read).
func (h *History) sourceFor(r *Rule) Source {
	if s := h.rules[r.Name]; s != nil {
		return s
	}
	return NewScript()
}

// need is what one rule reads of the history.
type need struct {
	// dims are the dimensions it groups or filters by (by, scope, an
	// anomaly's contributors), in scopeDims order.
	dims []analytics.Dim
	// where is its scope.
	where map[analytics.Dim][]string
	// latency: a latency rule, which reads the timed calls and either the
	// calls over bounds (an SLO) or, over threshold ms, a percentile.
	latency    bool
	bounds     []float64
	percentile float64
	threshold  float64
}

func needOf(r *Rule) need {
	n := need{where: r.Scope}
	add := func(ds ...analytics.Dim) {
		for _, d := range ds {
			if !slices.Contains(n.dims, d) {
				n.dims = append(n.dims, d)
			}
		}
	}
	add(r.By...)
	for d := range r.Scope {
		add(d)
	}
	switch s := r.spec.(type) {
	case *AnomalySpec:
		add(s.ContributorsBy...)
	case *LatencySpec:
		n.latency = true
		if s.SLO != nil {
			n.bounds = []float64{s.SLO.ThresholdMs}
		} else {
			n.percentile, n.threshold = s.Percentile, s.ThresholdMs
		}
	}
	slices.SortFunc(n.dims, func(a, b analytics.Dim) int { return slices.Index(scopeDims, a) - slices.Index(scopeDims, b) })
	return n
}

// key identifies the rules that can share one Script: the same
// dimensions and scope, and for latency rules the same form (an SLO's
// bounds are collected; a percentile over a threshold is its own).
func (n need) key() string {
	var b strings.Builder
	fmt.Fprint(&b, n.latency, n.bounds != nil, n.percentile, n.threshold, n.dims)
	for _, d := range slices.Sorted(maps.Keys(n.where)) {
		vs := slices.Clone(n.where[d])
		slices.Sort(vs)
		fmt.Fprintf(&b, "\x00%s=%q", d, vs)
	}
	return b.String()
}

// match reports whether g is in the scope.
func (n need) match(g map[analytics.Dim]string) bool {
	for d, vs := range n.where {
		if !slices.Contains(vs, g[d]) {
			return false
		}
	}
	return true
}

// LoadHistory reads what cfg's rules need to be replayed over [from, to)
// (a History for Backtest): the hourly usage from 30 days before from
// (anomaly baselines, latency and error windows, budgets) and the daily
// usage (UTC days) of the days before that which forecasts, growth
// trends and anomaly rules (their groups' first usage) look back on. The
// backtest then evaluates in memory; windows shorter than an hour see
// their hour's rates, and a latency percentile over several hours is the
// highest hourly one.
//
// Each rule sees its own usage: the calls in its scope, summed per group
// of the dimensions it reads, so its hourly latency percentiles are those
// of its groups (what `alerts run` asks for an hour) and its replay sums
// few series. The sums of all rules but the latency ones come from one
// query without histograms, grouped by the dimensions any of them reads;
// each latency rule (or rules alike) reads its scope and groups with the
// latency histogram, never the TTFT one. The queries run concurrently.
func LoadHistory(ctx context.Context, q *analytics.Querier, cfg *Config, from, to time.Time) (*History, error) {
	back := 30 // days of hourly data before from
	daily := 0 // days of daily data before that
	for _, r := range cfg.Rules {
		switch s := r.spec.(type) {
		case *ForecastSpec:
			h := s.HistoryDays
			if h == 0 {
				h = 91
			}
			daily = max(daily, h+40-back)
		case *GrowthSpec:
			w := max(s.WindowDays, 28)
			daily = max(daily, w+1-back)
		case *AnomalySpec:
			// The groups' first usage: the UTC days from
			// anomalyLookbackDays before the oldest baseline week (a
			// day for its span, one for a change of the clocks).
			daily = max(daily, 7*s.Weeks+anomalyLookbackDays+2-back)
		}
	}
	hourFrom := from.UTC().Truncate(24*time.Hour).AddDate(0, 0, -back)
	type span struct {
		start, end time.Time
		step       time.Duration
	}
	var spans []span
	for _, s := range []span{{hourFrom.AddDate(0, 0, -daily), hourFrom, 24 * time.Hour}, {hourFrom, to, time.Hour}} {
		if s.start.Before(s.end) {
			spans = append(spans, s)
		}
	}

	// The rules that read alike share a Script.
	type set struct {
		need
		script *Script
	}
	h := &History{rules: map[string]*Script{}}
	var sums, lats []*set
	byKey := map[string]*set{}
	var union []analytics.Dim // the dimensions of sums
	for _, r := range cfg.Rules {
		n := needOf(r)
		s := byKey[n.key()]
		if s == nil {
			s = &set{need: n, script: NewScript()}
			byKey[n.key()] = s
			if n.latency {
				lats = append(lats, s)
			} else {
				sums = append(sums, s)
				for _, d := range n.dims {
					if !slices.Contains(union, d) {
						union = append(union, d)
					}
				}
			}
		}
		for _, b := range n.bounds {
			if !slices.Contains(s.bounds, b) {
				s.bounds = append(s.bounds, b)
			}
		}
		h.rules[r.Name] = s.script
	}
	slices.SortFunc(union, func(a, b analytics.Dim) int { return slices.Index(scopeDims, a) - slices.Index(scopeDims, b) })

	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(3)
	unionRows := make([][]analytics.StepRow, len(spans))
	if len(sums) > 0 {
		for i, sp := range spans {
			eg.Go(func() error {
				rows, err := q.UsageStepsWith(ectx, analytics.UsageQuery{From: sp.start, To: sp.end, By: union, NoLatency: true}, sp.step,
					analytics.StepOptions{SumsOnly: true})
				unionRows[i] = rows
				return err
			})
		}
	}
	for _, s := range lats {
		for _, sp := range spans {
			eg.Go(func() error { return loadLatency(ectx, q, s.script, s.need, sp.start, sp.end, sp.step) })
		}
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	// Each rule's sums, from the rows of all their dimensions.
	type acc struct {
		g             map[analytics.Dim]string
		at            time.Time
		cost          pricing.Pico
		req, err, unp uint64
	}
	for i, sp := range spans {
		for _, s := range sums {
			groups := map[string]*acc{}
			var order []string
			var kb strings.Builder
			for _, r := range unionRows[i] {
				if !s.match(r.Group) {
					continue
				}
				kb.Reset()
				kb.WriteString(strconv.FormatInt(r.Start.Unix(), 10))
				for _, d := range s.dims {
					kb.WriteByte(0)
					kb.WriteString(r.Group[d])
				}
				a := groups[kb.String()]
				if a == nil {
					g := make(map[analytics.Dim]string, len(s.dims))
					for _, d := range s.dims {
						g[d] = r.Group[d]
					}
					a = &acc{g: g, at: r.Start}
					groups[kb.String()] = a
					order = append(order, kb.String())
				}
				a.cost = a.cost.Add(r.CostUSD)
				a.req += r.Requests
				a.err += r.Errors
				a.unp += r.UnpricedRequests
			}
			for _, k := range order {
				a := groups[k]
				p := Point{Cost: a.cost.Float64(), Requests: float64(a.req), Errors: float64(a.err), Unpriced: float64(a.unp)}
				if err := s.script.AddSpan(a.g, a.at, sp.step, p); err != nil {
					return nil, fmt.Errorf("cannot hold the history: %w", err)
				}
			}
		}
	}
	return h, nil
}

// loadLatency reads a latency rule's usage of [start, end) into s, with
// as little of the latency histograms as the rule needs: an SLO reads the
// calls over its bounds, which ClickHouse counts without merging them
// (analytics.StepOptions.OverMs); a percentile over a threshold T merges
// only the buckets above T/1.05 (StepOptions.TailMs), at least one bucket
// below T. A percentile above T is then the exact one, and one that is
// not is reported as that bucket's value, still below T: the condition
// holds exactly where it would with the whole histograms, and every value
// that fires is exact.
func loadLatency(ctx context.Context, q *analytics.Querier, s *Script, n need, start, end time.Time, step time.Duration) error {
	uq := analytics.UsageQuery{From: start, To: end, By: n.dims, Where: n.where, NoLatency: true}
	o := analytics.StepOptions{OverMs: n.bounds, SumsOnly: true}
	if n.threshold > 0 {
		uq.NoLatency, uq.NoTTFT, o.TailMs = false, true, n.threshold/1.05
	}
	rows, err := q.UsageStepsWith(ctx, uq, step, o)
	if err != nil {
		return err
	}
	for i := range rows {
		r := &rows[i]
		p := Point{Cost: r.CostUSD.Float64(), Requests: float64(r.Requests), Errors: float64(r.Errors),
			Unpriced: float64(r.UnpricedRequests), Timed: float64(r.Timed),
			Latency: Latencies{P50: r.Latency.P50, P90: r.Latency.P90, P95: r.Latency.P95, P99: r.Latency.P99, P999: r.Latency.P999}}
		if len(n.bounds) > 0 {
			p.SlowAbove = make(map[float64]float64, len(n.bounds))
			for j, b := range n.bounds {
				p.SlowAbove[b] = float64(r.Over[j])
			}
		}
		if err := s.AddSpan(r.Group, r.Start, step, p); err != nil {
			return fmt.Errorf("cannot hold the history: %w", err)
		}
	}
	return nil
}
