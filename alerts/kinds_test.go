package alerts

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

func mustConfig(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := ParseConfig("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fill adds p every step in [from, to) for tenant/model.
func fill(t *testing.T, s *Script, tenant, model string, from, to time.Time, step time.Duration, p func(at time.Time) Point) {
	t.Helper()
	for at := from; at.Before(to); at = at.Add(step) {
		if err := s.Add(map[analytics.Dim]string{analytics.DimTenant: tenant, analytics.DimModel: model, analytics.DimProvider: "p"}, at, p(at)); err != nil {
			t.Fatal(err)
		}
	}
}

// firing evaluates cfg at now (after evaluating at each of before) and
// returns the alerts of rule in state firing, by group key + threshold.
func evalAt(t *testing.T, cfg *Config, src Source, times ...time.Time) *Engine {
	t.Helper()
	e := NewEngine(cfg, src)
	for _, at := range times {
		if _, failed := e.Eval(context.Background(), at); len(failed) > 0 {
			t.Fatalf("at %s: %v", at, failed[0].Err)
		}
	}
	return e
}

func states(e *Engine, rule string) map[string]State {
	out := map[string]State{}
	for _, a := range e.Alerts() {
		if a.Rule == rule {
			out[groupKey(a.Group)+"|"+a.Threshold] = a.State
		}
	}
	return out
}

// A monthly budget in Europe/Berlin: the month ends at 22:00Z on March 31
// (CEST, UTC+2), so an evaluation at 22:30Z is in April there (the alerts
// resolve) while in UTC it is still March.
func TestBudgetMonthBoundaryInBerlin(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-03-01T00:00:00Z"), ts("2026-04-02T00:00:00Z"), time.Hour, func(time.Time) Point { return Point{Cost: 1, Requests: 1} })
	rules := `tz: %s
rules:
  - {name: b, kind: budget, by: [tenant], period: month, amount_usd: 1000, thresholds: [50, 70]}
`
	cfg := mustConfig(t, strings.Replace(rules, "%s", "Europe/Berlin", 1))
	// March in Berlin began at 2026-02-28T23:00Z (the data at 00:00Z); by
	// 2026-03-22T00:00Z it holds 504 hours = USD 504: 50% crossed, 70% not.
	e := evalAt(t, cfg, s, ts("2026-03-21T23:00:00Z"), ts("2026-03-22T00:00:00Z"))
	got := states(e, "b")
	if got["tenant=acme|50%"] != StateFiring || got["tenant=acme|70%"] != "" {
		t.Fatalf("on March 22: %v", got)
	}
	a := e.Alerts()[0]
	if a.Value != 504 || !a.PeriodStart.Equal(ts("2026-02-28T23:00:00Z")) || !a.PeriodEnd.Equal(ts("2026-03-31T22:00:00Z")) {
		t.Errorf("value %v period [%s, %s)", a.Value, a.PeriodStart, a.PeriodEnd)
	}
	// Fired at most once per period and threshold: the same ID all month.
	id1 := e.Due(ts("2026-03-22T00:00:00Z"), nil)
	if len(id1) != 0 {
		t.Errorf("no receivers: nothing is due, got %v", id1)
	}
	for at := ts("2026-03-22T00:00:00Z"); at.Before(ts("2026-03-31T22:00:00Z")); at = at.Add(6 * time.Hour) {
		e.Eval(context.Background(), at)
	}
	if got := states(e, "b"); got["tenant=acme|70%"] != StateFiring {
		t.Fatalf("end of March: %v", got)
	}
	e.Eval(context.Background(), ts("2026-03-31T21:59:00Z"))
	if got := states(e, "b"); got["tenant=acme|50%"] != StateFiring {
		t.Fatalf("23:59 Berlin on March 31: %v", got)
	}
	e.Eval(context.Background(), ts("2026-03-31T22:30:00Z")) // 00:30 on April 1 in Berlin
	if got := states(e, "b"); got["tenant=acme|50%"] != StateResolved || got["tenant=acme|70%"] != StateResolved {
		t.Fatalf("April 1 00:30 Berlin: %v", got)
	}
	// In UTC the same instant is still March: still firing.
	cfgUTC := mustConfig(t, strings.Replace(rules, "%s", "UTC", 1))
	e = evalAt(t, cfgUTC, s, ts("2026-03-31T21:59:00Z"), ts("2026-03-31T22:30:00Z"))
	if got := states(e, "b"); got["tenant=acme|70%"] != StateFiring {
		t.Fatalf("UTC: %v", got)
	}
}

// A daily budget on the day clocks go forward in Berlin (March 29, 2026):
// the day has 23 hours, and its spend is counted over exactly those.
func TestBudgetDaylightSavingDay(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-03-27T00:00:00Z"), ts("2026-03-31T00:00:00Z"), time.Hour, func(time.Time) Point { return Point{Cost: 1} })
	cfg := mustConfig(t, "tz: Europe/Berlin\nrules:\n  - {name: d, kind: budget, period: day, amount_usd: 23}\n")
	// 2026-03-29 in Berlin: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
	e := evalAt(t, cfg, s, ts("2026-03-29T21:00:00Z"))
	if got := states(e, "d"); got["|100%"] != "" {
		t.Fatalf("after 22 hours of the day: %v", got)
	}
	e.Eval(context.Background(), ts("2026-03-29T21:59:59Z"))
	a := e.Alerts()
	if len(a) != 1 || a[0].State != StateFiring || a[0].Value != 23 || a[0].PeriodEnd.Sub(a[0].PeriodStart) != 23*time.Hour {
		t.Fatalf("at the end of the 23-hour day: %+v", a)
	}
	e.Eval(context.Background(), ts("2026-03-29T22:00:01Z")) // next day
	if a := e.Alerts(); a[0].State != StateResolved {
		t.Fatalf("next day: %v", a[0].State)
	}
}

func TestForecastRule(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-01-01T00:00:00Z"), ts("2026-03-10T12:00:00Z"), time.Hour, func(time.Time) Point { return Point{Cost: 10.0 / 24} })
	cfg := mustConfig(t, `rules:
  - {name: over, kind: forecast, amount_usd: 250}
  - {name: under, kind: forecast, amount_usd: 400}
  - {name: p90, kind: forecast, amount_usd: 309, quantile: 0.9}
`)
	e := evalAt(t, cfg, s, ts("2026-03-10T12:00:00Z"))
	got := map[string]*Alert{}
	for _, a := range e.Alerts() {
		got[a.Rule] = a
	}
	if a := got["over"]; a == nil || a.State != StateFiring || math.Abs(a.Value-310) > 5 {
		t.Fatalf("over: %+v", a)
	}
	if got["under"] != nil {
		t.Errorf("under fired: %+v", got["under"])
	}
	if a := got["p90"]; a == nil || a.State != StateFiring {
		t.Errorf("p90: %+v", a)
	}
}

func TestGrowthRule(t *testing.T) {
	t.Parallel()
	s := NewScript()
	day0 := ts("2026-02-01T00:00:00Z")
	for d := range 35 {
		at := day0.AddDate(0, 0, d)
		for tenant, v := range map[string]float64{"doubling": 10 * math.Pow(2, float64(d)/5), "flat": 50} {
			fill(t, s, tenant, "m", at, at.Add(time.Hour), time.Hour, func(time.Time) Point { return Point{Cost: v} })
		}
	}
	cfg := mustConfig(t, `rules:
  - {name: g, kind: growth, by: [tenant], doubling_days: 7, min_spend_usd: 100}
  - {name: floor, kind: growth, by: [tenant], doubling_days: 7, min_spend_usd: 1000000}
`)
	e := evalAt(t, cfg, s, day0.AddDate(0, 0, 35))
	got := states(e, "g")
	if got["tenant=doubling|"] != StateFiring || len(got) != 1 {
		t.Fatalf("growth: %v", got)
	}
	if a := e.Alerts()[0]; math.Abs(a.Value-5) > 0.1 {
		t.Errorf("doubling days %v, want 5", a.Value)
	}
	if got := states(e, "floor"); len(got) != 0 {
		t.Errorf("spend floor: %v", got)
	}
}

func TestLatencyAndErrorRules(t *testing.T) {
	t.Parallel()
	s := NewScript()
	now := ts("2026-03-10T12:00:00Z")
	fill(t, s, "acme", "fast", now.Add(-7*time.Hour), now, time.Minute, func(time.Time) Point {
		return Point{Requests: 100, Timed: 100, Slow: 0, Errors: 1, Latency: Latencies{P99: 900}}
	})
	fill(t, s, "acme", "slow", now.Add(-7*time.Hour), now, time.Minute, func(at time.Time) Point {
		p := Point{Requests: 100, Timed: 100, Slow: 2, Errors: 1, Latency: Latencies{P99: 2500}}
		if at.After(now.Add(-30 * time.Minute)) { // the last half hour: 25% slow, 20% errors
			p.Slow, p.Errors = 25, 20
		}
		return p
	})
	cfg := mustConfig(t, `rules:
  - {name: p99, kind: latency, by: [model], threshold_ms: 2000, min_requests: 100}
  - {name: p99-min, kind: latency, by: [model], threshold_ms: 2000, min_requests: 100000}
  - {name: slo, kind: latency, by: [model], objective: "99% under 2000 ms"}
  - {name: err, kind: error_rate, by: [model], threshold_pct: 5}
  - {name: avail, kind: error_rate, by: [model], objective: "99.5%"}
`)
	e := evalAt(t, cfg, s, now)
	for rule, want := range map[string]map[string]State{
		"p99":     {"model=slow|": StateFiring},
		"p99-min": {},
		"err":     {"model=slow|": StateFiring},
		"avail":   {"model=slow|": StateFiring},
	} {
		if got := states(e, rule); !equalStates(got, want) {
			t.Errorf("%s: %v, want %v", rule, got, want)
		}
	}
	// SLO: over 1h, 31 minutes at 2% and 29 at 25% = 13.1% bad = 13.1x:
	// 14.4x is not reached. Over 30m and 5m it is about 25x, over 6h
	// 3.9x: the 6x pair does not hold either. So the latency SLO does not
	// fire yet...
	if got := states(e, "slo"); len(got) != 0 {
		t.Errorf("slo at 13.5x: %v", got)
	}
	// ... and fires 10 minutes later, when the last hour is 39 minutes
	// at 25% and 21 at 2% (16.95x).
	fill(t, s, "acme", "slow", now, now.Add(10*time.Minute), time.Minute, func(time.Time) Point {
		return Point{Requests: 100, Timed: 100, Slow: 25, Errors: 20, Latency: Latencies{P99: 2500}}
	})
	e.Eval(context.Background(), now.Add(10*time.Minute))
	if got := states(e, "slo"); !equalStates(got, map[string]State{"model=slow|": StateFiring}) {
		t.Errorf("slo at 17x: %v", got)
	}
	for _, a := range e.Alerts() {
		if a.Rule == "slo" && (a.ThresholdValue != 14.4 || math.Abs(a.Value-(21*2+39*25)/60.0) > 0.01) {
			t.Errorf("slo burn %v threshold %v", a.Value, a.ThresholdValue)
		}
	}
}

func equalStates(a, b map[string]State) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestUnpricedRule(t *testing.T) {
	t.Parallel()
	s := NewScript()
	now := ts("2026-03-10T12:00:00Z")
	fill(t, s, "acme", "known", now.Add(-2*time.Hour), now, time.Minute, func(time.Time) Point { return Point{Requests: 10, Cost: 1} })
	fill(t, s, "acme", "new-model", now.Add(-10*time.Minute), now, time.Minute, func(time.Time) Point { return Point{Requests: 3, Unpriced: 3} })
	cfg := mustConfig(t, "rules:\n  - {name: u, kind: unpriced, by: [model]}\n  - {name: u100, kind: unpriced, by: [model], min_requests: 100}\n")
	e := evalAt(t, cfg, s, now)
	if got := states(e, "u"); !equalStates(got, map[string]State{"model=new-model|": StateFiring}) {
		t.Errorf("unpriced: %v", got)
	}
	if got := states(e, "u100"); len(got) != 0 {
		t.Errorf("unpriced min 100: %v", got)
	}
}

// weekly is a strong weekly pattern in Berlin local time: weekday office
// hours cost 20x the night, weekends a tenth of weekday nights, ±10% noise.
func weekly(rng *rand.Rand, at time.Time) float64 {
	l := at.In(berlin)
	v := 1.0
	if h := l.Hour(); h >= 9 && h < 18 {
		v = 20
	}
	if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
		v = 0.1
	}
	return v * (0.9 + 0.2*rng.Float64())
}

var berlin, _ = time.LoadLocation("Europe/Berlin")

// The anomaly rule does not fire over a week of a strong weekly pattern
// (whose baseline weeks straddle the switch to summer time) and fires on
// one hour at 5x, naming the model that caused it.
func TestAnomalyWeeklyPatternAndSpike(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	start, end := ts("2026-03-02T00:00:00Z"), ts("2026-04-06T00:00:00Z")
	spikeFrom := ts("2026-04-01T12:00:00Z") // Wednesday 14:00 in Berlin
	build := func(spike bool) *Script {
		s := NewScript()
		for _, model := range []string{"a", "b"} {
			fill(t, s, "acme", model, start, end, 10*time.Minute, func(at time.Time) Point {
				v := weekly(rng, at)
				if spike && model == "b" && !at.Before(spikeFrom) && at.Before(spikeFrom.Add(time.Hour)) {
					v *= 9 // model b at 9x: the tenant's hour at 5x
				}
				return Point{Cost: v}
			})
		}
		return s
	}
	cfg := mustConfig(t, `tz: Europe/Berlin
rules:
  - {name: an, kind: anomaly, by: [tenant], z: 3.5, min_usd: 5, min_pct: 50}
`)
	quiet := build(false)
	e := NewEngine(cfg, quiet)
	fired := 0
	for at := ts("2026-03-30T00:00:00Z"); at.Before(end); at = at.Add(20 * time.Minute) {
		if _, failed := e.Eval(context.Background(), at); len(failed) > 0 {
			t.Fatal(failed[0].Err)
		}
		for _, a := range e.Alerts() {
			if a.State == StateFiring {
				fired++
				t.Errorf("fired at %s on the weekly pattern: %s", at, a.Summary)
			}
		}
		if fired > 3 {
			break
		}
	}
	spiky := build(true)
	e = NewEngine(cfg, spiky)
	e.Eval(context.Background(), spikeFrom.Add(40*time.Minute))
	e.Eval(context.Background(), spikeFrom.Add(time.Hour))
	as := e.Alerts()
	if len(as) != 1 || as[0].State != StateFiring {
		t.Fatalf("5x hour: %+v", as)
	}
	a := as[0]
	if len(a.Contributors) == 0 || a.Contributors[0].Group["model"] != "b" || a.Contributors[0].Share < 0.9 {
		t.Errorf("contributors %+v", a.Contributors)
	}
	if a.Value < 4*a.ThresholdValue/1.5/2 || !strings.Contains(a.Summary, "robust z") {
		t.Errorf("value %v threshold %v: %s", a.Value, a.ThresholdValue, a.Summary)
	}
	// The hour before the spike, nothing.
	e = NewEngine(cfg, spiky)
	e.Eval(context.Background(), spikeFrom)
	if as := e.Alerts(); len(as) != 0 {
		t.Errorf("before the spike: %+v", as[0])
	}
}

func TestRobustZ(t *testing.T) {
	t.Parallel()
	z, med, mad := robustZ(10, []float64{1, 2, 3, 4})
	// median 2.5, deviations 1.5 .5 .5 1.5 → MAD 1
	if med != 2.5 || mad != 1 || math.Abs(z-0.6745*7.5) > 1e-12 {
		t.Errorf("z %v median %v mad %v", z, med, mad)
	}
	if z, _, _ := robustZ(3, []float64{2, 2, 2, 2}); !math.IsInf(z, 1) {
		t.Errorf("MAD 0 above the median: %v", z)
	}
}
