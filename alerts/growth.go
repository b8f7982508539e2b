package alerts

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// GrowthSpec fires when spend doubles faster than DoublingDays with the
// whole confidence interval of the growth rate above zero (the query
// layer reports a doubling time only then) and the last 7 days' spend at
// least MinSpendUSD.
type GrowthSpec struct {
	DoublingDays float64
	// MinSpendUSD is the spend floor of the last 7 complete days. Default 0.
	MinSpendUSD float64
	// WindowDays is the trend window; 0 is the query layer's default (28).
	WindowDays int
}

func parseGrowth(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &GrowthSpec{}
	if !p.require(r, f, "doubling_days") {
		return nil
	}
	p.positive(f["doubling_days"], &s.DoublingDays, "doubling_days", false)
	p.positive(f["min_spend_usd"], &s.MinSpendUSD, "min_spend_usd", true)
	p.integer(f["window_days"], &s.WindowDays, "window_days", 14, 366)
	return s
}

func (s *GrowthSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	rows, err := e.src.Growth(ctx, analytics.GrowthQuery{At: e.now, Location: e.loc, By: e.rule.By, Where: e.rule.Scope, Window: s.WindowDays})
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		g := group(r.Group)
		smp := Sample{Group: g, ThresholdValue: s.DoublingDays}
		last7 := 0.0
		if r.Last7d != nil {
			last7 = *r.Last7d
		}
		if r.DoublingDays != nil {
			smp.Value = *r.DoublingDays
			smp.Active = *r.DoublingDays < s.DoublingDays && last7 >= s.MinSpendUSD
		}
		smp.Summary = fmt.Sprintf("%s: %s spend doubles every %.1f days (alert below %g days), USD %.2f in the last 7 days",
			e.rule.Name, groupText(g), smp.Value, s.DoublingDays, last7)
		out = append(out, smp)
	}
	return out, nil
}
