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
	// LatencyMs holds percentiles (50, 90, 95, 99, 99.9) of the step; a
	// query over several steps reports the highest of each (an upper
	// bound: percentiles cannot be merged without the histograms).
	LatencyMs map[float64]float64
}

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
}

type scriptSeries struct {
	group map[analytics.Dim]string
	at    []int64 // unix seconds, ascending
	pts   []Point
	dirty bool
}

// NewScript returns an empty script.
func NewScript() *Script { return &Script{series: map[string]*scriptSeries{}} }

// Add adds p at at to the group's series (tenant, application, provider,
// model; missing dimensions are ""). Points at the same time add up.
func (s *Script) Add(g map[analytics.Dim]string, at time.Time, p Point) error {
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
	ser.pts = append(ser.pts, p)
	ser.dirty = true
	s.points++
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
	at, pts := make([]int64, len(idx)), make([]Point, len(idx))
	for i, j := range idx {
		at[i], pts[i] = ser.at[j], ser.pts[j]
	}
	ser.at, ser.pts, ser.dirty = at, pts, false
}

// each calls fn for every point of a matching series in [from, to).
func (s *Script) each(from, to time.Time, where map[analytics.Dim][]string, fn func(g map[analytics.Dim]string, at int64, p *Point)) {
	keys := make([]string, 0, len(s.series))
	for k := range s.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lo, hi := from.Unix(), to.Unix()
	for _, k := range keys {
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
		i := sort.Search(len(ser.at), func(i int) bool { return ser.at[i] >= lo })
		for ; i < len(ser.at) && ser.at[i] < hi; i++ {
			fn(ser.group, ser.at[i], &ser.pts[i])
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
		row  analytics.UsageRow
		cost float64
	}
	groups := map[string]*acc{}
	var order []string
	s.each(uq.From, uq.To, uq.Where, func(g map[analytics.Dim]string, _ int64, p *Point) {
		sg, k := sub(g, uq.By)
		a := groups[k]
		if a == nil {
			a = &acc{row: analytics.UsageRow{Group: sg}}
			groups[k] = a
			order = append(order, k)
		}
		a.cost += p.Cost
		a.row.Requests += uint64(p.Requests)
		a.row.Errors += uint64(p.Errors)
		a.row.UnpricedRequests += uint64(p.Unpriced)
		a.row.Latency.Count += uint64(p.Timed)
		l := &a.row.Latency
		l.P50, l.P90, l.P95 = math.Max(l.P50, p.LatencyMs[50]), math.Max(l.P90, p.LatencyMs[90]), math.Max(l.P95, p.LatencyMs[95])
		l.P99, l.P999 = math.Max(l.P99, p.LatencyMs[99]), math.Max(l.P999, p.LatencyMs[99.9])
	})
	out := make([]analytics.UsageRow, 0, len(order))
	for _, k := range order {
		a := groups[k]
		a.row.CostUSD = pico(a.cost)
		out = append(out, a.row)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CostUSD.Float64() > out[j].CostUSD.Float64() })
	return out, nil
}

// SLO counts the scripted Timed and Slow calls (the threshold is the
// script's: Slow is given).
func (s *Script) SLO(_ context.Context, sq analytics.SLOQuery) ([]analytics.SLORow, error) {
	groups := map[string]*analytics.SLORow{}
	var order []string
	s.each(sq.From, sq.To, sq.Where, func(g map[analytics.Dim]string, _ int64, p *Point) {
		sg, k := sub(g, sq.By)
		r := groups[k]
		if r == nil {
			r = &analytics.SLORow{Group: sg}
			groups[k] = r
			order = append(order, k)
		}
		r.Requests += uint64(p.Requests)
		r.Errors += uint64(p.Errors)
		r.Timed += uint64(p.Timed)
		r.Over += uint64(p.Slow)
	})
	out := make([]analytics.SLORow, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
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
	idx := map[string]int{}
	s.each(res.From, res.To, sq.Where, func(g map[analytics.Dim]string, at int64, p *Point) {
		sg, k := sub(g, sq.By)
		j, ok := idx[k]
		if !ok {
			j = len(res.Series)
			idx[k] = j
			res.Series = append(res.Series, analytics.GroupSeries{Group: sg, Values: make([]float64, n)})
		}
		v := p.Cost
		if sq.Metric == analytics.MetricRequests {
			v = p.Requests
		}
		res.Series[j].Values[int(time.Unix(at, 0).Sub(res.From)/step)] += v
	})
	return res, nil
}

// daily is the cost per day of [first, last] in loc, per group.
func (s *Script) daily(first, last time.Time, loc *time.Location, by []analytics.Dim, where map[analytics.Dim][]string) ([]time.Time, []analytics.DailySeries) {
	var days []time.Time
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	idx := map[string]int{}
	var out []analytics.DailySeries
	s.each(first, last.AddDate(0, 0, 1), where, func(g map[analytics.Dim]string, at int64, p *Point) {
		sg, k := sub(g, by)
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, analytics.DailySeries{Group: sg, Values: make([]float64, len(days))})
		}
		t := time.Unix(at, 0).In(loc)
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		if i := sort.Search(len(days), func(i int) bool { return !days[i].Before(d) }); i < len(days) {
			out[j].Values[i] += p.Cost
		}
	})
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

// Forecast computes growth.ForecastPeriod over the scripted daily cost.
func (s *Script) Forecast(ctx context.Context, fq analytics.ForecastQuery) ([]analytics.ForecastRow, error) {
	loc := fq.Location
	if loc == nil {
		loc = time.UTC
	}
	hist := fq.History
	if hist == 0 {
		hist = 91
	}
	start, end := fq.Period.Bounds(fq.At, loc)
	today := dayOf(fq.At, loc)
	_, series := s.daily(today.AddDate(0, 0, -hist), today.AddDate(0, 0, -1), loc, fq.By, fq.Where)
	sum := func(from, to time.Time) map[string]float64 {
		m := map[string]float64{}
		if !from.Before(to) {
			return m
		}
		rows, _ := s.Usage(ctx, analytics.UsageQuery{From: from, To: to, By: fq.By, Where: fq.Where})
		for _, r := range rows {
			_, k := sub(r.Group, fq.By)
			m[k] = r.CostUSD.Float64()
		}
		return m
	}
	toDate, before := sum(start, fq.At), sum(start, today)
	remaining := int(end.Sub(today).Hours()/24 + 0.5)
	var out []analytics.ForecastRow
	for _, sr := range series {
		_, k := sub(sr.Group, fq.By)
		row := analytics.ForecastRow{Group: sr.Group, PeriodStart: start, PeriodEnd: end, Today: today, SoFar: toDate[k]}
		row.Forecast = growth.ForecastPeriod(sr.Values, before[k], remaining, growth.ForecastOptions{Budget: fq.Budget})
		out = append(out, row)
	}
	return out, nil
}
