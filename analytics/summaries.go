package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/costpipe/costpipe/warehouse"
)

// summaryDims are the dimensions the per-model summaries keep
// (warehouse.ModelDims): a query grouping and filtering by these only can
// read them instead of the rollups.
var summaryDims = func() map[Dim]bool {
	out := map[Dim]bool{}
	for _, d := range warehouse.ModelDims() {
		out[Dim(d)] = true
	}
	return out
}()

// summarizable reports whether n can be answered from the per-model
// summaries: every dimension it groups or filters by is one they keep.
func summarizable(n normalized) bool {
	for _, d := range n.by {
		if !summaryDims[d] {
			return false
		}
	}
	for _, f := range n.where {
		if !summaryDims[f.dim] {
			return false
		}
	}
	return true
}

// coarse reports whether segs read whole hours or days: ranges of minutes
// only read few rollup rows.
func coarse(segs []segment) bool {
	for _, s := range segs {
		if s.table != warehouse.Minute {
			return true
		}
	}
	return false
}

// summaryCheck is the requests and cost of a range, read from the rollups
// or from the summaries.
type summaryCheck struct {
	requests uint64
	cost     string
}

// checkSummaries reads the requests and cost of the segments of segs that
// have a summary, under n's filters, from both the rollups and the
// summaries, in one query (the other segments are read from their rollup
// either way). They agree unless a summary missed an insert its rollup got
// (the two views of one insert are two parts: a server that died between
// them), in which case the summaries must not be used for this range. A
// row landing while the query runs may also show in one and not yet in the
// other: that too answers "do not use them", which is only slower.
func (q *Querier) checkSummaries(ctx context.Context, n normalized, segs []segment) (rollups, summaries summaryCheck, err error) {
	var sb strings.Builder
	var args []any
	requests, _ := warehouse.MergeExpr("requests")
	cost, _ := warehouse.MergeExpr("cost_usd")
	sb.WriteString("SELECT src, sum(r), toString(sum(c)) FROM (")
	first := true
	for src, name := range []func(warehouse.Table) string{warehouse.Table.Name, warehouse.Table.SummaryName} {
		for _, s := range segs {
			if !s.table.HasSummary() {
				continue // read from the rollup on both sides
			}
			if !first {
				sb.WriteString("\n    UNION ALL")
			}
			first = false
			fmt.Fprintf(&sb, "\n    SELECT toUInt8(%d) AS src, %s AS r, %s AS c FROM %s.%s WHERE ", src, requests, cost, q.w.Database(), name(s.table))
			args = appendWhere(&sb, args, s.table, s.from, s.to, n.where)
		}
	}
	if first {
		return rollups, summaries, nil // no summary in segs: nothing to compare
	}
	sb.WriteString("\n) GROUP BY src")
	rows, err := q.w.Conn().Query(ctx, sb.String(), args...)
	if err != nil {
		return rollups, summaries, fmt.Errorf("cannot compare the per-model summaries with the rollups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			src uint8
			c   summaryCheck
		)
		if err := rows.Scan(&src, &c.requests, &c.cost); err != nil {
			return rollups, summaries, fmt.Errorf("cannot compare the per-model summaries with the rollups: %w", err)
		}
		if src == 0 {
			rollups = c
		} else {
			summaries = c
		}
	}
	return rollups, summaries, rows.Err()
}

// summaryVerdict is the outcome of checkSummaries for one query.
type summaryVerdict struct {
	ok  bool
	err error
	// why says how they differ, for the log.
	why string
}

// verifySummaries runs checkSummaries and says whether the summaries may
// answer; the decimal costs are compared as numbers (trailing zeros).
func (q *Querier) verifySummaries(ctx context.Context, n normalized, segs []segment) summaryVerdict {
	r, s, err := q.checkSummaries(ctx, n, segs)
	if err != nil {
		return summaryVerdict{err: err}
	}
	if r.requests == s.requests && trimDecimal(r.cost) == trimDecimal(s.cost) {
		return summaryVerdict{ok: true}
	}
	return summaryVerdict{why: fmt.Sprintf("requests %d in the rollups, %d in the summaries; cost %s and %s",
		r.requests, s.requests, trimDecimal(r.cost), trimDecimal(s.cost))}
}

// trimDecimal drops a decimal's trailing fractional zeros: "1.50" → "1.5",
// "2.000" → "2".
func trimDecimal(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// rangeString is "[from, to)" in RFC 3339.
func rangeString(from, to time.Time) string {
	return "[" + from.UTC().Format(time.RFC3339) + ", " + to.UTC().Format(time.RFC3339) + ")"
}
