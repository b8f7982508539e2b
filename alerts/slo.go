package alerts

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// BurnRate is one multi-window burn-rate condition of an SLO rule: the
// error budget burns faster than Factor over both the Long and the Short
// window (Google SRE workbook, "Alerting on SLOs").
type BurnRate struct {
	Factor      float64
	Long, Short time.Duration
}

// DefaultBurnRates are the two conditions of the SRE workbook's
// recommended page: 14.4x over 1h and 5m (2% of a 30-day budget in an
// hour), 6x over 6h and 30m (5% in six hours).
var DefaultBurnRates = []BurnRate{{14.4, time.Hour, 5 * time.Minute}, {6, 6 * time.Hour, 30 * time.Minute}}

// SLO is an objective: the share of calls that must be good.
type SLO struct {
	// Objective is the good fraction, 0 < Objective < 1 (0.99 for 99%).
	Objective float64
	// ThresholdMs is the latency bound of a latency objective; 0 for an
	// availability (error rate) objective.
	ThresholdMs float64
	// BurnRates are the conditions; any one holding fires.
	BurnRates []BurnRate
}

var (
	latencyObjectiveRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*(?:under|<|<=|below)\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\s*$`)
	})
	errorObjectiveRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*(?:success|successful|ok|available)?\s*$`)
	})
)

// parseSLORule reads the SLO part of an error_rate (latency false) or
// latency rule: ok when the rule has an objective, then the SLO (nil when
// it does not parse; p has the error). The threshold fields named in
// notSLO do not apply to it and are errors; burn_rates without an
// objective are too.
func parseSLORule(p *parser, f map[string]*yaml.Node, latency bool, notSLO ...string) (slo *SLO, ok bool) {
	n := f["objective"]
	if n == nil {
		if f["burn_rates"] != nil {
			example := `"99.5%"`
			if latency {
				example = `"99% under 2000 ms"`
			}
			p.errorf(f["burn_rates"], "burn_rates need an objective such as %s", example)
		}
		return nil, false
	}
	for _, other := range notSLO {
		if f[other] != nil {
			p.errorf(f[other], "%s does not apply to an SLO rule (objective): its windows are the burn rates'", other)
		}
	}
	if slo = parseObjective(p, n, latency); slo != nil && f["burn_rates"] != nil {
		slo.BurnRates = parseBurnRates(p, f["burn_rates"])
		for i, b := range slo.BurnRates {
			if !slo.possible(b) {
				p.errorf(f["burn_rates"].Content[i], "burn rate factor %g can never hold with objective %s: it needs %.0f%% of calls bad (at most %g with this objective)",
					b.Factor, n.Value, 100*b.Factor*(1-slo.Objective), math.Floor(1/(1-slo.Objective)*100+1e-6)/100)
			}
		}
	} else if slo != nil {
		// The default conditions that can hold with this objective (a low
		// objective's budget is too large for 14.4×: 144% of calls bad at
		// 90%); none at all is an error.
		slo.BurnRates = slices.DeleteFunc(slices.Clone(slo.BurnRates), func(b BurnRate) bool { return !slo.possible(b) })
		if len(slo.BurnRates) == 0 {
			p.errorf(n, "objective %s: no default burn rate can hold (each needs more than 100%% of calls bad); set burn_rates with factors up to %g",
				n.Value, math.Floor(1/(1-slo.Objective)*100+1e-6)/100)
		}
	}
	return slo, true
}

// possible tells whether burn rate b can ever hold: its factor times the
// error budget (1 − Objective) is a share of bad calls of at most 1 (up to
// rounding: 100 × (1 − 0.99) is 1.0000000000000009).
func (s *SLO) possible(b BurnRate) bool { return b.Factor*(1-s.Objective) <= 1+1e-9 }

func parseObjective(p *parser, n *yaml.Node, latency bool) *SLO {
	s, ok := p.str(n, "objective")
	if !ok {
		return nil
	}
	re, want := errorObjectiveRE, `"99.5%" (the share of calls without error)`
	if latency {
		re, want = latencyObjectiveRE, `"99% under 2000 ms"`
	}
	m := re().FindStringSubmatch(s)
	if m == nil {
		p.errorf(n, "cannot parse objective %q: want %s", s, want)
		return nil
	}
	pct, _ := strconv.ParseFloat(m[1], 64)
	if !(pct > 0 && pct < 100) {
		p.errorf(n, "objective %q: the percentage must be above 0 and below 100", s)
		return nil
	}
	slo := &SLO{Objective: pct / 100, BurnRates: DefaultBurnRates}
	if latency {
		ms, _ := strconv.ParseFloat(m[2], 64)
		if m[3] == "s" {
			ms *= 1000
		}
		if !(ms > 0) {
			p.errorf(n, "objective %q: the latency bound must be above 0", s)
			return nil
		}
		slo.ThresholdMs = ms
	}
	return slo
}

func parseBurnRates(p *parser, n *yaml.Node) []BurnRate {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.errorf(n, "burn_rates must be a list such as [{factor: 14.4, long: 1h, short: 5m}]")
		return nil
	}
	var out []BurnRate
	for _, it := range n.Content {
		f := p.mapping(it, "a burn rate", "factor", "long", "short")
		if f == nil {
			continue
		}
		var b BurnRate
		if f["factor"] == nil || f["long"] == nil || f["short"] == nil {
			p.errorf(it, "a burn rate needs factor, long and short")
			continue
		}
		p.positive(f["factor"], &b.Factor, "factor", false)
		if p.duration(f["long"], &b.Long, time.Minute, "long") && b.Long > MaxBurnWindow {
			p.errorf(f["long"], "long %s: want at most %s", f["long"].Value, fmtDuration(MaxBurnWindow))
		}
		p.duration(f["short"], &b.Short, time.Minute, "short")
		if b.Short > b.Long {
			p.errorf(it, "burn rate short window %s is longer than its long window %s", b.Short, b.Long)
		}
		out = append(out, b)
	}
	return out
}

// sloCounts are a group's total and bad calls in one window.
type sloCounts struct{ total, bad uint64 }

// evaluateSLO evaluates s's burn rates: minRequests applies to the long
// windows.
func evaluateSLO(ctx context.Context, e *env, s *SLO, minRequests float64, what string) ([]Sample, error) {
	windows := map[time.Duration]map[string]sloCounts{}
	groups := map[string]map[string]string{}
	var order []string
	for _, b := range s.BurnRates {
		for _, w := range []time.Duration{b.Long, b.Short} {
			if _, done := windows[w]; done {
				continue
			}
			th := s.ThresholdMs
			if th == 0 {
				th = 1 // unused: availability counts errors
			}
			rows, err := e.src.SLO(ctx, analytics.SLOQuery{From: e.now.Add(-w), To: e.now, By: e.rule.By, Where: e.rule.Scope, ThresholdMs: th})
			if err != nil {
				return nil, err
			}
			m := map[string]sloCounts{}
			for _, r := range rows {
				g := group(r.Group)
				k := groupKey(g)
				c := sloCounts{total: r.Requests, bad: r.Errors}
				if s.ThresholdMs > 0 {
					c = sloCounts{total: r.Timed, bad: r.Over}
				}
				m[k] = c
				if _, ok := groups[k]; !ok {
					groups[k] = g
					order = append(order, k)
				}
			}
			windows[w] = m
		}
	}
	budget := 1 - s.Objective
	var out []Sample
	for _, k := range order {
		g := groups[k]
		smp := Sample{Group: g, ThresholdValue: s.BurnRates[0].Factor}
		var why, few []string
		first, undecided := true, false
		for _, b := range s.BurnRates {
			long, short := windows[b.Long][k], windows[b.Short][k]
			var bl, bs float64
			if long.total > 0 {
				bl = float64(long.bad) / float64(long.total) / budget
				if first || bl > smp.Value {
					smp.Value = bl
					first = false
				}
			}
			if short.total > 0 {
				bs = float64(short.bad) / float64(short.total) / budget
			}
			// The long window needs min_requests calls, or calls that
			// decide whatever the missing ones would be (decideFew); the
			// short one any call.
			longHolds, longKnown := bl > b.Factor, long.total > 0 && float64(long.total) >= minRequests
			if !longKnown {
				longHolds, longKnown = decideFew(long.bad, long.total, minRequests, b.Factor*budget)
			}
			shortHolds, shortKnown := bs > b.Factor, short.total > 0
			switch {
			case longKnown && !longHolds, shortKnown && !shortHolds:
				// does not hold
			case longKnown && shortKnown:
				if !smp.Active || b.Factor > smp.ThresholdValue {
					smp.ThresholdValue = b.Factor
				}
				smp.Active = true
				smp.Value = bl
				w := fmt.Sprintf("%.1fx over %s and %.1fx over %s (alert above %gx)", bl, b.Long, bs, b.Short, b.Factor)
				if float64(long.total) < minRequests {
					w += fmt.Sprintf(", %d bad of %d calls over %s: fewer than min_requests (%g calls), but decided whatever the missing calls would be",
						long.bad, long.total, b.Long, minRequests)
				}
				why = append(why, w)
			default:
				undecided = true
				few = append(few, fmt.Sprintf("%d bad of %d calls over %s, %d of %d over %s (alert above %gx)",
					long.bad, long.total, b.Long, short.bad, short.total, b.Short, b.Factor))
			}
		}
		switch {
		case smp.Active:
			smp.Summary = fmt.Sprintf("%s: %s burns its %s error budget (objective %g%%) at %s",
				e.rule.Name, groupText(g), what, 100*s.Objective, strings.Join(why, "; "))
		case undecided:
			smp.Unknown = true
			smp.Summary = fmt.Sprintf("%s: %s burns its %s error budget at %.2fx: too little traffic to decide (min_requests %g calls over the long window): %s",
				e.rule.Name, groupText(g), what, smp.Value, minRequests, strings.Join(few, "; "))
		default:
			smp.Summary = fmt.Sprintf("%s: %s burns its %s error budget at %.2fx", e.rule.Name, groupText(g), what, smp.Value)
		}
		out = append(out, smp)
	}
	return out, nil
}

// unknownLimit: three times the shortest long window of too few calls
// (3 h with the default burn rates) resolve a firing alert.
func (s *SLO) unknownLimit() time.Duration {
	var shortest time.Duration
	for _, b := range s.BurnRates {
		if shortest == 0 || b.Long < shortest {
			shortest = b.Long
		}
	}
	return 3 * shortest
}

// unseen: a group without calls in any window has too few calls to
// decide.
func (s *SLO) unseen(r *Rule, g map[string]string) *Sample {
	var longest time.Duration
	for _, b := range s.BurnRates {
		longest = max(longest, b.Long)
	}
	return &Sample{Group: g, ThresholdValue: s.BurnRates[0].Factor, Unknown: true,
		Summary: fmt.Sprintf("%s: %s had no calls over the last %s: too little traffic to decide", r.Name, groupText(g), longest)}
}
