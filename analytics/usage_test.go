package analytics

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/sketch"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// expRow is the expected usage of one group, computed from the events.
type expRow struct {
	keys                                             []string
	requests, errors, input, cachedInput, cacheWrite uint64
	output, reasoning, gpuUs, unpriced               uint64
	cost                                             pricing.Pico
	latency, ttft                                    []float64 // sorted samples
	latencyUs, ttftUs                                uint64
}

// expect computes the usage of the events whose minute lies in
// [ceil(from), ceil(to)), filtered by where and grouped by by, ordered by
// cost descending then keys.
func expect(evs []event, from, to time.Time, by []Dim, where map[Dim][]string) []*expRow {
	from, to = ceil(from, time.Second), ceil(to, time.Second)
	groups := map[string]*expRow{}
	var out []*expRow
	for _, e := range evs {
		m := e.ts.Truncate(time.Minute)
		if m.Before(from) || !m.Before(to) {
			continue
		}
		ok := true
		for d, vs := range where {
			found := false
			for _, v := range vs {
				found = found || dimValue(e, d) == v
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		keys := make([]string, len(by))
		for i, d := range by {
			keys[i] = dimValue(e, d)
		}
		id := strings.Join(keys, "\x00")
		g := groups[id]
		if g == nil {
			g = &expRow{keys: keys}
			groups[id] = g
			out = append(out, g)
		}
		g.requests++
		if e.errType != "" {
			g.errors++
		}
		g.input += e.input
		g.cachedInput += e.cachedInput
		g.cacheWrite += e.cacheWrite
		g.output += e.output
		g.reasoning += e.reasoning
		g.gpuUs += e.gpuUs
		if e.unpriced {
			g.unpriced++
		}
		g.cost = g.cost.Add(e.cost)
		if e.latency >= 0 {
			g.latency = append(g.latency, e.latency)
			g.latencyUs += uint64(math.Round(e.latency * 1000))
		}
		if e.ttft >= 0 {
			g.ttft = append(g.ttft, e.ttft)
			g.ttftUs += uint64(math.Round(e.ttft * 1000))
		}
	}
	for _, g := range out {
		sort.Float64s(g.latency)
		sort.Float64s(g.ttft)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].cost.Cmp(out[j].cost); c != 0 {
			return c > 0
		}
		for k := range out[i].keys {
			if out[i].keys[k] != out[j].keys[k] {
				return out[i].keys[k] < out[j].keys[k]
			}
		}
		return false
	})
	return out
}

func dimValue(e event, d Dim) string {
	switch d {
	case DimTenant:
		return e.tenant
	case DimApplication:
		return e.application
	case DimProvider:
		return e.provider
	case DimModel:
		return e.model
	case DimErrorType:
		return e.errType
	}
	panic("unknown dim " + d)
}

// checkRows compares Usage rows with the expectation, in order.
func checkRows(t *testing.T, label string, by []Dim, got []UsageRow, want []*expRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", label, len(got), len(want))
	}
	for i := range want {
		l := label + " row " + strings.Join(want[i].keys, "/")
		for k, d := range by {
			if got[i].Group[d] != want[i].keys[k] {
				t.Fatalf("%s: row %d has %s=%q, want %q (order: cost desc, then keys)", label, i, d, got[i].Group[d], want[i].keys[k])
			}
		}
		if len(got[i].Group) != len(by) {
			t.Errorf("%s: group %v has dimensions outside %v", l, got[i].Group, by)
		}
		checkRow(t, l, got[i], want[i])
	}
}

func checkRow(t *testing.T, label string, got UsageRow, w *expRow) {
	t.Helper()
	counters := []struct {
		name      string
		got, want uint64
	}{
		{"requests", got.Requests, w.requests},
		{"errors", got.Errors, w.errors},
		{"input_tokens", got.InputTokens, w.input},
		{"cached_input_tokens", got.CachedInputTokens, w.cachedInput},
		{"cache_write_tokens", got.CacheWriteTokens, w.cacheWrite},
		{"output_tokens", got.OutputTokens, w.output},
		{"reasoning_tokens", got.ReasoningTokens, w.reasoning},
		{"gpu_us", got.GPUMicros, w.gpuUs},
		{"unpriced_requests", got.UnpricedRequests, w.unpriced},
	}
	for _, c := range counters {
		if c.got != c.want {
			t.Errorf("%s: %s = %d, want %d", label, c.name, c.got, c.want)
		}
	}
	if got.GPUMs != float64(w.gpuUs)/1000 {
		t.Errorf("%s: gpu_ms = %v, want %v", label, got.GPUMs, float64(w.gpuUs)/1000)
	}
	if got.CostUSD != w.cost {
		t.Errorf("%s: cost = %s, want %s", label, got.CostUSD, w.cost)
	}
	checkPercentiles(t, label+" latency", got.Latency, w.latency, w.latencyUs)
	checkPercentiles(t, label+" ttft", got.TTFT, w.ttft, w.ttftUs)
}

// checkPercentiles asserts exact count and mean, min and max exactly the
// values of the extreme samples' buckets (the histogram's, within
// sketch.Alpha of the samples), and quantiles within sketch.Alpha of the
// exact sample quantile (rank ⌈q·n⌉).
func checkPercentiles(t *testing.T, label string, p Percentiles, vals []float64, sumUs uint64) {
	t.Helper()
	n := len(vals)
	if n == 0 {
		if p.Present() || p != (Percentiles{}) {
			t.Errorf("%s: no samples but %+v", label, p)
		}
		return
	}
	lo, hi := sketch.Value(sketch.Index(vals[0])), sketch.Value(sketch.Index(vals[n-1]))
	if p.Count != uint64(n) || p.Min != lo || p.Max != hi {
		t.Errorf("%s: count/min/max = %d/%v/%v, want %d/%v/%v", label, p.Count, p.Min, p.Max, n, lo, hi)
	}
	for _, c := range [][2]float64{{p.Min, vals[0]}, {p.Max, vals[n-1]}} {
		if math.Abs(c[0]-c[1]) > sketch.Alpha*c[1]+1e-9 {
			t.Errorf("%s: extreme %v, sample %v: more than 1%% off", label, c[0], c[1])
		}
	}
	if want := float64(sumUs) / float64(n) / 1000; p.Avg != want {
		t.Errorf("%s: avg = %v, want %v", label, p.Avg, want)
	}
	for _, c := range []struct {
		q   float64
		got float64
	}{{0.5, p.P50}, {0.9, p.P90}, {0.95, p.P95}, {0.99, p.P99}, {0.999, p.P999}} {
		r := int(math.Ceil(c.q * float64(n)))
		r = min(max(r, 1), n)
		exact := vals[r-1]
		if math.Abs(c.got-exact) > 0.01*exact+1e-9 {
			t.Errorf("%s: p%v = %v, exact %v: more than 1%% off", label, c.q*100, c.got, exact)
		}
		if v, ok := p.Quantile(c.q); !ok || v != c.got {
			t.Errorf("%s: Quantile(%v) = %v, %v; want %v", label, c.q, v, ok, c.got)
		}
	}
}

func d(y int, m time.Month, dd, h, mi, s int) time.Time {
	return time.Date(y, m, dd, h, mi, s, 0, time.UTC)
}

func TestUsage(t *testing.T) {
	t.Parallel()
	fx := loadFixture(t)
	ctx := context.Background()
	end := d(2026, 2, 2, 0, 0, 0)
	q := fx.querier(end)
	all := []Dim{DimTenant, DimApplication, DimProvider, DimModel, DimErrorType}

	t.Run("tables agree on aligned ranges", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			from, to time.Time
			gs       []Granularity
		}{
			{"whole days", fixtureStart, end, []Granularity{GranularityMinute, GranularityHour, GranularityDay, GranularityAuto}},
			{"one day across nothing", d(2026, 1, 31, 0, 0, 0), d(2026, 2, 1, 0, 0, 0), []Granularity{GranularityMinute, GranularityHour, GranularityDay, ""}},
			{"whole hours across the month", d(2026, 1, 31, 21, 0, 0), d(2026, 2, 1, 3, 0, 0), []Granularity{GranularityMinute, GranularityHour, GranularityAuto}},
		} {
			for _, by := range [][]Dim{nil, {DimTenant, DimModel}, all} {
				want := expect(fx.events, tc.from, tc.to, by, nil)
				if len(want) == 0 {
					t.Fatalf("%s: fixture has no events in range", tc.name)
				}
				var first []UsageRow
				for _, g := range tc.gs {
					got, err := q.Usage(ctx, UsageQuery{From: tc.from, To: tc.to, By: by, Granularity: g})
					if err != nil {
						t.Fatalf("%s %q: %v", tc.name, g, err)
					}
					checkRows(t, tc.name+" "+string(g), by, got, want)
					if first == nil {
						first = got
					} else if !reflect.DeepEqual(got, first) {
						t.Errorf("%s by %v: granularity %q differs from %q", tc.name, by, g, tc.gs[0])
					}
				}
			}
		}
	})

	t.Run("ragged range mixes tables and equals usage_1m", func(t *testing.T) {
		from, to := d(2026, 1, 30, 10, 17, 30), d(2026, 2, 1, 3, 5, 0)
		segs, _ := plan(from, to, GranularityAuto)
		if len(segs) != 5 {
			t.Fatalf("plan has %d segments, want 1m+1h+1d+1h+1m", len(segs))
		}
		for _, by := range [][]Dim{nil, {DimModel}, all} {
			want := expect(fx.events, from, to, by, nil)
			auto, err := q.Usage(ctx, UsageQuery{From: from, To: to, By: by})
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, "auto", by, auto, want)
			minute, err := q.Usage(ctx, UsageQuery{From: from, To: to, By: by, Granularity: GranularityMinute})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(auto, minute) {
				t.Errorf("by %v: auto differs from usage_1m alone", by)
			}
		}
	})

	t.Run("where filters bind values, OR within and AND across dims", func(t *testing.T) {
		for _, where := range []map[Dim][]string{
			{DimTenant: {tenantQuote}},
			{DimTenant: {tenantAcme}, DimModel: {"gpt-4o", "claude-sonnet"}},
			{DimErrorType: {""}},
			{DimErrorType: {"timeout", "rate_limited"}, DimProvider: {"openai"}},
			{DimTenant: {"' OR 1=1 --"}},
		} {
			by := []Dim{DimTenant, DimModel, DimErrorType}
			want := expect(fx.events, fixtureStart, end, by, where)
			got, err := q.Usage(ctx, UsageQuery{From: fixtureStart, To: end, By: by, Where: where})
			if err != nil {
				t.Fatalf("where %v: %v", where, err)
			}
			checkRows(t, "where", by, got, want)
		}
		if got := expect(fx.events, fixtureStart, end, nil, map[Dim][]string{DimTenant: {tenantQuote}}); len(got) == 0 {
			t.Fatal("fixture lacks the quoted tenant")
		}
	})

	t.Run("half-open range edges", func(t *testing.T) {
		m := fx.events[0].ts.Truncate(time.Minute)
		minuteOnly := expect(fx.events, m, m.Add(time.Minute), nil, nil)
		if len(minuteOnly) != 1 {
			t.Fatal("fixture: first event's minute is empty")
		}
		for _, tc := range []struct {
			name     string
			from, to time.Time
			want     []*expRow
		}{
			{"from on the row, to one minute later", m, m.Add(time.Minute), minuteOnly},
			{"from one ns before rounds up to the row", m.Add(-time.Nanosecond), m.Add(time.Minute), minuteOnly},
			{"to on the row excludes it", m.Add(-time.Minute), m, expect(fx.events, m.Add(-time.Minute), m, nil, nil)},
			// A row holds its whole minute: a bound inside it rounds up to
			// the next minute (AlignRange), on both sides. [m+1s, m+1min)
			// once answered nothing while printing a range that held calls.
			{"from inside the row's minute excludes it", m.Add(time.Second), m.Add(2 * time.Minute), expect(fx.events, m.Add(time.Minute), m.Add(2*time.Minute), nil, nil)},
			{"to inside the row's minute includes it", m.Add(-time.Minute), m.Add(time.Second), expect(fx.events, m.Add(-time.Minute), m.Add(time.Minute), nil, nil)},
		} {
			got, err := q.Usage(ctx, UsageQuery{From: tc.from, To: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, tc.name, nil, got, tc.want)
		}
		if _, err := q.Usage(ctx, UsageQuery{From: m.Add(time.Second), To: m.Add(59 * time.Second)}); err == nil {
			t.Error("a range inside one minute answered")
		}
	})

	t.Run("month boundary", func(t *testing.T) {
		from, to := d(2026, 1, 31, 23, 0, 0), d(2026, 2, 1, 1, 0, 0)
		want := expect(fx.events, from, to, []Dim{DimTenant}, nil)
		for _, g := range []Granularity{GranularityHour, GranularityMinute} {
			got, err := q.Usage(ctx, UsageQuery{From: from, To: to, By: []Dim{DimTenant}, Granularity: g})
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, string(g), []Dim{DimTenant}, got, want)
		}
	})

	t.Run("absent ttft does not leak sentinels", func(t *testing.T) {
		got, err := q.Usage(ctx, UsageQuery{From: fixtureStart, To: end, By: []Dim{DimModel}, Where: map[Dim][]string{DimModel: {"text-embedding-3-small"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].TTFT.Present() || math.IsInf(got[0].TTFT.Min, 0) || !got[0].Latency.Present() {
			t.Errorf("embedding model: %+v; want latency but no ttft", got)
		}
	})

	t.Run("totals and empty ranges", func(t *testing.T) {
		tot, err := q.Totals(ctx, fixtureStart, end)
		if err != nil {
			t.Fatal(err)
		}
		checkRow(t, "totals", tot, expect(fx.events, fixtureStart, end, nil, nil)[0])
		if tot.Requests != uint64(len(fx.events)) {
			t.Errorf("totals: %d requests, want every event (%d)", tot.Requests, len(fx.events))
		}
		empty, err := q.Totals(ctx, d(2025, 1, 1, 0, 0, 0), d(2025, 2, 1, 0, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if empty.Requests != 0 || !empty.CostUSD.IsZero() || empty.Latency.Present() || empty.Group == nil {
			t.Errorf("empty totals = %+v", empty)
		}
		for _, by := range [][]Dim{nil, {DimTenant}} {
			rows, err := q.Usage(ctx, UsageQuery{From: d(2025, 1, 1, 0, 0, 0), To: d(2025, 1, 1, 0, 10, 0), By: by})
			if err != nil || rows == nil || len(rows) != 0 {
				t.Errorf("empty range by %v: %v, %v; want an empty, non-nil slice", by, rows, err)
			}
		}
	})

	// A range reaching past what DateTime holds (1970 to 2106) covers the
	// same rows as its part inside it: ClickHouse wraps an out-of-range
	// toDateTime(n) instead of refusing it, so --from 1960-01-01 once
	// answered "no usage".
	t.Run("range beyond DateTime's years", func(t *testing.T) {
		want := expect(fx.events, fixtureStart, end, []Dim{DimTenant}, nil)
		for _, tc := range []struct {
			name     string
			from, to time.Time
		}{
			{"from 1960", d(1960, 1, 1, 0, 0, 0), end},
			{"from year 1", time.Time{}.Add(time.Second), end},
			{"to 2200", fixtureStart, d(2200, 1, 1, 0, 0, 0)},
			{"to DateTime's last day", fixtureStart, d(2106, 2, 7, 0, 0, 0)},
			{"1960 to 2200", d(1960, 1, 1, 0, 0, 0), d(2200, 1, 1, 0, 0, 0)},
			{"from 1960, ragged", d(1960, 1, 1, 0, 0, 7), end},
		} {
			for _, g := range []Granularity{GranularityAuto, GranularityMinute, GranularityHour} {
				if g == GranularityHour && tc.from.Truncate(time.Hour) != tc.from {
					continue
				}
				got, err := q.Usage(ctx, UsageQuery{From: tc.from, To: tc.to, By: []Dim{DimTenant}, Granularity: g})
				if err != nil {
					t.Fatal(err)
				}
				checkRows(t, tc.name+" "+string(g), []Dim{DimTenant}, got, want)
			}
		}
		for _, tc := range []struct {
			name     string
			from, to time.Time
		}{
			{"before 1970", d(1960, 1, 1, 0, 0, 0), d(1969, 12, 31, 0, 0, 0)},
			{"after 2106", d(2107, 1, 1, 0, 0, 0), d(2200, 1, 1, 0, 0, 0)},
		} {
			got, err := q.Usage(ctx, UsageQuery{From: tc.from, To: tc.to})
			if err != nil || len(got) != 0 {
				t.Errorf("%s: %v, %v; want no rows", tc.name, got, err)
			}
		}
	})

	t.Run("zero To is the clock's now", func(t *testing.T) {
		now := d(2026, 1, 31, 12, 34, 56)
		got, err := fx.querier(now).Usage(ctx, UsageQuery{From: fixtureStart})
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, "to=now", nil, got, expect(fx.events, fixtureStart, now, nil, nil))
	})

	t.Run("max rows", func(t *testing.T) {
		small := New(fx.w, Options{MaxRows: 3})
		_, err := small.Usage(ctx, UsageQuery{From: fixtureStart, To: end, By: []Dim{DimTenant, DimModel}})
		if !errors.Is(err, ErrTooManyGroups) || !strings.Contains(err.Error(), "more than 3 groups") {
			t.Errorf("8 groups with MaxRows 3: err = %v", err)
		}
		if _, err := small.Usage(ctx, UsageQuery{From: fixtureStart, To: end, By: []Dim{DimTenant}}); err != nil {
			t.Errorf("2 groups with MaxRows 3: %v", err)
		}
	})

	t.Run("invalid queries", func(t *testing.T) {
		for _, tc := range []struct {
			uq   UsageQuery
			want string
		}{
			{UsageQuery{To: end}, "needs a start time"},
			{UsageQuery{From: end, To: end}, "is empty"},
			{UsageQuery{From: end, To: fixtureStart}, "is empty"},
			{UsageQuery{From: fixtureStart, To: end, By: []Dim{"tenant; DROP TABLE x"}}, `cannot group by "tenant; DROP TABLE x": want tenant, application, provider, model, error_type, service_tier or context_band`},
			{UsageQuery{From: fixtureStart, To: end, By: []Dim{DimModel, DimModel}}, `cannot group by "model" twice`},
			{UsageQuery{From: fixtureStart, To: end, Where: map[Dim][]string{"region": {"eu"}}}, `cannot filter on "region"`},
			{UsageQuery{From: fixtureStart, To: end, Where: map[Dim][]string{DimModel: {}}}, `filter on "model" has no values`},
			{UsageQuery{From: fixtureStart.Add(time.Minute), To: end, Granularity: GranularityHour}, `granularity "hour" needs a range on whole hours (UTC), got 2026-01-30T00:01:00Z`},
			{UsageQuery{From: fixtureStart, To: end.Add(time.Hour), Granularity: GranularityDay}, `whole days`},
			{UsageQuery{From: fixtureStart, To: end, Granularity: "week"}, `unknown granularity "week"`},
		} {
			_, err := q.Usage(ctx, tc.uq)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Usage(%+v) err = %v, want %q", tc.uq, err, tc.want)
			}
		}
	})
}
