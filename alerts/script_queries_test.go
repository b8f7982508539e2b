package alerts

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

// queryRecorder is a Source that records the usage queries it is asked.
type queryRecorder struct {
	Source
	usage []analytics.UsageQuery
}

func (r *queryRecorder) Usage(ctx context.Context, uq analytics.UsageQuery) ([]analytics.UsageRow, error) {
	r.usage = append(r.usage, uq)
	return r.Source.Usage(ctx, uq)
}

// The rules' usage queries merge only the histograms they read: budget,
// error rate and unpriced rules none (analytics.UsageQuery.NoLatency), a
// latency rule the latency one only (NoTTFT). Merging the histograms is
// most of a usage query's work.
func TestEvaluationQueriesMergeOnlyTheHistogramsTheyRead(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-03-10T00:00:00Z"), ts("2026-03-10T02:00:00Z"), time.Minute, func(time.Time) Point {
		return Point{Cost: 1, Requests: 10, Errors: 5, Unpriced: 1, Timed: 10, Latency: Latencies{P99: 5000}}
	})
	cfg := mustConfig(t, `
rules:
  - {name: budget, kind: budget, by: [tenant], period: day, amount_usd: 10}
  - {name: errors, kind: error_rate, by: [tenant], threshold_pct: 10, min_requests: 1}
  - {name: unpriced, kind: unpriced, by: [model]}
  - {name: slow, kind: latency, by: [model], percentile: 99, threshold_ms: 1000, min_requests: 1}
`)
	want := map[string]string{"budget": "NoLatency", "errors": "NoLatency", "unpriced": "NoLatency", "slow": "NoTTFT"}
	at := ts("2026-03-10T01:00:00Z")
	for _, r := range cfg.Rules {
		rec := &queryRecorder{Source: s}
		smp, err := Evaluate(context.Background(), rec, cfg, r, at)
		if err != nil {
			t.Fatal(err)
		}
		if len(smp) == 0 || !slices.ContainsFunc(smp, func(s Sample) bool { return s.Active }) {
			t.Errorf("%s: nothing fired: %+v", r.Name, smp) // the rule read what it needs
		}
		if len(rec.usage) == 0 {
			t.Fatalf("%s asked no usage", r.Name)
		}
		for _, uq := range rec.usage {
			got := fmt.Sprintf("NoLatency=%v NoTTFT=%v", uq.NoLatency, uq.NoTTFT)
			exp := "NoLatency=true NoTTFT=false"
			if want[r.Name] == "NoTTFT" {
				exp = "NoLatency=false NoTTFT=true"
			}
			if got != exp {
				t.Errorf("%s asks usage with %s, want %s", r.Name, got, exp)
			}
		}
	}
}
