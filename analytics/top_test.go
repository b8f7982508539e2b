package analytics

import (
	"context"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// expValue is an expected group's value of m, exactly (picodollars for
// cost).
func expValue(m Metric, r *expRow) *big.Int {
	switch m {
	case MetricCost:
		return r.cost.BigInt()
	case MetricRequests:
		return new(big.Int).SetUint64(r.requests)
	}
	return new(big.Int).SetUint64(r.input + r.output)
}

// TestTop: the N largest groups by each metric equal the events grouped,
// ranked and cut in Go; shares are the exact ratios; the rest is the total
// minus the rows, exactly.
func TestTop(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	end := d(2026, 2, 2, 0, 0, 0)
	q := fx.querier(end)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		by       []Dim
		where    map[Dim][]string
		metric   Metric
		n        int
	}{
		{"cost, whole days", fixtureStart, end, []Dim{DimTenant, DimModel}, nil, MetricCost, 3},
		{"requests, ragged range mixes tables, filtered", d(2026, 1, 30, 10, 17, 30), d(2026, 2, 1, 3, 5, 0), []Dim{DimModel},
			map[Dim][]string{DimTenant: {tenantAcme}}, MetricRequests, 2},
		{"tokens, N above the number of groups", fixtureStart, end, []Dim{DimModel}, nil, MetricTokens, 10},
		{"default metric and N", fixtureStart, end, []Dim{DimTenant, DimApplication, DimModel, DimErrorType}, nil, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := q.Top(ctx, TopQuery{From: tc.from, To: tc.to, By: tc.by, Where: tc.where, Metric: tc.metric, N: tc.n})
			if err != nil {
				t.Fatal(err)
			}
			m, n := tc.metric, tc.n
			if m == "" {
				m, n = MetricCost, DefaultTopN
			}
			if res.Metric != m {
				t.Errorf("metric %q, want %q", res.Metric, m)
			}
			want := expect(fx.events, tc.from, tc.to, tc.by, tc.where)
			sort.SliceStable(want, func(i, j int) bool {
				if c := expValue(m, want[i]).Cmp(expValue(m, want[j])); c != 0 {
					return c > 0
				}
				return strings.Join(want[i].keys, "\x00") < strings.Join(want[j].keys, "\x00")
			})
			total := expect(fx.events, tc.from, tc.to, nil, tc.where)[0]
			checkRow(t, "total", res.Total, total)
			if len(want) > n {
				want = want[:n]
			}
			rows := make([]UsageRow, len(res.Rows))
			for i := range res.Rows {
				rows[i] = res.Rows[i].UsageRow
			}
			checkRows(t, tc.name, tc.by, rows, want)
			whole := expValue(m, total)
			sum := res.RestShare
			rest := total.cost
			var restRequests, restTokens uint64 = total.requests, total.input + total.output
			for i, r := range res.Rows {
				exact, _ := new(big.Rat).SetFrac(expValue(m, want[i]), whole).Float64()
				if r.Share != exact {
					t.Errorf("row %d share %v, want %v", i, r.Share, exact)
				}
				sum += r.Share
				rest = rest.Sub(want[i].cost)
				restRequests -= want[i].requests
				restTokens -= want[i].input + want[i].output
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("shares and the rest sum to %v, want 1", sum)
			}
			if res.Rest.CostUSD != rest || res.Rest.Requests != restRequests || res.Rest.InputTokens+res.Rest.OutputTokens != restTokens {
				t.Errorf("rest = cost %s requests %d tokens %d, want %s %d %d", res.Rest.CostUSD, res.Rest.Requests,
					res.Rest.InputTokens+res.Rest.OutputTokens, rest, restRequests, restTokens)
			}
			if res.Rest.Latency.Present() || len(res.Rest.Group) != 0 {
				t.Errorf("rest has percentiles or a group: %+v", res.Rest)
			}
			if len(res.Rows) < n && (res.RestShare != 0 || !res.Rest.CostUSD.IsZero() || res.Rest.Requests != 0) {
				t.Errorf("every group returned but a rest remains: %+v share %v", res.Rest, res.RestShare)
			}
		})
	}

	t.Run("empty range", func(t *testing.T) {
		res, err := q.Top(ctx, TopQuery{From: d(2025, 1, 1, 0, 0, 0), To: d(2025, 1, 2, 0, 0, 0), By: []Dim{DimTenant}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 0 || res.Total.Requests != 0 || res.Total.CostUSD != (pricing.Pico{}) || res.RestShare != 0 {
			t.Errorf("empty range: %+v", res)
		}
	})

	t.Run("invalid queries", func(t *testing.T) {
		for _, tc := range []struct {
			tq   TopQuery
			want string
		}{
			{TopQuery{From: fixtureStart, To: end}, "at least one dimension"},
			{TopQuery{From: fixtureStart, To: end, By: []Dim{DimModel}, N: -1}, "top -1 groups: want 1 to 100000"},
			{TopQuery{From: fixtureStart, To: end, By: []Dim{DimModel}, N: 100001}, "top 100001 groups: want 1 to 100000"},
			{TopQuery{From: fixtureStart, To: end, By: []Dim{DimModel}, Metric: "latency"}, `unknown metric "latency"`},
			{TopQuery{From: end, To: fixtureStart, By: []Dim{DimModel}}, "is empty"},
			{TopQuery{From: fixtureStart, To: end, By: []Dim{"region"}}, `cannot group by "region"`},
		} {
			if _, err := q.Top(ctx, tc.tq); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Top(%+v) err = %v, want %q", tc.tq, err, tc.want)
			}
		}
	})
}

// TestTopNoLatency: with NoLatency the ranking, shares and sums are those
// of the full query, and the distributions are left out.
func TestTopNoLatency(t *testing.T) {
	t.Parallel()
	f := loadFixture(t)
	q := New(f.w, Options{})
	tq := TopQuery{From: fixtureStart, To: fixtureStart.Add(72 * time.Hour), By: []Dim{DimModel}}
	full, err := q.Top(context.Background(), tq)
	if err != nil {
		t.Fatal(err)
	}
	tq.NoLatency = true
	lean, err := q.Top(context.Background(), tq)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Rows) == 0 || len(lean.Rows) != len(full.Rows) {
		t.Fatalf("%d rows without latency, %d with", len(lean.Rows), len(full.Rows))
	}
	strip := func(r UsageRow) UsageRow { r.Latency, r.TTFT = Percentiles{}, Percentiles{}; return r }
	for i := range full.Rows {
		a, b := full.Rows[i], lean.Rows[i]
		if b.Latency.Count != 0 || b.TTFT.Count != 0 {
			t.Errorf("row %d: latency read with NoLatency: %+v", i, b.Latency)
		}
		if !reflect.DeepEqual(strip(a.UsageRow), b.UsageRow) || a.Share != b.Share {
			t.Errorf("row %d differs:\n full %+v\n lean %+v", i, a, b)
		}
	}
	if !reflect.DeepEqual(strip(full.Total), lean.Total) {
		t.Errorf("totals differ:\n full %+v\n lean %+v", full.Total, lean.Total)
	}
}
