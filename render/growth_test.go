package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/analytics/growth"
)

// TestGrowthJSONMoney: last_7d and prev_7d of a cost growth report are
// USD, exact decimal strings in JSON as cost_usd is; the rates stay
// numbers, and so do the sums of another metric.
func TestGrowthJSONMoney(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	row := analytics.GrowthRow{Group: map[analytics.Dim]string{analytics.DimModel: "m"},
		Growth: growth.Growth{Last7d: f(70.5), Prev7d: f(35.25), WoWPct: f(100), Window: 14, DaysUsed: 14},
		Days:   []time.Time{day}, Daily: []float64{10}}
	for _, tc := range []struct {
		metric analytics.Metric
		want   map[string]any
	}{
		{analytics.MetricCost, map[string]any{"last_7d": "70.500000000000", "prev_7d": "35.250000000000", "wow_pct": 100.0, "window": 14.0}},
		{analytics.MetricRequests, map[string]any{"last_7d": 70.5, "prev_7d": 35.25, "wow_pct": 100.0}},
	} {
		rep := GrowthReport{Scope: Scope{By: []analytics.Dim{analytics.DimModel}}, Metric: tc.metric, Location: time.UTC, Window: 14,
			Rows: []analytics.GrowthRow{row}}
		checkJSONFields(t, string(tc.metric), Growth(rep), tc.want)
	}
}

// checkJSONFields writes t as JSON and checks that its one row has the
// fields of want with those values (as encoding/json reads them).
func checkJSONFields(t *testing.T, name string, tab *Table, want map[string]any) {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, tab); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("%s: %v\n%s", name, err, b.String())
	}
	for k, w := range want {
		if got[0][k] != w {
			t.Errorf("%s: %s = %#v, want %#v", name, k, got[0][k], w)
		}
	}
}

// TestGrowthEmptyNote: with no usage in the window (fresh data: no
// complete day yet) the table says so, and JSON and CSV say it in a note
// as they do for a group with too little data, instead of an empty answer.
func TestGrowthEmptyNote(t *testing.T) {
	rep := GrowthReport{Scope: Scope{By: []analytics.Dim{analytics.DimModel}}, Metric: analytics.MetricCost, Location: time.UTC, Window: 28}
	var table, js, csv bytes.Buffer
	for _, w := range []struct {
		b *bytes.Buffer
		f Format
	}{{&table, FormatTable}, {&js, FormatJSON}, {&csv, FormatCSV}} {
		if err := Write(w.b, w.f, Growth(rep)); err != nil {
			t.Fatal(err)
		}
	}
	if table.String() != "no cost in the growth window\n" {
		t.Errorf("table:\n%s", table.String())
	}
	var rows []map[string]any
	if err := json.Unmarshal(js.Bytes(), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	note, _ := rows[0]["note"].(string)
	if !strings.Contains(note, "no cost in the 28-day window") || rows[0]["model"] != nil || rows[0]["last_7d"] != nil ||
		rows[0]["daily_rate"] != nil || rows[0]["days_used"] != 0.0 || rows[0]["zero_days"] != 28.0 || rows[0]["window"] != 28.0 {
		t.Errorf("json:\n%s", js.String())
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], note) || !strings.Contains(lines[0], ",note") {
		t.Errorf("csv:\n%s", csv.String())
	}
	// Its JSON and Arrow schema are those of a report with rows.
	var ab bytes.Buffer
	if err := WriteArrow(&ab, Growth(rep)); err != nil {
		t.Errorf("arrow: %v", err)
	}
}
