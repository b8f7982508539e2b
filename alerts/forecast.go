package alerts

import (
	"context"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// ForecastSpec fires when a quantile of the period-end spend forecast
// (analytics.Querier.Forecast) exceeds the budget.
type ForecastSpec struct {
	// Period is day, week or month. Default month.
	Period analytics.Period
	// AmountUSD is the period's budget.
	AmountUSD float64
	// Quantile of the forecast compared with the budget: 0.1, 0.5 or 0.9
	// (the forecast's p10, p50 and p90). Default 0.5.
	Quantile float64
	// HistoryDays of daily history the forecast is fitted on; 0 is the
	// query layer's default (91).
	HistoryDays int
}

func parseForecast(p *parser, r *Rule, f map[string]*yaml.Node) spec {
	s := &ForecastSpec{Quantile: 0.5}
	p.period(f["period"], &s.Period)
	if !p.require(r, f, "amount_usd") {
		return nil
	}
	p.positive(f["amount_usd"], &s.AmountUSD, "amount_usd", false)
	if n := f["quantile"]; n != nil && p.float(n, &s.Quantile, "quantile") {
		if s.Quantile != 0.1 && s.Quantile != 0.5 && s.Quantile != 0.9 {
			p.errorf(n, "quantile %v: want 0.1, 0.5 or 0.9 (the forecast's p10, p50, p90)", s.Quantile)
		}
	}
	p.integer(f["history_days"], &s.HistoryDays, "history_days", 7, 182)
	return s
}

func (s *ForecastSpec) evaluate(ctx context.Context, e *env) ([]Sample, error) {
	budget := s.AmountUSD
	rows, err := e.src.Forecast(ctx, analytics.ForecastQuery{At: e.now, Location: e.loc, Period: s.Period,
		By: e.rule.By, Where: e.rule.Scope, History: s.HistoryDays, Budget: &budget})
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, r := range rows {
		q := r.P50
		switch s.Quantile {
		case 0.1:
			q = r.P10
		case 0.9:
			q = r.P90
		}
		g := group(r.Group)
		smp := Sample{Group: g, ThresholdValue: s.AmountUSD, PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd}
		switch {
		case r.SoFar >= s.AmountUSD && (q == nil || *q <= s.AmountUSD):
			// Whatever the forecast (none: too little history), the
			// period's spend is over the budget: the value is the spend.
			fc := "no forecast: " + r.Note
			if q != nil {
				fc = fmt.Sprintf("forecast USD %.2f (p%g)", *q, 100*s.Quantile)
			}
			smp.Value, smp.Active = r.SoFar, true
			smp.Summary = fmt.Sprintf("%s: %s has spent USD %.2f this %s, already over the budget of USD %.2f (%s)",
				e.rule.Name, groupText(g), r.SoFar, s.Period, s.AmountUSD, fc)
		case q == nil:
			smp.Value, smp.Unknown = r.SoFar, true
			smp.Summary = fmt.Sprintf("%s: %s has no forecast (%s); USD %.2f spent so far this %s of the budget of USD %.2f",
				e.rule.Name, groupText(g), r.Note, r.SoFar, s.Period, s.AmountUSD)
		default:
			smp.Value = *q
			smp.Active = *q > s.AmountUSD
			smp.Summary = fmt.Sprintf("%s: %s is forecast to spend USD %.2f (p%g) this %s, over the budget of USD %.2f; USD %.2f spent so far",
				e.rule.Name, groupText(g), *q, 100*s.Quantile, s.Period, s.AmountUSD, r.SoFar)
		}
		out = append(out, smp)
	}
	return out, nil
}

// forecastUnknownLimit is how long a firing forecast alert stays firing
// without a forecast (a day: the forecast is refitted on each day's
// history).
const forecastUnknownLimit = 24 * time.Hour

func (s *ForecastSpec) unknownLimit() time.Duration { return forecastUnknownLimit }

// unseen: a group without history or spend this period does not hold.
func (s *ForecastSpec) unseen(*Rule, map[string]string) *Sample { return nil }
