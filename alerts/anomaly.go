package alerts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// AnomalySpec fires when spend departs from its weekly pattern: the spend
// of the last Window against the median of the same time of the week (in
// the file's tz) over the last Weeks weeks, with the robust z-score
// z = 0.6745·(x − median)/MAD above Z, the change above MinUSD and above
// MinPct percent of the median, in at least 2 of the last 3 windows. The
// three windows end now, Window/3 and 2·Window/3 ago (whole minutes), so a
// spike must last about a third of a window to count. The alert names the
// Top groups of ContributorsBy that contributed most to the change.
//
// A group is compared only with the weeks it can be: those that began
// after its first usage (a week before it did not exist is not a week of
// no spend) and whose minutes the minute rollups still hold (retention,
// --keep-minutes, may have dropped them). With fewer than 2 such weeks
// the sample is Unknown: an alert keeps its state, a new group or a fresh
// install neither fires nor resolves until it has two weeks of history.
// See usableWeeks.
type AnomalySpec struct {
	// Window is the spend window, 15m to 6h in whole minutes. Default 1h.
	Window time.Duration
	// Z is the robust z-score threshold. Default 3.5.
	Z float64
	// MinUSD is the least change in USD that fires. Default 1.
	MinUSD float64
	// MinPct is the least change in percent of the median. Default 50.
	MinPct float64
	// Weeks of history for the median, 2 to 4 (minute rollups are kept
	// 35 days by default). Default 4. Weeks a group cannot be compared
	// with are left out; with fewer than 2 left it is Unknown.
	Weeks int
	// ContributorsBy are the dimensions the contributors are named by.
	// Default model (tenant when the rule groups by model).
	ContributorsBy []analytics.Dim
	// Top is the number of contributors named. Default 3.
	Top int
}

// anomalyWindows is the number of windows looked at, anomalyNeeded how
// many of them must be anomalous.
const anomalyWindows, anomalyNeeded = 3, 2

// anomalyMinWeeks is the fewest baseline weeks a group is compared with:
// with one, the median is that week and the MAD 0, and any rise is an
// infinite z.
const anomalyMinWeeks = 2

// anomalyLookbackDays is how many days before the day of the oldest
// baseline week's span a group's first usage is looked for: a group that
// spent on none of them is taken to begin on its first day with spend
// after them, and one that spends once a week is still known to exist
// before its oldest week.
const anomalyLookbackDays = 7

func parseAnomaly(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &AnomalySpec{Window: time.Hour, Z: 3.5, MinUSD: 1, MinPct: 50, Weeks: 4, Top: 3}
	if p.duration(f["window"], &s.Window, 15*time.Minute, "window") {
		if s.Window > 6*time.Hour || s.Window%time.Minute != 0 {
			p.errorf(f["window"], "anomaly window %s: want whole minutes from 15m to 6h", s.Window)
		}
	}
	p.positive(f["z"], &s.Z, "z", false)
	p.positive(f["min_usd"], &s.MinUSD, "min_usd", true)
	p.positive(f["min_pct"], &s.MinPct, "min_pct", true)
	p.integer(f["weeks"], &s.Weeks, "weeks", 2, 4)
	p.integer(f["top"], &s.Top, "top", 1, 20)
	if n := f["contributors_by"]; n != nil {
		for _, v := range p.strings(n, "contributors_by") {
			d := analytics.Dim(v)
			if !slices.Contains(scopeDims, d) {
				p.errorf(n, "cannot name contributors by %q: want tenant, application, provider or model", v)
				continue
			}
			if slices.Contains(r.By, d) {
				p.errorf(n, "contributors_by %q is already in by", v)
				continue
			}
			s.ContributorsBy = append(s.ContributorsBy, d)
		}
	} else if slices.Contains(r.By, analytics.DimModel) {
		if !slices.Contains(r.By, analytics.DimTenant) {
			s.ContributorsBy = []analytics.Dim{analytics.DimTenant}
		}
	} else {
		s.ContributorsBy = []analytics.Dim{analytics.DimModel}
	}
	return s
}

// robustZ is 0.6745·(x − median)/MAD of x against base; +Inf when MAD is
// 0 and x is above the median.
func robustZ(x float64, base []float64) (z, median, mad float64) {
	median = medianOf(base)
	dev := make([]float64, len(base))
	for i, b := range base {
		dev[i] = math.Abs(b - median)
	}
	mad = medianOf(dev)
	switch {
	case mad > 0:
		z = 0.6745 * (x - median) / mad
	case x > median:
		z = math.Inf(1)
	}
	return z, median, mad
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// geometry of the windows: minutes per window and per shift, and the
// span of minutes read.
func (s *AnomalySpec) geometry() (win, shift, span int) {
	win = int(s.Window / time.Minute)
	shift = max(win/anomalyWindows, 1)
	return win, shift, win + (anomalyWindows-1)*shift
}

// weekEnd is the end of the span j weeks before end: the same wall-clock
// time of the week in loc, so a pattern of local hours survives a
// daylight-saving change.
func weekEnd(end time.Time, j int, loc *time.Location) time.Time {
	return end.In(loc).AddDate(0, 0, -7*j).UTC()
}

// spans reads the minute cost series of the span ending end and j weeks
// before, per group of by: values[j][group] (oldest minute first).
func (s *AnomalySpec) spans(ctx context.Context, e *env, end time.Time, by []analytics.Dim) ([]map[string][]float64, map[string]map[string]string, error) {
	_, _, span := s.geometry()
	out := make([]map[string][]float64, s.Weeks+1)
	groups := map[string]map[string]string{}
	for j := 0; j <= s.Weeks; j++ {
		to := weekEnd(end, j, e.loc)
		res, err := e.src.Series(ctx, analytics.SeriesQuery{From: to.Add(-time.Duration(span) * time.Minute), To: to, Step: time.Minute,
			By: by, Where: e.rule.Scope, Metric: analytics.MetricCost})
		if err != nil {
			return nil, nil, err
		}
		out[j] = map[string][]float64{}
		for _, gs := range res.Series {
			g := group(gs.Group)
			k := groupKey(g)
			v := gs.Values
			if len(v) > span {
				v = v[len(v)-span:]
			}
			out[j][k] = v
			if j == 0 {
				groups[k] = g
			}
		}
	}
	return out, groups, nil
}

// windowSum is the sum of the k-th window (0 = the last) of vals, a span
// of minutes; missing minutes are 0.
func (s *AnomalySpec) windowSum(vals []float64, k int) float64 {
	win, shift, span := s.geometry()
	if vals == nil {
		return 0
	}
	hi := span - k*shift
	lo := hi - win
	sum := 0.0
	for i := max(lo, 0); i < hi && i < len(vals); i++ {
		sum += vals[i]
	}
	return sum
}

// anomalous reports whether x against base passes z and both floors.
func (s *AnomalySpec) anomalous(x float64, base []float64) (bool, float64, float64, float64) {
	z, med, mad := robustZ(x, base)
	change := x - med
	pctOK := med == 0 || 100*change/med >= s.MinPct
	return z > s.Z && change >= s.MinUSD && pctOK && change > 0, z, med, mad
}

func (s *AnomalySpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	end := e.now.UTC().Truncate(time.Minute)
	vals, groups, err := s.spans(ctx, e, end, e.rule.By)
	if err != nil {
		return nil, err
	}
	usable, err := s.usableWeeks(ctx, e, end, vals, groups)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Sample
	var contrib *anomalySpans // the contributors' spans, read once per evaluation
	for _, k := range keys {
		g := groups[k]
		weeks := usable[k]
		if len(weeks) < anomalyMinWeeks {
			x := s.windowSum(vals[0][k], 0)
			out = append(out, Sample{Group: g, Value: x, Unknown: true,
				Summary: fmt.Sprintf("%s: %s spent USD %.2f in the last %s; no baseline yet: %d of the last %d weeks at this time of the week can be compared with (those after the group's first usage whose minute rollups are kept), at least %d needed",
					e.rule.Name, groupText(g), x, s.Window, len(weeks), s.Weeks, anomalyMinWeeks)})
			continue
		}
		hits := 0
		var x0, z0, med0, mad0 float64
		for w := range anomalyWindows {
			x := s.windowSum(vals[0][k], w)
			base := make([]float64, len(weeks))
			for i, j := range weeks {
				base[i] = s.windowSum(vals[j][k], w)
			}
			hit, z, med, mad := s.anomalous(x, base)
			if hit {
				hits++
			}
			if w == 0 {
				x0, z0, med0, mad0 = x, z, med, mad
			}
		}
		need := math.Max(med0+s.MinUSD, med0*(1+s.MinPct/100))
		if mad0 > 0 {
			need = math.Max(need, med0+s.Z*mad0/0.6745)
		}
		smp := Sample{Group: g, Value: x0, ThresholdValue: need, Active: hits >= anomalyNeeded}
		zs := "∞"
		if !math.IsInf(z0, 0) {
			zs = fmt.Sprintf("%.1f", z0)
		}
		smp.Summary = fmt.Sprintf("%s: %s spent USD %.2f in the last %s against a median of USD %.2f for this time of the week over %d weeks (robust z %s; anomalous in %d of the last %d windows)",
			e.rule.Name, groupText(g), x0, s.Window, med0, len(weeks), zs, hits, anomalyWindows)
		if smp.Active && len(s.ContributorsBy) > 0 {
			if contrib == nil {
				contrib = &anomalySpans{}
				if contrib.vals, contrib.groups, err = s.spans(ctx, e, end, append(slices.Clone(e.rule.By), s.ContributorsBy...)); err != nil {
					return nil, err
				}
			}
			smp.Contributors = s.contributors(contrib, g, weeks, x0-med0)
		}
		out = append(out, smp)
	}
	return out, nil
}

// usableWeeks returns, per group of groups (by key), the baseline weeks
// (1 … Weeks, of vals) the group can be compared with: those whose span
// began after the group's first usage and whose minutes the minute
// rollups hold. A week before a group existed, or one whose minute rows
// retention dropped, reads as no spend; counted as such, a group with one
// real week had a median of 0 and an infinite z, and paged on flat spend.
//
// First usage is the first UTC day with spend in the daily series (one
// query, usage_1d) from anomalyLookbackDays before the day of the oldest
// span to the day before the latest span's; a week counts when that day
// is before the day its span starts (a week whose span starts on the
// first day is left out: the day's first call may have come after it). Whether the minute rollups hold a week is told by
// the week's own read: any spend in it, and they do; none, and the hours
// covering the span are read (usage_1h, kept longer): no spend in them,
// and the week's zero is right; spend, and the minute rows of those hours
// are read: some spend in them, and the span was just quiet, none, and
// the minutes are gone.
func (s *AnomalySpec) usableWeeks(ctx context.Context, e *env, end time.Time, vals []map[string][]float64, groups map[string]map[string]string) (map[string][]int, error) {
	_, _, span := s.geometry()
	starts := make([]time.Time, s.Weeks+1)
	held := make([]bool, s.Weeks+1)
	for j := 1; j <= s.Weeks; j++ {
		to := weekEnd(end, j, e.loc)
		starts[j] = to.Add(-time.Duration(span) * time.Minute)
		ok, err := s.minutesHeld(ctx, e, starts[j], to, vals[j])
		if err != nil {
			return nil, err
		}
		held[j] = ok
	}
	utcDay := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	res, err := e.src.Series(ctx, analytics.SeriesQuery{From: utcDay(starts[s.Weeks]).AddDate(0, 0, -anomalyLookbackDays), To: utcDay(starts[1]),
		Step: 24 * time.Hour, By: e.rule.By, Where: e.rule.Scope, Metric: analytics.MetricCost})
	if err != nil {
		return nil, err
	}
	first := map[string]time.Time{}
	for _, gs := range res.Series {
		for i, v := range gs.Values {
			if v != 0 {
				first[groupKey(group(gs.Group))] = res.From.Add(time.Duration(i) * 24 * time.Hour)
				break
			}
		}
	}
	out := make(map[string][]int, len(groups))
	for k := range groups {
		f, ok := first[k]
		if !ok {
			continue
		}
		for j := 1; j <= s.Weeks; j++ {
			if held[j] && f.Before(utcDay(starts[j])) {
				out[k] = append(out[k], j)
			}
		}
	}
	return out, nil
}

// minutesHeld reports whether the minute rollups hold the span [from, to)
// of a baseline week whose minute costs per group are week
// (usableWeeks).
func (s *AnomalySpec) minutesHeld(ctx context.Context, e *env, from, to time.Time, week map[string][]float64) (bool, error) {
	for _, v := range week {
		if slices.ContainsFunc(v, func(x float64) bool { return x != 0 }) {
			return true, nil
		}
	}
	// Nothing spent in the span: the scope's spend in the hours covering
	// it, from the hours, and if any, from the minutes.
	lo, hi := from.Truncate(time.Hour), to.Truncate(time.Hour)
	if hi.Before(to) {
		hi = hi.Add(time.Hour)
	}
	spent := func(step time.Duration) (bool, error) {
		res, err := e.src.Series(ctx, analytics.SeriesQuery{From: lo, To: hi, Step: step, Where: e.rule.Scope, Metric: analytics.MetricCost})
		if err != nil {
			return false, err
		}
		for _, gs := range res.Series {
			if slices.ContainsFunc(gs.Values, func(x float64) bool { return x != 0 }) {
				return true, nil
			}
		}
		return false, nil
	}
	h, err := spent(time.Hour)
	if err != nil {
		return false, err
	}
	if !h {
		return true, nil // no spend in those hours: the zero is right
	}
	return spent(time.Minute)
}

// anomalySpans are the spans of the groups of by and ContributorsBy
// (AnomalySpec.spans).
type anomalySpans struct {
	vals   []map[string][]float64
	groups map[string]map[string]string
}

// contributors names the groups of ContributorsBy within g whose spend in
// the last window rose most above their own median over g's usable weeks
// (a contributor new within g has a median of 0: it is the change).
func (s *AnomalySpec) contributors(sp *anomalySpans, g map[string]string, weeks []int, change float64) []notify.Contributor {
	vals, groups := sp.vals, sp.groups
	var out []notify.Contributor
	positive := 0.0
	for k, sub := range groups {
		match := true
		for d, v := range g {
			if sub[d] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		x := s.windowSum(vals[0][k], 0)
		base := make([]float64, len(weeks))
		for i, j := range weeks {
			base[i] = s.windowSum(vals[j][k], 0)
		}
		med := medianOf(base)
		if x-med <= 0 {
			continue
		}
		positive += x - med
		cg := map[string]string{}
		for _, d := range s.ContributorsBy {
			cg[string(d)] = sub[string(d)]
		}
		out = append(out, notify.Contributor{Group: cg, Value: x, Baseline: med})
	}
	if change <= 0 {
		change = positive
	}
	for i := range out {
		out[i].Share = math.Min((out[i].Value-out[i].Baseline)/change, 1)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Value-out[i].Baseline, out[j].Value-out[j].Baseline
		if a != b {
			return a > b
		}
		return groupKey(out[i].Group) < groupKey(out[j].Group)
	})
	if len(out) > s.Top {
		out = out[:s.Top]
	}
	return out
}

// unknownLimit: a firing anomaly whose group has lost its baseline (fewer
// than 2 usable weeks) resolves after three windows without one.
func (s *AnomalySpec) unknownLimit() time.Duration { return 3 * s.Window }

// unseen: a group the evaluation did not return spent nothing in the
// windows: it does not hold.
func (s *AnomalySpec) unseen(*Rule, map[string]string) *Sample { return nil }
