package render

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestTopUnpriced: calls without a price are counted in the data formats
// and named in the table's note, so a cost of 0.00 is never silently free.
func TestTopUnpriced(t *testing.T) {
	row := func(model string, cost string, unpriced uint64) analytics.TopRow {
		return analytics.TopRow{UsageRow: analytics.UsageRow{Group: map[analytics.Dim]string{analytics.DimModel: model},
			Requests: 10, CostUSD: pricing.MustParsePico(cost), UnpricedRequests: unpriced}}
	}
	res := analytics.TopResult{Metric: analytics.MetricCost,
		Rows:  []analytics.TopRow{row("gpt-4o", "2", 0), row("gpt-unknown-x", "0", 5)},
		Total: analytics.UsageRow{Requests: 20, CostUSD: pricing.MustParsePico("2"), UnpricedRequests: 5}}
	res.Rows[0].Share = 1
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tb := Top(TopReport{Scope: Scope{From: from, To: from.AddDate(0, 1, 0), By: []analytics.Dim{analytics.DimModel}}, Result: res})
	var buf bytes.Buffer
	if err := Write(&buf, FormatCSV, tb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "rank,model,cost_usd,share,cumulative_share,unpriced_requests\n") || !strings.Contains(buf.String(), ",gpt-unknown-x,0.000000000000,0,1,5\n") {
		t.Errorf("csv:\n%s", buf.String())
	}
	buf.Reset()
	if err := Write(&buf, FormatTable, tb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "note: 5 calls had no price (counted at cost 0)") || strings.Contains(buf.String(), "UNPRICED") {
		t.Errorf("table:\n%s", buf.String())
	}
}
