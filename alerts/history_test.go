package alerts

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/sketch"
	"github.com/costpipe/costpipe/warehouse"
)

// historyRules have one rule of every kind. The windows are whole hours,
// so that a backtest at hourly steps reads what `alerts run` would: the
// calls of whole hours (the anomaly's windows are thirds of an hour, so
// it is compared with the backtest of one Script only).
const historyRules = `
tz: Europe/Berlin
rules:
  - {name: budget, kind: budget, by: [tenant], scope: {tenant: [acme, globex]}, period: day, amount_usd: 40, thresholds: [50, 100]}
  - {name: forecast, kind: forecast, period: month, amount_usd: 900, history_days: 7}
  - {name: growth, kind: growth, by: [tenant], doubling_days: 8, window_days: 14}
  - {name: errors, kind: error_rate, by: [provider], threshold_pct: 10, window: 1h, min_requests: 10, keep_firing_for: 2h}
  - name: availability
    kind: error_rate
    by: [provider]
    objective: "95%"
    burn_rates: [{factor: 1.2, long: 3h, short: 1h}]
  - {name: slow, kind: latency, by: [model], percentile: 99, threshold_ms: 3000, window: 1h, min_requests: 10}
  - {name: slow-chat, kind: latency, scope: {application: [chat]}, by: [tenant], percentile: 90, threshold_ms: 1500, window: 2h, min_requests: 10, keep_firing_for: 1h}
  - name: chat-slo
    kind: latency
    scope: {application: [chat]}
    objective: "90% under 2000 ms"
    burn_rates: [{factor: 1.1, long: 2h, short: 1h}]
  - {name: unpriced, kind: unpriced, by: [model], window: 1h}
  - {name: anomaly, kind: anomaly, by: [tenant], window: 1h, weeks: 2, z: 3, min_usd: 0.5, min_pct: 50}
`

// historyCell is the calls of one hour and group.
type historyCell struct {
	at                                   time.Time
	tenant, application, provider, model string
	requests, errors, unpriced           uint64
	cost                                 pricing.Pico
	latency                              []float64 // ms, one per timed call
}

// historyCells are three weeks of hourly usage: acme doubling every 5
// days, globex steady, initech with a tenfold spike; anthropic failing
// every 7th hour; claude slow every 5th hour and chat calls slow every
// 4th; gpt-4o calls unpriced every 11th hour.
func historyCells(from, to time.Time) []historyCell {
	var out []historyCell
	n := 0
	for at := from; at.Before(to); at = at.Add(time.Hour) {
		h := int(at.Sub(from) / time.Hour)
		for _, tenant := range []string{"acme", "globex", "initech"} {
			for _, app := range []string{"chat", "batch"} {
				for _, pm := range [][2]string{{"openai", "gpt-4o"}, {"anthropic", "claude"}} {
					n++
					c := historyCell{at: at, tenant: tenant, application: app, provider: pm[0], model: pm[1]}
					c.requests = uint64(20 + n*7%23)
					usd := 0.05 * float64(c.requests)
					switch tenant {
					case "acme":
						usd *= math.Pow(2, at.Sub(from).Hours()/24/5)
					case "initech":
						if at.Month() == 3 && at.Day() == 28 && at.Hour() >= 13 && at.Hour() < 16 {
							usd *= 10
						}
					}
					if 8 <= at.Hour() && at.Hour() < 18 {
						usd *= 2 // office hours
					}
					c.cost, _ = pricing.ParsePico(fmt.Sprintf("%.6f", usd))
					if pm[0] == "anthropic" && h%7 == 3 {
						c.errors = c.requests / 4
					} else if n%5 == 0 {
						c.errors = 1
					}
					if pm[1] == "gpt-4o" && h%11 == 0 {
						c.unpriced = 2
					}
					for k := range c.requests {
						ms := 150 + float64((int(k)*37+n*13)%900)
						switch {
						case pm[1] == "claude" && h%5 == 0 && k%15 == 0:
							ms = 5000 + float64(k)
						case app == "chat" && h%4 == 1 && k%4 == 0:
							ms = 2500 + float64(n%100)
						}
						c.latency = append(c.latency, ms)
					}
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// landHistory lands cells in the minute (at minute 7 of their hour), hour
// and day tables.
func landHistory(t *testing.T, w *warehouse.Warehouse, cells []historyCell) {
	t.Helper()
	landTables(t, w, cells, warehouse.Minute, warehouse.Hour, warehouse.Day)
}

// landTables lands cells in tables as landHistory does.
func landTables(t *testing.T, w *warehouse.Warehouse, cells []historyCell, tables ...warehouse.Table) {
	t.Helper()
	type key struct {
		at                                   time.Time
		tenant, application, provider, model string
	}
	for _, tb := range []struct {
		table warehouse.Table
		at    func(time.Time) time.Time
	}{
		{warehouse.Minute, func(t time.Time) time.Time { return t.Add(7 * time.Minute) }},
		{warehouse.Hour, func(t time.Time) time.Time { return t }},
		{warehouse.Day, func(t time.Time) time.Time { return t.Truncate(24 * time.Hour) }},
	} {
		if !slices.Contains(tables, tb.table) {
			continue
		}
		rows := map[key]*warehouse.Rollup{}
		hists := map[key]*sketch.Histogram{}
		var order []key
		for _, c := range cells {
			k := key{tb.at(c.at), c.tenant, c.application, c.provider, c.model}
			r := rows[k]
			if r == nil {
				r = &warehouse.Rollup{TS: k.at, Tenant: c.tenant, Application: c.application, Provider: c.provider, Model: c.model,
					SrcTopic: "costpipe.events", Latency: warehouse.Dist{MinMs: math.Inf(1)}, TTFT: warehouse.Dist{MinMs: math.Inf(1)}}
				rows[k], hists[k] = r, &sketch.Histogram{}
				order = append(order, k)
			}
			r.Requests += c.requests
			r.Errors += c.errors
			r.UnpricedRequests += c.unpriced
			r.Cost = r.Cost.Add(c.cost)
			for _, ms := range c.latency {
				hists[k].Add(ms)
				r.Latency.Count++
				r.Latency.SumMicros += uint64(ms * 1000)
				r.Latency.MinMs, r.Latency.MaxMs = math.Min(r.Latency.MinMs, ms), math.Max(r.Latency.MaxMs, ms)
			}
		}
		out := make([]warehouse.Rollup, 0, len(order))
		for i, k := range order {
			r := rows[k]
			r.SrcOffset = int64(i)
			r.Latency.HistIdx, r.Latency.HistCnt = hists[k].AppendArrays([]int16{}, []uint64{})
			out = append(out, *r)
		}
		if err := w.InsertRollups(context.Background(), tb.table, out); err != nil {
			t.Fatal(err)
		}
	}
}

// episodes is a backtest's firings, one line per episode, with peaks to
// nine significant digits.
func episodes(res []BacktestResult, rules ...string) []string {
	var out []string
	for _, r := range res {
		if len(rules) > 0 && !slices.Contains(rules, r.Rule) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %d evaluations, %d failed %s, firing %s", r.Rule, r.Evaluations, r.Failed, r.FirstErr, r.FiringFor))
		for _, e := range r.Episodes {
			out = append(out, fmt.Sprintf("  %s %s %s–%s peak %.9g", groupKey(e.Group), e.Threshold,
				e.Start.Format(time.RFC3339), e.End.Format(time.RFC3339), e.Peak))
		}
	}
	return out
}

// The backtest over LoadHistory (each rule's usage read apart, histograms
// only where needed and only their tails) fires exactly as the rules
// evaluated at every step against ClickHouse through the query layer
// (what `alerts run` does), for every kind whose windows are whole hours;
// and every rule but the latency ones fires as over the history of
// before (one Script of all dimensions, both histograms).
func TestBacktestHistoryFiresAsEvaluatingEveryStep(t *testing.T) {
	t.Parallel()
	w, _ := openStore(t)
	dataFrom, dataTo := ts("2026-03-07T00:00:00Z"), ts("2026-03-31T00:00:00Z")
	landHistory(t, w, historyCells(dataFrom, dataTo))
	cfg, err := ParseConfig("history.yaml", []byte(historyRules))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := analytics.New(w, analytics.DefaultOptions())
	from, to := ts("2026-03-27T00:00:00Z"), ts("2026-03-30T00:00:00Z")
	o := BacktestOptions{From: from, To: to, Step: 2 * time.Hour}

	hist, err := LoadHistory(ctx, q, cfg, from, to)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Backtest(ctx, cfg, hist, o)
	if err != nil {
		t.Fatal(err)
	}
	perStep, err := Backtest(ctx, cfg, q, o)
	if err != nil {
		t.Fatal(err)
	}
	old, err := loadHistoryOneScript(ctx, q, cfg, from, to)
	if err != nil {
		t.Fatal(err)
	}
	before, err := Backtest(ctx, cfg, old, o)
	if err != nil {
		t.Fatal(err)
	}
	exact := []string{"budget", "forecast", "growth", "errors", "availability", "slow", "slow-chat", "chat-slo", "unpriced"}
	if g, w := episodes(got, exact...), episodes(perStep, exact...); !slices.Equal(g, w) {
		t.Errorf("backtest over the history:\n%s\nevaluated at every step:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	sums := []string{"budget", "forecast", "growth", "errors", "availability", "unpriced", "anomaly"}
	if g, w := episodes(got, sums...), episodes(before, sums...); !slices.Equal(g, w) {
		t.Errorf("backtest over the history:\n%s\nover one Script:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	// Every rule fired (the comparison is not of nothing), and the latency
	// rules read only what they need.
	for _, r := range got {
		if r.Failed > 0 || len(r.Episodes) == 0 {
			t.Errorf("%s: %d failed (%s), %d episodes", r.Rule, r.Failed, r.FirstErr, len(r.Episodes))
		}
	}
	if s := hist.Rule("slow"); s == nil || len(s.series) != 2 {
		t.Errorf("slow reads %v", s)
	}
	if hist.Rule("errors") != hist.Rule("availability") || hist.Rule("errors") == hist.Rule("unpriced") {
		t.Error("rules reading alike do not share their Script, or rules reading differently do")
	}
	if _, err := hist.Usage(ctx, analytics.UsageQuery{}); err == nil {
		t.Error("a History answered without a rule")
	}
}

// loadHistoryOneScript is LoadHistory before it read each rule's usage
// apart (one Script of every group of all dimensions any rule reads, both
// histograms): the reference the per-rule history is compared with. It reads what cfg's rules need to be replayed over [from, to)
// into a Script, in two queries: the hourly usage from 30 days before from
// (anomaly baselines, latency and error windows, budgets) and the daily
// usage (UTC days) of the days before that which forecasts and growth
// trends look back on. The backtest then evaluates in memory; windows
// shorter than an hour see their hour's rates, and a latency percentile
// over several hours is the highest hourly one.
func loadHistoryOneScript(ctx context.Context, q *analytics.Querier, cfg *Config, from, to time.Time) (*Script, error) {
	var dims []analytics.Dim
	add := func(ds ...analytics.Dim) {
		for _, d := range ds {
			if !slices.Contains(dims, d) {
				dims = append(dims, d)
			}
		}
	}
	back := 30 // days of hourly data before from
	daily := 0 // days of daily data before that
	var bounds []float64
	for _, r := range cfg.Rules {
		add(r.By...)
		for d := range r.Scope {
			add(d)
		}
		switch s := r.spec.(type) {
		case *AnomalySpec:
			add(s.ContributorsBy...)
		case *ForecastSpec:
			h := s.HistoryDays
			if h == 0 {
				h = 91
			}
			daily = max(daily, h+40-back)
		case *GrowthSpec:
			w := max(s.WindowDays, 28)
			daily = max(daily, w+1-back)
		case *LatencySpec:
			if s.SLO != nil && !slices.Contains(bounds, s.SLO.ThresholdMs) {
				bounds = append(bounds, s.SLO.ThresholdMs)
			}
		}
	}
	slices.SortFunc(dims, func(a, b analytics.Dim) int { return slices.Index(scopeDims, a) - slices.Index(scopeDims, b) })
	s := NewScript()
	hourFrom := from.UTC().Truncate(24*time.Hour).AddDate(0, 0, -back)
	load := func(start, end time.Time, step time.Duration) error {
		if !start.Before(end) {
			return nil
		}
		rows, err := q.UsageSteps(ctx, analytics.UsageQuery{From: start, To: end, By: dims}, step)
		if err != nil {
			return err
		}
		for _, r := range rows {
			p := Point{Cost: r.CostUSD.Float64(), Requests: float64(r.Requests), Errors: float64(r.Errors),
				Unpriced: float64(r.UnpricedRequests), Timed: float64(r.Latency.Count),
				Latency: Latencies{P50: r.Latency.P50, P90: r.Latency.P90, P95: r.Latency.P95, P99: r.Latency.P99, P999: r.Latency.P999}}
			if len(bounds) > 0 {
				p.SlowAbove = map[float64]float64{}
				for _, b := range bounds {
					p.SlowAbove[b] = float64(r.Latency.CountAbove(b))
				}
			}
			if err := s.AddSpan(r.Group, r.Start, step, p); err != nil {
				return fmt.Errorf("cannot hold the history: %w", err)
			}
		}
		return nil
	}
	if err := load(hourFrom.AddDate(0, 0, -daily), hourFrom, 24*time.Hour); err != nil {
		return nil, err
	}
	if err := load(hourFrom, to, time.Hour); err != nil {
		return nil, err
	}
	return s, nil
}

// youngCells are the usage of three tenants around the day of 2026-03-20
// (UTC): old spends USD 10 a day since February 20; young the same since
// March 5 (15 days before), and USD 500 at 09:00 on March 20; newborn USD
// 5 an hour from its first call at 10:00 on March 20 (no complete day).
func youngCells() []historyCell {
	usd := func(v float64) pricing.Pico { return pricing.FromPicos(int64(math.Round(v * 1e12))) }
	var out []historyCell
	day := ts("2026-03-20T00:00:00Z")
	for at := ts("2026-02-20T00:00:00Z"); at.Before(day.AddDate(0, 0, 1)); at = at.Add(time.Hour) {
		out = append(out, historyCell{at: at, tenant: "old", provider: "p", model: "m", requests: 1, cost: usd(10.0 / 24)})
		if !at.Before(ts("2026-03-05T00:00:00Z")) {
			c := historyCell{at: at, tenant: "young", provider: "p", model: "m", requests: 1, cost: usd(10.0 / 24)}
			if at.Equal(day.Add(9 * time.Hour)) {
				c.cost = usd(500)
			}
			out = append(out, c)
		}
		if !at.Before(day.Add(10 * time.Hour)) {
			out = append(out, historyCell{at: at, tenant: "newborn", provider: "p", model: "m", requests: 1, cost: usd(5)})
		}
	}
	return out
}

// `alerts backtest` (a Script over LoadHistory) forecasts as `alerts run`
// (the query layer) also for the groups whose history is short, which a
// history_days of 7 hides: a group 15 days old is forecast from its first
// day with usage (not from 91 days mostly of zeros), today's spend so far
// is the floor of its forecast, and a group whose first day is today is
// forecast too.
func TestBacktestForecastsYoungGroupsAsRun(t *testing.T) {
	t.Parallel()
	w, _ := openStore(t)
	var feb, mar []historyCell // an insert touches one month
	for _, c := range youngCells() {
		if c.at.Month() == time.February {
			feb = append(feb, c)
		} else {
			mar = append(mar, c)
		}
	}
	landHistory(t, w, feb)
	landHistory(t, w, mar)
	cfg := mustConfig(t, `
tz: Europe/Berlin
rules:
  - {name: month, kind: forecast, by: [tenant], period: month, amount_usd: 400}
  - {name: month-p90, kind: forecast, by: [tenant], period: month, amount_usd: 400, quantile: 0.9}
  - {name: day, kind: forecast, by: [tenant], period: day, amount_usd: 100}
  - {name: week-p10, kind: forecast, by: [tenant], period: week, amount_usd: 300, quantile: 0.1}
`)
	ctx := context.Background()
	q := analytics.New(w, analytics.DefaultOptions())
	from, to := ts("2026-03-20T00:00:00Z"), ts("2026-03-21T00:00:00Z")
	hist, err := LoadHistory(ctx, q, cfg, from, to)
	if err != nil {
		t.Fatal(err)
	}
	// Every group's sample at every hour, alike.
	line := func(s Sample) string {
		return fmt.Sprintf("{%s} active=%v unknown=%v value=%.6f %s", groupKey(s.Group), s.Active, s.Unknown, s.Value, s.Summary)
	}
	groups := map[string]bool{}
	for at := from; at.Before(to); at = at.Add(time.Hour) {
		for _, r := range cfg.Rules {
			run, err := Evaluate(ctx, q, cfg, r, at)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Evaluate(ctx, hist, cfg, r, at)
			if err != nil {
				t.Fatal(err)
			}
			var a, b []string
			for _, s := range run {
				a = append(a, line(s))
				groups[groupKey(s.Group)] = true
			}
			for _, s := range back {
				b = append(b, line(s))
			}
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Errorf("%s at %s:\nrun:\n  %s\nbacktest:\n  %s", r.Name, at.Format(time.RFC3339), strings.Join(a, "\n  "), strings.Join(b, "\n  "))
			}
		}
	}
	if len(groups) != 3 {
		t.Errorf("groups forecast: %v", groups)
	}
	// And so the replay fires alike, the young group included.
	o := BacktestOptions{From: from, To: to, Step: time.Hour}
	got, err := Backtest(ctx, cfg, hist, o)
	if err != nil {
		t.Fatal(err)
	}
	perStep, err := Backtest(ctx, cfg, q, o)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := episodes(got), episodes(perStep); !slices.Equal(g, w) {
		t.Errorf("backtest over the history:\n%s\nevaluated at every step:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	young := false
	for _, ep := range perStep[0].Episodes {
		young = young || ep.Group["tenant"] == "young"
	}
	if !young {
		t.Errorf("the young tenant's monthly forecast never fired: %s", strings.Join(episodes(perStep), "\n"))
	}
}
