package alerts

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// UnpricedSpec fires when calls to models without a price (cost 0,
// counted separately) reach MinRequests within Window.
type UnpricedSpec struct {
	// Window is the lookback. Default 1h.
	Window time.Duration
	// MinRequests is the fewest unpriced calls that fire. Default 1.
	MinRequests float64
}

func parseUnpriced(p *parser, _ *Rule, f map[string]*yaml.Node) spec {
	s := &UnpricedSpec{Window: time.Hour, MinRequests: 1}
	p.window(f["window"], &s.Window, time.Minute, MaxWindow)
	p.positive(f["min_requests"], &s.MinRequests, "min_requests", false)
	return s
}

func (s *UnpricedSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	rows, err := e.src.Usage(ctx, e.usageQuery(e.now.Add(-s.Window), e.now))
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		g := group(r.Group)
		n := float64(r.UnpricedRequests)
		out = append(out, Sample{Group: g, Value: n, ThresholdValue: s.MinRequests, Active: n >= s.MinRequests,
			Summary: fmt.Sprintf("%s: %s made %d calls to models without a price in the last %s (cost counted as 0)",
				e.rule.Name, groupText(g), r.UnpricedRequests, s.Window)})
	}
	return out, nil
}
