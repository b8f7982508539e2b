package render

import (
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// Filter is one condition of a query's Where, as the user gave it.
type Filter struct {
	Dim   analytics.Dim
	Value string
}

// Scope is what a report covers, for titles: the range [From, To), the
// dimensions of a group and the filters, in the order given.
type Scope struct {
	From, To time.Time
	By       []analytics.Dim
	Where    []Filter
}

// rangeText is "[2026-01-15T00:00:00Z, 2026-01-16T00:00:00Z)".
func (s Scope) rangeText() string {
	return "[" + s.From.UTC().Format(time.RFC3339) + ", " + s.To.UTC().Format(time.RFC3339) + ")"
}

// byText is " by tenant, model", "" without dimensions.
func (s Scope) byText() string {
	if len(s.By) == 0 {
		return ""
	}
	names := make([]string, len(s.By))
	for i, d := range s.By {
		names[i] = string(d)
	}
	return " by " + strings.Join(names, ", ")
}

// WhereText is ` where tenant="acme", model="a"|"b"`, "" without filters.
func (s Scope) WhereText() string { return s.whereText() }

func (s Scope) whereText() string {
	if len(s.Where) == 0 {
		return ""
	}
	var parts []string
	idx := map[analytics.Dim]int{}
	for _, c := range s.Where {
		if i, ok := idx[c.Dim]; ok {
			parts[i] += "|" + strconv.Quote(c.Value)
			continue
		}
		idx[c.Dim] = len(parts)
		parts = append(parts, string(c.Dim)+"="+strconv.Quote(c.Value))
	}
	return " where " + strings.Join(parts, ", ")
}

// dimColumns are the text columns of a group's dimensions.
func dimColumns(by []analytics.Dim) []Column {
	cols := make([]Column, len(by))
	for i, d := range by {
		cols[i] = Column{Name: string(d), Kind: KindText}
	}
	return cols
}

// dimValues are a group's values of by.
func dimValues(by []analytics.Dim, group map[analytics.Dim]string) []Value {
	vals := make([]Value, len(by))
	for i, d := range by {
		vals[i] = Text(group[d])
	}
	return vals
}

// labelValues are the dimension cells of a footer line: label in the
// first (unless label is ""), Blank in the others.
func labelValues(by []analytics.Dim, label string) []Value {
	vals := make([]Value, len(by))
	for i := range vals {
		vals[i] = Blank()
	}
	if len(vals) > 0 && label != "" {
		vals[0] = Text(label)
	}
	return vals
}

// groupLabel is a group for people: its values joined by " / ", "-" for
// an empty one.
func groupLabel(by []analytics.Dim, group map[analytics.Dim]string) string {
	parts := make([]string, len(by))
	for i, d := range by {
		parts[i] = group[d]
		if parts[i] == "" {
			parts[i] = "-"
		}
	}
	return strings.Join(parts, " / ")
}

// metricColumn is the column of a metric's value: cost_usd (exact USD),
// requests, tokens, input_tokens or output_tokens (counts).
func metricColumn(m analytics.Metric) Column {
	switch m {
	case analytics.MetricCost, "":
		return Column{Name: "cost_usd", Head: "COST USD", Kind: KindMoney, Unit: UnitUSD}
	case analytics.MetricInputTokens:
		return Column{Name: "input_tokens", Head: "INPUT TOK", Kind: KindUint}
	case analytics.MetricOutputTokens:
		return Column{Name: "output_tokens", Head: "OUTPUT TOK", Kind: KindUint}
	}
	return Column{Name: string(m), Kind: KindUint}
}

// metricValue is a usage row's value of m, in metricColumn's kind.
func metricValue(m analytics.Metric, r *analytics.UsageRow) Value {
	switch m {
	case analytics.MetricRequests:
		return Uint(r.Requests)
	case analytics.MetricInputTokens:
		return Uint(r.InputTokens)
	case analytics.MetricOutputTokens:
		return Uint(r.OutputTokens)
	case analytics.MetricTokens:
		return Uint(r.InputTokens + r.OutputTokens)
	}
	return Money(r.CostUSD)
}

// metricUnit is the unit of a float value of m: USD for cost, a count
// otherwise.
func metricUnit(m analytics.Metric) Unit {
	if m == analytics.MetricCost || m == "" {
		return UnitUSD
	}
	return UnitCount
}

// unitSuffix is " USD" for cost, "" otherwise: table headers of a metric's
// floats.
func unitSuffix(m analytics.Metric) string {
	if m == analytics.MetricCost || m == "" {
		return " USD"
	}
	return ""
}
