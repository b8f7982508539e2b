package analytics

import (
	"context"
	"fmt"
	"slices"
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

// toEndOfDay returns segs with its last, partial day read as the whole day
// from usage_1d's summary when the range ends now (within endsNow of now):
// the day's row then holds the same calls as its hours and minutes so far,
// for nothing can have landed with a later time yet. It is one row per
// model instead of up to 23 hours and 59 minutes of them. Should something
// have landed later after all (a clock ahead of now), the check against
// the rollups' exact range (checkSummaries) sees it. The whole day joins
// the days before it into one segment: each segment is a branch of the
// query, and on ClickHouse 18.16 even a branch of a few rows costs a few
// milliseconds. Otherwise, and with whole false, it returns segs.
func toEndOfDay(segs []segment, now time.Time) (out []segment, whole bool) {
	to := segs[len(segs)-1].to
	d := to.Truncate(day)
	if d.Equal(to) || to.Before(now.Add(-endsNow)) || segs[0].from.After(d) {
		return segs, false
	}
	for _, s := range segs {
		switch {
		case !s.to.After(d):
			out = append(out, s)
		case s.from.Before(d):
			return segs, false // one table's segment across midnight (a fixed granularity)
		}
	}
	if n := len(out); n > 0 && out[n-1].table == warehouse.Day && out[n-1].to.Equal(d) {
		out[n-1].to = d.Add(day) // one read of the days, today with them
		return out, true
	}
	return append(out, segment{warehouse.Day, d, d.Add(day)}), true
}

// toWeeks returns planned (per-model summary segments: plan's, or
// toEndOfDay's) with the whole ISO weeks of its days read from the weekly
// summary, usage_model_1w: one row per model and week instead of seven.
// With lastWhole (toEndOfDay read the last day whole: the range ends now),
// the days of the current week up to today are read as the whole week, for
// the same reason. Days before the first Monday stay days. Weeks are used
// only when they replace at least two weeks of days: each segment is a
// branch of the query, which costs a few milliseconds on its own.
func toWeeks(planned []segment, lastWhole bool) []segment {
	const week = 7 * day
	for i, s := range planned {
		if s.table != warehouse.Day {
			continue
		}
		ws := warehouse.Week.Truncate(s.from)
		if ws.Before(s.from) {
			ws = ws.Add(week)
		}
		we := warehouse.Week.Truncate(s.to)
		if lastWhole && i == len(planned)-1 && we.Before(s.to) {
			we = we.Add(week)
		}
		if we.Sub(ws) < 2*week {
			return planned
		}
		out := append([]segment(nil), planned[:i]...)
		if s.from.Before(ws) {
			out = append(out, segment{warehouse.Day, s.from, ws})
		}
		out = append(out, segment{warehouse.Week, ws, we})
		if we.Before(s.to) {
			out = append(out, segment{warehouse.Day, we, s.to})
		}
		return append(out, planned[i+1:]...)
	}
	return planned
}

// endsNow is how close to now a range must end for toEndOfDay: a range
// "since 30d" ends at the clock the command read before it queried.
const endsNow = 5 * time.Second

// summaryCheck is the requests and cost of a range, read from the rollups
// or from the summaries.
type summaryCheck struct {
	requests uint64
	cost     string
}

// checkSummaries reads the requests and cost of the range under n's
// filters from the rollups (its segments exact) and from what the
// summaries' query reads (planned: exact, or with its last day whole,
// toEndOfDay), in one query; a minute segment both read alike is left out
// of both sides. They agree unless a summary missed an insert its rollup got
// (the two views of one insert are two parts: a server that died between
// them), in which case the summaries must not be used for this range. A
// row landing while the query runs may also show in one and not yet in the
// other: that too answers "do not use them", which is only slower.
func (q *Querier) checkSummaries(ctx context.Context, n normalized, exact, planned []segment) (rollups, summaries summaryCheck, err error) {
	var sb strings.Builder
	var args []any
	requests, _ := warehouse.MergeExpr("requests")
	cost, _ := warehouse.MergeExpr("cost_usd")
	sb.WriteString("SELECT src, sum(r), toString(sum(c)) FROM (")
	first := true
	shared := func(s segment, in []segment) bool {
		return !s.table.HasSummary() && slices.Contains(in, s)
	}
	for src, side := range []struct {
		segs, other []segment
		name        func(warehouse.Table) string
	}{{exact, planned, rollupName}, {planned, exact, warehouse.Table.SummaryName}} {
		for _, s := range side.segs {
			if shared(s, side.other) {
				continue // read from the rollup on both sides
			}
			if !first {
				sb.WriteString("\n    UNION ALL")
			}
			first = false
			fmt.Fprintf(&sb, "\n    SELECT toUInt8(%d) AS src, %s AS r, %s AS c FROM %s.%s WHERE ", src, requests, cost, q.w.Database(), side.name(s.table))
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

// rollupName is the rollup holding t's rows: a week segment is read as its
// days.
func rollupName(t warehouse.Table) string { return t.Rollup().Name() }

// summaryVerdict is the outcome of checkSummaries for one query.
type summaryVerdict struct {
	ok  bool
	err error
	// why says how they differ, for the log.
	why string
}

// verifySummaries runs checkSummaries and says whether the summaries may
// answer; the decimal costs are compared as numbers (trailing zeros).
func (q *Querier) verifySummaries(ctx context.Context, n normalized, exact, planned []segment) summaryVerdict {
	r, s, err := q.checkSummaries(ctx, n, exact, planned)
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
