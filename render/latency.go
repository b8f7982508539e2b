package render

import (
	"github.com/costpipe/costpipe/analytics"
)

// LatencyReport is what Latency renders: the answer of analytics.Usage.
type LatencyReport struct {
	Scope Scope
	// Rows are the groups, in order.
	Rows []analytics.UsageRow
	// Total, when set, is the TOTAL lines of the table format (when there
	// are several groups).
	Total *analytics.UsageRow
	// Per names the step of a latency series ("hour"), for the title;
	// "" for the whole range.
	Per string
}

// latencyStats are the statistics of Latency, in column order.
var latencyStats = []struct{ stat, name, head string }{
	{"mean", "mean_ms", "MEAN MS"},
	{"min", "min_ms", "MIN MS"},
	{"max", "max_ms", "MAX MS"},
	{"p50", "p50_ms", "P50 MS"},
	{"p90", "p90_ms", "P90 MS"},
	{"p95", "p95_ms", "P95 MS"},
	{"p99", "p99_ms", "P99 MS"},
	{"p999", "p999_ms", "P99.9 MS"},
}

// Latency is the latency report: per group two rows, measure "latency"
// (the whole call) and "ttft" (time to first token), each with count (the
// calls that reported it), mean (exact), min, max and p50, p90, p95, p99
// and p99.9 (from the merged histograms, within 1%) in ms; null when no
// call reported the duration.
func Latency(r LatencyReport) *Table {
	by := r.Scope.By
	per := ""
	if r.Per != "" {
		per = " per " + r.Per
	}
	t := &Table{
		Title: "latency and time to first token" + per + " in " + r.Scope.rangeText() + r.Scope.byText() + r.Scope.whereText(),
		Empty: "no usage in " + r.Scope.rangeText() + r.Scope.whereText(),
		Notes: []string{"count: calls that reported the duration; mean exact; min, max and the percentiles from the merged histograms (within 1%)"},
	}
	t.Columns = append(dimColumns(by),
		Column{Name: "measure", Kind: KindText},
		Column{Name: "count", Kind: KindUint})
	for _, s := range latencyStats {
		t.Columns = append(t.Columns, Column{Name: s.name, Head: s.head, Kind: KindFloat, Unit: UnitMs, Nullable: true})
	}
	rows := func(u *analytics.UsageRow, dims []Value) [][]Value {
		var out [][]Value
		for _, m := range []struct {
			name string
			p    *analytics.Percentiles
		}{{"latency", &u.Latency}, {"ttft", &u.TTFT}} {
			vals := append(append(make([]Value, 0, len(t.Columns)), dims...), Text(m.name), Uint(m.p.Count))
			for _, s := range latencyStats {
				if m.p.Present() {
					vals = append(vals, Float(stat(m.p, s.stat)))
				} else {
					vals = append(vals, Null())
				}
			}
			out = append(out, vals)
		}
		return out
	}
	for i := range r.Rows {
		t.Rows = append(t.Rows, rows(&r.Rows[i], dimValues(by, r.Rows[i].Group))...)
	}
	if r.Total != nil && len(r.Rows) > 1 {
		foot := rows(r.Total, labelValues(by, "TOTAL"))
		foot[1] = append(labelValues(by, ""), foot[1][len(by):]...)
		t.Footer = foot
	}
	return t
}
