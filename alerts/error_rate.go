package alerts

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrorRateSpec fires when errors/requests over Window is above
// ThresholdPct with at least MinRequests calls, or, with SLO set, when the
// availability objective's error budget burns too fast.
type ErrorRateSpec struct {
	// ThresholdPct is the error rate in percent (threshold form).
	ThresholdPct float64
	// Window is the lookback of the threshold form. Default 5m.
	Window time.Duration
	// MinRequests is the fewest calls that can fire. Default 100.
	MinRequests float64
	// SLO, when set, replaces the threshold form.
	SLO *SLO
}

func parseErrorRate(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &ErrorRateSpec{Window: 5 * time.Minute, MinRequests: 100}
	p.positive(f["min_requests"], &s.MinRequests, "min_requests", true)
	if slo, ok := parseSLORule(p, f, false, "threshold_pct", "window"); ok {
		s.SLO = slo
		return s
	}
	if !p.require(r, f, "threshold_pct") {
		return nil
	}
	if p.positive(f["threshold_pct"], &s.ThresholdPct, "threshold_pct", false) && s.ThresholdPct > 100 {
		p.errorf(f["threshold_pct"], "threshold_pct %v: want at most 100", s.ThresholdPct)
	}
	p.duration(f["window"], &s.Window, time.Minute, "window")
	return s
}

func (s *ErrorRateSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	if s.SLO != nil {
		return evaluateSLO(ctx, e, s.SLO, s.MinRequests, "availability")
	}
	rows, err := e.src.Usage(ctx, e.usageQuery(e.now.Add(-s.Window), e.now))
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		g := group(r.Group)
		rate := 0.0
		if r.Requests > 0 {
			rate = 100 * float64(r.Errors) / float64(r.Requests)
		}
		out = append(out, Sample{Group: g, Value: rate, ThresholdValue: s.ThresholdPct,
			Active:  r.Requests > 0 && float64(r.Requests) >= s.MinRequests && rate > s.ThresholdPct,
			Unknown: float64(r.Requests) < s.MinRequests,
			Summary: fmt.Sprintf("%s: %s error rate %.2f%% over the last %s (%d of %d calls; alert above %g%%)",
				e.rule.Name, groupText(g), rate, s.Window, r.Errors, r.Requests, s.ThresholdPct)})
	}
	return out, nil
}
