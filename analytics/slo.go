package analytics

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/costpipe/costpipe/pipelines/sketch"
)

// SLOQuery asks, per group, how many calls in [From, To) took longer than
// ThresholdMs and how many failed: the "bad events" of latency and
// availability objectives (the alert evaluator's burn rates).
type SLOQuery struct {
	// From, To, By and Where are as in UsageQuery.
	From, To time.Time
	By       []Dim
	Where    map[Dim][]string
	// ThresholdMs is the latency objective's bound in milliseconds (> 0).
	ThresholdMs float64
}

// SLORow is one group's good and bad calls.
type SLORow struct {
	Group map[Dim]string
	// Requests are all calls, Errors those with status "error".
	Requests, Errors uint64
	// Timed are the calls that reported latency_ms; Over those of them
	// slower than ThresholdMs. Over is read from the merged latency
	// histogram: a call counts when its histogram bucket lies wholly above
	// the threshold, so a call within 1% (sketch.Alpha) above the
	// threshold may not count.
	Timed, Over uint64
}

// SLO returns the SLO counts of every group with usage in the range, in
// the order of Usage. It reads what Usage reads but the TTFT histograms
// (one query).
func (q *Querier) SLO(ctx context.Context, sq SLOQuery) ([]SLORow, error) {
	if !(sq.ThresholdMs > 0) || math.IsInf(sq.ThresholdMs, 1) {
		return nil, fmt.Errorf("SLO latency threshold %v ms: want a finite number > 0", sq.ThresholdMs)
	}
	rows, err := q.Usage(ctx, UsageQuery{From: sq.From, To: sq.To, By: sq.By, Where: sq.Where, NoTTFT: true})
	if err != nil {
		return nil, err
	}
	out := make([]SLORow, len(rows))
	for i, r := range rows {
		out[i] = SLORow{Group: r.Group, Requests: r.Requests, Errors: r.Errors, Timed: r.Latency.Count,
			Over: r.Latency.CountAbove(sq.ThresholdMs)}
	}
	return out, nil
}

// CountAbove returns how many of the calls took longer than ms: those in
// histogram buckets whose lower bound is at or above ms (within 1%).
func (p Percentiles) CountAbove(ms float64) uint64 {
	if p.hist == nil {
		return 0
	}
	limit := sketch.Index(ms)
	idx, cnt := p.hist.AppendArrays(nil, nil)
	var n uint64
	for k, i := range idx {
		if i != sketch.ZeroIndex && i > limit {
			n += cnt[k]
		}
	}
	return n
}
