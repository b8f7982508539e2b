package alerts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// Point is the usage of one group in one step of a scripted series.
type Point struct {
	Cost     float64 // USD
	Requests float64 // calls
	Errors   float64 // calls with status error
	Unpriced float64 // calls without a price
	// Timed are the calls that reported latency; Slow those of them over
	// the latency objectives' bound (the SLO's bad calls).
	Timed, Slow float64
	// SlowAbove, when set, holds the slow calls per latency bound in ms
	// (a query for another bound reads Slow).
	SlowAbove map[float64]float64
	// Latency holds the step's latency percentiles; a query over several
	// steps reports the highest of each (an upper bound: percentiles
	// cannot be merged without the histograms).
	Latency Latencies
}

// Latencies are latency percentiles in milliseconds.
type Latencies struct{ P50, P90, P95, P99, P999 float64 }

// MaxScriptPoints bounds the points of one Script.
const MaxScriptPoints = 2_000_000

// Script is a Source over scripted series: `alerts test` and the package's
// tests evaluate rules against it without ClickHouse. Usage, Series, SLO,
// Growth and Forecast answer as the query layer does, from the points
// (Growth and Forecast through analytics/growth on daily sums in the
// query's zone). A point covers [At, At+Step); a query's range takes the
// points that start in it.
type Script struct {
	series map[string]*scriptSeries
	points int
	keys   []string // sorted keys of series; nil after an Add
	// dailyMemo caches daily sums (forecasts and growth ask the same days
	// at every evaluation of a day); cleared by Add.
	dailyMemo map[string]dailyResult
}

type dailyResult struct {
	days   []time.Time
	series []analytics.DailySeries
}

type scriptSeries struct {
	group map[analytics.Dim]string
	at    []int64 // unix seconds, ascending
	span  []int64 // seconds the point covers; 0: an instant
	pts   []Point
	dirty bool
	// maxSpan is the longest span, so a range also looks that far back.
	maxSpan int64
}

// NewScript returns an empty script.
func NewScript() *Script { return &Script{series: map[string]*scriptSeries{}} }

// Add adds p at at to the group's series (tenant, application, provider,
// model; missing dimensions are ""). Points at the same time add up.
func (s *Script) Add(g map[analytics.Dim]string, at time.Time, p Point) error {
	return s.AddSpan(g, at, 0, p)
}

// AddSpan adds p as the usage of [at, at+span): a range holding part of
// it takes that part of its counts and cost (the rates of the span), and
// its latency percentiles.
func (s *Script) AddSpan(g map[analytics.Dim]string, at time.Time, span time.Duration, p Point) error {
	if s.points >= MaxScriptPoints {
		return fmt.Errorf("a script holds at most %d points", MaxScriptPoints)
	}
	full := map[analytics.Dim]string{}
	for _, d := range scopeDims {
		full[d] = g[d]
	}
	for d := range g {
		if !slices.Contains(scopeDims, d) {
			return fmt.Errorf("unknown dimension %q in a series: want tenant, application, provider or model", d)
		}
	}
	k := fmt.Sprint(full[analytics.DimTenant], "\x00", full[analytics.DimApplication], "\x00", full[analytics.DimProvider], "\x00", full[analytics.DimModel])
	ser := s.series[k]
	if ser == nil {
		ser = &scriptSeries{group: full}
		s.series[k] = ser
	}
	ser.at = append(ser.at, at.Unix())
	ser.span = append(ser.span, int64(span/time.Second))
	ser.maxSpan = max(ser.maxSpan, int64(span/time.Second))
	ser.pts = append(ser.pts, p)
	ser.dirty = true
	s.points++
	s.keys, s.dailyMemo = nil, nil
	return nil
}

func (ser *scriptSeries) sort() {
	if !ser.dirty {
		return
	}
	idx := make([]int, len(ser.at))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ser.at[idx[a]] < ser.at[idx[b]] })
	at, span, pts := make([]int64, len(idx)), make([]int64, len(idx)), make([]Point, len(idx))
	for i, j := range idx {
		at[i], span[i], pts[i] = ser.at[j], ser.span[j], ser.pts[j]
	}
	ser.at, ser.span, ser.pts, ser.dirty = at, span, pts, false
}

// each calls fn for every point of a matching series in [from, to):
// instants that fall in it with weight 1, spans with the share of them
// that overlaps it.
func (s *Script) each(from, to time.Time, where map[analytics.Dim][]string, fn func(g map[analytics.Dim]string, at int64, w float64, p *Point)) {
	s.eachSpan(from, to, where, func(g map[analytics.Dim]string, at, _ int64, w float64, p *Point) { fn(g, at, w, p) })
}

// eachSpan is each, also passing the point's own span in seconds.
func (s *Script) eachSpan(from, to time.Time, where map[analytics.Dim][]string, fn func(g map[analytics.Dim]string, at, span int64, w float64, p *Point)) {
	if s.keys == nil {
		for k := range s.series {
			s.keys = append(s.keys, k)
		}
		sort.Strings(s.keys)
	}
	lo, hi := from.Unix(), to.Unix()
	for _, k := range s.keys {
		ser := s.series[k]
		match := true
		for d, vs := range where {
			if !slices.Contains(vs, ser.group[d]) {
				match = false
			}
		}
		if !match {
			continue
		}
		ser.sort()
		i := sort.Search(len(ser.at), func(i int) bool { return ser.at[i] > lo-ser.maxSpan-1 })
		for ; i < len(ser.at) && ser.at[i] < hi; i++ {
			a, sp := ser.at[i], ser.span[i]
			if sp == 0 {
				if a >= lo {
					fn(ser.group, a, 0, 1, &ser.pts[i])
				}
				continue
			}
			if ov := min(a+sp, hi) - max(a, lo); ov > 0 {
				fn(ser.group, a, sp, float64(ov)/float64(sp), &ser.pts[i])
			}
		}
	}
}

func sub(g map[analytics.Dim]string, by []analytics.Dim) (map[analytics.Dim]string, string) {
	out := make(map[analytics.Dim]string, len(by))
	k := ""
	for _, d := range by {
		out[d] = g[d]
		k += g[d] + "\x00"
	}
	return out, k
}

func round(v float64) uint64 { return uint64(math.Round(v)) }

func pico(v float64) pricing.Pico {
	p, err := pricing.ParsePico(strconv.FormatFloat(v, 'f', 12, 64))
	if err != nil {
		return pricing.Pico{}
	}
	return p
}

// Usage sums the points of [From, To) per group of By.
func (s *Script) Usage(_ context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error) {
	if uq.To.IsZero() || !uq.From.Before(uq.To) {
		return nil, fmt.Errorf("scripted usage needs From before To, got [%s, %s)", uq.From, uq.To)
	}
	type acc struct {
		row                        analytics.UsageRow
		cost, req, err, unp, timed float64
		seen                       bool
	}
	groups := map[string]*acc{}
	var order []string
	s.eachSeries(uq.Where, func(ser *scriptSeries) {
		var a acc
		s.points1(ser, uq.From.Unix(), uq.To.Unix(), func(w float64, p *Point) {
			a.seen = true
			a.cost += w * p.Cost
			a.req += w * p.Requests
			a.err += w * p.Errors
			a.unp += w * p.Unpriced
			a.timed += w * p.Timed
			l := &a.row.Latency
			l.P50, l.P90, l.P95 = math.Max(l.P50, p.Latency.P50), math.Max(l.P90, p.Latency.P90), math.Max(l.P95, p.Latency.P95)
			l.P99, l.P999 = math.Max(l.P99, p.Latency.P99), math.Max(l.P999, p.Latency.P999)
		})
		if !a.seen {
			return
		}
		sg, k := sub(ser.group, uq.By)
		g := groups[k]
		if g == nil {
			g = &acc{row: analytics.UsageRow{Group: sg}}
			groups[k] = g
			order = append(order, k)
		}
		g.cost, g.req, g.err, g.unp, g.timed = g.cost+a.cost, g.req+a.req, g.err+a.err, g.unp+a.unp, g.timed+a.timed
		l, m := &g.row.Latency, a.row.Latency
		l.P50, l.P90, l.P95 = math.Max(l.P50, m.P50), math.Max(l.P90, m.P90), math.Max(l.P95, m.P95)
		l.P99, l.P999 = math.Max(l.P99, m.P99), math.Max(l.P999, m.P999)
	})
	out := make([]analytics.UsageRow, 0, len(order))
	for _, k := range order {
		a := groups[k]
		a.row.CostUSD = pico(a.cost)
		a.row.Requests, a.row.Errors, a.row.UnpricedRequests = round(a.req), round(a.err), round(a.unp)
		a.row.Latency.Count = round(a.timed)
		if uq.NoLatency {
			a.row.Latency = analytics.Percentiles{} // as the query layer answers
		}
		out = append(out, a.row)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CostUSD.Float64() > out[j].CostUSD.Float64() })
	return out, nil
}

// eachSeries calls fn for every series matching where, in key order.
func (s *Script) eachSeries(where map[analytics.Dim][]string, fn func(ser *scriptSeries)) {
	if s.keys == nil {
		for k := range s.series {
			s.keys = append(s.keys, k)
		}
		sort.Strings(s.keys)
	}
	for _, k := range s.keys {
		ser := s.series[k]
		match := true
		for d, vs := range where {
			if !slices.Contains(vs, ser.group[d]) {
				match = false
			}
		}
		if match {
			ser.sort()
			fn(ser)
		}
	}
}

// points1 calls fn for the points of ser in [lo, hi) (unix seconds) with
// their weights, as each does.
func (s *Script) points1(ser *scriptSeries, lo, hi int64, fn func(w float64, p *Point)) {
	i := sort.Search(len(ser.at), func(i int) bool { return ser.at[i] > lo-ser.maxSpan-1 })
	for ; i < len(ser.at) && ser.at[i] < hi; i++ {
		a, sp := ser.at[i], ser.span[i]
		if sp == 0 {
			if a >= lo {
				fn(1, &ser.pts[i])
			}
			continue
		}
		if ov := min(a+sp, hi) - max(a, lo); ov > 0 {
			fn(float64(ov)/float64(sp), &ser.pts[i])
		}
	}
}

// SLO counts the scripted Timed and Slow calls (the threshold is the
// script's: Slow is given).
func (s *Script) SLO(_ context.Context, sq analytics.SLOQuery) ([]analytics.SLORow, error) {
	groups := map[string]*analytics.SLORow{}
	var order []string
	sums := map[string]*[4]float64{}
	s.each(sq.From, sq.To, sq.Where, func(g map[analytics.Dim]string, _ int64, w float64, p *Point) {
		sg, k := sub(g, sq.By)
		r := groups[k]
		if r == nil {
			r = &analytics.SLORow{Group: sg}
			groups[k] = r
			sums[k] = &[4]float64{}
			order = append(order, k)
		}
		slow := p.Slow
		if v, ok := p.SlowAbove[sq.ThresholdMs]; ok {
			slow = v
		}
		c := sums[k]
		c[0] += w * p.Requests
		c[1] += w * p.Errors
		c[2] += w * p.Timed
		c[3] += w * slow
	})
	out := make([]analytics.SLORow, 0, len(order))
	for _, k := range order {
		r, c := groups[k], sums[k]
		r.Requests, r.Errors, r.Timed, r.Over = round(c[0]), round(c[1]), round(c[2]), round(c[3])
		out = append(out, *r)
	}
	return out, nil
}

// Series sums the points per step and group (cost or requests).
func (s *Script) Series(_ context.Context, sq analytics.SeriesQuery) (analytics.SeriesResult, error) {
	step := sq.Step
	if step == 0 {
		step = time.Hour
	}
	res := analytics.SeriesResult{Metric: sq.Metric, Step: step, From: sq.From.UTC().Truncate(step)}
	to := sq.To.UTC().Truncate(step)
	if to.Before(sq.To) {
		to = to.Add(step)
	}
	res.To = to
	n := int(res.To.Sub(res.From) / step)
	if n <= 0 || n > analytics.MaxSeriesSteps {
		return res, fmt.Errorf("scripted series of %d steps", n)
	}
	for i := range n {
		res.Steps = append(res.Steps, res.From.Add(time.Duration(i)*step))
	}
	if step == 24*time.Hour && sq.Metric != analytics.MetricRequests {
		// UTC days of cost: the daily sums, which an anomaly rule asks
		// alike at every evaluation of a day (its groups' first usage).
		_, daily := s.daily(res.From, res.To.Add(-step), time.UTC, sq.By, sq.Where)
		for _, d := range daily {
			res.Series = append(res.Series, analytics.GroupSeries{Group: d.Group, Values: slices.Clone(d.Values)})
		}
		return res, nil
	}
	idx := map[string]int{}
	st, lo, hi := int64(step/time.Second), res.From.Unix(), res.To.Unix()
	s.eachSeries(sq.Where, func(ser *scriptSeries) {
		j := -1 // the group's series, found at the first point in range
		i := sort.Search(len(ser.at), func(i int) bool { return ser.at[i] > lo-ser.maxSpan-1 })
		for ; i < len(ser.at) && ser.at[i] < hi; i++ {
			a, sp := ser.at[i], ser.span[i]
			if sp == 0 && a < lo || sp > 0 && min(a+sp, hi)-max(a, lo) <= 0 {
				continue
			}
			if j < 0 {
				sg, k := sub(ser.group, sq.By)
				var ok bool
				if j, ok = idx[k]; !ok {
					j = len(res.Series)
					idx[k] = j
					res.Series = append(res.Series, analytics.GroupSeries{Group: sg, Values: make([]float64, n)})
				}
			}
			p := &ser.pts[i]
			v := p.Cost
			if sq.Metric == analytics.MetricRequests {
				v = p.Requests
			}
			vals := res.Series[j].Values
			if sp == 0 {
				vals[(a-lo)/st] += v
				continue
			}
			// Spread the span over the steps it overlaps.
			for t := max(a, lo) - lo; t < min(a+sp, hi)-lo; t = (t/st + 1) * st {
				end := min((t/st+1)*st, a+sp-lo, hi-lo)
				vals[t/st] += v * float64(end-t) / float64(sp)
			}
		}
	})
	return res, nil
}

// daily is the cost per day of [first, last] in loc, per group.
func (s *Script) daily(first, last time.Time, loc *time.Location, by []analytics.Dim, where map[analytics.Dim][]string) ([]time.Time, []analytics.DailySeries) {
	key := fmt.Sprint(first.Unix(), last.Unix(), loc.String(), by, where)
	if r, ok := s.dailyMemo[key]; ok {
		return r.days, r.series
	}
	days, out := s.dailyUncached(first, last, loc, by, where)
	if s.dailyMemo == nil || len(s.dailyMemo) > 64 {
		s.dailyMemo = map[string]dailyResult{}
	}
	s.dailyMemo[key] = dailyResult{days, out}
	return days, out
}

func (s *Script) dailyUncached(first, last time.Time, loc *time.Location, by []analytics.Dim, where map[analytics.Dim][]string) ([]time.Time, []analytics.DailySeries) {
	var days []time.Time
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	idx := map[string]int{}
	var out []analytics.DailySeries
	for i, d := range days {
		s.each(d, d.AddDate(0, 0, 1), where, func(g map[analytics.Dim]string, _ int64, w float64, p *Point) {
			sg, k := sub(g, by)
			j, ok := idx[k]
			if !ok {
				j = len(out)
				idx[k] = j
				out = append(out, analytics.DailySeries{Group: sg, Values: make([]float64, len(days))})
			}
			out[j].Values[i] += w * p.Cost
		})
	}
	return days, out
}

func dayOf(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// Growth computes growth.Compute over the scripted daily cost.
func (s *Script) Growth(_ context.Context, gq analytics.GrowthQuery) ([]analytics.GrowthRow, error) {
	loc := gq.Location
	if loc == nil {
		loc = time.UTC
	}
	w := gq.Window
	if w == 0 {
		w = growth.DefaultWindow
	}
	last := dayOf(gq.At, loc).AddDate(0, 0, -1)
	n := max(w, 14)
	days, series := s.daily(last.AddDate(0, 0, -(n-1)), last, loc, gq.By, gq.Where)
	out := make([]analytics.GrowthRow, 0, len(series))
	for _, sr := range series {
		out = append(out, analytics.GrowthRow{Group: sr.Group, Growth: growth.Compute(sr.Values, w), Days: days, Daily: sr.Values})
	}
	return out, nil
}

// Forecast computes growth.ForecastPeriod over the scripted daily cost as
// analytics.Querier.Forecast does over the rollups, so that `alerts test`
// and `alerts backtest` forecast what `alerts run` forecasts: every group
// with usage in the history or in the period so far (a group whose first
// day is today too), its history from its first day with usage
// (analytics.FromFirstUse), the period's spend before today as the
// forecast's input, and today's spend so far as the floor of every total
// (growth.ForecastOptions.SpentToday): analytics.ForecastRows, which the
// Querier calls too. Cost only; Horizon (days) as the Querier's,
// HorizonHours not.
func (s *Script) Forecast(ctx context.Context, fq analytics.ForecastQuery) ([]analytics.ForecastRow, error) {
	if fq.Metric != "" && fq.Metric != analytics.MetricCost {
		return nil, fmt.Errorf("a script forecasts cost, not %s", fq.Metric)
	}
	if fq.HorizonHours != 0 {
		return nil, fmt.Errorf("a script forecasts days, not hours")
	}
	loc := fq.Location
	if loc == nil {
		loc = time.UTC
	}
	if fq.Period == "" {
		fq.Period = analytics.PeriodMonth
	}
	hist := fq.History
	if hist == 0 {
		hist = 91
	}
	if hist < growth.MinForecastHistory || hist > growth.MaxHistory {
		return nil, fmt.Errorf("forecast history of %d days: want %d to %d", hist, growth.MinForecastHistory, growth.MaxHistory)
	}
	if fq.Horizon < 0 || fq.Horizon > growth.MaxHorizon {
		return nil, fmt.Errorf("forecast horizon of %d days: want 1 to %d", fq.Horizon, growth.MaxHorizon)
	}
	start, end := fq.Period.Bounds(fq.At, loc)
	today := dayOf(fq.At, loc)
	if fq.Horizon > 0 {
		start, end = today, today.AddDate(0, 0, fq.Horizon)
	}
	// History: the complete days before today.
	_, series := s.daily(today.AddDate(0, 0, -hist), today.AddDate(0, 0, -1), loc, fq.By, fq.Where)
	// The period so far, until now (shown, and today's floor) and until
	// the start of today (the forecast's input: today is forecast whole).
	usage := func(from, to time.Time) ([]analytics.UsageRow, error) {
		if !from.Before(to) {
			return nil, nil
		}
		return s.Usage(ctx, analytics.UsageQuery{From: from, To: to, By: fq.By, Where: fq.Where, NoLatency: true})
	}
	toDate, err := usage(start, fq.At)
	if err != nil {
		return nil, err
	}
	beforeToday, err := usage(start, today)
	if err != nil {
		return nil, err
	}
	return analytics.ForecastRows(fq, start, end, today, series, toDate, beforeToday), nil
}
