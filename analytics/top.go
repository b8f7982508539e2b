package analytics

import (
	"context"
	"fmt"
	"math/big"
	"time"
)

// DefaultTopN is the number of groups Top returns when TopQuery.N is zero.
const DefaultTopN = 10

// TopQuery asks for the largest groups of usage in [From, To) by a metric,
// with their share of the total.
type TopQuery struct {
	// From, To, Where and Granularity are as in UsageQuery.
	From, To    time.Time
	Where       map[Dim][]string
	Granularity Granularity
	// By lists the dimensions of a group; at least one.
	By []Dim
	// Metric ranks the groups; zero is MetricCost.
	Metric Metric
	// N is the number of groups returned; zero means DefaultTopN. At most
	// Options.MaxRows.
	N int
	// NoLatency leaves the latency and TTFT distributions of the rows and
	// the total out, as UsageQuery.NoLatency: for a ranking that shows the
	// metric only, several times faster over long ranges.
	NoLatency bool
}

// TopRow is one of the largest groups.
type TopRow struct {
	UsageRow
	// Share is the group's part of the total's metric, from 0 to 1 (0 when
	// the total is 0): the exact ratio (of Pico amounts for cost), rounded
	// once to a float64.
	Share float64
}

// TopResult is the answer of Top.
type TopResult struct {
	// Metric is the metric the rows are ranked by.
	Metric Metric
	// Rows are the largest groups, largest first (ties by group).
	Rows []TopRow
	// Total is the usage of every group that matched, its percentiles
	// merged over all of them; read by the same query as Rows, so the
	// shares of Rows never sum to more than 1 (up to float rounding).
	Total UsageRow
	// Rest is the usage of the groups not in Rows: Total minus the sums of
	// Rows, exact for the counters and the cost. Its Group is empty and
	// its percentiles are unset (they cannot be subtracted).
	Rest UsageRow
	// RestShare is Rest's part of the total's metric.
	RestShare float64
	// Answered is the range the groups count (UsageAnswered).
	Answered Answered
}

// Top returns the tq.N largest groups by tq.Metric, with their share of
// the total and the rest. It reads the groups and the totals in one query
// (the tables as Usage reads them), ordered in SQL, so only N groups are
// transferred however many there are.
func (q *Querier) Top(ctx context.Context, tq TopQuery) (TopResult, error) {
	res := TopResult{Metric: tq.Metric}
	if res.Metric == "" {
		res.Metric = MetricCost
	}
	if _, ok := res.Metric.exactExpr(); !ok {
		return res, unknownMetric(string(tq.Metric))
	}
	if len(tq.By) == 0 {
		return res, fmt.Errorf("top groups need at least one dimension to group by")
	}
	n := tq.N
	if n == 0 {
		n = DefaultTopN
	}
	if n < 1 || n > q.opts.MaxRows {
		return res, fmt.Errorf("top %d groups: want 1 to %d", n, q.opts.MaxRows)
	}
	norm, err := normalize(UsageQuery{From: tq.From, To: tq.To, By: tq.By, Where: tq.Where, Granularity: tq.Granularity,
		NoLatency: tq.NoLatency}, q.opts.Now())
	if err != nil {
		return res, err
	}
	norm.order = res.Metric
	var (
		rows  []UsageRow
		total UsageRow
	)
	read, err := q.retainedRead(ctx, norm, func(norm normalized) (err error) {
		rows, total, err = q.usageRows(ctx, norm, n, true)
		return err
	})
	if err != nil {
		return res, err
	}
	res.Answered = answered(norm.from, norm.to, read.from, read.to)
	res.Total = total
	res.Rest = total
	res.Rest.Latency, res.Rest.TTFT = Percentiles{}, Percentiles{}
	res.Rest.Group = map[Dim]string{}
	whole := exactValue(res.Metric, &total)
	for _, r := range rows {
		res.Rows = append(res.Rows, TopRow{UsageRow: r, Share: share(exactValue(res.Metric, &r), whole)})
		subtract(&res.Rest, &r)
	}
	res.RestShare = share(exactValue(res.Metric, &res.Rest), whole)
	return res, nil
}

// exactValue is r's value of m as an integer: picodollars for cost.
func exactValue(m Metric, r *UsageRow) *big.Int {
	u := new(big.Int)
	switch m {
	case MetricCost:
		return r.CostUSD.BigInt()
	case MetricRequests:
		return u.SetUint64(r.Requests)
	case MetricInputTokens:
		return u.SetUint64(r.InputTokens)
	case MetricOutputTokens:
		return u.SetUint64(r.OutputTokens)
	}
	return u.SetUint64(r.InputTokens).Add(u, new(big.Int).SetUint64(r.OutputTokens))
}

// share is part/whole rounded to a float64, 0 when whole is not positive.
func share(part, whole *big.Int) float64 {
	if whole.Sign() <= 0 || part.Sign() <= 0 {
		return 0
	}
	f, _ := new(big.Rat).SetFrac(part, whole).Float64()
	return f
}

// subtract takes r's counters and cost off rest; a counter never goes
// below zero.
func subtract(rest, r *UsageRow) {
	sub := func(a *uint64, b uint64) { *a -= min(*a, b) }
	sub(&rest.Requests, r.Requests)
	sub(&rest.Errors, r.Errors)
	sub(&rest.InputTokens, r.InputTokens)
	sub(&rest.CachedInputTokens, r.CachedInputTokens)
	sub(&rest.CacheWriteTokens, r.CacheWriteTokens)
	sub(&rest.CacheWrite1hTokens, r.CacheWrite1hTokens)
	sub(&rest.OutputTokens, r.OutputTokens)
	sub(&rest.ReasoningTokens, r.ReasoningTokens)
	sub(&rest.UnpricedRequests, r.UnpricedRequests)
	sub(&rest.GPUMicros, r.GPUMicros)
	rest.GPUMs = float64(rest.GPUMicros) / 1000
	rest.CostUSD = rest.CostUSD.Sub(r.CostUSD)
}
