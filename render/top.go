package render

import (
	"strconv"
	"strings"

	"github.com/costpipe/costpipe/analytics"
)

// TopReport is what Top renders: the answer of analytics.Top.
type TopReport struct {
	Scope  Scope
	Result analytics.TopResult
}

// Top is the top groups report: per group its rank, dimensions, the
// metric's value (cost_usd exact; requests, tokens, … counts), share (of
// the total, 0 to 1) and cumulative_share. The table format adds OTHER
// (the groups not listed) and TOTAL lines.
func Top(r TopReport) *Table {
	by, res := r.Scope.By, &r.Result
	metric := metricColumn(res.Metric)
	t := &Table{
		Title: "top " + strings.TrimPrefix(r.Scope.byText(), " by ") + " by " + string(res.Metric) + " in " + r.Scope.rangeText() + r.Scope.whereText(),
		Empty: "no usage in " + r.Scope.rangeText() + r.Scope.whereText(),
	}
	t.Columns = append([]Column{{Name: "rank", Head: "#", Kind: KindUint}}, dimColumns(by)...)
	t.Columns = append(t.Columns, metric,
		Column{Name: "share", Kind: KindFloat, Unit: UnitShare},
		Column{Name: "cumulative_share", Head: "CUMULATIVE", Kind: KindFloat, Unit: UnitShare},
		// Calls counted at cost 0 for want of a price: a cost of 0 is
		// never silently free (the table says it in a note).
		Column{Name: "unpriced_requests", Kind: KindUint, Show: ShowData})
	cum := 0.0
	for i := range res.Rows {
		row := &res.Rows[i]
		cum += row.Share
		vals := append([]Value{Uint(uint64(i + 1))}, dimValues(by, row.Group)...)
		t.Rows = append(t.Rows, append(vals, metricValue(res.Metric, &row.UsageRow), Float(row.Share), Float(min(cum, 1)),
			Uint(row.UnpricedRequests)))
	}
	if len(res.Rows) == 0 {
		return t
	}
	if rest := metricValue(res.Metric, &res.Rest); !rest.empty() {
		vals := append([]Value{Blank()}, labelValues(by, "OTHER")...)
		t.Footer = append(t.Footer, append(vals, rest, Float(res.RestShare), Blank(), Uint(res.Rest.UnpricedRequests)))
	}
	total := Null()
	if !metricValue(res.Metric, &res.Total).empty() {
		total = Float(1)
	}
	vals := append([]Value{Blank()}, labelValues(by, "TOTAL")...)
	t.Footer = append(t.Footer, append(vals, metricValue(res.Metric, &res.Total), total, Blank(), Uint(res.Total.UnpricedRequests)))
	t.Notes = append(t.Notes, "the top "+strconv.Itoa(len(res.Rows))+" groups hold "+Cell(Float(cum), UnitShare)+" of the total")
	if n := unpricedNote(res.Total.UnpricedRequests); n != "" && res.Metric == analytics.MetricCost {
		t.Notes = append(t.Notes, n)
	}
	return t
}
