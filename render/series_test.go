package render

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestSeriesOpenSteps: a series read while its last step runs says that
// step's value is so far, so that a low last step is not read as a fall;
// a series of steps that had all ended says nothing of the kind.
func TestSeriesOpenSteps(t *testing.T) {
	from := time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)
	series := func(step time.Duration, n int, asOf time.Time) analytics.SeriesResult {
		res := analytics.SeriesResult{Metric: analytics.MetricCost, Step: step, From: from, To: from.Add(time.Duration(n) * step), AsOf: asOf}
		g := analytics.GroupSeries{Values: make([]float64, n), Cost: make([]pricing.Pico, n)}
		for i := range n {
			res.Steps = append(res.Steps, from.Add(time.Duration(i)*step))
			g.Cost[i] = pricing.MustParsePico("2.5")
			g.Values[i] = 2.5
		}
		res.Series = []analytics.GroupSeries{g}
		return res
	}
	for _, tc := range []struct {
		name string
		res  analytics.SeriesResult
		want string // the note, "" for none
	}{
		{"days, the last one running", series(24*time.Hour, 3, from.Add(60*time.Hour)),
			"the last step (2026-01-16) had not ended at 2026-01-16 12:00:00 UTC: its value is so far"},
		{"hours, two open", series(time.Hour, 4, from.Add(150*time.Minute)),
			"the steps from 2026-01-14 02:00 on had not ended at 2026-01-14 02:30:00 UTC: their values are so far"},
		{"hours, the range in the future", series(time.Hour, 4, from.Add(-time.Minute)),
			"the steps from 2026-01-14 00:00 on had not begun at 2026-01-13 23:59:00 UTC"},
		{"all ended, read at the end", series(24*time.Hour, 3, from.Add(72*time.Hour)), ""},
		{"all ended, read later", series(time.Hour, 3, from.AddDate(0, 1, 0)), ""},
		{"read time unknown", series(time.Hour, 3, time.Time{}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, Series(SeriesReport{Result: tc.res})); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			has := strings.Contains(out, "had not")
			if tc.want == "" && has || tc.want != "" && !strings.Contains(out, "\n"+tc.want+"\n") {
				t.Errorf("note %q missing or unexpected in\n%s", tc.want, out)
			}
		})
	}
}

// TestSeriesUnpriced: a cost series whose calls include unpriced ones
// (counted at cost 0) says how many, as the usage table does; one without
// says nothing.
func TestSeriesUnpriced(t *testing.T) {
	from := time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)
	res := analytics.SeriesResult{Metric: analytics.MetricCost, Step: time.Hour, From: from, To: from.Add(2 * time.Hour),
		Steps: []time.Time{from, from.Add(time.Hour)}, AsOf: from.AddDate(0, 1, 0)}
	res.Series = []analytics.GroupSeries{{Values: []float64{1, 0}, Cost: []pricing.Pico{pricing.MustParsePico("1"), {}}, UnpricedRequests: 1234}}
	res.UnpricedRequests = 1234
	for _, tc := range []struct {
		unpriced uint64
		want     string
	}{{1234, "note: 1,234 calls had no price (counted at cost 0): add the models to the price catalog"}, {0, ""}} {
		res.UnpricedRequests = tc.unpriced
		var b bytes.Buffer
		if err := WriteTable(&b, Series(SeriesReport{Result: res})); err != nil {
			t.Fatal(err)
		}
		if out := b.String(); tc.want == "" && strings.Contains(out, "had no price") || tc.want != "" && !strings.Contains(out, "\n"+tc.want+"\n") {
			t.Errorf("unpriced %d: note %q missing or unexpected in\n%s", tc.unpriced, tc.want, out)
		}
	}
}

// BenchmarkSeries builds the table of a minute series of 200 groups over
// a week (2,016,000 values, about analytics.MaxSeriesValues) and reports
// the bytes it allocates per value: what a large `query series` or serve
// answer holds in memory before it is written.
func BenchmarkSeries(b *testing.B) {
	const groups, steps = 200, 7 * 24 * 60
	from := time.Date(2026, 1, 14, 0, 0, 0, 0, time.UTC)
	res := analytics.SeriesResult{Metric: analytics.MetricCost, Step: time.Minute, From: from, To: from.Add(steps * time.Minute), AsOf: from.Add(steps * time.Minute)}
	for i := range steps {
		res.Steps = append(res.Steps, from.Add(time.Duration(i)*time.Minute))
	}
	for g := range groups {
		s := analytics.GroupSeries{Group: map[analytics.Dim]string{analytics.DimTenant: "tenant-" + strconv.Itoa(g%20), analytics.DimModel: "model-" + strconv.Itoa(g)},
			Values: make([]float64, steps), Cost: make([]pricing.Pico, steps)}
		for i := range steps {
			s.Cost[i] = pricing.FromPicos(int64(i * 1000))
			s.Values[i] = float64(i) * 1e-9
		}
		res.Series = append(res.Series, s)
	}
	r := SeriesReport{Scope: Scope{By: []analytics.Dim{analytics.DimTenant, analytics.DimModel}}, Result: res}
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if t := Series(r); len(t.Rows) != groups*steps {
			b.Fatalf("%d rows", len(t.Rows))
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(groups*steps), "B/value")
}
