package analytics

import (
	"math"

	"github.com/costpipe/costpipe/pipelines/sketch"
)

// Total returns the usage of rows taken together: what the same query
// without By answers, computed from its groups rather than by a second
// query, so a TOTAL line always adds up to the rows above it (a second
// query would also see what landed in between). Counters, the exact cost,
// the accelerator time, and the re-priced cost and unpriced calls when the
// rows carry them, are summed. Each duration's histograms are merged, so
// its percentiles, mean, minimum and maximum are those of all the calls,
// exactly as a merge of every rollup row gives them. rows must be the
// groups of one query, each once.
func Total(rows []UsageRow) UsageRow {
	t := UsageRow{Group: map[Dim]string{}}
	var lat, ttft []*Percentiles
	for i := range rows {
		r := &rows[i]
		t.Requests += r.Requests
		t.Errors += r.Errors
		t.InputTokens += r.InputTokens
		t.CachedInputTokens += r.CachedInputTokens
		t.CacheWriteTokens += r.CacheWriteTokens
		t.CacheWrite1hTokens += r.CacheWrite1hTokens
		t.OutputTokens += r.OutputTokens
		t.ReasoningTokens += r.ReasoningTokens
		t.UnpricedRequests += r.UnpricedRequests
		t.GPUMicros += r.GPUMicros
		t.CostUSD = t.CostUSD.Add(r.CostUSD)
		if r.Reprice != nil {
			if t.Reprice == nil {
				t.Reprice = &Repriced{}
			}
			t.Reprice.CostUSD = t.Reprice.CostUSD.Add(r.Reprice.CostUSD)
			t.Reprice.UnpricedRequests += r.Reprice.UnpricedRequests
			t.Reprice.requests += r.Reprice.requests
		}
		lat, ttft = append(lat, &r.Latency), append(ttft, &r.TTFT)
	}
	t.GPUMs = float64(t.GPUMicros) / 1000
	t.Latency, t.TTFT = mergePercentiles(lat), mergePercentiles(ttft)
	return t
}

// mergePercentiles is the summary of the calls of all ps. The histograms
// of ps are not modified.
func mergePercentiles(ps []*Percentiles) Percentiles {
	out := Percentiles{Min: math.Inf(1)}
	for _, p := range ps {
		if p.Count == 0 {
			continue
		}
		if out.Count+p.Count < out.Count {
			return Percentiles{} // more than 2^64 calls: not a number anyone stored
		}
		if out.hist == nil {
			out.hist = &sketch.Histogram{}
		}
		if p.hist != nil {
			out.hist.Merge(p.hist)
		}
		out.Count += p.Count
		out.sumMicros += p.sumMicros
		out.Min, out.Max = min(out.Min, p.Min), max(out.Max, p.Max)
	}
	if out.Count == 0 {
		return Percentiles{}
	}
	out.fromHistogram()
	return out
}
