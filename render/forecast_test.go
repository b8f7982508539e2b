package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
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

// TestForecastHorizonEnds: a forecast of the next hours is of UTC hours,
// whatever the --tz zone: its note gives them in UTC and its period_start
// and period_end are instants (the end exclusive), also when it starts at
// midnight; a calendar month still ends on its last day.
func TestForecastHorizonEnds(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start     time.Time
		hours     int
		note, csv string
	}{
		{time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC), 24, "2026-12-04 20:00 … 2026-12-05 20:00 (UTC)", "2026-12-04T20:00:00Z,2026-12-05T20:00:00Z,"},
		{time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), 6, "2026-12-04 00:00 … 2026-12-04 06:00 (UTC)", "2026-12-04T00:00:00Z,2026-12-04T06:00:00Z,"},
	} {
		hours := analytics.ForecastRow{PeriodStart: tc.start, PeriodEnd: tc.start.Add(time.Duration(tc.hours) * time.Hour), Today: tc.start, SoFarCost: pricing.MustParsePico("1")}
		var table, csv bytes.Buffer
		rep := ForecastReport{Metric: analytics.MetricCost, Location: ny, Period: "next hours", Hours: true, Rows: []analytics.ForecastRow{hours}}
		if err := WriteTable(&table, Forecast(rep)); err != nil {
			t.Fatal(err)
		}
		if err := WriteCSV(&csv, Forecast(rep)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), tc.note) || !strings.Contains(csv.String(), tc.csv) {
			t.Errorf("%d hours from %s: want %q and %q in\n%s\n%s", tc.hours, tc.start, tc.note, tc.csv, table.String(), csv.String())
		}
	}
	var csv bytes.Buffer
	rep := ForecastReport{Metric: analytics.MetricCost, Location: time.UTC}
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

// TestForecastJSONMoney: the USD amounts of a cost forecast (to_date and
// forecast_p10/p50/p90) are exact decimal strings in JSON, as cost_usd is
// in query usage; the ratios and counts beside them stay numbers, and a
// forecast of another metric is numbers throughout.
func TestForecastJSONMoney(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := func(v float64) *float64 { return &v }
	in := 20
	row := analytics.ForecastRow{PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), Today: start.AddDate(0, 0, 10),
		SoFar: 12.5, SoFarCost: pricing.MustParsePico("12.5"),
		Forecast: growth.Forecast{Method: "run_rate", MASE: f(0.8), Coverage: f(0.75), BacktestOrigins: 9,
			P10: f(30.25), P50: f(36), P90: f(41.125), ExhaustionP50: &in, POverspend: f(0.4)}}
	for _, tc := range []struct {
		metric analytics.Metric
		want   map[string]any
	}{
		{analytics.MetricCost, map[string]any{"to_date": "12.500000000000", "forecast_p10": "30.250000000000",
			"forecast_p50": "36.000000000000", "forecast_p90": "41.125000000000",
			"mase": 0.8, "coverage": 0.75, "backtest_origins": 9.0, "p_overspend": 0.4, "exhaustion_p50": "2026-03-31"}},
		{analytics.MetricRequests, map[string]any{"to_date": 12.5, "forecast_p10": 30.25, "forecast_p50": 36.0, "forecast_p90": 41.125,
			"mase": 0.8, "p_overspend": 0.4}},
	} {
		rep := ForecastReport{Metric: tc.metric, Location: time.UTC, Period: analytics.PeriodMonth, Budget: true, Rows: []analytics.ForecastRow{row}}
		checkJSONFields(t, string(tc.metric), Forecast(rep), tc.want)
	}
	// A forecast not known is null, not "0" nor a string.
	row.P10, row.P50, row.P90 = nil, nil, nil
	var b bytes.Buffer
	if err := WriteJSON(&b, Forecast(ForecastReport{Metric: analytics.MetricCost, Location: time.UTC, Period: analytics.PeriodMonth,
		Rows: []analytics.ForecastRow{row}})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"forecast_p10": null, "forecast_p50": null, "forecast_p90": null`) {
		t.Errorf("unknown forecasts:\n%s", b.String())
	}
}

// TestForecastEmptyNote: with no usage in the history or the period so
// far, the table says so, and JSON and CSV say it in a note (to_date 0,
// the forecasts null) instead of an empty answer, as growth does.
func TestForecastEmptyNote(t *testing.T) {
	rep := ForecastReport{Scope: Scope{By: []analytics.Dim{analytics.DimModel}}, Metric: analytics.MetricCost,
		Location: time.UTC, Period: analytics.PeriodMonth, History: 91}
	var table, js, csv, ab bytes.Buffer
	for _, w := range []struct {
		b *bytes.Buffer
		f Format
	}{{&table, FormatTable}, {&js, FormatJSON}, {&csv, FormatCSV}, {&ab, FormatArrow}} {
		if err := Write(w.b, w.f, Forecast(rep)); err != nil {
			t.Fatalf("%s: %v", w.f, err)
		}
	}
	if table.String() != "no cost in the forecast history\n" {
		t.Errorf("table:\n%s", table.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal(js.Bytes(), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	r := rows[0]
	note, _ := r["note"].(string)
	if note != "no cost in the 91 days of history or the period so far: nothing to forecast" || r["model"] != nil ||
		r["to_date"] != "0.000000000000" || r["forecast_p50"] != nil || r["period_start"] != nil || r["mase"] != nil {
		t.Errorf("json:\n%s", js.String())
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], note) {
		t.Errorf("csv:\n%s", csv.String())
	}
}
