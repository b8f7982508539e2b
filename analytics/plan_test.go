package analytics

import (
	"github.com/costpipe/costpipe/warehouse"

	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	seg := func(table warehouse.Table, from, to time.Time) segment { return segment{table, from, to} }
	for _, tc := range []struct {
		name     string
		from, to time.Time
		g        Granularity
		want     []segment
		err      string
	}{
		{"inside one hour", d(2026, 1, 1, 10, 5, 0), d(2026, 1, 1, 10, 50, 0), GranularityAuto,
			[]segment{seg(table1m, d(2026, 1, 1, 10, 5, 0), d(2026, 1, 1, 10, 50, 0))}, ""},
		{"across one hour boundary only", d(2026, 1, 1, 10, 5, 0), d(2026, 1, 1, 11, 50, 0), "",
			[]segment{seg(table1m, d(2026, 1, 1, 10, 5, 0), d(2026, 1, 1, 11, 50, 0))}, ""},
		{"whole hours", d(2026, 1, 1, 10, 0, 0), d(2026, 1, 1, 13, 0, 0), "",
			[]segment{seg(table1h, d(2026, 1, 1, 10, 0, 0), d(2026, 1, 1, 13, 0, 0))}, ""},
		{"ragged hours", d(2026, 1, 1, 10, 0, 1), d(2026, 1, 1, 13, 30, 0), "", []segment{
			seg(table1m, d(2026, 1, 1, 10, 0, 1), d(2026, 1, 1, 11, 0, 0)),
			seg(table1h, d(2026, 1, 1, 11, 0, 0), d(2026, 1, 1, 13, 0, 0)),
			seg(table1m, d(2026, 1, 1, 13, 0, 0), d(2026, 1, 1, 13, 30, 0)),
		}, ""},
		{"whole days", d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0), "",
			[]segment{seg(table1d, d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0))}, ""},
		{"days with ragged edges", d(2026, 1, 30, 22, 59, 30), d(2026, 2, 2, 1, 0, 5), "", []segment{
			seg(table1m, d(2026, 1, 30, 22, 59, 30), d(2026, 1, 30, 23, 0, 0)),
			seg(table1h, d(2026, 1, 30, 23, 0, 0), d(2026, 1, 31, 0, 0, 0)),
			seg(table1d, d(2026, 1, 31, 0, 0, 0), d(2026, 2, 2, 0, 0, 0)),
			seg(table1h, d(2026, 2, 2, 0, 0, 0), d(2026, 2, 2, 1, 0, 0)),
			seg(table1m, d(2026, 2, 2, 1, 0, 0), d(2026, 2, 2, 1, 0, 5)),
		}, ""},
		{"hours spanning midnight but no whole day", d(2026, 1, 31, 20, 0, 0), d(2026, 2, 1, 4, 0, 0), "",
			[]segment{seg(table1h, d(2026, 1, 31, 20, 0, 0), d(2026, 2, 1, 4, 0, 0))}, ""},
		{"minute forced", d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0), GranularityMinute,
			[]segment{seg(table1m, d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0))}, ""},
		{"hour forced", d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0), GranularityHour,
			[]segment{seg(table1h, d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 0, 0))}, ""},
		{"hour forced, misaligned", d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 30, 0), GranularityHour, nil,
			`granularity "hour" needs a range on whole hours (UTC), got 2026-02-02T00:30:00Z`},
		{"day forced, misaligned", d(2026, 1, 30, 1, 0, 0), d(2026, 2, 2, 0, 0, 0), GranularityDay, nil,
			`granularity "day" needs a range on whole days (UTC), got 2026-01-30T01:00:00Z`},
	} {
		got, err := plan(tc.from, tc.to, tc.g)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, got, tc.want)
		}
		// The segments tile [from, to) without gaps or overlaps.
		at := tc.from
		for _, s := range got {
			if !s.from.Equal(at) || !s.from.Before(s.to) {
				t.Errorf("%s: segments do not tile the range: %v", tc.name, got)
			}
			at = s.to
		}
		if !at.Equal(tc.to) {
			t.Errorf("%s: segments end at %s, want %s", tc.name, at, tc.to)
		}
	}
}

const outerCols = "sum(_rows), sumMerge(requests), sumMerge(errors), sumMerge(input_tokens), sumMerge(cached_input_tokens), " +
	"sumMerge(cache_write_tokens), sumMerge(cache_write_1h_tokens), sumMerge(output_tokens), sumMerge(reasoning_tokens), sumMerge(gpu_us), " +
	"sumMerge(unpriced_requests), toString(sumMerge(cost_usd)), " +
	"sumMerge(latency_sum_us), sum(latency_hist_n), " +
	"arrayStringConcat(arrayMap(x -> toString(x), sumMap(latency_hist_m.1, latency_hist_m.2).1), ','), " +
	"arrayStringConcat(arrayMap(x -> toString(x), sumMap(latency_hist_m.1, latency_hist_m.2).2), ','), " +
	"sumMerge(ttft_sum_us), sum(ttft_hist_n), " +
	"arrayStringConcat(arrayMap(x -> toString(x), sumMap(ttft_hist_m.1, ttft_hist_m.2).1), ','), " +
	"arrayStringConcat(arrayMap(x -> toString(x), sumMap(ttft_hist_m.1, ttft_hist_m.2).2), ',')"

// innerCols merge one table's rows per group: the states as states, the
// histograms summed with their counts widened to UInt64 in every table.
const innerCols = "count() AS _rows, sumMergeState(requests) AS requests, sumMergeState(errors) AS errors, " +
	"sumMergeState(input_tokens) AS input_tokens, sumMergeState(cached_input_tokens) AS cached_input_tokens, " +
	"sumMergeState(cache_write_tokens) AS cache_write_tokens, sumMergeState(cache_write_1h_tokens) AS cache_write_1h_tokens, " +
	"sumMergeState(output_tokens) AS output_tokens, sumMergeState(reasoning_tokens) AS reasoning_tokens, sumMergeState(gpu_us) AS gpu_us, " +
	"sumMergeState(unpriced_requests) AS unpriced_requests, sumMergeState(cost_usd) AS cost_usd, sumMergeState(latency_sum_us) AS latency_sum_us, " +
	"sum(arraySum(latency_histMap.cnt)) AS latency_hist_n, sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)) AS latency_hist_m, " +
	"sumMergeState(ttft_sum_us) AS ttft_sum_us, " +
	"sum(arraySum(ttft_histMap.cnt)) AS ttft_hist_n, sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)) AS ttft_hist_m"

// minuteRange and hourRange are the time conditions of usage_1m and
// usage_1h: ts and the sort key's leading time bucket.
const (
	minuteRange = "ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC') AND toStartOfHour(ts) >= toStartOfHour(toDateTime(?, 'UTC')) AND toStartOfHour(ts) <= toStartOfHour(toDateTime(?, 'UTC'))"
	hourRange   = "ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC') AND toDate(ts) >= toDate(toDateTime(?, 'UTC')) AND toDate(ts) <= toDate(toDateTime(?, 'UTC'))"
)

func TestUsageSQL(t *testing.T) {
	t.Parallel()
	jan1, jan2 := d(2026, 1, 1, 0, 0, 0), d(2026, 1, 2, 0, 0, 0)
	for _, tc := range []struct {
		name   string
		uq     UsageQuery
		order  Metric
		totals bool
		want   string
		args   []any
	}{
		{
			name: "totals of one day",
			uq:   UsageQuery{From: jan1, To: jan2},
			want: "SELECT " + outerCols + "\nFROM (" +
				"\n    SELECT " + innerCols +
				"\n    FROM cp.usage_1d" +
				"\n    WHERE ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC')" +
				"\n)",
			args: []any{jan1.Unix(), jan2.Unix()},
		},
		{
			name: "grouped, filtered, two tables",
			uq: UsageQuery{From: jan1.Add(-30 * time.Minute), To: jan1.Add(time.Hour), By: []Dim{DimModel, DimTenant},
				Where: map[Dim][]string{DimModel: {"gpt-4o", "it's"}, DimTenant: {"acme"}}},
			want: "SELECT model, tenant, " + outerCols + "\nFROM (" +
				"\n    SELECT model, tenant, " + innerCols +
				"\n    FROM cp.usage_1m" +
				"\n    WHERE " + minuteRange + " AND tenant IN (?) AND model IN (?, ?)" +
				"\n    GROUP BY model, tenant" +
				"\n    UNION ALL" +
				"\n    SELECT model, tenant, " + innerCols +
				"\n    FROM cp.usage_1h" +
				"\n    WHERE " + hourRange + " AND tenant IN (?) AND model IN (?, ?)" +
				"\n    GROUP BY model, tenant" +
				"\n)" +
				"\nGROUP BY model, tenant" +
				"\nORDER BY sumMerge(cost_usd) DESC, model, tenant" +
				"\nLIMIT 11",
			args: []any{jan1.Add(-30 * time.Minute).Unix(), jan1.Unix(), jan1.Add(-30 * time.Minute).Unix(), jan1.Unix(), "acme", "gpt-4o", "it's",
				jan1.Unix(), jan1.Add(time.Hour).Unix(), jan1.Unix(), jan1.Add(time.Hour).Unix(), "acme", "gpt-4o", "it's"},
		},
		{
			name: "days and hours, each merged on its own",
			uq:   UsageQuery{From: jan1.Add(-time.Hour), To: jan2},
			want: "SELECT " + outerCols + "\nFROM (" +
				"\n    SELECT " + innerCols +
				"\n    FROM cp.usage_1h" +
				"\n    WHERE " + hourRange + "" +
				"\n    UNION ALL" +
				"\n    SELECT " + innerCols +
				"\n    FROM cp.usage_1d" +
				"\n    WHERE ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC')" +
				"\n)",
			args: []any{jan1.Add(-time.Hour).Unix(), jan1.Unix(), jan1.Add(-time.Hour).Unix(), jan1.Unix(), jan1.Unix(), jan2.Unix()},
		},
		{
			name: "bounds inside a minute round up to the minute",
			uq:   UsageQuery{From: jan1.Add(-time.Nanosecond), To: jan1.Add(1500 * time.Millisecond), Granularity: GranularityMinute, By: []Dim{DimErrorType}},
			want: "SELECT error_type, " + outerCols + "\nFROM (" +
				"\n    SELECT error_type, " + innerCols +
				"\n    FROM cp.usage_1m" +
				"\n    WHERE " + minuteRange + "" +
				"\n    GROUP BY error_type" +
				"\n)" +
				"\nGROUP BY error_type" +
				"\nORDER BY sumMerge(cost_usd) DESC, error_type" +
				"\nLIMIT 11",
			args: []any{jan1.Unix(), jan1.Unix() + 60, jan1.Unix(), jan1.Unix() + 60},
		},
		{
			name:   "top groups by tokens, with totals",
			uq:     UsageQuery{From: jan1, To: jan2, By: []Dim{DimTenant}},
			order:  MetricTokens,
			totals: true,
			want: "SELECT tenant, " + outerCols + "\nFROM (" +
				"\n    SELECT tenant, " + innerCols +
				"\n    FROM cp.usage_1d" +
				"\n    WHERE ts >= toDateTime(?, 'UTC') AND ts < toDateTime(?, 'UTC')" +
				"\n    GROUP BY tenant" +
				"\n)" +
				"\nGROUP BY tenant WITH TOTALS" +
				"\nORDER BY sumMerge(input_tokens) + sumMerge(output_tokens) DESC, tenant" +
				"\nLIMIT 11",
			args: []any{jan1.Unix(), jan2.Unix()},
		},
	} {
		n, err := normalize(tc.uq, time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		n.order = tc.order
		segs, err := plan(n.from, n.to, n.g)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, args := usageSQL("cp", n, segs, 11, tc.totals, false)
		if got != tc.want {
			t.Errorf("%s: SQL\n%s\nwant\n%s", tc.name, got, tc.want)
		}
		if !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s: args %v, want %v", tc.name, args, tc.args)
		}
		if strings.Count(got, "?") != len(args) {
			t.Errorf("%s: %d placeholders for %d args", tc.name, strings.Count(got, "?"), len(args))
		}
		for _, a := range args {
			if s, ok := a.(string); ok && strings.Contains(got, s) {
				t.Errorf("%s: value %q spliced into the SQL", tc.name, s)
			}
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"tenant", "application", "provider", "model", "error_type"} {
		if d, err := ParseDim(s); err != nil || string(d) != s {
			t.Errorf("ParseDim(%q) = %q, %v", s, d, err)
		}
	}
	for _, s := range []string{"", "Tenant", "region", "tenant,model", "src_partition", "ts"} {
		_, err := ParseDim(s)
		want := fmt.Sprintf("unknown dimension %q: want tenant, application, provider, model, error_type, service_tier or context_band", s)
		if err == nil || err.Error() != want {
			t.Errorf("ParseDim(%q) err = %v, want %q", s, err, want)
		}
	}
	for in, want := range map[string]Granularity{"": GranularityAuto, "auto": GranularityAuto, "minute": GranularityMinute, "hour": GranularityHour, "day": GranularityDay} {
		if g, err := ParseGranularity(in); err != nil || g != want {
			t.Errorf("ParseGranularity(%q) = %q, %v; want %q", in, g, err, want)
		}
	}
	if _, err := ParseGranularity("1h"); err == nil || !strings.Contains(err.Error(), `"1h"`) {
		t.Errorf("ParseGranularity(1h) err = %v", err)
	}
	if got := Dims(); len(got) != 7 || got[0] != DimTenant || got[4] != DimErrorType || got[6] != DimContextBand {
		t.Errorf("Dims() = %v", got)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	if err := DefaultOptions().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	o := DefaultOptions()
	o.MaxRows = -1
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "-1") {
		t.Errorf("MaxRows -1: %v", err)
	}
	o = DefaultOptions()
	o.Now = nil
	if err := o.Validate(); err == nil {
		t.Error("nil Now accepted")
	}
	q := New(nil, Options{})
	if q.opts.MaxRows != 100000 || q.opts.Now == nil {
		t.Errorf("New did not fill defaults: %+v", q.opts)
	}
}

// TestMetricExprs: every metric parses, and its expressions are the
// warehouse's merge expressions of its measures, not spelled here.
func TestMetricExprs(t *testing.T) {
	t.Parallel()
	want := map[Metric]string{
		MetricCost:         "sumMerge(cost_usd)",
		MetricRequests:     "sumMerge(requests)",
		MetricInputTokens:  "sumMerge(input_tokens)",
		MetricOutputTokens: "sumMerge(output_tokens)",
		MetricTokens:       "sumMerge(input_tokens) + sumMerge(output_tokens)",
	}
	if len(metrics) != len(want) {
		t.Fatalf("%d metrics, want %d", len(metrics), len(want))
	}
	for m, exact := range want {
		if got, err := ParseMetric(string(m)); err != nil || got != m {
			t.Errorf("ParseMetric(%q) = %q, %v", m, got, err)
		}
		if got, ok := m.exactExpr(); !ok || got != exact {
			t.Errorf("%s exact = %q, %v; want %q", m, got, ok, exact)
		}
		if got, _ := m.floatExpr(); got != "toFloat64("+exact+")" {
			t.Errorf("%s float = %q", m, got)
		}
	}
	if m, err := ParseMetric(""); err != nil || m != MetricCost {
		t.Errorf(`ParseMetric("") = %q, %v; want cost`, m, err)
	}
	_, err := ParseMetric("latency")
	if err == nil || err.Error() != `unknown metric "latency": want cost, requests, input_tokens, output_tokens or tokens` {
		t.Errorf("ParseMetric(latency) error = %v", err)
	}
	if _, err := warehouse.MergeExpr("latency"); err == nil {
		t.Error("MergeExpr(latency) (a histogram) should fail")
	}
}

// goneMonths is a retained with the minutes of minutes and the hours of
// hours dropped.
func goneMonths(minutes, hours []warehouse.Month) retained {
	k := retained{minutesGone: map[warehouse.Month]bool{}, hoursGone: map[warehouse.Month]bool{}}
	for _, m := range minutes {
		k.minutesGone[m] = true
	}
	for _, m := range hours {
		k.hoursGone[m] = true
	}
	return k
}

// TestRetainedWiden: a ragged edge in a month whose minutes (hours) are
// dropped is rounded out to the hour (day); the rest of the range, and
// edges in months still held, are not.
func TestRetainedWiden(t *testing.T) {
	t.Parallel()
	k := goneMonths([]warehouse.Month{202512, 202601}, []warehouse.Month{202512})
	for _, c := range []struct {
		name             string
		from, to         time.Time
		wantFrom, wantTo time.Time
	}{
		{"the review's range: its first hour's minutes are gone", d(2026, 1, 15, 10, 30, 0), d(2026, 1, 16, 0, 0, 0),
			d(2026, 1, 15, 10, 0, 0), d(2026, 1, 16, 0, 0, 0)},
		{"both edges in January", d(2026, 1, 15, 10, 30, 0), d(2026, 1, 20, 7, 45, 0),
			d(2026, 1, 15, 10, 0, 0), d(2026, 1, 20, 8, 0, 0)},
		{"inside one hour", d(2026, 1, 15, 10, 30, 0), d(2026, 1, 15, 10, 45, 0),
			d(2026, 1, 15, 10, 0, 0), d(2026, 1, 15, 11, 0, 0)},
		{"from February on: nothing gone", d(2026, 2, 1, 0, 1, 0), d(2026, 3, 5, 10, 1, 0),
			d(2026, 2, 1, 0, 1, 0), d(2026, 3, 5, 10, 1, 0)},
		{"a month boundary inside the ragged minutes", d(2026, 1, 31, 23, 30, 0), d(2026, 2, 1, 0, 15, 0),
			d(2026, 1, 31, 23, 0, 0), d(2026, 2, 1, 0, 15, 0)},
		{"December's hours are gone too: whole days", d(2025, 12, 20, 10, 30, 0), d(2025, 12, 21, 6, 0, 0),
			d(2025, 12, 20, 0, 0, 0), d(2025, 12, 22, 0, 0, 0)},
		{"since 60 days: the end is now, the start a dropped month", d(2025, 12, 20, 10, 31, 0), d(2026, 3, 20, 10, 31, 0),
			d(2025, 12, 20, 0, 0, 0), d(2026, 3, 20, 10, 31, 0)},
		{"whole hours stay", d(2026, 1, 15, 10, 0, 0), d(2026, 1, 15, 12, 0, 0),
			d(2026, 1, 15, 10, 0, 0), d(2026, 1, 15, 12, 0, 0)},
	} {
		f, to := k.widen(c.from, c.to)
		if !f.Equal(c.wantFrom) || !to.Equal(c.wantTo) {
			t.Errorf("%s: widen [%s, %s) = [%s, %s), want [%s, %s)", c.name, c.from.Format(time.RFC3339), c.to.Format(time.RFC3339),
				f.Format(time.RFC3339), to.Format(time.RFC3339), c.wantFrom.Format(time.RFC3339), c.wantTo.Format(time.RFC3339))
		}
	}
	if f, to := (retained{}).widen(d(2026, 1, 15, 10, 30, 0), d(2026, 1, 16, 0, 0, 0)); !f.Equal(d(2026, 1, 15, 10, 30, 0)) || !to.Equal(d(2026, 1, 16, 0, 0, 0)) {
		t.Errorf("knowing of no dropped month, widen changed the range: [%s, %s)", f, to)
	}
}

// TestRetainedWidenPlans: over random ranges and dropped months, the plan
// of the widened range reads no segment from a dropped month, holds the
// range asked, and each edge moves at most to its hour or day.
func TestRetainedWidenPlans(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	base := d(2025, 10, 1, 0, 0, 0)
	for i := range 20000 {
		var minutes, hours []warehouse.Month
		for m := base; m.Before(d(2026, 4, 1, 0, 0, 0)); m = m.AddDate(0, 1, 0) {
			switch r.IntN(3) {
			case 0:
				minutes = append(minutes, warehouse.MonthOf(m))
			case 1:
				minutes, hours = append(minutes, warehouse.MonthOf(m)), append(hours, warehouse.MonthOf(m))
			}
		}
		k := goneMonths(minutes, hours)
		from := base.Add(time.Duration(r.IntN(180*24*60)) * time.Minute)
		to := from.Add(time.Duration(1+r.IntN([]int{90, 3 * 24 * 60, 60 * 24 * 60}[i%3])) * time.Minute)
		wf, wt := k.widen(from, to)
		if wf.After(from) || wt.Before(to) || from.Sub(wf) >= day || wt.Sub(to) >= day {
			t.Fatalf("widen [%s, %s) = [%s, %s): not an edge's hour or day around the range", from, to, wf, wt)
		}
		segs, err := plan(wf, wt, GranularityAuto)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if ms := k.missing(s.table, s.from, s.to); len(ms) > 0 {
				t.Fatalf("widen [%s, %s) = [%s, %s), whose plan reads %s over [%s, %s): months %v are dropped",
					from, to, wf, wt, s.table.Name(), s.from, s.to, ms)
			}
		}
	}
}

// TestRetainedMissing names the dropped months a one-table read
// touches, and its error the table, the months and what to ask instead.
func TestRetainedMissing(t *testing.T) {
	t.Parallel()
	k := goneMonths([]warehouse.Month{202512, 202601}, []warehouse.Month{202512})
	if got := k.missing(warehouse.Minute, d(2025, 11, 20, 0, 0, 0), d(2026, 2, 1, 0, 0, 0)); !reflect.DeepEqual(got, []warehouse.Month{202512, 202601}) {
		t.Errorf("missing minutes = %v; want [202512 202601]", got)
	}
	if got := k.missing(warehouse.Minute, d(2026, 2, 1, 0, 0, 0), d(2026, 3, 1, 0, 0, 0)); len(got) != 0 {
		t.Errorf("missing minutes of February = %v, want none", got)
	}
	if got := k.missing(warehouse.Hour, d(2026, 1, 1, 0, 0, 0), d(2026, 2, 1, 0, 0, 0)); len(got) != 0 {
		t.Errorf("missing hours of January = %v, want none", got)
	}
	if got := k.missing(warehouse.Day, d(2025, 12, 1, 0, 0, 0), d(2026, 2, 1, 0, 0, 0)); len(got) != 0 {
		t.Errorf("days are never dropped: %v", got)
	}
	var err error = &DroppedError{Table: warehouse.Minute, Months: []warehouse.Month{202512, 202601}, From: d(2025, 12, 15, 0, 0, 0), To: d(2026, 1, 16, 0, 0, 0)}
	var de *DroppedError
	if !errors.Is(err, ErrDropped) || !errors.As(err, &de) ||
		err.Error() != "rows no longer kept: usage_1m no longer holds 2025-12, 2026-01, which [2025-12-15T00:00:00Z, 2026-01-16T00:00:00Z) reads "+
			"(costpipe retention --keep-minutes); ask for hours or days (granularity auto or hour, a step of 1h or 1d)" {
		t.Errorf("DroppedError = %v", err)
	}
	if got := de.StepsNote(); got != "the steps of 2025-12, 2026-01 read as zero: usage_1m no longer holds them (costpipe retention --keep-minutes); "+
		"ask for hours or days (granularity auto or hour, a step of 1h or 1d)" {
		t.Errorf("StepsNote = %q", got)
	}
}

// TestAnswered says which edge moved, to what, and why.
func TestAnswered(t *testing.T) {
	t.Parallel()
	a := answered(d(2026, 1, 15, 10, 30, 0), d(2026, 3, 20, 10, 31, 0), d(2026, 1, 15, 10, 0, 0), d(2026, 3, 20, 10, 31, 0))
	want := "the range starts at 2026-01-15T10:00:00Z, not 2026-01-15T10:30:00Z: the minute rows of that hour are no longer kept (costpipe retention --keep-minutes), so the whole hour is counted"
	if a.Note != want || !a.From.Equal(d(2026, 1, 15, 10, 0, 0)) {
		t.Errorf("answered = %+v,\nwant note %q", a, want)
	}
	a = answered(d(2025, 12, 20, 10, 30, 0), d(2025, 12, 21, 6, 0, 0), d(2025, 12, 20, 0, 0, 0), d(2025, 12, 22, 0, 0, 0))
	for _, want := range []string{"starts at 2025-12-20T00:00:00Z, not 2025-12-20T10:30:00Z: the hour rows of that day are no longer kept (costpipe retention --keep-hours), so the whole day is counted",
		"; the range ends at 2025-12-22T00:00:00Z, not 2025-12-21T06:00:00Z: the hour rows of that day"} {
		if !strings.Contains(a.Note, want) {
			t.Errorf("answered note %q lacks %q", a.Note, want)
		}
	}
	if a := answered(d(2026, 3, 1, 0, 1, 0), d(2026, 3, 2, 0, 0, 0), d(2026, 3, 1, 0, 1, 0), d(2026, 3, 2, 0, 0, 0)); a.Note != "" {
		t.Errorf("a range read as asked has the note %q", a.Note)
	}
}

// TestExposed: only minute and hour rows of a month before now's may have
// been dropped; likely, only those the default retention would have.
func TestExposed(t *testing.T) {
	t.Parallel()
	now := d(2026, 3, 20, 10, 0, 0)
	for _, c := range []struct {
		from, to        time.Time
		exposed, likely bool
	}{
		{d(2026, 3, 19, 10, 30, 0), now, false, false},                   // this month's minutes
		{d(2026, 2, 28, 10, 30, 0), now, true, false},                    // last month's, within 35 days
		{d(2026, 1, 15, 10, 30, 0), now, true, true},                     // 35 days after January
		{d(2026, 1, 15, 0, 0, 0), d(2026, 3, 20, 0, 0, 0), false, false}, // whole days only
		{d(2025, 2, 15, 10, 0, 0), d(2026, 3, 20, 0, 0, 0), true, false}, // hours of a month that ended within 400 days
		{d(2025, 2, 15, 10, 30, 0), d(2026, 3, 20, 0, 0, 0), true, true}, // its minutes: likely dropped
	} {
		segs, _ := plan(c.from, c.to, GranularityAuto)
		if got, likely := exposed(segs, now, false), exposed(segs, now, true); got != c.exposed || likely != c.likely {
			t.Errorf("exposed [%s, %s) = %v, likely %v; want %v, %v", c.from, c.to, got, likely, c.exposed, c.likely)
		}
	}
}

// TestGranularityErrorIs: a granularity that does not fit is ErrGranularity
// (serve answers it 400), with its own message.
func TestGranularityErrorIs(t *testing.T) {
	t.Parallel()
	for _, g := range []Granularity{GranularityHour, "week"} {
		_, err := plan(d(2026, 1, 30, 0, 0, 0), d(2026, 2, 2, 0, 30, 0), g)
		if !errors.Is(err, ErrGranularity) || strings.HasPrefix(err.Error(), "invalid granularity") {
			t.Errorf("granularity %q: %v; want ErrGranularity with its own message", g, err)
		}
	}
}
