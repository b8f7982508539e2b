package analytics

import (
	"context"
	"reflect"
	"testing"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestTotalIsTheQueryWithoutBy: the sum of a query's groups (Total) is what
// the same query without By answers, field for field, percentiles
// included, over a range with ragged minutes and hours at both ends, for
// several groupings and with what-if pricing.
func TestTotalIsTheQueryWithoutBy(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	end := d(2026, 2, 2, 0, 0, 0)
	q := fx.querier(end)
	cat, err := pricing.Parse("total.yaml", []byte(`
models:
  - provider: openai
    model: gpt-4o
    prices:
      - from: 2026-01-01
        input: "2.5"
        output: "10"
  - provider: anthropic
    model: claude-sonnet
    prices:
      - from: 2026-01-01
        input: "3"
        output: "15"
        cached_input: "0.3"
`))
	if err != nil {
		t.Fatal(err)
	}
	from, to := d(2026, 1, 30, 7, 13, 0), d(2026, 2, 1, 22, 41, 0)
	for _, tc := range []struct {
		name string
		uq   UsageQuery
	}{
		{"by model", UsageQuery{By: []Dim{DimModel}}},
		{"by tenant, application, model, error type", UsageQuery{By: []Dim{DimTenant, DimApplication, DimModel, DimErrorType}}},
		{"one tenant by provider", UsageQuery{By: []Dim{DimProvider}, Where: map[Dim][]string{DimTenant: {tenantQuote}}}},
		{"re-priced by model", UsageQuery{By: []Dim{DimModel}, Reprice: cat}},
		{"re-priced, one model mapped", UsageQuery{By: []Dim{DimTenant}, Reprice: cat, MapModel: map[string]string{"gpt-4o": "claude-sonnet"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uq := tc.uq
			uq.From, uq.To = from, to
			groups, err := q.Usage(ctx, uq)
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) < 2 {
				t.Fatalf("%d groups: the case proves nothing", len(groups))
			}
			uq.By = nil
			whole, err := q.Usage(ctx, uq)
			if err != nil || len(whole) != 1 {
				t.Fatalf("query without By: %d rows, %v", len(whole), err)
			}
			got, want := Total(groups), whole[0]
			if !got.Latency.Present() || !got.TTFT.Present() {
				t.Fatal("the total has no latency or TTFT: the case proves nothing")
			}
			if got.Latency.hist.Count() != want.Latency.hist.Count() {
				t.Errorf("latency histogram holds %d, want %d", got.Latency.hist.Count(), want.Latency.hist.Count())
			}
			for _, r := range []*UsageRow{&got, &want} {
				r.Latency.hist, r.TTFT.hist = nil, nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Total of %d groups:\n%+v\nthe query without By:\n%+v", len(groups), got, want)
			}
		})
	}
	if got := Total(nil); !reflect.DeepEqual(got, UsageRow{Group: map[Dim]string{}}) {
		t.Errorf("Total(nil) = %+v, want an empty row", got)
	}
}
