package alerts

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// LatencySpec fires when a latency percentile over Window is above
// ThresholdMs with at least MinRequests timed calls, or, with SLO set,
// when the latency objective's error budget burns too fast.
type LatencySpec struct {
	// Percentile is 50, 90, 95, 99 or 99.9. Default 99.
	Percentile float64
	// ThresholdMs is the bound in milliseconds (threshold form).
	ThresholdMs float64
	// Window is the lookback of the threshold form. Default 5m.
	Window time.Duration
	// MinRequests is the fewest timed calls in the window that decide
	// (fewer: Unknown), or the calls a burn rate's long window is judged
	// over (fewer are decided by decideFew). Default 100.
	MinRequests float64
	// SLO, when set, replaces the threshold form.
	SLO *SLO
}

func parseLatency(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &LatencySpec{Percentile: 99, Window: 5 * time.Minute, MinRequests: 100}
	p.positive(f["min_requests"], &s.MinRequests, "min_requests", true)
	if slo, ok := parseSLORule(p, f, true, "threshold_ms", "percentile", "window"); ok {
		s.SLO = slo
		return s
	}
	if !p.require(r, f, "threshold_ms") {
		return nil
	}
	p.positive(f["threshold_ms"], &s.ThresholdMs, "threshold_ms", false)
	if n := f["percentile"]; n != nil && p.float(n, &s.Percentile, "percentile") {
		switch s.Percentile {
		case 50, 90, 95, 99, 99.9:
		default:
			p.errorf(n, "percentile %v: want 50, 90, 95, 99 or 99.9", s.Percentile)
		}
	}
	p.window(f["window"], &s.Window, time.Minute, MaxWindow)
	return s
}

// pick returns the percentile p of ps.
func pick(ps analytics.Percentiles, p float64) float64 {
	switch p {
	case 50:
		return ps.P50
	case 90:
		return ps.P90
	case 95:
		return ps.P95
	case 99.9:
		return ps.P999
	}
	return ps.P99
}

func (s *LatencySpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	if s.SLO != nil {
		return evaluateSLO(ctx, e, s.SLO, s.MinRequests, fmt.Sprintf("latency (under %g ms)", s.SLO.ThresholdMs))
	}
	rows, err := e.src.Usage(ctx, e.usageQuery(e.now.Add(-s.Window), e.now))
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		g := group(r.Group)
		v := pick(r.Latency, s.Percentile)
		smp := Sample{Group: g, Value: v, ThresholdValue: s.ThresholdMs,
			Active: r.Latency.Count > 0 && float64(r.Latency.Count) >= s.MinRequests && v > s.ThresholdMs,
			Summary: fmt.Sprintf("%s: %s p%g latency %.0f ms over the last %s (alert above %g ms, %d calls)",
				e.rule.Name, groupText(g), s.Percentile, v, s.Window, s.ThresholdMs, r.Latency.Count)}
		// A percentile of fewer calls says nothing of the calls missing up
		// to min_requests (no count of slow calls to bound them with).
		if r.Latency.Count == 0 || float64(r.Latency.Count) < s.MinRequests {
			smp.Unknown = true
			smp.Summary += fmt.Sprintf(": too little traffic to decide (fewer than min_requests, %g timed calls)", s.MinRequests)
		}
		out = append(out, smp)
	}
	return out, nil
}

// unknownLimit: three windows (for the threshold form) of too few calls
// resolve a firing alert.
func (s *LatencySpec) unknownLimit() time.Duration {
	if s.SLO != nil {
		return s.SLO.unknownLimit()
	}
	return 3 * s.Window
}

// unseen: a group without calls in the window has too few calls to
// decide.
func (s *LatencySpec) unseen(r *Rule, g map[string]string) *Sample {
	if s.SLO != nil {
		return s.SLO.unseen(r, g)
	}
	return &Sample{Group: g, ThresholdValue: s.ThresholdMs, Unknown: true,
		Summary: fmt.Sprintf("%s: %s had no timed calls over the last %s: too little traffic to decide", r.Name, groupText(g), s.Window)}
}
