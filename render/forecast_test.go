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

// TestForecastHorizonEnds: a forecast of the next 24 hours ends on the
// next day; its note says the hours, its period_end the day of its last
// hour; a calendar month still ends on its last day.
func TestForecastHorizonEnds(t *testing.T) {
	start := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	hours := analytics.ForecastRow{PeriodStart: start, PeriodEnd: start.Add(24 * time.Hour), Today: start, SoFarCost: pricing.MustParsePico("1")}
	var table, csv bytes.Buffer
	rep := ForecastReport{Metric: analytics.MetricCost, Location: time.UTC, Period: "next 24 hours", Rows: []analytics.ForecastRow{hours}}
	if err := WriteTable(&table, Forecast(rep)); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csv, Forecast(rep)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "2026-12-04 20:00 … 2026-12-05 20:00") || !strings.Contains(csv.String(), "2026-12-04,2026-12-05,") {
		t.Errorf("a 24-hour horizon from 2026-12-04 20:00:\n%s\n%s", table.String(), csv.String())
	}
	month := analytics.ForecastRow{PeriodStart: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), SoFarCost: pricing.MustParsePico("1")}
	csv.Reset()
	rep.Period, rep.Rows = analytics.PeriodMonth, []analytics.ForecastRow{month}
	if err := WriteCSV(&csv, Forecast(rep)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), "2026-12-01,2026-12-31,") {
		t.Errorf("a calendar month:\n%s", csv.String())
	}
}
