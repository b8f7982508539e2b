package analytics

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/sketch"
)

// UsageSteps per hour and per day equals Usage asked for each step: the
// same groups, counts, cost and latency percentiles; and SLO's count over a
// bound agrees with the fixture's events.
func TestUsageStepsEqualUsagePerStep(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	q := fx.querier(fixtureStart.Add(72 * time.Hour))
	ctx := context.Background()
	by := []Dim{DimTenant, DimModel}
	where := map[Dim][]string{DimTenant: {tenantAcme, tenantQuote}}
	for _, step := range []time.Duration{time.Hour, day} {
		from, to := fixtureStart.Add(36*time.Hour), fixtureStart.Add(60*time.Hour)
		rows, err := q.UsageSteps(ctx, UsageQuery{From: from, To: to, By: by, Where: where}, step)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]UsageRow{}
		for _, r := range rows {
			got[r.Start.Format(time.RFC3339)+" "+groupKey(by, r.Group)] = r.UsageRow
		}
		want := map[string]UsageRow{}
		for s := from.Truncate(step); s.Before(to); s = s.Add(step) {
			us, err := q.Usage(ctx, UsageQuery{From: s, To: s.Add(step), By: by, Where: where})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range us {
				want[s.Format(time.RFC3339)+" "+groupKey(by, u.Group)] = u
			}
		}
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("step %s: %d rows, Usage per step %d", step, len(got), len(want))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok || g.Requests != w.Requests || g.Errors != w.Errors || g.CostUSD != w.CostUSD || g.UnpricedRequests != w.UnpricedRequests ||
				g.Latency.P99 != w.Latency.P99 || g.Latency.Count != w.Latency.Count || !reflect.DeepEqual(g.Group, w.Group) {
				t.Errorf("step %s %s: got %+v\nwant %+v", step, k, g, w)
			}
		}
	}
	if _, err := q.UsageSteps(ctx, UsageQuery{From: fixtureStart, To: fixtureStart.Add(time.Hour)}, time.Minute); err == nil {
		t.Error("a minute step was accepted")
	}
	// SLO: calls over 1000 ms in the fixture's events, within the
	// histogram's 1%.
	from, to := fixtureStart, fixtureStart.Add(72*time.Hour)
	slo, err := q.SLO(ctx, SLOQuery{From: from, To: to, ThresholdMs: 1000})
	if err != nil || len(slo) != 1 {
		t.Fatalf("%v %v", slo, err)
	}
	var over, near, timed uint64
	for _, e := range fx.events {
		if e.ts.Before(from) || !e.ts.Before(to) || e.latency < 0 {
			continue
		}
		timed++
		if e.latency > 1000*1.02 {
			over++
		} else if e.latency > 1000*0.98 {
			near++
		}
	}
	if s := slo[0]; s.Timed != timed || s.Over < over || s.Over > over+near || over == 0 {
		t.Errorf("SLO: timed %d over %d; events: timed %d, over %d (+%d near the bound)", s.Timed, s.Over, timed, over, near)
	}
}

// NoTTFT merges the latency histogram only: the same sums and latency
// percentiles as with both, TTFT empty; NoLatency drops both, the sums
// unchanged. Usage and UsageSteps agree on it.
func TestUsageStepsWithoutHistograms(t *testing.T) {
	t.Parallel()
	if sel := mergeSelectNoTTFT(); strings.Count(sel, "sumMap(") != 2 || strings.Count(sel, "sumMap(latency_histMap.idx") != 2 || strings.Contains(sel, "sumMap(ttft_hist") {
		t.Fatalf("select without TTFT: %s", sel)
	}
	fx := loadFixture(t)
	q := fx.querier(fixtureStart.Add(72 * time.Hour))
	ctx := context.Background()
	by := []Dim{DimTenant, DimModel}
	from, to := fixtureStart, fixtureStart.Add(72*time.Hour)
	read := func(uq UsageQuery) map[string]UsageRow {
		t.Helper()
		uq.From, uq.To, uq.By = from, to, by
		rows, err := q.UsageSteps(ctx, uq, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]UsageRow{}
		for _, r := range rows {
			out[r.Start.Format(time.RFC3339)+" "+groupKey(by, r.Group)] = r.UsageRow
		}
		return out
	}
	full, noTTFT, none := read(UsageQuery{}), read(UsageQuery{NoTTFT: true}), read(UsageQuery{NoLatency: true})
	if len(full) == 0 || len(noTTFT) != len(full) || len(none) != len(full) {
		t.Fatalf("%d, %d, %d rows", len(full), len(noTTFT), len(none))
	}
	ttft := 0
	for k, f := range full {
		a, b := noTTFT[k], none[k]
		if f.TTFT.Count > 0 {
			ttft++
		}
		if a.Requests != f.Requests || a.CostUSD != f.CostUSD || a.Errors != f.Errors || b.Requests != f.Requests || b.CostUSD != f.CostUSD ||
			b.UnpricedRequests != f.UnpricedRequests || a.Latency.P99 != f.Latency.P99 || a.Latency.P50 != f.Latency.P50 ||
			a.Latency.Count != f.Latency.Count || a.Latency.CountAbove(1000) != f.Latency.CountAbove(1000) ||
			a.TTFT != (Percentiles{}) || b.Latency != (Percentiles{}) || b.TTFT != (Percentiles{}) {
			t.Errorf("%s: all %+v\nno TTFT %+v\nnone %+v", k, f, a, b)
		}
	}
	if ttft == 0 {
		t.Error("the fixture has no TTFT: the test proves nothing")
	}
	us, err := q.Usage(ctx, UsageQuery{From: from, To: to, By: by, NoTTFT: true})
	if err != nil || len(us) == 0 {
		t.Fatalf("%v %v", us, err)
	}
	for _, u := range us {
		if u.TTFT != (Percentiles{}) {
			t.Errorf("Usage with NoTTFT: %+v", u)
		}
	}
}

// UsageStepsWith counts the calls over latency bounds as CountAbove does on
// the merged histograms, without merging them (also with NoLatency), and
// Only keeps the steps asked.
func TestUsageStepsWithOverAndOnly(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	q := fx.querier(fixtureStart.Add(72 * time.Hour))
	ctx := context.Background()
	by := []Dim{DimModel}
	from, to := fixtureStart, fixtureStart.Add(72*time.Hour)
	bounds := []float64{50, 300, 1000, 2500}
	for _, step := range []time.Duration{time.Hour, day} {
		full, err := q.UsageSteps(ctx, UsageQuery{From: from, To: to, By: by}, step)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]StepRow{}
		for _, r := range full {
			want[r.Start.Format(time.RFC3339)+" "+groupKey(by, r.Group)] = r
		}
		got, err := q.UsageStepsWith(ctx, UsageQuery{From: from, To: to, By: by, NoLatency: true}, step, StepOptions{OverMs: bounds, SumsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("step %s: %d rows, want %d", step, len(got), len(want))
		}
		over := 0
		for _, g := range got {
			k := g.Start.Format(time.RFC3339) + " " + groupKey(by, g.Group)
			w := want[k]
			if g.Timed != w.Latency.Count || g.Requests != w.Requests || g.Errors != w.Errors || g.UnpricedRequests != w.UnpricedRequests ||
				g.CostUSD != w.CostUSD || g.Latency != (Percentiles{}) || len(g.Over) != len(bounds) || g.InputTokens != 0 || w.InputTokens == 0 {
				t.Errorf("step %s %s: got %+v, want %+v", step, k, g, w)
				continue
			}
			for i, b := range bounds {
				if g.Over[i] != w.Latency.CountAbove(b) {
					t.Errorf("step %s %s: %d calls over %g ms, CountAbove %d", step, k, g.Over[i], b, w.Latency.CountAbove(b))
				}
				if g.Over[i] > 0 && g.Over[i] < g.Timed {
					over++
				}
			}
		}
		if over == 0 {
			t.Errorf("step %s: no group with some calls over a bound: the test proves nothing", step)
		}
	}
	// Only: two hours of the range, the same rows as UsageSteps has there.
	only := []time.Time{fixtureStart.Add(5 * time.Hour), fixtureStart.Add(40 * time.Hour)}
	got, err := q.UsageStepsWith(ctx, UsageQuery{From: from, To: to, By: by, NoTTFT: true}, time.Hour, StepOptions{Only: only, SumsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]StepRow{}
	for _, s := range only {
		rows, err := q.UsageSteps(ctx, UsageQuery{From: s, To: s.Add(time.Hour), By: by}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			want[r.Start.Format(time.RFC3339)+" "+groupKey(by, r.Group)] = r
		}
	}
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("Only: %d rows, want %d", len(got), len(want))
	}
	for _, g := range got {
		k := g.Start.Format(time.RFC3339) + " " + groupKey(by, g.Group)
		w, ok := want[k]
		if !ok || g.Latency.P99 != w.Latency.P99 || g.Latency.P50 != w.Latency.P50 || g.Latency.Max != w.Latency.Max || g.Requests != w.Requests {
			t.Errorf("Only %s: got %+v\nwant %+v", k, g, w)
		}
	}
}

// With TailMs the latency percentiles above the bound's bucket are the
// exact ones, the others that bucket's value (an upper bound); the counts
// and CountAbove at or above the bound are exact.
func TestUsageStepsTail(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	q := fx.querier(fixtureStart.Add(72 * time.Hour))
	ctx := context.Background()
	by := []Dim{DimTenant, DimModel}
	from, to := fixtureStart, fixtureStart.Add(72*time.Hour)
	full, err := q.UsageSteps(ctx, UsageQuery{From: from, To: to, By: by}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]StepRow{}
	for _, r := range full {
		want[r.Start.Format(time.RFC3339)+" "+groupKey(by, r.Group)] = r
	}
	for _, tail := range []float64{100, 400, 1500} {
		got, err := q.UsageStepsWith(ctx, UsageQuery{From: from, To: to, By: by, NoTTFT: true}, time.Hour, StepOptions{TailMs: tail, SumsOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("tail %g: %d rows, want %d", tail, len(got), len(want))
		}
		bound := sketch.Value(sketch.Index(tail))
		exact, capped := 0, 0
		for _, g := range got {
			k := g.Start.Format(time.RFC3339) + " " + groupKey(by, g.Group)
			w := want[k]
			if g.Latency.Count != w.Latency.Count || g.Requests != w.Requests || g.Latency.CountAbove(tail) != w.Latency.CountAbove(tail) || g.Latency.CountAbove(2*tail) != w.Latency.CountAbove(2*tail) {
				t.Errorf("tail %g %s: got %+v\nwant %+v", tail, k, g, w)
			}
			for _, p := range [][2]float64{{g.Latency.P50, w.Latency.P50}, {g.Latency.P90, w.Latency.P90}, {g.Latency.P99, w.Latency.P99}, {g.Latency.P999, w.Latency.P999}} {
				switch {
				case w.Latency.Count == 0:
				case p[1] > bound && p[0] == p[1]:
					exact++
				case p[1] <= bound && p[0] == bound:
					capped++
				default:
					t.Errorf("tail %g %s: a percentile %g, exact %g (bound %g)", tail, k, p[0], p[1], bound)
				}
			}
		}
		if exact == 0 || capped == 0 {
			t.Errorf("tail %g: %d exact and %d capped percentiles: the test proves little", tail, exact, capped)
		}
	}
	if _, err := q.UsageStepsWith(ctx, UsageQuery{From: from, To: to, NoLatency: true}, time.Hour, StepOptions{TailMs: 100}); err == nil {
		t.Error("TailMs with NoLatency was accepted")
	}
}
