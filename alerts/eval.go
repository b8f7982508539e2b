package alerts

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// Source answers the questions rules ask. *analytics.Querier is the
// source of `alerts run` and `alerts backtest`; `alerts test` uses a
// scripted one (Script).
type Source interface {
	Usage(ctx context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error)
	Series(ctx context.Context, sq analytics.SeriesQuery) (analytics.SeriesResult, error)
	Growth(ctx context.Context, gq analytics.GrowthQuery) ([]analytics.GrowthRow, error)
	Forecast(ctx context.Context, fq analytics.ForecastQuery) ([]analytics.ForecastRow, error)
	SLO(ctx context.Context, sq analytics.SLOQuery) ([]analytics.SLORow, error)
}

var _ Source = (*analytics.Querier)(nil)

// Sample is one group's result of one evaluation of a rule.
type Sample struct {
	// Group holds the values of the rule's by dimensions.
	Group map[string]string
	// Threshold names the threshold for rules with several (budget: "80%");
	// "" otherwise.
	Threshold string
	// Value is what was measured, ThresholdValue what it is compared with,
	// in the rule's unit (USD, days, ms, percent, burn rate, calls).
	Value, ThresholdValue float64
	// Active is true when the condition holds.
	Active bool
	// Unknown is true when the group was seen with too little data to say
	// (fewer calls than the rule's min_requests, no forecast, no baseline):
	// its alert keeps its state, neither firing nor resolving on it, up to
	// the kind's limit (undecidable.unknownLimit), then resolves.
	Unknown bool
	// PeriodStart and PeriodEnd bound the calendar period of budget and
	// forecast rules; zero otherwise.
	PeriodStart, PeriodEnd time.Time
	// Summary is one line for people.
	Summary string
	// Contributors are an anomaly's top contributing groups.
	Contributors []notify.Contributor
}

// spec is a rule kind's settings and evaluation; one file per kind.
type spec interface {
	evaluate(ctx context.Context, e *env) ([]Sample, error)
}

// env is what one evaluation of one rule sees.
type env struct {
	src  Source
	rule *Rule
	now  time.Time
	loc  *time.Location
}

// perRuleSource is a Source that answers each rule from the usage read
// for it (History).
type perRuleSource interface {
	sourceFor(r *Rule) Source
}

// Evaluate evaluates rule r of cfg at now against src and returns a
// sample per group seen (those whose condition holds have Active set). A
// History answers r from r's own usage.
func Evaluate(ctx context.Context, src Source, cfg *Config, r *Rule, now time.Time) ([]Sample, error) {
	if p, ok := src.(perRuleSource); ok {
		src = p.sourceFor(r)
	}
	out, err := r.spec.evaluate(ctx, &env{src: src, rule: r, now: now, loc: cfg.Location})
	if err != nil {
		return nil, fmt.Errorf("cannot evaluate rule %q: %w", r.Name, err)
	}
	return out, nil
}

// group converts an analytics group to the notification's map.
func group(g map[analytics.Dim]string) map[string]string {
	out := make(map[string]string, len(g))
	for d, v := range g {
		out[string(d)] = v
	}
	return out
}

// groupKey is a canonical string of g: "model=gpt-4o,tenant=acme".
func groupKey(g map[string]string) string {
	keys := slices.Sorted(maps.Keys(g))
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(g[k], `\`, `\\`), ",", `\,`))
	}
	return b.String()
}

// groupText is "tenant=acme model=gpt-4o" for summaries ("all" when empty).
func groupText(g map[string]string) string {
	if len(g) == 0 {
		return "all calls"
	}
	keys := slices.Sorted(maps.Keys(g))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + g[k]
	}
	return strings.Join(parts, " ")
}

// usageQuery is the rule's usage in [from, to), with only the histograms
// the rule reads: a latency rule the latency one (NoTTFT), every other
// kind none (NoLatency: budget, error rate and unpriced rules read sums).
// Merging the histograms is most of a usage query's work.
func (e *env) usageQuery(from, to time.Time) analytics.UsageQuery {
	uq := analytics.UsageQuery{From: from, To: to, By: e.rule.By, Where: e.rule.Scope}
	if e.rule.Kind == KindLatency {
		uq.NoTTFT = true
	} else {
		uq.NoLatency = true
	}
	return uq
}
