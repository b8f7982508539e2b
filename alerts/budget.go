package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"

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
	// LateDataGrace is how long after a period ends its spend is still
	// evaluated (late_data_grace; 0: not at all): the spend of a period's
	// last minutes lands after it ended (the aggregator's flush interval,
	// Kafka lag, an aggregator outage, late events), and a crossing that
	// only this spend makes is notified then, once (Engine, pickPeriod).
	// Default DefaultLateDataGrace.
	LateDataGrace time.Duration
}

// DefaultLateDataGrace is a budget's late_data_grace when the rule sets
// none: an hour covers the flush interval, ordinary Kafka lag and a short
// aggregator restart.
const DefaultLateDataGrace = time.Hour

// maxLateDataGrace is the longest late_data_grace of a budget of period
// p: 12 hours for a day, a day for a week or a month. While a late
// crossing's alert fires, a crossing of the same threshold in the new
// period waits for the grace to end (an alert is one per threshold), so
// the grace must be a small part of the period; and a resolved alert is
// remembered for a day (resolvedRetention), which is what keeps a
// crossing notified before the period ended from being notified again.
func maxLateDataGrace(p analytics.Period) time.Duration {
	if p == analytics.PeriodDay {
		return 12 * time.Hour
	}
	return resolvedRetention
}

// The field late_data_grace of budget rules. kindFields (rules.go) lists
// the fields a kind's rules may have; this adds the budget's new one until
// kindFields lists it itself.
func parseBudget(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &BudgetSpec{Thresholds: []float64{100}, LateDataGrace: DefaultLateDataGrace}
	p.period(f["period"], &s.Period)
	if n := f["late_data_grace"]; n != nil && p.duration(n, &s.LateDataGrace, 0, "late_data_grace") {
		if most := maxLateDataGrace(s.Period); s.LateDataGrace > most {
			p.errorf(n, "late_data_grace %s: want at most %s for a %s budget (0 turns it off)", n.Value, most, s.Period)
		}
	}
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

// evaluate returns a sample per group and threshold of the current
// period's spend so far and, within LateDataGrace after the previous
// period ended, one of the previous period's whole spend too (PeriodEnd
// not after now), first. The engine decides which of a threshold's two
// samples its alert takes (pickPeriod): the previous period's only for a
// crossing of it not notified before it ended.
func (s *BudgetSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	start, end := s.Period.Bounds(e.now, e.loc)
	var out []Sample
	if s.LateDataGrace > 0 && e.now.Before(start.Add(s.LateDataGrace)) {
		prev, _ := s.Period.Bounds(start.Add(-time.Nanosecond), e.loc)
		rows, err := e.src.Usage(ctx, e.usageQuery(prev, start))
		if err != nil {
			return nil, err
		}
		out = s.samples(e, rows, prev, start, out)
	}
	if !e.now.After(start) {
		return out, nil // nothing spent yet in the new period
	}
	rows, err := e.src.Usage(ctx, e.usageQuery(start, e.now))
	if err != nil {
		return nil, err
	}
	return s.samples(e, rows, start, end, out), nil
}

// samples appends to out the samples of rows, the spend of the period
// [start, end) until now or, when it ended, in all of it.
func (s *BudgetSpec) samples(e *env, rows []analytics.UsageRow, start, end time.Time, out []Sample) []Sample {
	ended := !end.After(e.now)
	for _, r := range rows {
		cost := r.CostUSD.Float64()
		g := group(r.Group)
		for _, t := range s.Thresholds {
			limit := s.AmountUSD * t / 100
			sm := Sample{Group: g, Threshold: thresholdName(t), Value: cost, ThresholdValue: limit,
				Active: cost >= limit, PeriodStart: start, PeriodEnd: end}
			if !ended {
				sm.Summary = fmt.Sprintf("%s: %s spent USD %.2f of the %s budget of USD %.2f since %s (%.1f%%, threshold %g%%)",
					e.rule.Name, groupText(g), cost, s.Period, s.AmountUSD, start.Format("2006-01-02 15:04 MST"), 100*cost/s.AmountUSD, t)
			} else {
				// The engine takes such a sample only for a crossing
				// found after the period ended.
				sm.Summary = fmt.Sprintf("%s: %s spent USD %.2f of the %s budget of USD %.2f in the previous %s, %s to %s (%.1f%%, threshold %g%%): crossed only after the %s ended, by spend that landed late",
					e.rule.Name, groupText(g), cost, s.Period, s.AmountUSD, s.Period, start.Format("2006-01-02 15:04 MST"), end.Format("2006-01-02 15:04 MST"),
					100*cost/s.AmountUSD, t, s.Period)
			}
			out = append(out, sm)
		}
	}
	return out
}
