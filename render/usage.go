package render

import (
	"github.com/costpipe/costpipe/analytics"
)

// UsageReport is what Usage renders: the answer of analytics.Usage.
type UsageReport struct {
	Scope Scope
	// Rows are the groups, in order.
	Rows []analytics.UsageRow
	// Total, when set, is the TOTAL line of the table format (when there
	// are several groups: its percentiles are merged over all of them).
	Total *analytics.UsageRow
	// Compare shows a re-priced cost beside the stored one: each row's
	// Reprice holds the stored values (stored_cost_usd,
	// stored_unpriced_requests and delta_usd; STORED USD and CHANGE in
	// tables).
	Compare bool
	// RepricedWith names the catalog the costs were re-priced with, for a
	// note; "" when they are the stored costs.
	RepricedWith string
}

// usageCounter is a counter column of Usage.
type usageCounter struct {
	name, head string
	show       Show
	get        func(*analytics.UsageRow) uint64
}

var usageCounters = []usageCounter{
	{"requests", "REQUESTS", ShowAll, func(r *analytics.UsageRow) uint64 { return r.Requests }},
	{"errors", "ERRORS", ShowAll, func(r *analytics.UsageRow) uint64 { return r.Errors }},
	{"input_tokens", "INPUT TOK", ShowAll, func(r *analytics.UsageRow) uint64 { return r.InputTokens }},
	{"cached_input_tokens", "CACHED", ShowAll, func(r *analytics.UsageRow) uint64 { return r.CachedInputTokens }},
	{"cache_write_tokens", "", ShowData, func(r *analytics.UsageRow) uint64 { return r.CacheWriteTokens }},
	{"cache_write_1h_tokens", "", ShowData, func(r *analytics.UsageRow) uint64 { return r.CacheWrite1hTokens }},
	{"output_tokens", "OUTPUT TOK", ShowAll, func(r *analytics.UsageRow) uint64 { return r.OutputTokens }},
	{"reasoning_tokens", "REASONING", ShowAll, func(r *analytics.UsageRow) uint64 { return r.ReasoningTokens }},
}

// usagePercentile is a percentile column of Usage.
type usagePercentile struct {
	stat, head string // head: the table header after LAT / TTFT; "" for machine formats only
}

var usagePercentiles = []struct {
	measure, head string
	stats         []usagePercentile
	get           func(*analytics.UsageRow) *analytics.Percentiles
}{
	{"latency", "LAT", []usagePercentile{{"p50", "P50"}, {"p90", "P90"}, {"p99", "P99"}, {"avg", ""}, {"min", ""}, {"max", ""}},
		func(r *analytics.UsageRow) *analytics.Percentiles { return &r.Latency }},
	{"ttft", "TTFT", []usagePercentile{{"p50", "P50"}, {"p90", ""}, {"p99", "P99"}, {"avg", ""}, {"min", ""}, {"max", ""}},
		func(r *analytics.UsageRow) *analytics.Percentiles { return &r.TTFT }},
}

// stat is a Percentiles field by name.
func stat(p *analytics.Percentiles, name string) float64 {
	switch name {
	case "p50":
		return p.P50
	case "p90":
		return p.P90
	case "p95":
		return p.P95
	case "p99":
		return p.P99
	case "p999":
		return p.P999
	case "avg", "mean":
		return p.Avg
	case "min":
		return p.Min
	case "max":
		return p.Max
	}
	return 0
}

// Usage is the usage report: per group the dimensions, the counters,
// gpu_ms, unpriced_requests, cost_usd (exact), with Compare the stored
// cost, and the latency and TTFT percentiles in ms (null, and left out of
// JSON, when no call reported the duration). Tables show fewer columns:
// GPU hours and unpriced calls only when there are some, and a TOTAL line.
func Usage(r UsageReport) *Table {
	by := r.Scope.By
	t := &Table{
		Title: "usage in " + r.Scope.rangeText() + r.Scope.byText() + r.Scope.whereText(),
		Empty: "no usage in " + r.Scope.rangeText() + r.Scope.whereText(),
	}
	t.Columns = dimColumns(by)
	for _, c := range usageCounters {
		t.Columns = append(t.Columns, Column{Name: c.name, Head: c.head, Kind: KindUint, Show: c.show})
	}
	t.Columns = append(t.Columns,
		Column{Name: "gpu_ms", Kind: KindFloat, Show: ShowData},
		Column{Name: "gpu_hours", Head: "GPU HOURS", Kind: KindFloat, Unit: UnitHours, Show: ShowTable, HideEmpty: true},
		Column{Name: "unpriced_requests", Kind: KindUint, Show: ShowData},
		Column{Name: "cost_usd", Head: "COST USD", Kind: KindMoney, Unit: UnitUSD})
	if r.Compare {
		t.Columns = append(t.Columns,
			Column{Name: "stored_cost_usd", Head: "STORED USD", Kind: KindMoney, Unit: UnitUSD},
			Column{Name: "change", Head: "CHANGE", Kind: KindFloat, Unit: UnitPercent, Nullable: true, Show: ShowTable},
			Column{Name: "stored_unpriced_requests", Kind: KindUint, Show: ShowData},
			Column{Name: "delta_usd", Kind: KindMoney, Show: ShowData})
	}
	t.Columns = append(t.Columns, Column{Name: "unpriced", Head: "UNPRICED", Kind: KindUint, Show: ShowTable, HideEmpty: true})
	for _, m := range usagePercentiles {
		for _, s := range m.stats {
			show := ShowData
			if s.head != "" {
				show = ShowAll
			}
			t.Columns = append(t.Columns, Column{Name: m.measure + "_" + s.stat + "_ms", JSON: m.measure + "_ms." + s.stat,
				Head: m.head + " " + s.head + " MS", Kind: KindFloat, Unit: UnitMs, Nullable: true, Show: show})
		}
		t.Columns = append(t.Columns, Column{Name: m.measure + "_count", JSON: m.measure + "_ms.count", Kind: KindUint, Show: ShowData})
	}

	row := func(u *analytics.UsageRow, dims []Value) []Value {
		vals := append(make([]Value, 0, len(t.Columns)), dims...) // one allocation per row
		for _, c := range usageCounters {
			vals = append(vals, Uint(c.get(u)))
		}
		vals = append(vals, Float(float64(u.GPUMicros)/1000), Float(float64(u.GPUMicros)/3.6e9), Uint(u.UnpricedRequests), Money(u.CostUSD))
		if r.Compare {
			if s := u.Reprice; s != nil {
				change := Null()
				if !s.CostUSD.IsZero() {
					change = Float((u.CostUSD.Float64()/s.CostUSD.Float64() - 1) * 100)
				}
				vals = append(vals, Money(s.CostUSD), change, Uint(s.UnpricedRequests), Money(u.CostUSD.Sub(s.CostUSD)))
			} else {
				vals = append(vals, Null(), Null(), Null(), Null())
			}
		}
		vals = append(vals, Uint(u.UnpricedRequests))
		for _, m := range usagePercentiles {
			p := m.get(u)
			for _, s := range m.stats {
				if p.Present() {
					vals = append(vals, Float(stat(p, s.stat)))
				} else {
					vals = append(vals, Null())
				}
			}
			vals = append(vals, Uint(p.Count))
		}
		return vals
	}
	var unpriced uint64
	for i := range r.Rows {
		t.Rows = append(t.Rows, row(&r.Rows[i], dimValues(by, r.Rows[i].Group)))
		unpriced += r.Rows[i].UnpricedRequests
	}
	if r.Total != nil && len(r.Rows) > 1 {
		t.Footer = append(t.Footer, row(r.Total, labelValues(by, "TOTAL")))
	}
	if n := unpricedNote(unpriced); n != "" {
		t.Notes = append(t.Notes, n)
	}
	if r.RepricedWith != "" {
		note := "costs re-priced with " + r.RepricedWith + " (what-if; the stored costs are unchanged)"
		if unpriced > 0 {
			// A catalog of a few models: `reprice` keeps the stored cost
			// of the calls it does not price, the what-if counts them 0.
			note += "; the calls of models it does not price count 0 here (reprice would keep their stored cost): give it a whole catalog to compare totals"
		}
		t.Notes = append(t.Notes, note)
	}
	return t
}

// unpricedNote is the note of a report whose calls include n unpriced ones
// ("" for none): their cost is counted as 0, never silently.
func unpricedNote(n uint64) string {
	if n == 0 {
		return ""
	}
	calls := "calls"
	if n == 1 {
		calls = "call"
	}
	return "note: " + Thousands(n) + " " + calls + " had no price (counted at cost 0): add the models to the price catalog"
}
