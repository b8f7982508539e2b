package alerts

import (
	"context"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// BudgetSpec fires when the spend of the calendar period so far (in the
// file's tz) reaches a percentage of the budget: once per period and
// threshold.
type BudgetSpec struct {
	// Period is day, week (Monday to Sunday) or month. Default month.
	Period analytics.Period
	// AmountUSD is the period's budget.
	AmountUSD float64
	// Thresholds are percentages of AmountUSD, ascending; default [100].
	Thresholds []float64
}

func parseBudget(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &BudgetSpec{Thresholds: []float64{100}}
	p.period(f["period"], &s.Period)
	if !p.require(r, f, "amount_usd") {
		return nil
	}
	p.positive(f["amount_usd"], &s.AmountUSD, "amount_usd", false)
	if n := f["thresholds"]; n != nil {
		s.Thresholds = nil
		if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
			p.errorf(n, "thresholds must be a list of percentages such as [50, 80, 100]")
			return s
		}
		for _, it := range n.Content {
			var v float64
			if p.positive(it, &v, "threshold", false) {
				if v > 10000 {
					p.errorf(it, "threshold %v%%: want at most 10000", v)
				}
				if slices.Contains(s.Thresholds, v) {
					p.errorf(it, "threshold %v%% is listed twice", v)
				}
				s.Thresholds = append(s.Thresholds, v)
			}
		}
		slices.Sort(s.Thresholds)
	}
	return s
}

// thresholdName is the Sample.Threshold of threshold t (percent): "80%".
func thresholdName(t float64) string { return fmt.Sprintf("%g%%", t) }

// breached reports whether threshold, the name of one of s's thresholds,
// is 100% or more: its alert fires once the budget is used up.
func (s *BudgetSpec) breached(threshold string) bool {
	for _, t := range s.Thresholds {
		if thresholdName(t) == threshold {
			return t >= 100
		}
	}
	return false
}

func (s *BudgetSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	start, end := s.Period.Bounds(e.now, e.loc)
	if !e.now.After(start) {
		return nil, nil // nothing spent yet in the new period
	}
	rows, err := e.src.Usage(ctx, e.usageQuery(start, e.now))
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		cost := r.CostUSD.Float64()
		g := group(r.Group)
		for _, t := range s.Thresholds {
			limit := s.AmountUSD * t / 100
			out = append(out, Sample{
				Group: g, Threshold: thresholdName(t), Value: cost, ThresholdValue: limit,
				Active: cost >= limit, PeriodStart: start, PeriodEnd: end,
				Summary: fmt.Sprintf("%s: %s spent USD %.2f of the %s budget of USD %.2f since %s (%.1f%%, threshold %g%%)",
					e.rule.Name, groupText(g), cost, s.Period, s.AmountUSD, start.Format("2006-01-02 15:04 MST"), 100*cost/s.AmountUSD, t),
			})
		}
	}
	return out, nil
}
