package render

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestForecastUnpriced: a cost forecast whose period so far holds calls
// without a price (counted at cost 0) says how many; a forecast of
// another metric, or without such calls, says nothing of prices.
func TestForecastUnpriced(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	row := func(unpriced uint64) analytics.ForecastRow {
		return analytics.ForecastRow{PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), Today: start.AddDate(0, 0, 10),
			SoFar: 12, SoFarCost: pricing.MustParsePico("12"), UnpricedSoFar: unpriced}
	}
	for _, tc := range []struct {
		metric analytics.Metric
		rows   []analytics.ForecastRow
		want   string
	}{
		{analytics.MetricCost, []analytics.ForecastRow{row(3), row(4)}, "note: 7 calls had no price (counted at cost 0): add the models to the price catalog (in the period so far)"},
		{analytics.MetricCost, []analytics.ForecastRow{row(0)}, ""},
		{analytics.MetricRequests, []analytics.ForecastRow{row(7)}, ""},
	} {
		var b bytes.Buffer
		if err := WriteTable(&b, Forecast(ForecastReport{Metric: tc.metric, Location: time.UTC, Period: analytics.PeriodMonth, Rows: tc.rows})); err != nil {
			t.Fatal(err)
		}
		if out := b.String(); tc.want == "" && strings.Contains(out, "had no price") || tc.want != "" && !strings.Contains(out, "\n"+tc.want+"\n") {
			t.Errorf("%s: note %q missing or unexpected in\n%s", tc.metric, tc.want, out)
		}
	}
}
