package alerts

import (
	"context"
	"fmt"
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrorRateSpec fires when errors/requests over Window is above
// ThresholdPct with at least MinRequests calls (fewer decide only when no
// outcome of the missing calls could change the answer: decideFew), or,
// with SLO set, when the availability objective's error budget burns too
// fast.
type ErrorRateSpec struct {
	// ThresholdPct is the error rate in percent (threshold form).
	ThresholdPct float64
	// Window is the lookback of the threshold form. Default 5m.
	Window time.Duration
	// MinRequests is the calls the rate is judged over; a window with
	// fewer is decided by decideFew, else Unknown. Default 100.
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
	if p.positive(f["threshold_pct"], &s.ThresholdPct, "threshold_pct", false) && s.ThresholdPct >= 100 {
		// The rule fires above the threshold: no rate is above 100%.
		p.errorf(f["threshold_pct"], "threshold_pct %v: want below 100 (the rule fires on a rate above it)", s.ThresholdPct)
	}
	p.window(f["window"], &s.Window, time.Minute, MaxWindow)
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
		smp := Sample{Group: g, Value: rate, ThresholdValue: s.ThresholdPct,
			Summary: fmt.Sprintf("%s: %s error rate %.2f%% over the last %s (%d of %d calls; alert above %g%%)",
				e.rule.Name, groupText(g), rate, s.Window, r.Errors, r.Requests, s.ThresholdPct)}
		if r.Requests > 0 && float64(r.Requests) >= s.MinRequests {
			smp.Active = rate > s.ThresholdPct
		} else {
			known := false
			if smp.Active, known = decideFew(r.Errors, r.Requests, s.MinRequests, s.ThresholdPct/100); !known {
				smp.Unknown = true
				smp.Summary += fmt.Sprintf(": too little traffic to decide (fewer than min_requests, %g calls)", s.MinRequests)
			} else {
				smp.Summary += fmt.Sprintf(": fewer than min_requests (%g calls), but decided whatever the missing calls would be", s.MinRequests)
			}
		}
		out = append(out, smp)
	}
	return out, nil
}

// decideFew decides "more than share of the calls are bad" for a window
// with total calls, fewer than min (min_requests): as if judged over min
// calls, of which the min − total not made could each be good or bad. It
// holds when bad alone is more than share × min; it does not when bad plus
// all the missing calls is at most that; else it is not known. (Of 50
// calls, 6 errors hold a 5% threshold with min_requests 100, whatever the
// other 50 would be; 0 errors cannot decide it, since 50 more errors
// would.)
func decideFew(bad, total uint64, min, share float64) (holds, known bool) {
	allowed := share * min
	switch b, missing := float64(bad), math.Max(min-float64(total), 0); {
	case b > allowed:
		return true, true
	case b+missing <= allowed:
		return false, true
	}
	return false, false
}

// unknownLimit: three windows (for the threshold form) of too few calls
// resolve a firing alert.
func (s *ErrorRateSpec) unknownLimit() time.Duration {
	if s.SLO != nil {
		return s.SLO.unknownLimit()
	}
	return 3 * s.Window
}

// unseen: a group without calls in the window has too few calls to
// decide.
func (s *ErrorRateSpec) unseen(r *Rule, g map[string]string) *Sample {
	if s.SLO != nil {
		return s.SLO.unseen(r, g)
	}
	return &Sample{Group: g, ThresholdValue: s.ThresholdPct, Unknown: true,
		Summary: fmt.Sprintf("%s: %s had no calls over the last %s: too little traffic to decide", r.Name, groupText(g), s.Window)}
}
