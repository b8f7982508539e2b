package analytics

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// UsageSteps per hour and per day equals Usage asked for each step: the
// same groups, counts, cost and latency percentiles; and SLO's count over a
// bound agrees with the fixture's events.
func TestUsageStepsEqualUsagePerStep(t *testing.T) {
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
