package alerts

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// BacktestOptions configure Backtest.
type BacktestOptions struct {
	// From and To bound the replay (To exclusive).
	From, To time.Time
	// Step between evaluations. Default 1h; a for: or keep_firing_for:
	// shorter than the step counts as one step.
	Step time.Duration
	// MaxEvaluations bounds (To − From)/Step. Default 100000.
	MaxEvaluations int
}

// Episode is one firing of one alert in a backtest.
type Episode struct {
	Group     map[string]string
	Threshold string
	// Start is when it fired, End when it resolved (zero: still firing at
	// the end of the replay).
	Start, End time.Time
	// Peak is the highest value while firing.
	Peak float64
	// Summary is the first firing evaluation's summary.
	Summary string
}

// BacktestResult is what one rule would have done.
type BacktestResult struct {
	Rule        string
	Kind        Kind
	Evaluations int
	// Failed evaluations (with the first error).
	Failed    int
	FirstErr  string
	Episodes  []Episode
	FiringFor time.Duration // total firing time, summed over episodes
}

// Backtest replays cfg's rules over [From, To) of src's history, as `alerts
// run` would have evaluated them every Step, and reports per rule how
// often and when it would have fired. Nothing is sent or stored.
func Backtest(ctx context.Context, cfg *Config, src Source, o BacktestOptions) ([]BacktestResult, error) {
	if o.Step == 0 {
		o.Step = time.Hour
	}
	if o.MaxEvaluations == 0 {
		o.MaxEvaluations = 100000
	}
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("backtest range [%s, %s) is empty", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if n := int(o.To.Sub(o.From) / o.Step); n > o.MaxEvaluations {
		return nil, fmt.Errorf("backtest of %d evaluations (every %s from %s to %s), more than %d: take a longer step",
			n, o.Step, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339), o.MaxEvaluations)
	}
	e := NewEngine(cfg, src)
	res := make([]BacktestResult, len(cfg.Rules))
	idx := map[string]int{}
	for i, r := range cfg.Rules {
		res[i] = BacktestResult{Rule: r.Name, Kind: r.Kind}
		idx[r.Name] = i
	}
	type ref struct{ rule, ep int }
	open := map[string]ref{} // alert key → its open episode
	for t := o.From; t.Before(o.To); t = t.Add(o.Step) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		_, failed := e.Eval(ctx, t)
		bad := map[string]bool{}
		for _, f := range failed {
			r := &res[idx[f.Rule]]
			r.Failed++
			bad[f.Rule] = true
			if r.FirstErr == "" {
				r.FirstErr = f.Err.Error()
			}
		}
		for i := range res {
			if !bad[res[i].Rule] {
				res[i].Evaluations++
			}
		}
		for _, a := range e.Alerts() {
			k := a.Key()
			rf, isOpen := open[k]
			switch {
			case a.State == StateFiring && !isOpen:
				r := &res[idx[a.Rule]]
				r.Episodes = append(r.Episodes, Episode{Group: a.Group, Threshold: a.Threshold, Start: a.FiredAt, Peak: a.Value, Summary: a.Summary})
				open[k] = ref{idx[a.Rule], len(r.Episodes) - 1}
			case a.State == StateFiring:
				ep := &res[rf.rule].Episodes[rf.ep]
				ep.Peak = max(ep.Peak, a.Value)
			case isOpen:
				ep := &res[rf.rule].Episodes[rf.ep]
				if ep.End = a.ResolvedAt; ep.End.IsZero() {
					ep.End = t
				}
				delete(open, k)
			}
		}
		// Episodes whose alert was forgotten end now.
		for k, rf := range open {
			if _, ok := e.alerts[k]; !ok {
				res[rf.rule].Episodes[rf.ep].End = t
				delete(open, k)
			}
		}
	}
	for i := range res {
		for _, ep := range res[i].Episodes {
			end := ep.End
			if end.IsZero() {
				end = o.To
			}
			res[i].FiringFor += end.Sub(ep.Start)
		}
		sort.SliceStable(res[i].Episodes, func(a, b int) bool { return res[i].Episodes[a].Start.Before(res[i].Episodes[b].Start) })
	}
	return res, nil
}
