package analytics

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestSeries: every step of every group equals the events summed by their
// UTC minute, hour or day; steps without events are there with 0; the
// range widens to whole steps.
func TestSeries(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	q := fx.querier(d(2026, 3, 1, 0, 0, 0))
	// Ungrouped and without usage: one series of zeros, not none.
	empty, err := q.Series(ctx, SeriesQuery{From: d(2026, 1, 31, 20, 0, 0), To: d(2026, 2, 1, 0, 0, 0), Step: time.Hour,
		Where: map[Dim][]string{DimTenant: {"nobody"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Series) != 1 || len(empty.Series[0].Values) != 4 || slices.ContainsFunc(empty.Series[0].Values, func(v float64) bool { return v != 0 }) {
		t.Errorf("ungrouped series without usage: %+v, want one series of 4 zeros", empty.Series)
	}
	for _, tc := range []struct {
		name       string
		from, to   time.Time
		step       time.Duration
		by         []Dim
		where      map[Dim][]string
		metric     Metric
		first      time.Time // the first step
		steps      int
		wantFilled bool // the range must hold a step some group has no event in
	}{
		{"hours across the month, cost", d(2026, 1, 31, 20, 0, 0), d(2026, 2, 1, 4, 0, 0), time.Hour, []Dim{DimTenant}, nil, MetricCost,
			d(2026, 1, 31, 20, 0, 0), 8, false},
		{"sparse minutes, requests", d(2026, 1, 30, 6, 0, 0), d(2026, 1, 30, 7, 0, 0), time.Minute, []Dim{DimModel}, nil, MetricRequests,
			d(2026, 1, 30, 6, 0, 0), 60, true},
		{"days widened to whole steps, tokens, filtered", d(2026, 1, 29, 12, 0, 0), d(2026, 2, 1, 0, 0, 1), day, []Dim{DimModel, DimErrorType},
			map[Dim][]string{DimTenant: {tenantQuote}}, MetricTokens, d(2026, 1, 29, 0, 0, 0), 4, true},
		{"unaligned hours, no groups", d(2026, 1, 31, 22, 30, 0), d(2026, 2, 1, 1, 10, 0), time.Hour, nil, nil, MetricCost,
			d(2026, 1, 31, 22, 0, 0), 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := q.Series(ctx, SeriesQuery{From: tc.from, To: tc.to, Step: tc.step, By: tc.by, Where: tc.where, Metric: tc.metric})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Steps) != tc.steps || !res.From.Equal(tc.first) || !res.Steps[0].Equal(tc.first) ||
				!res.To.Equal(tc.first.Add(time.Duration(tc.steps)*tc.step)) || res.Step != tc.step {
				t.Fatalf("steps %d from %s to %s, want %d from %s", len(res.Steps), res.From, res.To, tc.steps, tc.first)
			}
			for i, s := range res.Steps {
				if !s.Equal(tc.first.Add(time.Duration(i)*tc.step)) || s.Location() != time.UTC {
					t.Fatalf("step %d is %s", i, s)
				}
			}
			type exp struct {
				cost     []pricing.Pico
				values   []float64
				unpriced uint64
			}
			var unpriced uint64 // of the range, for MetricCost
			want := map[string]*exp{}
			var order []string
			for _, e := range fx.events {
				i := int(e.ts.Truncate(tc.step).Sub(tc.first) / tc.step)
				if i < 0 || i >= tc.steps {
					continue
				}
				ok := true
				for dim, vs := range tc.where {
					ok = ok && dimValue(e, dim) == vs[0]
				}
				if !ok {
					continue
				}
				keys := make([]string, len(tc.by))
				for k, dim := range tc.by {
					keys[k] = dimValue(e, dim)
				}
				k := strings.Join(keys, "/")
				if want[k] == nil {
					want[k] = &exp{cost: make([]pricing.Pico, tc.steps), values: make([]float64, tc.steps)}
					order = append(order, k)
				}
				w := want[k]
				w.cost[i] = w.cost[i].Add(e.cost)
				if e.unpriced && tc.metric == MetricCost {
					w.unpriced++
					unpriced++
				}
				switch tc.metric {
				case MetricCost:
					w.values[i] = w.cost[i].Float64()
				case MetricRequests:
					w.values[i]++
				case MetricTokens:
					w.values[i] += float64(e.input + e.output)
				}
			}
			if len(res.Series) != len(want) {
				t.Fatalf("%d series, want %d", len(res.Series), len(want))
			}
			filled := false
			prev := -1.0
			for _, s := range res.Series {
				keys := make([]string, len(tc.by))
				for k, dim := range tc.by {
					keys[k] = s.Group[dim]
				}
				w := want[strings.Join(keys, "/")]
				if w == nil || len(s.Values) != tc.steps {
					t.Fatalf("group %v: %d values, want %d (expected: %v)", s.Group, len(s.Values), tc.steps, w != nil)
				}
				total := 0.0
				for i, v := range s.Values {
					if v != w.values[i] {
						t.Errorf("group %v step %s: %v, want %v", s.Group, res.Steps[i].Format(time.RFC3339), v, w.values[i])
					}
					if tc.metric == MetricCost && s.Cost[i] != w.cost[i] {
						t.Errorf("group %v step %s: cost %s, want %s exactly", s.Group, res.Steps[i].Format(time.RFC3339), s.Cost[i], w.cost[i])
					}
					filled = filled || v == 0
					total += v
				}
				if s.UnpricedRequests != w.unpriced {
					t.Errorf("group %v: %d unpriced calls, want %d", s.Group, s.UnpricedRequests, w.unpriced)
				}
				if (tc.metric == MetricCost) != (s.Cost != nil) {
					t.Errorf("group %v: exact costs %v with metric %s", s.Group, s.Cost != nil, tc.metric)
				}
				if prev >= 0 && total > prev {
					t.Errorf("series not ordered by total: %v after %v", total, prev)
				}
				prev = total
			}
			if res.UnpricedRequests != unpriced {
				t.Errorf("%d unpriced calls in the range, want %d", res.UnpricedRequests, unpriced)
			}
			if tc.metric == MetricCost && tc.by != nil && unpriced == 0 {
				t.Errorf("the test range of a cost series has no unpriced call to count")
			}
			if tc.wantFilled && !filled {
				t.Errorf("the test range has no empty step to fill")
			}
		})
	}

	t.Run("read while the last step runs", func(t *testing.T) {
		now := d(2026, 1, 31, 22, 30, 0)
		res, err := fx.querier(now).Series(ctx, SeriesQuery{From: d(2026, 1, 31, 20, 0, 0), Step: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if !res.AsOf.Equal(now) || res.AsOf.Location() != time.UTC || len(res.Steps) != 3 || !res.To.Equal(d(2026, 1, 31, 23, 0, 0)) {
			t.Errorf("as of %s, %d steps to %s; want as of %s, 3 steps to 23:00", res.AsOf, len(res.Steps), res.To, now)
		}
		if res, err := q.Series(ctx, SeriesQuery{From: d(2026, 1, 31, 20, 0, 0), To: d(2026, 1, 31, 22, 0, 0)}); err != nil || !res.AsOf.Equal(d(2026, 3, 1, 0, 0, 0)) {
			t.Errorf("a past range: as of %s (%v), want the querier's now", res.AsOf, err)
		}
	})

	t.Run("bounds and invalid queries", func(t *testing.T) {
		for _, tc := range []struct {
			q    *Querier
			sq   SeriesQuery
			want string
		}{
			{q, SeriesQuery{From: fixtureStart, To: fixtureStart.Add(8 * day), Step: time.Minute},
				"a series has at most 10000 steps, not 11520 of 1m in [2026-01-30T00:00:00Z, 2026-02-07T00:00:00Z): shorten the range or take a longer step"},
			{q, SeriesQuery{From: fixtureStart, To: fixtureStart.Add(day), Step: 2 * time.Hour}, "unknown step 2h0m0s: want 1m, 1h or 1d"},
			{q, SeriesQuery{To: fixtureStart}, "needs a start time"},
			{q, SeriesQuery{From: fixtureStart, To: fixtureStart}, "is empty"},
			{q, SeriesQuery{From: fixtureStart, To: fixtureStart.Add(day), Metric: "latency"}, `unknown metric "latency"`},
			{q, SeriesQuery{From: fixtureStart, To: fixtureStart.Add(day), By: []Dim{"region"}}, `cannot group by "region"`},
			{New(fx.w, Options{MaxRows: 1}), SeriesQuery{From: fixtureStart, To: fixtureStart.Add(day), By: []Dim{DimTenant}},
				"series query has more than 1 groups of 24 steps"},
		} {
			_, err := tc.q.Series(ctx, tc.sq)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Series(%+v) err = %v, want %q", tc.sq, err, tc.want)
			}
			if strings.Contains(tc.want, "at most") != errors.Is(err, ErrTooManySteps) {
				t.Errorf("Series(%+v) err = %v: errors.Is(ErrTooManySteps) is wrong", tc.sq, err)
			}
		}
		if s, err := ParseStep("1d"); err != nil || s != day {
			t.Errorf("ParseStep(1d) = %v, %v", s, err)
		}
		if _, err := ParseStep("5m"); err == nil || err.Error() != `unknown step "5m": want 1m, 1h or 1d` {
			t.Errorf("ParseStep(5m) err = %v", err)
		}
	})

	t.Run("zero To is the clock's now, the current step included", func(t *testing.T) {
		now := d(2026, 2, 1, 0, 30, 15)
		res, err := fx.querier(now).Series(ctx, SeriesQuery{From: now.Add(-2 * time.Hour), Metric: MetricRequests})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Steps) != 3 || !res.To.Equal(d(2026, 2, 1, 1, 0, 0)) || len(res.Series) != 1 {
			t.Fatalf("steps %v to %s, %d series", res.Steps, res.To, len(res.Series))
		}
	})
}
